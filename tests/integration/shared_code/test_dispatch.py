"""Dispatch against real Azurite and the SMS emulator through the real ACS SDK: every fault, once only."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from devstack.sms_emulator import SmsEmulator, parse_delivery_override, parse_fault
from shared_code import clock, sms_pause
from shared_code.attachments import REJECTED, find_attachment, save_attachment
from shared_code.delivery import apply_delivery_report
from shared_code.dispatch import INTERNAL_ERROR, RECHECK_AFTER, UNCONFIRMED, dispatch_message
from shared_code.dispatch_queue import DISPATCH_POISON, DispatchRequest, poison_unreadable
from shared_code.lifecycle import DELIVERED, FAILED, QUEUED, SCHEDULED, SENT
from shared_code.message_links import revoke_message
from shared_code.message_store import get_message, transition
from shared_code.message_views import message_events
from shared_code.pacing import Pacer
from shared_code.retention import STUCK_AFTER
from shared_code.settings import load_settings
from shared_code.sms_pause import service_health
from shared_code.storage import DISPATCH, DOCUMENTS, PACING
from tests.support.emulator import start_emulator
from tests.support.records import new_message

MAX_ATTEMPTS = 3
#: The emulator forgets repeatability ids sooner than ACS (2 minutes, not 5), so a first-sent
#: time between the two windows shows what ACS's 412 does to a message.
EMULATOR_WINDOW_SECONDS = 120


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmsEmulator]:
    emu = start_emulator(
        tmp_path_factory.mktemp("dispatch") / ".local", repeatability_window_seconds=EMULATOR_WINDOW_SECONDS
    )
    yield emu
    emu.stop()


@pytest.fixture
def sms_settings(base_env, emulator):
    emulator.clear_faults()
    return load_settings(
        {
            **base_env,
            "ACS_CONNECTION_STRING": emulator.connection_string,
            "ACS_CA_BUNDLE": str(emulator.cert),
            "SMS_SENDER": "Enclose",
            "SMS_RATE_PER_MINUTE": "60000",
            "SMS_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
            "SMS_DELIVERY_REPORTS": "false",
        }
    )


@pytest.fixture
def pacer() -> Pacer:
    return Pacer(60000)


def _texts(emulator: SmsEmulator, message) -> list[dict]:
    """The texts in the inbox for this message (its link names nothing, so match by the stored body)."""
    return [m for m in emulator.messages if m["to"] == message.mobile and m["message"].startswith(message.body + "\n")]


def _dispatch(storage, settings, message, pacer, *, attempts: int = 0, dequeue_count: int = 1) -> str:
    return dispatch_message(
        storage, settings, DispatchRequest(message.org, message.id, attempts), dequeue_count, pacer=pacer
    )


def _entries(storage, queue_name: str, message_id: str, wait: float = 0.0) -> list[DispatchRequest]:
    """Dispatch entries for this message that are (or within `wait` become) visible; others are left alone."""
    queue = storage.queue(queue_name)
    deadline = time.monotonic() + wait
    found: list[DispatchRequest] = []
    while True:
        for entry in queue.receive_messages(messages_per_page=32, visibility_timeout=1):
            request = DispatchRequest.from_bytes(entry.content)
            if request is not None and request.message_id == message_id:
                found.append(request)
                queue.delete_message(entry)
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(0.2)


def _unique_message(storage, settings, **overrides):
    """A queued message with a body no other test uses, its queue entry taken off the queue."""
    body = f"Your letter {time.monotonic_ns()}"
    message = new_message(storage, settings, body=body, **overrides)
    _entries(storage, DISPATCH, message.id)
    return message


# -- the plain path ---------------------------------------------------------------------------------


def test_a_queued_message_is_sent_once_with_its_link_and_leaves_no_text_behind(
    storage, sms_settings, emulator, pacer
) -> None:
    message = _unique_message(storage, sms_settings)
    assert _dispatch(storage, sms_settings, message, pacer) == "sent"
    [text] = _texts(emulator, message)
    assert text["from"] == "Enclose"
    assert text["message"].startswith(f"{message.body}\n{sms_settings.portal_base_url}/p/")
    sent = get_message(storage, message.org, message.id)
    assert sent.state == SENT and sent.acs_message_id == text["id"] and sent.sent_at
    assert sent.body is None and sent.sealed_token is None
    assert [e.type for e in message_events(storage, get_message(storage, message.org, message.id))].count("sent") == 1
    # A second entry for the same message (a redelivery, the sweeper) sends nothing more.
    assert _dispatch(storage, sms_settings, message, pacer, dequeue_count=2) == SENT
    assert len(_texts(emulator, message)) == 1


def test_the_repeatability_id_and_first_sent_are_stored_before_the_request_leaves(
    storage, sms_settings, emulator, pacer
) -> None:
    message = _unique_message(storage, sms_settings)
    emulator.add_fault(parse_fault({"mode": "status", "status": 503}))
    before = clock.now()
    assert _dispatch(storage, sms_settings, message, pacer) == "retry"
    stored = get_message(storage, message.org, message.id)
    assert stored.repeatability_id == message.repeatability_id
    assert stored.first_sent_at is not None and stored.first_sent_at >= before - timedelta(seconds=1)


# -- faults: each ends in exactly one text ----------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        {"mode": "accept_then_status", "status": 500},  # ACS recorded it, then answered 500
        {"mode": "drop", "record": True},  # ACS recorded it, then the connection dropped
        {"mode": "accept_then_cut"},  # ACS recorded it, then its answer broke off half-way
        {"mode": "status", "status": 500},
        {"mode": "status", "status": 503},
        {"mode": "drop"},
    ],
)
def test_a_fault_is_retried_and_delivers_exactly_once(storage, sms_settings, emulator, pacer, fault) -> None:
    message = _unique_message(storage, sms_settings)
    recorded = fault.get("mode") in ("accept_then_status", "accept_then_cut") or fault.get("record", False)
    emulator.add_fault(parse_fault(fault))

    assert _dispatch(storage, sms_settings, message, pacer) == "retry"
    assert len(_texts(emulator, message)) == (1 if recorded else 0)
    assert get_message(storage, message.org, message.id).state == QUEUED
    [retry] = _entries(storage, DISPATCH, message.id, wait=5)
    assert retry.attempts == 1

    assert _dispatch(storage, sms_settings, message, pacer, attempts=retry.attempts) == "sent"
    [text] = _texts(emulator, message)
    assert get_message(storage, message.org, message.id).acs_message_id == text["id"]
    assert "send_retry" in [e.type for e in message_events(storage, get_message(storage, message.org, message.id))]


@pytest.mark.parametrize(
    "fault",
    [
        {"mode": "status", "status": 409},  # an earlier try still in progress: ask again later
        {"mode": "item_status", "status": 409},
        {"mode": "item_status", "status": 503},  # per recipient, inside a 202
        {"mode": "item_status", "status": 429},
    ],
)
def test_an_answer_that_says_ask_again_later_is_retried_not_failed(
    storage, sms_settings, emulator, pacer, fault
) -> None:
    message = _unique_message(storage, sms_settings)
    emulator.add_fault(parse_fault(fault))
    assert _dispatch(storage, sms_settings, message, pacer) == "retry"
    assert get_message(storage, message.org, message.id).state == QUEUED
    [retry] = _entries(storage, DISPATCH, message.id, wait=5)
    assert _dispatch(storage, sms_settings, message, pacer, attempts=retry.attempts) == "sent"
    assert len(_texts(emulator, message)) == 1


def test_a_412_for_the_whole_request_fails_the_message_as_unconfirmed(storage, sms_settings, emulator, pacer) -> None:
    message = _unique_message(storage, sms_settings)
    emulator.add_fault(parse_fault({"mode": "status", "status": 412}))
    assert _dispatch(storage, sms_settings, message, pacer) == "unconfirmed"
    assert get_message(storage, message.org, message.id).failure_reason == UNCONFIRMED


def test_a_time_out_after_acs_recorded_the_text_is_retried_without_a_second_text(
    storage, sms_settings, emulator, pacer, monkeypatch
) -> None:
    settings = dataclasses.replace(sms_settings, sms_timeout_seconds=1)  # a fresh client with a short time-out
    message = _unique_message(storage, settings)
    emulator.add_fault(parse_fault({"mode": "timeout", "seconds": 3, "record": True}))
    assert _dispatch(storage, settings, message, pacer) == "retry"
    # While ACS still holds the first request, a repeat is answered 409 (in progress): asked again later.
    outcomes = [_dispatch(storage, settings, message, pacer, attempts=1)]
    while outcomes[-1] == "retry" and len(outcomes) < MAX_ATTEMPTS * 10:
        time.sleep(0.5)
        outcomes.append(_dispatch(storage, settings, message, pacer, attempts=1))
    assert outcomes[-1] == "sent" and set(outcomes[:-1]) <= {"retry"}
    assert len(_texts(emulator, message)) == 1


def test_a_429_honours_retry_after_pauses_every_send_and_does_not_start_the_window(
    storage, sms_settings, emulator, pacer
) -> None:
    message = _unique_message(storage, sms_settings)
    emulator.add_fault(parse_fault({"mode": "status", "status": 429, "retryAfter": 3}))
    started = time.monotonic()
    assert _dispatch(storage, sms_settings, message, pacer) == "retry"
    assert pacer.next_slot_in() > 2  # the whole sender holds off, not just this message
    # A 429 proves nothing was accepted: the first-sent time is cleared for a fresh window.
    assert get_message(storage, message.org, message.id).first_sent_at is None
    [retry] = _entries(storage, DISPATCH, message.id, wait=6)
    assert time.monotonic() - started >= 2.9  # the retry became visible no sooner than Retry-After
    assert retry.attempts == 1


def test_after_the_last_try_the_message_fails_with_the_reason_and_the_entry_is_poisoned(
    storage, sms_settings, emulator, pacer
) -> None:
    message = _unique_message(storage, sms_settings)
    emulator.add_fault(parse_fault({"mode": "status", "status": 503}))
    assert _dispatch(storage, sms_settings, message, pacer, attempts=MAX_ATTEMPTS - 1) == "failed"
    failed = get_message(storage, message.org, message.id)
    assert failed.state == FAILED
    assert (
        failed.failure_reason == f"The text could not be sent after {MAX_ATTEMPTS} tries: The SMS service answered 503."
    )
    assert failed.body is None and failed.sealed_token is None
    [poisoned] = _entries(storage, DISPATCH_POISON, message.id)
    assert poisoned.attempts == MAX_ATTEMPTS - 1
    assert _entries(storage, DISPATCH, message.id, wait=1.5) == []
    assert _texts(emulator, message) == []


def test_redeliveries_by_the_host_count_as_tries(storage, sms_settings, emulator, pacer) -> None:
    message = _unique_message(storage, sms_settings)
    emulator.add_fault(parse_fault({"mode": "status", "status": 500}))
    assert _dispatch(storage, sms_settings, message, pacer, attempts=1, dequeue_count=2) == "failed"


def test_a_refusal_is_not_retried(storage, sms_settings, emulator, pacer) -> None:
    message = _unique_message(storage, sms_settings)
    emulator.add_fault(parse_fault({"mode": "status", "status": 400}))
    assert _dispatch(storage, sms_settings, message, pacer) == "failed"
    assert "refused the message (400)" in get_message(storage, message.org, message.id).failure_reason
    assert _entries(storage, DISPATCH, message.id, wait=1.5) == []


def test_an_unexpected_error_raises_for_the_host_until_the_last_try(storage, sms_settings, emulator, pacer) -> None:
    message = _unique_message(storage, sms_settings)
    broken = transition(storage, message.org, message.id, lambda m: replace(m, sealed_token="not a sealed token"))[0]
    with pytest.raises(Exception):  # noqa: B017 - whatever it is, the host redelivers the entry
        _dispatch(storage, sms_settings, broken, pacer)
    assert get_message(storage, message.org, message.id).state == QUEUED
    assert _dispatch(storage, sms_settings, broken, pacer, dequeue_count=MAX_ATTEMPTS) == "failed"
    failed = get_message(storage, message.org, message.id)
    assert failed.failure_reason == INTERNAL_ERROR
    assert len(_entries(storage, DISPATCH_POISON, message.id)) == 1
    assert _texts(emulator, message) == []


def test_an_unreadable_entry_goes_straight_to_the_poison_queue(storage) -> None:
    marker = f"not json {time.monotonic_ns()}".encode()
    poison_unreadable(storage, marker)
    bodies = [
        m.content for m in storage.queue(DISPATCH_POISON).receive_messages(messages_per_page=32, visibility_timeout=1)
    ]
    assert marker in bodies


# -- the repeatability window -----------------------------------------------------------------------


def _first_sent(storage, message, ago: timedelta):
    return transition(storage, message.org, message.id, lambda m: replace(m, first_sent_at=clock.now() - ago))[0]


def test_a_first_try_older_than_the_window_is_never_sent_again(storage, sms_settings, emulator, pacer) -> None:
    message = _first_sent(storage, _unique_message(storage, sms_settings), timedelta(minutes=6))
    assert _dispatch(storage, sms_settings, message, pacer, attempts=2) == "unconfirmed"
    failed = get_message(storage, message.org, message.id)
    assert failed.state == FAILED and failed.failure_reason == UNCONFIRMED
    assert _texts(emulator, message) == []


def test_acs_412_for_a_forgotten_first_try_fails_the_message_as_unconfirmed(
    storage, sms_settings, emulator, pacer
) -> None:
    # Inside our window, outside the emulator's shorter one: ACS answers 412 and sends nothing.
    message = _first_sent(
        storage, _unique_message(storage, sms_settings), timedelta(seconds=EMULATOR_WINDOW_SECONDS + 30)
    )
    assert _dispatch(storage, sms_settings, message, pacer, attempts=1) == "unconfirmed"
    assert get_message(storage, message.org, message.id).failure_reason == UNCONFIRMED
    assert _texts(emulator, message) == []


def test_a_retry_inside_the_window_keeps_the_first_sent_time(storage, sms_settings, emulator, pacer) -> None:
    message = _unique_message(storage, sms_settings)
    emulator.add_fault(parse_fault({"mode": "accept_then_status", "status": 503}))
    _dispatch(storage, sms_settings, message, pacer)
    first = get_message(storage, message.org, message.id).first_sent_at
    time.sleep(1.1)
    assert _dispatch(storage, sms_settings, message, pacer, attempts=1) == "sent"
    assert get_message(storage, message.org, message.id).first_sent_at == first
    assert len(_texts(emulator, message)) == 1


# -- pacing -----------------------------------------------------------------------------------------


def test_a_send_with_no_slot_soon_is_requeued_without_counting_a_try(storage, sms_settings, emulator) -> None:
    message = _unique_message(storage, sms_settings)
    slow = Pacer(60, burst=1)
    slow.pause(3)
    assert _dispatch(storage, sms_settings, message, slow, attempts=1, dequeue_count=2) == "paced"
    untouched = get_message(storage, message.org, message.id)
    assert untouched.state == QUEUED and untouched.first_sent_at is None
    [later] = _entries(storage, DISPATCH, message.id, wait=6)
    assert later.attempts == 2  # the two tries before this one; this one was not a try
    assert _texts(emulator, message) == []


def test_paced_sends_wait_for_their_slots(storage, sms_settings, emulator) -> None:
    messages = [_unique_message(storage, sms_settings) for _ in range(4)]
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        now[0] += seconds

    pacer = Pacer(120, burst=1, clock=lambda: now[0])  # one every half second
    for message in messages:
        assert (
            dispatch_message(
                storage, sms_settings, DispatchRequest(message.org, message.id), 1, pacer=pacer, sleep=sleep
            )
            == "sent"
        )
    assert slept == [0.5, 0.5, 0.5]
    assert all(len(_texts(emulator, m)) == 1 for m in messages)


# -- what must hold at send time ----------------------------------------------------------------------


def test_a_revoked_message_is_never_sent(storage, sms_settings, emulator, pacer) -> None:
    message = _unique_message(storage, sms_settings)
    revoke_message(storage, message.org, message.id)
    assert _dispatch(storage, sms_settings, message, pacer) == "revoked"
    assert _texts(emulator, message) == []


def _waited(storage, message):
    """The message as if it had been made longer ago than dispatch re-checks documents after."""
    long_ago = clock.now() - RECHECK_AFTER - timedelta(seconds=1)
    return transition(storage, message.org, message.id, lambda m: replace(m, created_at=long_ago))[0]


def test_a_message_whose_attachment_was_rejected_since_it_waited_is_not_sent(
    storage, sms_settings, emulator, pacer
) -> None:
    message = _waited(storage, _unique_message(storage, sms_settings))
    attachment = find_attachment(storage, message.org, message.attachment_ids[0])
    save_attachment(storage, replace(attachment, status=REJECTED, reason="contains a virus"))
    assert _dispatch(storage, sms_settings, message, pacer) == "failed"
    failed = get_message(storage, message.org, message.id)
    assert "rejected" in failed.failure_reason and failed.state == FAILED
    assert _texts(emulator, message) == []


def test_a_message_whose_document_copy_went_while_it_waited_is_not_sent(storage, sms_settings, emulator, pacer) -> None:
    message = _waited(storage, _unique_message(storage, sms_settings))
    storage.container(DOCUMENTS).delete_blob(message.document_blob(message.attachment_ids[0]))
    assert _dispatch(storage, sms_settings, message, pacer) == "failed"
    assert "no longer available" in get_message(storage, message.org, message.id).failure_reason
    assert _texts(emulator, message) == []


def test_a_scheduled_message_is_held_until_its_time(storage, sms_settings, emulator, pacer) -> None:
    message = _unique_message(storage, sms_settings, sendAt=clock.iso(clock.now() + timedelta(hours=3)))
    assert message.state == SCHEDULED
    assert _dispatch(storage, sms_settings, message, pacer) == "rescheduled"
    assert _texts(emulator, message) == []
    assert get_message(storage, message.org, message.id).state == SCHEDULED


def test_a_message_due_in_a_moment_waits_and_goes(storage, sms_settings, emulator, pacer) -> None:
    message = _unique_message(storage, sms_settings, sendAt=clock.iso(clock.now() + timedelta(seconds=1.5)))
    assert _dispatch(storage, sms_settings, message, pacer) == "sent"
    [text] = _texts(emulator, message)
    assert clock.parse_iso(text["receivedAt"]) >= message.send_at


# -- a try that may have reached ACS: evidence first, then a repeat -----------------------------------


def test_a_repeat_while_acs_still_handles_the_first_try_is_asked_again_later(
    storage, sms_settings, emulator, pacer
) -> None:
    message = _unique_message(storage, sms_settings)
    emulator.configure_repeats("replay", in_progress_seconds=600)
    try:
        emulator.add_fault(parse_fault({"mode": "drop", "record": True}))
        assert _dispatch(storage, sms_settings, message, pacer) == "retry"
        assert _dispatch(storage, sms_settings, message, pacer, attempts=1) == "retry"  # 409: in progress
        assert get_message(storage, message.org, message.id).state == QUEUED
    finally:
        emulator.configure_repeats("replay")  # the first request is done
    assert _dispatch(storage, sms_settings, message, pacer, attempts=2) == "sent"
    assert len(_texts(emulator, message)) == 1


class ReportApplier:
    """The Functions host's Event Grid trigger in miniature: applies each posted delivery report."""

    def __init__(self, storage) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                for event in json.loads(self.rfile.read(int(self.headers["Content-Length"]))):
                    apply_delivery_report(storage, event["data"])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/runtime/webhooks/eventgrid"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


