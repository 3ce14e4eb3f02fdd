"""Per-organisation sending limits on the in-memory table: each bound exactly, the windows, giving back.

Against the real service, with parallel requests and whole messages, see
tests/integration/shared_code/test_sending_limits.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared_code import sending_limits
from shared_code.errors import TooManyRequests
from shared_code.settings import Settings, load_settings
from shared_code.tables import MemoryTables

#: A Monday morning, 20 s into a minute.
AT = datetime(2026, 11, 30, 9, 15, 20, tzinfo=timezone.utc)
MIDNIGHT = datetime(2026, 12, 1, tzinfo=timezone.utc)
ORG = "A12345"


@pytest.fixture
def storage() -> MemoryTables:
    return MemoryTables()


def limits(per_minute: int, per_day: int) -> Settings:
    return load_settings({"ORG_SMS_PER_MINUTE": str(per_minute), "ORG_DAILY_SMS_QUOTA": str(per_day)})


def _refused(storage: MemoryTables, settings: Settings, at: datetime, org: str = ORG) -> TooManyRequests:
    with pytest.raises(TooManyRequests) as refused:
        sending_limits.take(storage, settings, org, at)
    return refused.value


def _counts(storage: MemoryTables, org: str = ORG) -> dict[str, tuple[str, int]]:
    rows = storage.table(sending_limits.LIMITS_TABLE).query()
    return {r["RowKey"].split("~")[1]: (r["window"], r["count"]) for r in rows if r["PartitionKey"] == org}


@pytest.mark.parametrize("per_minute", [1, 3])
def test_the_minute_rate_lets_exactly_its_number_through(storage, per_minute: int) -> None:
    settings = limits(per_minute, 100)
    for _ in range(per_minute):
        sending_limits.take(storage, settings, ORG, AT)
    refused = _refused(storage, settings, AT + timedelta(seconds=39))
    assert refused.status == 429 and "minute" in refused.detail
    assert refused.retry_after == 1  # the minute's last second
    assert _counts(storage)["minute"][1] == per_minute
    assert _counts(storage)["day"][1] == per_minute  # the refusal gave its day place back


def test_the_next_minute_starts_again(storage) -> None:
    settings = limits(2, 100)
    sending_limits.take(storage, settings, ORG, AT)
    sending_limits.take(storage, settings, ORG, AT)
    next_minute = AT.replace(second=0) + timedelta(minutes=1)
    sending_limits.take(storage, settings, ORG, next_minute)
    sending_limits.take(storage, settings, ORG, next_minute)
    _refused(storage, settings, next_minute)
    assert _counts(storage)["minute"] == ("2026-11-30T09:16:00.000Z", 2)


@pytest.mark.parametrize("quota", [1, 4])
def test_the_daily_quota_lets_exactly_its_number_through_until_midnight(storage, quota: int) -> None:
    settings = limits(100, quota)
    for n in range(quota):
        sending_limits.take(storage, settings, ORG, AT + timedelta(minutes=n))
    last = MIDNIGHT - timedelta(seconds=1)
    refused = _refused(storage, settings, last)
    assert "today" in refused.detail and refused.retry_after == 1
    assert _counts(storage)["day"] == ("2026-11-30T00:00:00.000Z", quota)
    assert _counts(storage)["minute"] == ("2026-11-30T23:59:00.000Z", 0)  # the minute's place given back
    sending_limits.take(storage, settings, ORG, MIDNIGHT)  # a new day


def test_organisations_are_counted_apart(storage) -> None:
    settings = limits(1, 1)
    sending_limits.take(storage, settings, ORG, AT)
    sending_limits.take(storage, settings, "B99999", AT)
    _refused(storage, settings, AT)
    _refused(storage, settings, AT, org="B99999")


def test_a_ticket_given_back_frees_both_places(storage) -> None:
    settings = limits(2, 2)
    sending_limits.take(storage, settings, ORG, AT)
    ticket = sending_limits.take(storage, settings, ORG, AT)
    _refused(storage, settings, AT)
    sending_limits.give_back(storage, ticket)
    assert {kind: count for kind, (_, count) in _counts(storage).items()} == {"minute": 1, "day": 1}
    sending_limits.take(storage, settings, ORG, AT)
    _refused(storage, settings, AT)


def test_a_ticket_given_back_after_its_window_ended_changes_nothing(storage) -> None:
    settings = limits(2, 100)
    ticket = sending_limits.take(storage, settings, ORG, AT)
    later = AT + timedelta(minutes=1)
    sending_limits.take(storage, settings, ORG, later)
    sending_limits.give_back(storage, ticket)
    counts = _counts(storage)
    assert counts["minute"] == ("2026-11-30T09:16:00.000Z", 1)  # the new minute keeps its count
    assert counts["day"][1] == 1  # the day's window is the same one: its place comes back
