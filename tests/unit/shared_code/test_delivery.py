"""Delivery report rules without I/O: parsing, duplicates, order of arrival, what is final."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from shared_code import clock
from shared_code.delivery import DeliveryReport, apply_report, parse_report
from shared_code.lifecycle import DELIVERED, FAILED, QUEUED, SENT
from shared_code.message_model import Message
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
