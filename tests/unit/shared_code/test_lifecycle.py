"""The message lifecycle without storage: every transition from every situation, allowed or refused,
what it does to the state, which event it records and what it scrubs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from shared_code import lifecycle
from shared_code.lifecycle import (
    AWAITING_SCAN,
    DELIVERED,
    EXPIRED,
    FAILED,
    LOCKED,
    QUEUED,
    REVOKED,
    SCHEDULED,
    SENT,
)
from shared_code.message_model import Message
from tests.support.messages import message_record

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
#: When the transitions under test happen: after everything in the situations below.
AT = T0 + timedelta(minutes=10)
LIMIT = 5
ACS_ID = "Outgoing_1"


def _situation(**changes: object) -> Message:
    # Every situation keeps the text, token, mobile and hash, so each scrub shows.
    return message_record(at=T0, **changes)


#: Every state a message can be in, and the facts about its link that change what may happen.
SITUATIONS: dict[str, Message] = {
    "awaiting_scan": _situation(state=AWAITING_SCAN),
    "scheduled": _situation(state=SCHEDULED, send_at=T0 + timedelta(hours=1)),
    "queued": _situation(state=QUEUED),
    "queued, tried": _situation(state=QUEUED, first_sent_at=T0),
    "sent": _situation(state=SENT, first_sent_at=T0, sent_at=T0, acs_message_id=ACS_ID),
    "delivered": _situation(
        state=DELIVERED,
        first_sent_at=T0,
        sent_at=T0,
        acs_message_id=ACS_ID,
        delivered_at=T0 + timedelta(seconds=1),
        delivery_reported_at=T0 + timedelta(seconds=1),
    ),
    "failed": _situation(state=FAILED, failure_reason="rejected"),
    "failed, unconfirmed": _situation(state=FAILED, first_sent_at=T0, failure_reason="unconfirmed"),
    "revoked": _situation(state=QUEUED, revoked_at=T0),
    "locked": _situation(
        state=SENT, first_sent_at=T0, sent_at=T0, acs_message_id=ACS_ID, locked=True, dob_attempts=LIMIT
    ),
    "purged": _situation(state=SENT, first_sent_at=T0, sent_at=T0, acs_message_id=ACS_ID, purged_at=T0),
}

Transition = Callable[[Message], "Message | None"]
RECEIVED = T0 + timedelta(seconds=2)
TRANSITIONS: dict[str, Transition] = {
    "scans_passed": lambda m: lifecycle.scans_passed(m, m.attachment_ids, AT),
    "scan_failed": lambda m: lifecycle.scan_failed(m, "An attachment was deleted before it could be sent.", AT),
    "requeued": lambda m: lifecycle.requeued(m, AT),
    "send_claimed": lambda m: lifecycle.send_claimed(m, AT),
    "send_retried": lambda m: lifecycle.send_retried(m, AT),
    "sent": lambda m: lifecycle.sent(m, ACS_ID, AT),
    "send_failed": lambda m: lifecycle.send_failed(m, "The text could not be sent: bad number.", AT),
    "reported_delivered": lambda m: lifecycle.reported(m, ACS_ID, RECEIVED, delivered=True, failure_reason=""),
    "reported_failed": lambda m: lifecycle.reported(m, ACS_ID, RECEIVED, delivered=False, failure_reason="network"),
    "dob_wrong": lambda m: lifecycle.dob_checked(m, False, LIMIT, AT),
    "dob_right": lambda m: lifecycle.dob_checked(m, True, LIMIT, AT),
    "unlocked": lambda m: lifecycle.unlocked(m, AT),
    "revoked": lambda m: lifecycle.revoked(m, AT),
    "expired": lambda m: lifecycle.expired(m),
    "purged": lambda m: lifecycle.purged(m, AT),
    "document_withdrawn": lambda m: lifecycle.document_withdrawn(m, m.attachment_ids[0], AT),
}

_ALL = set(SITUATIONS)
_WAITING = {"scheduled", "queued", "queued, tried", "revoked"}
#: Where each transition is allowed; everywhere else it must refuse (return None).
ALLOWED: dict[str, set[str]] = {
    "scans_passed": {"awaiting_scan"},
    "scan_failed": {"awaiting_scan"},
    "requeued": {"scheduled", "queued", "queued, tried"},
    "send_claimed": {"scheduled", "queued"},
    # A revoke landing while a try is in flight: the try's outcome is still recorded.
    "send_retried": _WAITING,
    "sent": _WAITING,
    "send_failed": _WAITING,
    "reported_delivered": {"queued, tried", "sent", "delivered", "failed, unconfirmed", "locked", "purged"},
    "reported_failed": {"queued, tried", "sent", "failed, unconfirmed", "locked", "purged"},
    "dob_wrong": _ALL - {"locked"},
    # A right date is always written (its time), so that it too is decided by a conditional write.
    "dob_right": _ALL - {"locked"},
    "unlocked": {"locked"},
    "revoked": _ALL - {"revoked"},
    "expired": {"sent", "delivered", "locked"},
    "purged": _ALL - {"purged"},
    # A dead link's copies are gone already; any other message loses the document, sent or not.
    "document_withdrawn": _ALL - {"revoked", "purged"},
}
#: The state an allowed transition leads to (None: it keeps the state it found).
LEADS_TO: dict[str, str | None] = {
    "scans_passed": QUEUED,  # SCHEDULED when the send time is ahead: see its own test
    "scan_failed": FAILED,
    "sent": SENT,
    "send_failed": FAILED,
    "reported_delivered": DELIVERED,
    "reported_failed": FAILED,
}
#: The event an allowed transition records last (None: none).
RECORDS: dict[str, str | None] = {
    "scans_passed": QUEUED,
    "scan_failed": "scan_rejected",
    "requeued": None,
    "send_claimed": None,
    "send_retried": "send_retry",
    "sent": "sent",
    "send_failed": "delivery_failed",
    "reported_delivered": "delivered",
    "reported_failed": "delivery_failed",
    "dob_wrong": None,
    "dob_right": None,
    "unlocked": "unlocked",
    "revoked": "revoked",
    "expired": "expired",
    "purged": "purged",
    "document_withdrawn": "document_withdrawn",
}
TEXT = {"body", "sealed_token"}
PERSONAL = {"mobile", "dob_hash"}
#: What an allowed transition drops. The mobile number goes at a final delivery state (delivered,
#: or failed for good); `sent` keeps it, as nothing final is known yet.
SCRUBS: dict[str, set[str]] = {
    "scan_failed": {"mobile"},
    "sent": TEXT,
    "send_failed": TEXT | {"mobile"},
    "reported_delivered": TEXT | {"mobile"},
    "reported_failed": TEXT | {"mobile"},
    "revoked": TEXT,
    "purged": TEXT | PERSONAL,
}


def test_the_tables_name_every_situation_and_transition() -> None:
    assert set(ALLOWED) == set(TRANSITIONS) == set(RECORDS)
    assert all(allowed <= _ALL for allowed in ALLOWED.values())
    assert {m.state for m in SITUATIONS.values()} == set(lifecycle.STATES)


@pytest.mark.parametrize("situation", sorted(SITUATIONS))
@pytest.mark.parametrize("name", sorted(TRANSITIONS))
def test_every_transition_from_every_situation(name: str, situation: str) -> None:
    before = SITUATIONS[situation]
    after = TRANSITIONS[name](before)
    if situation not in ALLOWED[name]:
        assert after is None, f"{name} must refuse a message that is {situation}"
        return
    assert after is not None and after != before, f"{name} must change a message that is {situation}"
    assert after.state == (LEADS_TO.get(name) or before.state)
    new_events = after.history[len(before.history) :]
    assert after.history[: len(before.history)] == before.history  # the log only grows
    if RECORDS[name] is None:
        assert new_events == ()
    else:
        assert new_events[-1].type == RECORDS[name]
    for fieldname in TEXT | PERSONAL:
        expected = None if fieldname in SCRUBS.get(name, set()) else getattr(before, fieldname)
        assert getattr(after, fieldname) == expected, f"{name} from {situation}: {fieldname}"


def test_a_message_is_created_awaiting_its_scans() -> None:
    at = T0
    made = lifecycle.created(
        id="m",
        org="A12345",
        created_at=at,
        created_by="gp1",
        link_expires_at=at + timedelta(days=28),
        segments=1,
        encoding="GSM-7",
        attachment_ids=("a",),
        token_hash="h",
        dob_salt="s",
        body="Your letter",
    )
    assert made.state == AWAITING_SCAN and made.body == "Your letter"
    assert [(e.type, e.at) for e in made.history] == [("created", at)]


def test_passed_scans_record_each_attachment_then_queue_or_schedule() -> None:
    waiting = _situation(state=AWAITING_SCAN, attachment_ids=("a", "b"))
    queued = lifecycle.scans_passed(waiting, ["a", "b"], AT)
    assert queued.state == QUEUED and queued.queued_at == AT
    assert [(e.type, e.attachment_id) for e in queued.history] == [
        ("scan_clean", "a"),
        ("scan_clean", "b"),
        ("queued", None),
    ]
    later = lifecycle.scans_passed(replace(waiting, send_at=AT + timedelta(seconds=1)), ["a", "b"], AT)
    assert later.state == SCHEDULED and later.history[-1].type == "scheduled"
    due = lifecycle.scans_passed(replace(waiting, send_at=AT), ["a", "b"], AT)
    assert due.state == QUEUED  # due now is not ahead


def test_a_scan_failure_keeps_its_reason() -> None:
    failed = lifecycle.scan_failed(SITUATIONS["awaiting_scan"], "The attachment x.pdf was rejected: virus", AT)
    assert failed.failure_reason == "The attachment x.pdf was rejected: virus"


def test_sent_and_send_failed_record_what_the_practice_sees() -> None:
    sent = lifecycle.sent(SITUATIONS["queued, tried"], ACS_ID, AT)
    assert sent.sent_at == AT and sent.acs_message_id == ACS_ID and sent.history[-1].at == AT
    failed = lifecycle.send_failed(SITUATIONS["queued"], "The text could not be sent: bad number.", AT)
    assert failed.failure_reason == "The text could not be sent: bad number."


def test_a_claim_opens_the_window_and_only_that_try_gives_it_back() -> None:
    claimed = lifecycle.send_claimed(SITUATIONS["queued"], AT)
    assert claimed.first_sent_at == AT
    assert lifecycle.window_reopened(claimed, AT).first_sent_at is None
    assert lifecycle.window_reopened(claimed, AT + timedelta(seconds=1)) is None  # another try's window
    assert lifecycle.window_reopened(SITUATIONS["queued"], AT) is None  # nothing open
    # Stored times have whole milliseconds: the same instant read back still matches.
    assert lifecycle.window_reopened(claimed, AT + timedelta(microseconds=400)).first_sent_at is None


def test_a_retry_gives_back_the_window_only_when_asked() -> None:
    claimed = lifecycle.send_claimed(SITUATIONS["queued"], AT)
    kept = lifecycle.send_retried(claimed, AT)
    assert kept.first_sent_at == AT and kept.history[-1].type == "send_retry"
    reopened = lifecycle.send_retried(claimed, AT, reopen=AT)
    assert reopened.first_sent_at is None and reopened.history[-1].type == "send_retry"
    other = lifecycle.send_retried(claimed, AT, reopen=AT - timedelta(seconds=1))
    assert other.first_sent_at == AT


def test_wrong_dates_of_birth_count_up_and_lock_at_the_limit() -> None:
    m = SITUATIONS["sent"]
    for attempt in range(1, LIMIT):
        m = lifecycle.dob_checked(m, False, LIMIT, AT)
        assert m.dob_attempts == attempt and not m.locked
    assert not [e for e in m.history if e.type == "locked"]
    m = lifecycle.dob_checked(m, False, LIMIT, AT)
    assert m.locked and m.dob_attempts == LIMIT and m.history[-1].type == "locked"
    assert lifecycle.dob_checked(m, True, LIMIT, AT) is None  # locked: even a right date is refused


def test_a_right_date_of_birth_resets_the_count() -> None:
    wrong_twice = replace(SITUATIONS["sent"], dob_attempts=2)
    reset = lifecycle.dob_checked(wrong_twice, True, LIMIT, AT)
    assert reset.dob_attempts == 0 and reset.history == wrong_twice.history
    assert reset.last_dob_verified_at == reset.first_dob_verified_at == AT
    again = lifecycle.dob_checked(reset, True, LIMIT, AT + timedelta(minutes=1))
    assert (again.first_dob_verified_at, again.last_dob_verified_at) == (AT, AT + timedelta(minutes=1))


def test_a_right_date_of_birth_with_nothing_to_reset_still_changes_the_record() -> None:
    # Otherwise it would be judged on a read with no conditional write, and a copy read before
    # parallel wrong guesses were counted would still verify.
    fresh = SITUATIONS["sent"]
    checked = lifecycle.dob_checked(fresh, True, LIMIT, AT)
    assert checked is not None and checked != fresh and checked.last_dob_verified_at == AT


def test_unlock_resets_attempts_left_on_an_open_link() -> None:
    counted = replace(SITUATIONS["sent"], dob_attempts=2)
    assert lifecycle.unlocked(counted, AT).dob_attempts == 0
    opened = lifecycle.unlocked(SITUATIONS["locked"], AT)
    assert not opened.locked and opened.dob_attempts == 0


def test_revoke_and_purge_are_dated() -> None:
    assert lifecycle.revoked(SITUATIONS["queued"], AT).revoked_at == AT
    assert lifecycle.purged(SITUATIONS["queued"], AT).purged_at == AT


def test_the_purge_of_a_link_that_worked_records_its_expiry_at_the_links_end() -> None:
    purged = lifecycle.purged(SITUATIONS["sent"], AT)
    assert [(e.type, e.at) for e in purged.history[-2:]] == [
        ("expired", SITUATIONS["sent"].link_expires_at),
        ("purged", AT),
    ]
    for never_worked in ("queued", "revoked", "failed"):
        types = [e.type for e in lifecycle.purged(SITUATIONS[never_worked], AT).history]
        assert "expired" not in types, never_worked


@pytest.mark.parametrize(
    ("situation", "shown_now", "shown_after_expiry"),
    [
        ("awaiting_scan", AWAITING_SCAN, AWAITING_SCAN),
        ("scheduled", SCHEDULED, SCHEDULED),
        ("queued", QUEUED, QUEUED),
        ("sent", SENT, EXPIRED),
        ("delivered", DELIVERED, EXPIRED),
        ("failed", FAILED, FAILED),
        ("revoked", REVOKED, REVOKED),
        ("locked", LOCKED, EXPIRED),
        ("purged", EXPIRED, EXPIRED),
    ],
)
def test_what_the_api_shows(situation: str, shown_now: str, shown_after_expiry: str) -> None:
    m = SITUATIONS[situation]
    assert lifecycle.shown_status(m, AT) == shown_now
    assert lifecycle.shown_status(m, m.link_expires_at) == shown_after_expiry
    assert shown_now in lifecycle.SHOWN_STATUSES


@pytest.mark.parametrize("situation", sorted(SITUATIONS))
def test_a_link_is_open_only_after_the_text_went_and_until_it_ends(situation: str) -> None:
    m = SITUATIONS[situation]
    expected = situation in {"sent", "delivered", "locked"}
    assert lifecycle.link_open(m, AT) is expected
    assert lifecycle.link_open(m, m.link_expires_at) is False
    assert lifecycle.link_open(m, m.link_expires_at - timedelta(milliseconds=1)) is expected


def test_the_number_stays_while_a_send_may_be_retried_and_goes_once_final() -> None:
    retried = lifecycle.send_retried(lifecycle.send_claimed(SITUATIONS["queued"], AT), AT)
    assert retried.mobile == SITUATIONS["queued"].mobile  # the next try needs it
    sent = lifecycle.sent(retried, ACS_ID, AT)
    assert sent.mobile is not None  # a sent text may still be reported failed: not final yet
    failed = lifecycle.reported(sent, ACS_ID, RECEIVED + timedelta(minutes=10), delivered=False, failure_reason="x")
    assert failed.mobile is None
    # A later report still finds and corrects it, by ACS id alone.
    delivered = lifecycle.reported(failed, ACS_ID, RECEIVED + timedelta(minutes=20), delivered=True, failure_reason="")
    assert delivered.state == DELIVERED and delivered.mobile is None


def test_a_withdrawal_is_recorded_once_per_document_and_only_for_a_document_the_message_carries() -> None:
    message = replace(SITUATIONS["delivered"], attachment_ids=("a1", "a2"))
    once = lifecycle.document_withdrawn(message, "a1", AT)
    assert [(e.type, e.attachment_id) for e in once.history[-1:]] == [("document_withdrawn", "a1")]
    assert lifecycle.document_withdrawn(once, "a1", AT) is None
    assert lifecycle.document_withdrawn(once, "a2", AT) is not None
    assert lifecycle.document_withdrawn(message, "other", AT) is None
    assert once.state == message.state and once.attachment_ids == message.attachment_ids
