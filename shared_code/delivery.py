"""ACS delivery reports (Event Grid `Microsoft.Communication.SMSDeliveryReportReceived`).

Every text is sent with the tag `{org}/{message id}`, which ACS returns in its reports,
so a report finds its message directly, also when it arrives before the dispatcher has
heard ACS's answer (ACS reports quickly; and when the answer was lost, the dispatcher
learns the ACS id only on its retry). A report without a usable tag is not ours.

Rules, so that duplicates and any order of arrival end in the same state:

* each report carries the time ACS received it; one no newer than the last applied
  changes nothing (duplicates, and older reports arriving late);
* `delivered` is final: the handset has the text, and no later report undoes that;
* a report for a message still marked queued (its answer lost) or failed as
  unconfirmed proves ACS sent it, so it is recorded as sent too; one for a message
  never tried (no first-sent time) cannot be genuine and is ignored.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from shared_code import clock
from shared_code.errors import NotFound
from shared_code.messages import DELIVERED, FAILED, QUEUED, SCHEDULED, SENT, Message, transition
from shared_code.storage import Storage

log = logging.getLogger(__name__)

DELIVERY_REPORT = "Microsoft.Communication.SMSDeliveryReportReceived"


@dataclass(frozen=True)
class DeliveryReport:
    """The fields of one report that decide what it does."""

    acs_message_id: str
    status: str
    details: str
    tag: str
    received: datetime

    @property
    def delivered(self) -> bool:
        """Whether the handset has the text."""
        return self.status.lower() == "delivered"

    @property
    def failure_reason(self) -> str:
        """What the practice is told when the network could not deliver it."""
        return (
            "The phone network could not deliver the text ("
            + (self.status or "failed")
            + (f": {self.details})" if self.details else ")")
        )

    def message_key(self) -> tuple[str, str] | None:
        """(org, message id) from the tag `{org}/{message id}`, or None."""
        org, _, message_id = self.tag.partition("/")
        if not org or not message_id:
            return None
        try:
            uuid.UUID(message_id)
        except ValueError:
            return None
        return org, message_id


def _field(data: dict[str, Any], name: str) -> Any:
    """A report field by its documented PascalCase name, or in camelCase."""
    value = data.get(name)
    return value if value is not None else data.get(name[0].lower() + name[1:])


def parse_report(data: dict[str, Any]) -> DeliveryReport:
    """The report in an event's `data`; a missing or unreadable time counts as now."""
    try:
        received = clock.parse_iso(_field(data, "ReceivedTimestamp")) or clock.now()
    except (TypeError, ValueError):
        received = clock.now()
    return DeliveryReport(
        acs_message_id=str(_field(data, "MessageId") or ""),
        status=str(_field(data, "DeliveryStatus") or ""),
        details=str(_field(data, "DeliveryStatusDetails") or ""),
        tag=str(_field(data, "Tag") or ""),
        received=received,
    )


def apply_report(m: Message, report: DeliveryReport) -> Message | None:
    """The message after this report, or None when the report changes nothing."""
    if m.acs_message_id and m.acs_message_id != report.acs_message_id:
        return None  # a report for some other text
    if m.state not in (QUEUED, SCHEDULED, SENT, DELIVERED, FAILED):
        return None
    if m.sent_at is None and m.first_sent_at is None:
        return None  # never tried, so ACS cannot have sent it
    if m.delivery_reported_at and report.received <= m.delivery_reported_at:
        return None  # a duplicate, or older than what we know
    if m.state == DELIVERED and not report.delivered:
        return None  # delivered is final
    common: dict[str, Any] = {
        "acs_message_id": report.acs_message_id,
        "delivery_reported_at": report.received,
        # Sent just before it was reported, when the dispatcher never heard ACS's answer.
        "sent_at": m.sent_at or report.received - timedelta(milliseconds=1),
        "body": None,
        "sealed_token": None,
    }
    if m.sent_at is None:
        # It went, though the dispatcher never heard ACS say so: the report is the proof.
        m = m.with_event("sent", at=common["sent_at"])
    if report.delivered:
        return replace(
            m, state=DELIVERED, delivered_at=m.delivered_at or report.received, failure_reason=None, **common
        ).with_event("delivered", at=report.received)
    return replace(m, state=FAILED, failure_reason=report.failure_reason, **common).with_event(
        "delivery_failed", at=report.received
    )


def apply_delivery_report(storage: Storage, data: dict[str, Any]) -> str:
    """Record one delivery report on its message; returns what happened, for the log."""
    report = parse_report(data)
    if not report.acs_message_id:
        return "ignored: no message id"
    target = report.message_key()
    if target is None:
        log.warning("delivery report for unknown ACS message %s", report.acs_message_id)
        return "ignored: unknown message"
    try:
        message, won = transition(storage, *target, lambda m: apply_report(m, report))
    except NotFound:
        log.warning("delivery report for unknown ACS message %s", report.acs_message_id)
        return "ignored: unknown message"
    if not won:
        return "ignored: duplicate or out of date"
    outcome = "delivered" if report.delivered else "failed"
    log.info("message %s delivery report: %s", message.id, outcome)
    return outcome
