"""Delivery report rules without I/O: parsing, duplicates, order of arrival, what is final."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from shared_code import clock
from shared_code.delivery import DELIVERED as DELIVERED_OUTCOME
from shared_code.delivery import FAILED as FAILED_OUTCOME
from shared_code.delivery import PENDING, DeliveryReport, apply_report, parse_report
from shared_code.lifecycle import DELIVERED, FAILED, QUEUED, SENT
from shared_code.message_model import Message, message_from_entity, message_to_entity
from tests.support.messages import message_record

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=clock.now().tzinfo)


def message(**changes: Any) -> Message:
    """A sent message with plausible fields, changed as asked."""
    sent = {"state": SENT, "sent_at": T0, "acs_message_id": "Outgoing_1", "body": None, "sealed_token": None}
    return message_record(at=T0, **{**sent, **changes})


def report(status: str = "Delivered", seconds: int = 1, acs_id: str = "Outgoing_1", **changes: Any) -> DeliveryReport:
    base = DeliveryReport(
        acs_message_id=acs_id, status=status, details="", tag="", received=T0 + timedelta(seconds=seconds)
    )
    return replace(base, **changes)


def _replay(m: Message, reports: list[DeliveryReport]) -> Message:
    for r in reports:
        m = apply_report(m, r) or m
    return m


# -- parsing ---------------------------------------------------------------------------------------


def test_parse_the_documented_event_data() -> None:
    parsed = parse_report(
        {
            "MessageId": "Outgoing_1",
            "From": "Enclose",
            "To": "+447700900123",
            "DeliveryStatus": "Failed",
            "DeliveryStatusDetails": "No route",
            "ReceivedTimestamp": "2026-03-02T09:00:05.123Z",
            "Tag": "A12345/5f0c8f0e-8f0a-4d5e-9d1a-2b9f1c3d4e5f",
        }
    )
    assert parsed.acs_message_id == "Outgoing_1" and not parsed.delivered
    assert parsed.received == T0 + timedelta(seconds=5, milliseconds=123)
    assert parsed.failure_reason == "The phone network could not deliver the text (Failed: No route)"
    assert parsed.message_key() == ("A12345", "5f0c8f0e-8f0a-4d5e-9d1a-2b9f1c3d4e5f")
    assert "+447700900123" not in parsed.failure_reason


def test_parse_camel_case_too() -> None:
    parsed = parse_report(
        {"messageId": "m", "deliveryStatus": "Delivered", "receivedTimestamp": "2026-03-02T09:00:00Z"}
    )
    assert parsed.delivered and parsed.received == T0


MESSAGE_ID = "5f0c8f0e-8f0a-4d5e-9d1a-2b9f1c3d4e5f"


def test_parse_an_event_as_event_grid_sends_it() -> None:
    # The data of Event Grid's example event (azure-rest-api-specs, specification/eventgrid/data-plane/
    # Microsoft.Communication/stable/2018-01-01/examples/event-grid-schema/sms_delivery_report_received.json):
    # camelCase, seven fractional digits; plus the tag we send.
    parsed = parse_report(
        {
            "messageId": "Outgoing_202009180022138813a09b-0cbf-4304-9b03-1546683bb910",
            "from": "15555555555",
            "to": "+15555555555",
            "deliveryStatus": "Delivered",
            "deliveryStatusDetails": "No error.",
            "receivedTimestamp": "2020-09-18T00:22:20.2855749Z",
            "deliveryAttempts": [
                {"timestamp": "2020-09-18T00:22:14.9315918Z", "segmentsSucceeded": 1, "segmentsFailed": 0}
            ],
            "tag": f"A12345/{MESSAGE_ID}",
        }
    )
    assert parsed.acs_message_id == "Outgoing_202009180022138813a09b-0cbf-4304-9b03-1546683bb910"
    assert parsed.delivered and parsed.outcome == DELIVERED_OUTCOME
    # Kept to the millisecond, as every stored time is.
    assert parsed.received == datetime(2020, 9, 18, 0, 22, 20, 285000, tzinfo=T0.tzinfo)
    assert parsed.message_key() == ("A12345", MESSAGE_ID)


@pytest.mark.parametrize(
    "names",
    [
        ("messageId", "deliveryStatus", "deliveryStatusDetails", "receivedTimestamp", "tag"),  # Event Grid's schema
        ("MessageId", "DeliveryStatus", "DeliveryStatusDetails", "ReceivedTimestamp", "Tag"),  # Microsoft's page
        ("messageId", "deliveryStatus", "deliveryStatusDetails", "receivedTimestamp", "Tag"),  # a mixed-case Tag
        ("MESSAGEID", "deliverystatus", "DeliveryStatusDETAILS", "receivedtimestamp", "TAG"),
    ],
)
def test_field_names_are_read_in_any_case(names: tuple[str, ...]) -> None:
    values = ("Outgoing_1", "Failed", "No route", "2026-03-02T09:00:05.1234567Z", f"A12345/{MESSAGE_ID}")
    parsed = parse_report(dict(zip(names, values, strict=True)))
    assert (parsed.acs_message_id, parsed.status, parsed.details) == ("Outgoing_1", "Failed", "No route")
    assert parsed.received == T0 + timedelta(seconds=5, milliseconds=123)
    assert parsed.message_key() == ("A12345", MESSAGE_ID)


def test_a_tag_echoed_in_upper_case_still_names_the_message() -> None:
    assert report(tag=f"A12345/{MESSAGE_ID.upper()}").message_key() == ("A12345", MESSAGE_ID)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("Delivered", DELIVERED_OUTCOME),
        ("delivered", DELIVERED_OUTCOME),
        ("Failed", FAILED_OUTCOME),
        # Not final (the SMS API's DeliveryReport.deliveryStatus: Pending, Delivered, Failed, Unknown).
        ("Pending", PENDING),
        ("Unknown", PENDING),
        ("", PENDING),
        ("SomethingNew", PENDING),
    ],
)
def test_only_delivered_and_failed_are_final(status: str, outcome: str) -> None:
    assert report(status).outcome == outcome


@pytest.mark.parametrize("stamp", [None, "", "yesterday", "2026-03-02T09:00:00"])
def test_a_missing_or_unreadable_time_counts_as_now(stamp: str | None) -> None:
    before = clock.now()
    assert parse_report({"MessageId": "m", "ReceivedTimestamp": stamp}).received >= before


@pytest.mark.parametrize(
    "tag", ["", "A12345", "A12345/", "/5f0c8f0e-8f0a-4d5e-9d1a-2b9f1c3d4e5f", "A12345/not-a-uuid", "someone else's tag"]
)
def test_tags_that_do_not_name_a_message(tag: str) -> None:
    assert report(tag=tag).message_key() is None


# -- the rules -------------------------------------------------------------------------------------


def test_delivered() -> None:
    after = apply_report(message(), report("Delivered", 3))
    assert after.state == DELIVERED and after.delivered_at == T0 + timedelta(seconds=3)
    assert after.failure_reason is None and after.delivery_reported_at == after.delivered_at


def test_failed_carries_the_networks_reason() -> None:
    after = apply_report(message(), report("Failed", 3, details="Unknown subscriber"))
    assert after.state == FAILED
    assert after.failure_reason == "The phone network could not deliver the text (Failed: Unknown subscriber)"


def test_a_duplicate_changes_nothing() -> None:
    once = apply_report(message(), report("Delivered", 3))
    assert apply_report(once, report("Delivered", 3)) is None


def test_an_older_report_arriving_late_changes_nothing() -> None:
    failed = apply_report(message(), report("Failed", 5))
    assert apply_report(failed, report("Failed", 2, details="older")) is None


def test_a_failure_then_a_later_delivery_is_delivered() -> None:
    m = _replay(message(), [report("Failed", 2), report("Delivered", 4)])
    assert m.state == DELIVERED and m.failure_reason is None


def test_delivered_is_final() -> None:
    m = _replay(message(), [report("Delivered", 2), report("Failed", 4)])
    assert m.state == DELIVERED and m.delivered_at == T0 + timedelta(seconds=2)


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_any_order_of_arrival_ends_the_same(order: tuple[int, ...]) -> None:
    reports = [
        report("Failed", 1, details="a"),
        report("Failed", 2, details="b"),
        report("Delivered", 3),
        report("Delivered", 3),
    ]
    m = _replay(message(), [reports[i] for i in order])
    assert m.state == DELIVERED


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_any_order_of_failures_keeps_the_newest_reason(order: tuple[int, ...]) -> None:
    reports = [
        report("Failed", 1, details="first"),
        report("Failed", 2, details="second"),
        report("Failed", 3, details="last"),
    ]
    m = _replay(message(), [reports[i] for i in order])
    assert m.state == FAILED and m.failure_reason.endswith("(Failed: last)")


def test_a_report_for_another_text_is_ignored() -> None:
    assert apply_report(message(), report(acs_id="Outgoing_other")) is None


def test_a_report_proves_a_text_whose_answer_was_lost_was_sent() -> None:
    # ACS's answer never reached the dispatcher: the message is still queued and keeps its text.
    queued = message(
        state=QUEUED, sent_at=None, acs_message_id=None, body="Your letter", sealed_token="x", first_sent_at=T0
    )
    after = apply_report(queued, report("Delivered", 3))
    assert after.state == DELIVERED and after.acs_message_id == "Outgoing_1"
    assert after.sent_at is not None and after.sent_at < after.delivered_at
    assert after.body is None and after.sealed_token is None  # the text has gone: not kept


def test_a_report_corrects_a_message_failed_as_unconfirmed() -> None:
    unconfirmed = message(
        state=FAILED, sent_at=None, acs_message_id=None, failure_reason="not confirmed", first_sent_at=T0
    )
    after = apply_report(unconfirmed, report("Delivered", 3))
    assert after.state == DELIVERED and after.failure_reason is None


@pytest.mark.parametrize("state", ["awaiting_scan", "queued", "scheduled", "failed"])
def test_a_message_never_tried_cannot_have_a_genuine_report(state: str) -> None:
    never_tried = message(state=state, sent_at=None, acs_message_id=None, first_sent_at=None)
    assert apply_report(never_tried, report()) is None


# -- as Event Grid really delivers them: seven digits, duplicates, not final, hours late -----------------


def _stored(m: Message) -> Message:
    """The message as storage gives it back (times to the millisecond)."""
    return message_from_entity(message_to_entity(m))


def test_a_duplicate_with_seven_fractional_digits_changes_nothing_once_stored() -> None:
    data = {
        "messageId": "Outgoing_1",
        "deliveryStatus": "Delivered",
        "receivedTimestamp": "2026-03-02T09:00:03.2855749Z",
    }
    once = _stored(apply_report(message(), parse_report(data)))
    assert once.state == DELIVERED
    assert apply_report(once, parse_report(data)) is None  # Event Grid's second delivery of the same event


@pytest.mark.parametrize("status", ["Pending", "Unknown"])
def test_a_report_that_is_not_final_does_not_fail_a_sent_message(status: str) -> None:
    assert apply_report(message(), report(status, 3)) is None


@pytest.mark.parametrize("status", ["Pending", "Unknown"])
def test_a_report_that_is_not_final_proves_a_text_whose_answer_was_lost_was_sent(status: str) -> None:
    queued = message(
        state=QUEUED, sent_at=None, acs_message_id=None, body="Your letter", sealed_token="x", first_sent_at=T0
    )
    after = apply_report(queued, report(status, 3))
    assert after.state == SENT and after.acs_message_id == "Outgoing_1" and after.sent_at < T0 + timedelta(seconds=3)
    assert after.failure_reason is None and after.delivered_at is None
    assert after.mobile is not None  # not final: a later report may still fail it
    assert after.body is None and after.sealed_token is None


def test_a_report_that_is_not_final_corrects_a_message_failed_as_unconfirmed_to_sent() -> None:
    unconfirmed = message(
        state=FAILED, sent_at=None, acs_message_id=None, failure_reason="not confirmed", first_sent_at=T0
    )
    after = apply_report(unconfirmed, report("Pending", 3))
    assert after.state == SENT and after.failure_reason is None


def test_a_report_that_is_not_final_never_undoes_a_final_one() -> None:
    failed = apply_report(message(), report("Failed", 2, details="Unknown subscriber"))
    assert apply_report(failed, report("Pending", 5)) is None
    delivered = apply_report(message(), report("Delivered", 2))
    assert apply_report(delivered, report("Unknown", 5)) is None


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_any_order_of_pending_duplicate_and_final_reports_ends_the_same(order: tuple[int, ...]) -> None:
    queued = message(state=QUEUED, sent_at=None, acs_message_id=None, first_sent_at=T0)
    reports = [
        report("Pending", 1),
        report("Pending", 1),
        report("Failed", 4, details="No route"),
        report("Unknown", 2),
    ]
    m = _replay(queued, [reports[i] for i in order])
    assert m.state == FAILED and m.failure_reason.endswith("(Failed: No route)")
    assert m.delivery_reported_at == T0 + timedelta(seconds=4)
    assert [e.type for e in m.history].count("sent") == 1


def test_a_report_hours_late_still_counts() -> None:
    # The dispatcher gave up on a try whose answer was lost; the handset was off until the evening.
    unconfirmed = message(
        state=FAILED, sent_at=None, acs_message_id=None, failure_reason="not confirmed", first_sent_at=T0
    )
    late = report("Delivered", 6 * 3600)
    after = apply_report(_stored(unconfirmed), late)
    assert after.state == DELIVERED and after.delivered_at == T0 + timedelta(hours=6)
    assert [e.type for e in after.history][-2:] == ["sent", "delivered"]
