"""The record entry at each stage of a message: the SNOMED concept, and the text a clinician reads,
in Europe/London time, with no date of birth, full number or message text."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from shared_code.events import Event
from shared_code.lifecycle import AWAITING_SCAN, DELIVERED, FAILED, QUEUED, SCHEDULED, SENT
from shared_code.message_model import Message
from shared_code.record_entry import SNOMED_CODE, record_entry
from tests.support.messages import message_record

#: 30 November is GMT: London time is UTC.
T0 = datetime(2026, 11, 30, 9, 14, 5, tzinfo=timezone.utc)
DOC = "11111111-1111-1111-1111-111111111111"
DOC2 = "22222222-2222-2222-2222-222222222222"
LATER = T0 + timedelta(days=1)


def _message(**changes: object) -> Message:
    base = message_record(at=T0, attachment_ids=(DOC,), mobile="+447700900123", mobile_ending="0123")
    return replace(base, **changes)


def _sent(**changes: object) -> Message:
    return _message(**{"state": SENT, "sent_at": T0, "first_sent_at": T0, "acs_message_id": "x", **changes})


def _delivered(**changes: object) -> Message:
    return _sent(**{"state": DELIVERED, "delivered_at": T0 + timedelta(seconds=20), "mobile": None, **changes})


def _text(message: Message, events: list[Event] = (), filenames: list[str | None] = ("fit-note.pdf",), at=LATER) -> str:  # type: ignore[assignment]
    return record_entry(message, list(events), list(filenames), at=at).text


def test_the_concept_is_the_sms_sent_to_patient() -> None:
    entry = record_entry(_sent(), [], ["fit-note.pdf"], at=LATER).to_json()
    assert entry["snomed"] == {"code": "711408005", "display": "Short message service text message sent to patient"}
    assert SNOMED_CODE == "711408005"


def test_queued() -> None:
    assert _text(_message(state=QUEUED)) == (
        "Text message with 1 document (fit-note.pdf) to mobile ending 0123 prepared by gp1 on 30-Nov-2026 09:14, "
        "not sent yet."
    )


def test_awaiting_scan_is_not_sent_yet() -> None:
    assert _text(_message(state=AWAITING_SCAN)).endswith("on 30-Nov-2026 09:14, not sent yet.")


def test_scheduled_says_when_it_goes() -> None:
    message = _message(state=SCHEDULED, send_at=datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc))
    assert _text(message).endswith("prepared by gp1 on 30-Nov-2026 09:14, to be sent 01-Dec-2026 09:00.")


def test_sent() -> None:
    assert _text(_sent()) == (
        "Text message with 1 document (fit-note.pdf) sent by gp1 to mobile ending 0123 on 30-Nov-2026 09:14."
    )


def test_delivered_the_same_day_is_a_time() -> None:
    assert _text(_delivered()).endswith("on 30-Nov-2026 09:14. Delivered 09:14.")


def test_delivered_another_day_is_a_date_and_time() -> None:
    # 23:59 UTC on 30 November and 00:01 on 1 December: another day on the practice's clock.
    sent = datetime(2026, 11, 30, 23, 59, tzinfo=timezone.utc)
    message = _delivered(sent_at=sent, delivered_at=sent + timedelta(minutes=2))
    assert _text(message).endswith("on 30-Nov-2026 23:59. Delivered 01-Dec-2026 00:01.")


def test_the_ending_outlives_the_number() -> None:
    # The number goes once delivered; the four digits stay for the record.
    assert "mobile ending 0123" in _text(_delivered())
    assert "to the patient's mobile" in _text(_delivered(mobile_ending=None))


def test_dob_verified() -> None:
    events = [Event("dob_verified", T0 + timedelta(minutes=6))]
    assert _text(_delivered(), events).endswith("Delivered 09:14. Date of birth confirmed by the patient 09:20.")


def test_dob_verified_and_downloaded_in_the_same_minute_as_the_issue_writes_it() -> None:
    events = [
        Event("dob_verified", T0 + timedelta(minutes=6)),
        Event("downloaded", T0 + timedelta(minutes=6, seconds=30), DOC),
        Event("downloaded", T0 + timedelta(minutes=9), DOC),
    ]
    assert _text(_delivered(), events) == (
        "Text message with 1 document (fit-note.pdf) sent by gp1 to mobile ending 0123 on 30-Nov-2026 09:14. "
        "Delivered 09:14. Date of birth confirmed and document downloaded by the patient 09:20."
    )


def test_downloaded_later_has_its_own_time() -> None:
    events = [Event("dob_verified", T0 + timedelta(minutes=6)), Event("downloaded", T0 + timedelta(minutes=8), DOC)]
    assert _text(_delivered(), events).endswith(
        "Date of birth confirmed by the patient 09:20; document downloaded 09:22."
    )


def test_some_of_several_documents_downloaded() -> None:
    message = _delivered(attachment_ids=(DOC, DOC2))
    events = [Event("dob_verified", T0 + timedelta(minutes=6)), Event("downloaded", T0 + timedelta(minutes=8), DOC)]
    text = _text(message, events, ["fit-note.pdf", "letter.pdf"])
    assert text.startswith("Text message with 2 documents (fit-note.pdf, letter.pdf) sent by gp1")
    assert text.endswith("; 1 of 2 documents downloaded 09:22.")
    events.append(Event("downloaded", T0 + timedelta(minutes=9), DOC2))
    assert _text(message, events, ["fit-note.pdf", "letter.pdf"]).endswith("; all documents downloaded 09:22.")


def test_a_document_whose_record_is_gone_is_counted_not_named() -> None:
    assert _text(_sent(attachment_ids=(DOC, DOC2)), [], ["fit-note.pdf", None]).startswith(
        "Text message with 2 documents (fit-note.pdf) sent"
    )


def test_failed_before_sending() -> None:
    message = _message(state=FAILED, failure_reason="The attachment x.pdf was rejected", mobile=None)
    assert _text(message) == (
        "Text message with 1 document (fit-note.pdf) to mobile ending 0123 prepared by gp1 on 30-Nov-2026 09:14. "
        "It could not be sent."
    )


def test_failed_delivery() -> None:
    message = _sent(state=FAILED, failure_reason="network", mobile=None)
    events = [Event("sent", T0), Event("delivery_failed", T0 + timedelta(minutes=1))]
    assert _text(message, events).endswith("on 30-Nov-2026 09:14. Not delivered 09:15.")


def test_locked() -> None:
    message = _delivered(locked=True, dob_attempts=5)
    events = [Event("locked", T0 + timedelta(minutes=7))]
    assert _text(message, events).endswith("Delivered 09:14. Link locked after wrong dates of birth 09:21.")


def test_unlocked_again_says_nothing_of_the_lock() -> None:
    events = [Event("locked", T0 + timedelta(minutes=7)), Event("unlocked", T0 + timedelta(minutes=30))]
    assert "locked" not in _text(_delivered(), events)


def test_revoked_after_sending() -> None:
    message = _delivered(revoked_at=T0 + timedelta(hours=1))
    assert _text(message).endswith("Delivered 09:14. Link withdrawn by the practice 10:14.")


def test_revoked_before_sending() -> None:
    message = _message(state=QUEUED, revoked_at=T0 + timedelta(minutes=1))
    assert _text(message).endswith(
        "prepared by gp1 on 30-Nov-2026 09:14. Withdrawn by the practice 09:15 before it was sent."
    )


def test_expired() -> None:
    message = _delivered()
    expiry = message.link_expires_at
    assert "expired" not in _text(message, at=expiry - timedelta(seconds=1))
    assert _text(message, at=expiry).endswith("Delivered 09:14. Link expired 28-Dec-2026 09:14.")


def test_summer_time_is_the_practices_clock() -> None:
    # 1 June is BST: 08:14 UTC is 09:14 in London.
    sent = datetime(2026, 6, 1, 8, 14, tzinfo=timezone.utc)
    message = _delivered(sent_at=sent, delivered_at=sent + timedelta(seconds=5))
    assert _text(message).endswith("on 01-Jun-2026 09:14. Delivered 09:14.")


def test_the_clock_change_night() -> None:
    # 25 October 2026, 00:30 UTC is 01:30 BST; 01:30 UTC is 01:30 GMT: both read 01:30, an hour apart.
    sent = datetime(2026, 10, 25, 0, 30, tzinfo=timezone.utc)
    message = _delivered(sent_at=sent, delivered_at=sent + timedelta(hours=1))
    assert _text(message).endswith("on 25-Oct-2026 01:30. Delivered 01:30.")


@pytest.mark.parametrize(
    "message",
    [_message(state=QUEUED), _sent(), _delivered(), _message(state=FAILED, failure_reason="x")],
    ids=["queued", "sent", "delivered", "failed"],
)
def test_no_date_of_birth_full_number_or_text(message: Message) -> None:
    message = replace(message, body="Dear Jo, your secret letter", mobile="+447700900123")
    events = [Event("dob_verified", T0), Event("downloaded", T0, DOC)]
    text = _text(message, events)
    assert "7700900123" not in text and "07700" not in text and "900123" not in text
    assert "Dear Jo" not in text and "secret" not in text
    assert "1970" not in text and "DOB" not in text
