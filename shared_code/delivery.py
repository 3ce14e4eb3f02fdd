"""ACS delivery reports (Event Grid `Microsoft.Communication.SMSDeliveryReportReceived`).

Every text is sent with the tag `{org}/{message id}`, which ACS returns in its reports,
so a report finds its message directly, also when it arrives before the dispatcher has
heard ACS's answer (ACS reports quickly; and when the answer was lost, the dispatcher
learns the ACS id only on its retry). A report without a usable tag is not ours.

Reports arrive as Event Grid really sends them: field names in camelCase (Event Grid's schema,
`AcsSmsDeliveryReportReceivedEventData` in azure-rest-api-specs) or PascalCase (Microsoft's sample
event), mixed within one event, read here without regard to case; times with seven fractional
digits, kept to whole milliseconds as every stored time is (or a duplicate would look newer than
the copy stored); at least once (duplicates), in any order, and hours late.

The statuses are ACS's (`DeliveryReport.deliveryStatus` in the SMS API spec, 2025-08-01-preview):
`Delivered` and `Failed` are final; `Pending` and `Unknown` are not, and only prove that ACS took
the text (`lifecycle.pending_reported`). What a final report does to its message is the lifecycle's
rule (`lifecycle.reported`), so that duplicates and any order of arrival end in the same state:

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
#: What a report says about its text: the handset has it, the network gave up, or neither yet.
DELIVERED, FAILED, PENDING = "delivered", "failed", "pending"


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
        return self.outcome == DELIVERED

    @property
    def outcome(self) -> str:
        """DELIVERED, FAILED, or PENDING for every other status (Pending, Unknown, any new one):
        only a report that says so ends a message's delivery."""
        status = self.status.strip().lower()
        return status if status in (DELIVERED, FAILED) else PENDING

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
            # Message ids are made lower-case; a tag echoed in another case still finds its row.
            message_id = str(uuid.UUID(message_id))
        except ValueError:
            return None
        return org, message_id


def _fields(data: dict[str, Any]) -> dict[str, Any]:
    """The event data's fields by lower-cased name (camelCase, PascalCase or a mix of both)."""
    return {str(name).lower(): value for name, value in data.items() if value is not None}


def _received(value: Any) -> datetime:
    """The report's time to the millisecond, as stored; a missing or unreadable one counts as now."""
    try:
        received = clock.parse_iso(value)
    except (TypeError, ValueError, AttributeError):
        received = None
    if received is None:
        return clock.now()
    return received.replace(microsecond=received.microsecond // 1000 * 1000)


def parse_report(data: dict[str, Any]) -> DeliveryReport:
    """The report in an event's `data`."""
    fields = _fields(data)
    return DeliveryReport(
        acs_message_id=str(fields.get("messageid") or ""),
        status=str(fields.get("deliverystatus") or ""),
        details=str(fields.get("deliverystatusdetails") or ""),
        tag=str(fields.get("tag") or ""),
        received=_received(fields.get("receivedtimestamp")),
    )


def apply_report(m: Message, report: DeliveryReport) -> Message | None:
    """The message after this report, or None when the report changes nothing."""
    if report.outcome == PENDING:
        return lifecycle.pending_reported(m, report.acs_message_id, report.received)
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
    log.info("message %s delivery report: %s", message.id, report.outcome)
    return report.outcome
