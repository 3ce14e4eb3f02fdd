"""Per-organisation sending limits against real Azurite: exact under parallel requests, refusals and repeats free."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from shared_code import sending_limits
from shared_code.errors import TooManyRequests, Unprocessable
from shared_code.idempotency import Reply, run_once
from shared_code.message_create import create_message
from shared_code.message_request import parse_new_message
from tests.support.records import DOB, clean_attachment, new_message, principal

AT = datetime(2026, 11, 30, 9, 15, 20, tzinfo=timezone.utc)


def an_org() -> str:
    """A fresh organisation per test, so counts never mix."""
    return "T" + uuid.uuid4().hex[:8].upper()


def limited(settings, per_minute: int, per_day: int = 1000):
    return replace(settings, org_sms_per_minute=per_minute, org_daily_sms_quota=per_day)


def test_the_minute_rate_is_a_429_until_the_minute_ends(storage, settings) -> None:
    strict, org = limited(settings, 3), an_org()
    for _ in range(3):
        sending_limits.take(storage, strict, org, AT)
    with pytest.raises(TooManyRequests) as refused:
        sending_limits.take(storage, strict, org, AT + timedelta(seconds=10))
    assert refused.value.status == 429 and refused.value.retry_after == 30
    assert "minute" in refused.value.detail
    # Another organisation has its own count; the next minute starts again.
    sending_limits.take(storage, strict, an_org(), AT)
    sending_limits.take(storage, strict, org, AT + timedelta(minutes=1))


def test_the_daily_quota_is_a_429_until_midnight_and_takes_no_minute_place(storage, settings) -> None:
    strict, org = limited(settings, 3, per_day=4), an_org()
    for minutes in (0, 0, 1, 2):
        sending_limits.take(storage, strict, org, AT + timedelta(minutes=minutes))
    with pytest.raises(TooManyRequests) as refused:
        sending_limits.take(storage, strict, org, AT + timedelta(minutes=2))
    midnight = datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert refused.value.retry_after == int((midnight - (AT + timedelta(minutes=2))).total_seconds())
    assert "today" in refused.value.detail
    # The refusal gave back the minute place it took: with a bigger quota, minute 2 still has two left.
    roomier = limited(settings, 3, per_day=10)
    sending_limits.take(storage, roomier, org, AT + timedelta(minutes=2))
    sending_limits.take(storage, roomier, org, AT + timedelta(minutes=2))
    with pytest.raises(TooManyRequests) as refused:
        sending_limits.take(storage, roomier, org, AT + timedelta(minutes=2))
    assert "minute" in refused.value.detail
    # The next day starts again.
    sending_limits.take(storage, strict, org, midnight)


def test_parallel_requests_cannot_overrun_the_limit(storage, settings) -> None:
    strict, org = limited(settings, 5), an_org()

    def attempt(_: int) -> bool:
        try:
            sending_limits.take(storage, strict, org, AT)
        except TooManyRequests:
            return False
        return True

    with ThreadPoolExecutor(10) as pool:
        outcomes = list(pool.map(attempt, range(30)))
    assert outcomes.count(True) == 5


def test_a_place_given_back_can_be_used_again(storage, settings) -> None:
    strict, org = limited(settings, 2), an_org()
    sending_limits.take(storage, strict, org, AT)
    ticket = sending_limits.take(storage, strict, org, AT)
    sending_limits.give_back(storage, ticket)
    sending_limits.take(storage, strict, org, AT)
    with pytest.raises(TooManyRequests):
        sending_limits.take(storage, strict, org, AT)


def test_messages_over_the_rate_are_refused_and_refused_requests_do_not_count(storage, settings) -> None:
    strict, org = limited(settings, 2), an_org()
    with pytest.raises(Unprocessable):  # an unknown attachment: refused, so not counted
        new_message(storage, strict, org=org, attachment_ids=[str(uuid.uuid4())])
    new_message(storage, strict, org=org)
    new_message(storage, strict, org=org)
    attachment = clean_attachment(storage, strict, org)
    with pytest.raises(TooManyRequests):
        new_message(storage, strict, org=org, attachment_ids=[attachment.id])


def test_an_idempotency_key_repeat_does_not_count_twice(storage, settings) -> None:
    strict, org = limited(settings, 1), an_org()
    attachment = clean_attachment(storage, strict, org)
    payload = {
        "patient": {"nhsNumber": "9434765919", "dateOfBirth": DOB, "mobile": "07700900123"},
        "body": "Your letter",
        "attachmentIds": [attachment.id],
    }

    def create(operation_id: str | None) -> Reply:
        made = create_message(
            storage, strict, principal(org), parse_new_message(payload, strict), message_id=operation_id
        )
        return Reply(202, {"id": made.id}, {})

    first = run_once(storage, org, "key-1", "fingerprint", 24, create)
    assert run_once(storage, org, "key-1", "fingerprint", 24, create) == first
    # A run under the same id (a takeover of an abandoned claim) finds the message and counts nothing.
    again = create_message(
        storage, strict, principal(org), parse_new_message(payload, strict), message_id=first.body["id"]
    )
    assert again.id == first.body["id"]
    with pytest.raises(TooManyRequests):
        run_once(storage, org, "key-2", "fingerprint", 24, create)
