"""ACS delivery reports (Event Grid `Microsoft.Communication.SMSDeliveryReportReceived`).

Reports can arrive twice and out of order: each carries the time ACS received it, and
a report older than the one already applied changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from shared_code import clock
from shared_code.events import record_event
from shared_code.messages import DELIVERED, FAILED, SENT, Message, transition
from shared_code.storage import SMS_IDS, Storage

log = logging.getLogger(__name__)

DELIVERY_REPORT = "Microsoft.Communication.SMSDeliveryReportReceived"


def apply_delivery_report(storage: Storage, data: dict[str, Any]) -> str:
    """Record one delivery report on its message; returns what happened, for the log."""
    from azure.core.exceptions import ResourceNotFoundError

    acs_id = str(data.get("messageId") or data.get("MessageId") or "")
    status = str(data.get("deliveryStatus") or data.get("DeliveryStatus") or "")
    received = clock.parse_iso(data.get("receivedTimestamp") or data.get("ReceivedTimestamp")) or clock.now()
    details = str(data.get("deliveryStatusDetails") or data.get("DeliveryStatusDetails") or "")
    if not acs_id:
        return "ignored: no message id"
    try:
        row = storage.table(SMS_IDS).get_entity(acs_id, "")
    except ResourceNotFoundError:
        log.warning("delivery report for unknown ACS message %s", acs_id)
        return "ignored: unknown message"
    delivered = status.lower() == "delivered"

    def apply(m: Message) -> Message | None:
        if m.state not in (SENT, DELIVERED, FAILED) or (m.delivery_reported_at and received <= m.delivery_reported_at):
            return None  # not ours to change, or older than what we know
        if delivered:
            return replace(m, state=DELIVERED, delivered_at=received, delivery_reported_at=received,
                           failure_reason=None)
        return replace(m, state=FAILED, delivery_reported_at=received,
                       failure_reason=f"The phone network could not deliver the text ({status or 'failed'}"
                                      + (f": {details})" if details else ")"))

    message, won = transition(storage, row["org"], row["messageId"], apply)
    if not won:
        return "ignored: duplicate or out of date"
    record_event(storage, message.id, "delivered" if delivered else "delivery_failed", at=received)
    log.info("message %s delivery report: %s", message.id, "delivered" if delivered else "failed")
    return "delivered" if delivered else "failed"
