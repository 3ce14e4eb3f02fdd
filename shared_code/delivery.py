"""ACS delivery reports (Event Grid `Microsoft.Communication.SMSDeliveryReportReceived`).

Every text is sent with the tag `{org}/{message id}`, which ACS returns in its reports,
so a report finds its message directly, also when it arrives before the dispatcher has
heard ACS's answer (ACS reports quickly; and when the answer was lost, the dispatcher
learns the ACS id only on its retry). A report without a usable tag is not ours.

What a report does to its message is the lifecycle's rule (`lifecycle.reported`), so that
duplicates and any order of arrival end in the same state:

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
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared_code import clock, lifecycle
from shared_code.errors import NotFound
from shared_code.message_model import Message
from shared_code.message_store import transition
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
    return lifecycle.reported(
        m, report.acs_message_id, report.received, delivered=report.delivered, failure_reason=report.failure_reason
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