#: Reports come this long after a send: later than a plain retry's first back-off (at most 1 s),
#: well inside the wait below (unless a test delays one).
REPORT_SECONDS = 2.5
EVIDENCE_WAIT_SECONDS = 6


@pytest.fixture(scope="module")
def reexecuting(tmp_path_factory: pytest.TempPathFactory, storage) -> Iterator[SmsEmulator]:
    """An emulator that executes a repeat of a request answered 5xx again, as Microsoft's page says ACS
    does, and posts delivery reports that the stack applies."""
    applier = ReportApplier(storage)
    emu = start_emulator(
        tmp_path_factory.mktemp("reexecute") / ".local",
        repeat_mode="reexecute",
        event_grid_url=applier.url,
        delivery_delay_seconds=REPORT_SECONDS,
    )
    yield emu
    emu.stop()
    applier.close()


@pytest.fixture
def reported_settings(sms_settings, reexecuting):
    reexecuting.clear_faults()
    reexecuting.clear_delivery_outcomes()
    reexecuting.reset_repeat_stats()
    return dataclasses.replace(
        sms_settings,
        acs_connection_string=reexecuting.connection_string,
        acs_ca_bundle=str(reexecuting.cert),
        sms_delivery_reports=True,
        sms_evidence_wait_seconds=EVIDENCE_WAIT_SECONDS,
    )


