"""Delivery reports against real Azurite, from the events the SMS emulator really posts."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from devstack.sms_emulator import (
    DELIVERY_EVENT_TYPE,
    SmsEmulator,
    event_time,
    parse_delivery_override,
    parse_fault,
    report_field,
)
from shared_code import clock, lifecycle
from shared_code.delivery import apply_delivery_report
from shared_code.dispatch import UNCONFIRMED, dispatch_message
from shared_code.dispatch_queue import DispatchRequest
from shared_code.lifecycle import DELIVERED, FAILED, QUEUED, SENT
from shared_code.message_store import get_message, transition
from shared_code.message_views import message_events
from shared_code.pacing import Pacer
from shared_code.settings import load_settings
from tests.support.emulator import start_emulator
from tests.support.records import new_message


class EventSink:
    """Takes the emulator's Event Grid posts, as the Functions host's webhook would."""

    def __init__(self) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                for event in json.loads(self.rfile.read(int(self.headers["Content-Length"]))):
                    sink.events.put(event)
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/runtime/webhooks/eventgrid"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def event_for(self, acs_id: str, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        held = []
        try:
            while True:
                event = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
                if report_field(event["data"], "MessageId") == acs_id:
                    return event
                held.append(event)
        finally:
            for event in held:
                self.events.put(event)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def sink() -> Iterator[EventSink]:
    s = EventSink()
    yield s
    s.close()


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory, sink: EventSink) -> Iterator[SmsEmulator]:
    emu = start_emulator(
        tmp_path_factory.mktemp("delivery") / ".local", event_grid_url=sink.url, delivery_delay_seconds=0.05
    )
    yield emu
    emu.stop()


@pytest.fixture
def sms_settings(base_env, emulator):
    emulator.clear_faults()
    emulator.clear_delivery_outcomes()
    return load_settings(
        {
            **base_env,
            "ACS_CONNECTION_STRING": emulator.connection_string,
            "ACS_CA_BUNDLE": str(emulator.cert),
            "SMS_RATE_PER_MINUTE": "60000",
            "SMS_DELIVERY_REPORTS": "true",
        }
    )


def _send(storage, settings, *, attempts: int = 0):
    message = new_message(storage, settings, body=f"Your letter {time.monotonic_ns()}")
    outcome = dispatch_message(
        storage, settings, DispatchRequest(message.org, message.id, attempts), 1, pacer=Pacer(60000)
    )
    return message, outcome


def _report(sink: EventSink, storage, message) -> dict[str, Any]:
    acs_id = get_message(storage, message.org, message.id).acs_message_id
    event = sink.event_for(acs_id)
    assert event["eventType"] == DELIVERY_EVENT_TYPE
    return event["data"]


def _types(storage, message) -> list[str]:
    return [e.type for e in message_events(storage, get_message(storage, message.org, message.id))]


def test_a_delivered_report_marks_the_message_delivered(storage, sms_settings, sink) -> None:
    message, outcome = _send(storage, sms_settings)
    assert outcome == "sent"
    data = _report(sink, storage, message)
    assert data["tag"] == f"{message.org}/{message.id}"  # camelCase, as Event Grid's schema spells it
    assert apply_delivery_report(storage, data) == "delivered"
    delivered = get_message(storage, message.org, message.id)
    assert delivered.state == DELIVERED and delivered.status == "delivered"
    assert clock.iso(delivered.delivered_at) == clock.iso(clock.parse_iso(data["receivedTimestamp"]))
    assert _types(storage, message).count("delivered") == 1


def test_a_failed_report_fails_the_message_with_the_networks_reason(storage, sms_settings, emulator, sink) -> None:
    emulator.add_delivery_outcome(parse_delivery_override({"status": "Failed", "details": "Handset unreachable"}))
    message, _ = _send(storage, sms_settings)
    assert apply_delivery_report(storage, _report(sink, storage, message)) == "failed"
    failed = get_message(storage, message.org, message.id)
    assert failed.state == FAILED
    assert failed.failure_reason == "The phone network could not deliver the text (Failed: Handset unreachable)"
    assert "delivery_failed" in _types(storage, message)


def test_a_duplicate_report_changes_nothing(storage, sms_settings, sink) -> None:
    message, _ = _send(storage, sms_settings)
    data = _report(sink, storage, message)
    assert apply_delivery_report(storage, data) == "delivered"
    assert apply_delivery_report(storage, data).startswith("ignored")
    assert _types(storage, message).count("delivered") == 1


def test_the_same_report_many_times_at_once_is_applied_once(storage, sms_settings, sink) -> None:
    message, _ = _send(storage, sms_settings)
    data = _report(sink, storage, message)
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda _: apply_delivery_report(storage, data), range(8)))
    assert outcomes.count("delivered") == 1
    assert _types(storage, message).count("delivered") == 1


def test_an_older_report_arriving_after_a_newer_one_is_ignored(storage, sms_settings, sink) -> None:
    message, _ = _send(storage, sms_settings)
    data = _report(sink, storage, message)
    later = clock.iso(clock.parse_iso(data["receivedTimestamp"]) + timedelta(seconds=30))
    assert apply_delivery_report(storage, {**data, "deliveryStatus": "Failed", "receivedTimestamp": later}) == "failed"
    assert apply_delivery_report(storage, data).startswith("ignored")  # the older "Delivered"
    assert get_message(storage, message.org, message.id).state == FAILED


def test_delivered_stays_delivered(storage, sms_settings, sink) -> None:
    message, _ = _send(storage, sms_settings)
    data = _report(sink, storage, message)
    apply_delivery_report(storage, data)
    later = clock.iso(clock.parse_iso(data["receivedTimestamp"]) + timedelta(seconds=30))
    assert apply_delivery_report(storage, {**data, "deliveryStatus": "Failed", "receivedTimestamp": later}).startswith(
        "ignored"
    )
    assert get_message(storage, message.org, message.id).state == DELIVERED


def test_a_report_before_the_answer_reached_us_is_matched_by_its_tag(storage, sms_settings, emulator, sink) -> None:
    # ACS records the text and reports it, but its answer to the send is lost (500).
    emulator.add_fault(parse_fault({"mode": "accept_then_status", "status": 500}))
    message, outcome = _send(storage, sms_settings)
    assert outcome == "retry"
    queued = get_message(storage, message.org, message.id)
    assert queued.state == QUEUED and queued.acs_message_id is None
    [text] = [m for m in emulator.messages if m["message"].startswith(message.body + "\n")]
    data = sink.event_for(text["id"])["data"]
    assert apply_delivery_report(storage, data) == "delivered"
    delivered = get_message(storage, message.org, message.id)
    assert delivered.state == DELIVERED and delivered.acs_message_id == text["id"] and delivered.sent_at
    assert delivered.body is None and delivered.sealed_token is None
    # The retry then finds the text delivered and sends nothing.
    retry = dispatch_message(storage, sms_settings, DispatchRequest(message.org, message.id, 1), 1, pacer=Pacer(60000))
    assert retry == DELIVERED
    assert len([m for m in emulator.messages if m["message"].startswith(message.body + "\n")]) == 1
    types = _types(storage, message)
    assert types.count("sent") == 1 and types.count("delivered") == 1
    assert types.index("sent") < types.index("delivered")


def test_a_report_that_races_the_dispatcher_records_one_sent_event(storage, sms_settings, sink) -> None:
    message, _ = _send(storage, sms_settings)
    data = _report(sink, storage, message)
    assert get_message(storage, message.org, message.id).state == SENT
    apply_delivery_report(storage, data)
    assert _types(storage, message).count("sent") == 1


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"MessageId": "Outgoing_unknown", "DeliveryStatus": "Delivered"},
        {"MessageId": "Outgoing_unknown", "DeliveryStatus": "Delivered", "Tag": "A12345/not-a-message"},
        {
            "MessageId": "Outgoing_unknown",
            "DeliveryStatus": "Delivered",
            "Tag": "A12345/5f0c8f0e-8f0a-4d5e-9d1a-2b9f1c3d4e5f",
        },
    ],
)
def test_reports_for_no_message_of_ours_are_ignored(storage, data) -> None:
    assert apply_delivery_report(storage, data).startswith("ignored")


def test_a_report_for_another_organisations_message_by_a_forged_tag_changes_nothing(
    storage, sms_settings, sink
) -> None:
    message, _ = _send(storage, sms_settings)
    data = _report(sink, storage, message)
    forged = {**data, "messageId": "Outgoing_forged", "tag": f"{message.org}/{message.id}", "deliveryStatus": "Failed"}
    assert apply_delivery_report(storage, forged).startswith("ignored")  # the message has another ACS id
    assert get_message(storage, message.org, message.id).state == SENT


def test_a_message_that_was_never_tried_ignores_reports(storage, sms_settings) -> None:
    message = new_message(storage, sms_settings)
    data = {
        "MessageId": "Outgoing_x",
        "DeliveryStatus": "Delivered",
        "Tag": f"{message.org}/{message.id}",
        "ReceivedTimestamp": clock.iso(clock.now()),
    }
    assert apply_delivery_report(storage, data).startswith("ignored")
    assert get_message(storage, message.org, message.id).state == QUEUED


# -- reports as Event Grid brings them: seven digits, twice, not final first, out of order, hours late --


def _events_for(sink: EventSink, acs_id: str, n: int) -> list[dict[str, Any]]:
    return [sink.event_for(acs_id) for _ in range(n)]


def test_the_same_report_posted_twice_with_seven_digit_times_is_applied_once(
    storage, sms_settings, emulator, sink
) -> None:
    emulator.add_delivery_outcome(parse_delivery_override({"status": "Delivered", "copies": 2}))
    message, _ = _send(storage, sms_settings)
    acs_id = get_message(storage, message.org, message.id).acs_message_id
    first, second = _events_for(sink, acs_id, 2)
    assert first == second and len(first["data"]["receivedTimestamp"].rsplit(".", 1)[1]) == len("1234567Z")
    assert [apply_delivery_report(storage, e["data"]) for e in (first, second)] == [
        "delivered",
        "ignored: duplicate or out of date",
    ]
    assert _types(storage, message).count("delivered") == 1


@pytest.mark.parametrize("out_of_order", [False, True])
def test_a_pending_report_is_not_final_and_the_final_one_decides_in_either_order(
    storage, sms_settings, emulator, sink, out_of_order: bool
) -> None:
    emulator.add_delivery_outcome(
        parse_delivery_override(
            {"status": "Failed", "details": "No route", "pending": True, "outOfOrder": out_of_order}
        )
    )
    message, _ = _send(storage, sms_settings)
    acs_id = get_message(storage, message.org, message.id).acs_message_id
    posted = [e["data"] for e in _events_for(sink, acs_id, 2)]
    assert [d["deliveryStatus"] for d in posted] == (["Failed", "Pending"] if out_of_order else ["Pending", "Failed"])
    outcomes = [apply_delivery_report(storage, d) for d in posted]
    assert outcomes == (
        ["failed", "ignored: duplicate or out of date"]
        if out_of_order
        else ["ignored: duplicate or out of date", "failed"]
    )
    failed = get_message(storage, message.org, message.id)
    assert failed.state == FAILED and failed.failure_reason.endswith("(Failed: No route)")


@pytest.mark.parametrize("status", ["Pending", "Unknown"])
def test_a_report_that_is_not_final_proves_a_lost_answer_was_sent_and_stops_the_retry(
    storage, sms_settings, emulator, sink, status: str
) -> None:
    emulator.add_fault(parse_fault({"mode": "accept_then_status", "status": 500}))
    emulator.add_delivery_outcome(parse_delivery_override({"status": status}))
    message, outcome = _send(storage, sms_settings)
    assert outcome == "retry"
    [text] = [m for m in emulator.messages if m["message"].startswith(message.body + "\n")]
    assert apply_delivery_report(storage, sink.event_for(text["id"])["data"]) == "pending"
    sent = get_message(storage, message.org, message.id)
    assert sent.state == SENT and sent.acs_message_id == text["id"] and sent.mobile  # not final: number kept
    retry = dispatch_message(storage, sms_settings, DispatchRequest(message.org, message.id, 1), 1, pacer=Pacer(60000))
    assert retry == SENT
    assert len([m for m in emulator.messages if m["message"].startswith(message.body + "\n")]) == 1


def test_a_report_hours_late_corrects_a_message_failed_as_unconfirmed(storage, sms_settings, emulator, sink) -> None:
    emulator.add_fault(parse_fault({"mode": "accept_then_status", "status": 500}))
    message, _ = _send(storage, sms_settings)
    [text] = [m for m in emulator.messages if m["message"].startswith(message.body + "\n")]
    data = sink.event_for(text["id"])["data"]
    # The dispatcher gave up after the repeatability window; the handset reports in the evening.
    transition(storage, message.org, message.id, lambda m: lifecycle.send_failed(m, UNCONFIRMED, clock.now()))
    evening = clock.now() + timedelta(hours=7)
    late = {**data, "receivedTimestamp": event_time(evening)}
    assert apply_delivery_report(storage, late) == "delivered"
    delivered = get_message(storage, message.org, message.id)
    assert delivered.state == DELIVERED and delivered.failure_reason is None
    assert clock.iso(delivered.delivered_at) == clock.iso(evening)
