"""What the practice writes in the patient's record about a message: a SNOMED CT concept and a line
of plain text, rebuilt from the message and its events each time it is read, so it follows the
receipts as they arrive.

The text names the sender, the documents, the last four digits of the mobile and the times a
clinician needs, in Europe/London time as the practice reads its clock. It never holds a date of
birth, a full number or the message's text. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from shared_code import lifecycle
from shared_code.events import Event
from shared_code.message_model import Message

#: SNOMED CT 711408005 |Short message service text message sent to patient (procedure)|.
SNOMED_CODE = "711408005"
SNOMED_DISPLAY = "Short message service text message sent to patient"
#: English month names whatever the machine's locale (strftime's %b follows the locale).
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class RecordEntry:
    """The concept and the text for the record."""

    code: str
    display: str
    text: str

    def to_json(self) -> dict[str, Any]:
        """As the API shows it (`recordEntry`)."""
        return {"snomed": {"code": self.code, "display": self.display}, "text": self.text}


def london() -> tzinfo:
    """The practice's clock (loaded when first needed: zoneinfo reads the tz database)."""
    from zoneinfo import ZoneInfo

    return ZoneInfo("Europe/London")


def record_entry(
    message: Message, events: Sequence[Event], filenames: Sequence[str | None], *, at: datetime
) -> RecordEntry:
    """The record entry for `message` as things stand at `at`.

    `events` are the message's events (lifecycle and activity, any order), `filenames` its
    documents' names in order (None for one whose record is gone).
    """
    zone = london()
    first_sentence, day = _opening(message, filenames, zone)
    sentences = [first_sentence]

    def when(moment: datetime) -> str:
        return _when(moment, zone, day)

    status = lifecycle.shown_status(message, at)
    if message.state == lifecycle.DELIVERED and message.delivered_at:
        sentences.append(f"Delivered {when(message.delivered_at)}.")
    elif message.state == lifecycle.FAILED:
        if message.sent_at:
            failed_at = _last(events, "delivery_failed")
            sentences.append(f"Not delivered{' ' + when(failed_at) if failed_at else ''}.")
        else:
            sentences.append("It could not be sent.")
    receipts = _receipts(message, events, when)
    if receipts:
        sentences.append(receipts)
    if status == lifecycle.LOCKED:
        locked_at = _last(events, "locked")
        sentences.append(f"Link locked after wrong dates of birth{' ' + when(locked_at) if locked_at else ''}.")
    if message.revoked_at:
        if lifecycle.text_gone(message):
            sentences.append(f"Link withdrawn by the practice {when(message.revoked_at)}.")
        else:
            sentences.append(f"Withdrawn by the practice {when(message.revoked_at)} before it was sent.")
    elif status == lifecycle.EXPIRED:
        sentences.append(f"Link expired {when(message.link_expires_at)}.")
    return RecordEntry(SNOMED_CODE, SNOMED_DISPLAY, " ".join(sentences))


def _opening(message: Message, filenames: Sequence[str | None], zone: tzinfo) -> tuple[str, datetime]:
    """The first sentence (what, by whom, to whom, when) and the local day later times are read against."""
    what = f"Text message with {_documents(filenames)}"
    to = f"to mobile ending {_ending(message)}" if _ending(message) else "to the patient's mobile"
    if message.sent_at:
        day = message.sent_at.astimezone(zone)
        return f"{what} sent by {message.created_by} {to} on {_stamp(day)}.", day
    day = message.created_at.astimezone(zone)
    opening = f"{what} {to} prepared by {message.created_by} on {_stamp(day)}"
    if message.state == lifecycle.SCHEDULED and message.send_at and not message.revoked_at:
        return f"{opening}, to be sent {_when(message.send_at, zone, day)}.", day
    if lifecycle.waiting_to_send(message) or message.state == lifecycle.AWAITING_SCAN:
        return (f"{opening}, not sent yet." if not message.revoked_at else f"{opening}."), day
    return f"{opening}.", day


def _documents(filenames: Sequence[str | None]) -> str:
    count = len(filenames)
    noun = "document" if count == 1 else "documents"
    known = [name for name in filenames if name]
    return f"{count} {noun} ({', '.join(known)})" if known else f"{count} {noun}"


def _ending(message: Message) -> str | None:
    """The last four digits of the mobile: kept apart, as the number itself goes once delivered."""
    if message.mobile_ending:
        return message.mobile_ending
    return message.mobile[-4:] if message.mobile else None


def _receipts(message: Message, events: Sequence[Event], when: Any) -> str | None:
    """What the patient did: the first right date of birth and the first downloads."""
    verified = _first(events, "dob_verified")
    downloads = [e for e in events if e.type == "downloaded"]
    if not downloads:
        return f"Date of birth confirmed by the patient {when(verified)}." if verified else None
    first_download = min(e.at for e in downloads)
    fetched = {e.attachment_id for e in downloads if e.attachment_id}
    total = len(message.attachment_ids)
    if total <= 1:
        what = "document downloaded"
    elif len(fetched) >= total:
        what = "all documents downloaded"
    else:
        what = f"{max(len(fetched), 1)} of {total} documents downloaded"
    if verified and when(verified) == when(first_download):
        return f"Date of birth confirmed and {what} by the patient {when(first_download)}."
    if verified:
        return f"Date of birth confirmed by the patient {when(verified)}; {what} {when(first_download)}."
    return f"{what[0].upper()}{what[1:]} by the patient {when(first_download)}."


def _first(events: Iterable[Event], kind: str) -> datetime | None:
    times = [e.at for e in events if e.type == kind]
    return min(times) if times else None


def _last(events: Iterable[Event], kind: str) -> datetime | None:
    times = [e.at for e in events if e.type == kind]
    return max(times) if times else None


def _stamp(local: datetime) -> str:
    """`30-Nov-2026 09:14`."""
    return f"{local.day:02d}-{_MONTHS[local.month - 1]}-{local.year} {local.hour:02d}:{local.minute:02d}"


def _when(moment: datetime, zone: tzinfo, day: datetime) -> str:
    """The time alone on the opening's local day, else the date and time."""
    local = moment.astimezone(zone)
    if local.date() == day.date():
        return f"{local.hour:02d}:{local.minute:02d}"
    return _stamp(local)