def test_a_try_acs_may_execute_again_waits_for_its_report_and_is_never_repeated(
    storage, reported_settings, reexecuting, pacer
) -> None:
    message = _unique_message(storage, reported_settings)
    reexecuting.add_fault(parse_fault({"mode": "accept_then_status", "status": 500}))
    assert _dispatch(storage, reported_settings, message, pacer) == "retry"
    # The report (the tag names the message) shows that the text went...
    for _ in range(100):
        if get_message(storage, message.org, message.id).state == DELIVERED:
            break
        time.sleep(0.1)
    # ...before the retry is due: a retry due sooner would have been re-executed, a second text.
    assert _entries(storage, DISPATCH, message.id) == []
    [retry] = _entries(storage, DISPATCH, message.id, wait=EVIDENCE_WAIT_SECONDS + 4)
    assert _dispatch(storage, reported_settings, message, pacer, attempts=retry.attempts) == DELIVERED
    assert len(_texts(reexecuting, message)) == 1
    assert reexecuting.repeats()["reexecuted"] == 0


def test_a_report_later_than_the_wait_is_the_one_way_left_to_a_second_text(
    storage, reported_settings, reexecuting, pacer
) -> None:
    # What the reliability run measures at scale: a re-executing ACS, and a report that comes too late.
    message = _unique_message(storage, reported_settings)
    reexecuting.add_fault(parse_fault({"mode": "accept_then_status", "status": 500}))
    reexecuting.add_delivery_outcome(parse_delivery_override({"status": "Delivered", "delaySeconds": 30}))
    assert _dispatch(storage, reported_settings, message, pacer) == "retry"
    [retry] = _entries(storage, DISPATCH, message.id, wait=EVIDENCE_WAIT_SECONDS + 4)
    assert _dispatch(storage, reported_settings, message, pacer, attempts=retry.attempts) == "sent"
    first, second = _texts(reexecuting, message)
    assert reexecuting.repeats()["reexecuted"] == 1
    assert get_message(storage, message.org, message.id).acs_message_id == second["id"]


def test_an_entry_redelivered_soon_after_its_host_died_mid_send_waits_for_the_report_too(
    storage, reported_settings, reexecuting, pacer
) -> None:
    message = _first_sent(storage, _unique_message(storage, reported_settings), timedelta(seconds=1))
    assert _dispatch(storage, reported_settings, message, pacer, dequeue_count=2) == "awaiting_report"
    assert _texts(reexecuting, message) == []
    [later] = _entries(storage, DISPATCH, message.id, wait=EVIDENCE_WAIT_SECONDS + 2)
    assert later.attempts == 1  # the try that died counts; this was not one


# -- a refused sender or identity pauses sending instead of failing the queue -------------------------


@pytest.fixture
def short_pauses(storage, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Pauses of a second or two (not 15 s), every process view read fresh, and no pause left over."""
    monkeypatch.setattr(sms_pause, "FIRST_PAUSE", timedelta(seconds=1.5))
    monkeypatch.setattr(sms_pause, "CACHE_SECONDS", 0.0)
    storage.table(PACING).delete(sms_pause.PARTITION, sms_pause.ROW)
    yield
    storage.table(PACING).delete(sms_pause.PARTITION, sms_pause.ROW)


def _until_pause_ends(storage) -> None:
    pause = sms_pause.sender_health(storage).current()
    if pause is not None:
        time.sleep(max(0.0, (pause.until - clock.now()).total_seconds()) + 0.1)


@pytest.mark.parametrize(
    "refusal",
    [
        {"status": 401, "body": "InternalError"},  # a From number the resource does not own (recorded, SDK 1.1.0)
        {"status": 403, "body": "Forbidden"},  # the managed identity lacks its role
        {"status": 404, "body": "empty"},  # a sender the resource does not own (recorded, 2021)
        {"status": 400, "body": "From"},  # a malformed From
    ],
)
def test_a_refused_sender_or_identity_pauses_sending_and_fails_nothing(
    storage, sms_settings, emulator, pacer, short_pauses, refusal
) -> None:
    messages = [_unique_message(storage, sms_settings) for _ in range(3)]
    emulator.add_fault(parse_fault({"mode": "status", "count": 1000, **refusal}))
    assert [_dispatch(storage, sms_settings, m, pacer) for m in messages] == ["paused"] * 3
    # Only the first met ACS: the others were held without a request.
    assert emulator.pending_faults()[0]["remaining"] == 999
    for message in messages:
        held = get_message(storage, message.org, message.id)
        assert held.state == QUEUED and held.failure_reason is None and held.first_sent_at is None
        [entry] = _entries(storage, DISPATCH, message.id, wait=5)
        assert entry.attempts == 0  # not a try
    health = service_health(storage)
    assert health["status"] == "degraded" and health["sms"]["status"] == "paused"
    assert health["sms"]["reason"] == f"The SMS service refused our sender or identity ({refusal['status']})"


def test_sending_resumes_by_itself_once_the_sender_is_fixed(
    storage, sms_settings, emulator, pacer, short_pauses, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = (_unique_message(storage, sms_settings) for _ in range(2))
    emulator.add_fault(parse_fault({"mode": "status", "status": 401, "body": "InternalError", "count": 1000}))
    assert _dispatch(storage, sms_settings, first, pacer) == "paused"
    paused = sms_pause.sender_health(storage).current()
    assert paused.refusals == 1
    _until_pause_ends(storage)
    # The pause is over: the next send probes, is refused again, and the pause doubles.
    assert _dispatch(storage, sms_settings, first, pacer) == "paused"
    grown = sms_pause.sender_health(storage).current()
    assert grown.refusals == 2 and grown.since == paused.since
    assert grown.until - grown.since > paused.until - paused.since
    emulator.clear_faults()  # the operator fixes the sender
    _until_pause_ends(storage)
    assert _dispatch(storage, sms_settings, second, pacer) == "sent"
    assert service_health(storage)["sms"]["status"] == "sending"
    assert _dispatch(storage, sms_settings, first, pacer) == "sent"
    assert len(_texts(emulator, first)) == 1 and len(_texts(emulator, second)) == 1
    # The operator was told, with ids only.
    errors = [r for r in caplog.records if r.levelname == "ERROR" and "paused" in r.getMessage()]
    assert len(errors) == 2 and first.id in errors[0].getMessage()
    assert first.mobile not in caplog.text and first.body not in caplog.text


def test_a_pause_held_long_touches_the_message_so_the_sweeper_does_not_queue_it_twice(
    storage, sms_settings, emulator, pacer, short_pauses
) -> None:
    message = _unique_message(storage, sms_settings)
    old = transition(storage, message.org, message.id, lambda m: replace(m, queued_at=clock.now() - STUCK_AFTER))[0]
    emulator.add_fault(parse_fault({"mode": "status", "status": 403, "body": "Forbidden", "count": 1000}))
    assert _dispatch(storage, sms_settings, old, pacer) == "paused"
    assert clock.now() - get_message(storage, message.org, message.id).queued_at < timedelta(minutes=1)
