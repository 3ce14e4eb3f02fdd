"""The shared pause of a refused sender, on the in-memory table: start, grow, hold, end, and what health shows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared_code import sms_pause
from shared_code.sms_pause import (
    CACHE_SECONDS,
    FIRST_PAUSE,
    MAX_PAUSE,
    PARTITION,
    ROW,
    SenderHealth,
    pause_length,
    service_health,
)
from shared_code.storage import PACING
from shared_code.tables import MemoryTable, MemoryTables

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
REASON = "The SMS service refused our sender or identity (401)"


class Clock:
    """Wall and monotonic time that only move when told."""

    def __init__(self) -> None:
        self.now = T0
        self.mono = 0.0

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono += seconds


class CountingTable(MemoryTable):
    """A MemoryTable that counts reads."""

    def __init__(self) -> None:
        super().__init__(PACING)
        self.reads = 0

    def get(self, partition: str, row: str):
        self.reads += 1
        return super().get(partition, row)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def health(table: MemoryTable, clock: Clock) -> SenderHealth:
    return SenderHealth(table, now=lambda: clock.now, monotonic=lambda: clock.mono)


def test_the_pause_doubles_from_fifteen_seconds_to_at_most_five_minutes() -> None:
    assert [pause_length(n).total_seconds() for n in range(1, 8)] == [15, 30, 60, 120, 240, 300, 300]
    assert pause_length(1) == FIRST_PAUSE and pause_length(100) == MAX_PAUSE


def test_the_first_refusal_pauses_every_process_and_others_keep_that_pause(clock: Clock) -> None:
    table = MemoryTable(PACING)
    one, other = health(table, clock), health(table, clock)
    pause, began = one.refused(REASON)
    assert began and pause.refusals == 1 and pause.since == T0 and pause.until == T0 + FIRST_PAUSE
    assert pause.active(T0) and not pause.active(T0 + FIRST_PAUSE)
    # Another process meets a refusal during the pause (a send already in flight): the pause stands.
    same, began_again = other.refused(REASON)
    assert not began_again and (same.until, same.refusals) == (pause.until, 1)
    assert other.current().until == pause.until


def test_a_refused_probe_after_the_pause_grows_it_and_keeps_when_it_began(clock: Clock) -> None:
    table = MemoryTable(PACING)
    h = health(table, clock)
    h.refused(REASON)
    clock.advance(FIRST_PAUSE.total_seconds())
    grown, began = h.refused("The SMS service refused our sender or identity (403)")
    assert began and grown.refusals == 2 and grown.since == T0
    assert grown.until == clock.now + 2 * FIRST_PAUSE
    assert grown.reason.endswith("(403)")


def test_a_text_accepted_ends_the_pause_for_everyone(clock: Clock) -> None:
    table = MemoryTable(PACING)
    one, other = health(table, clock), health(table, clock)
    one.refused(REASON)
    assert other.current() is not None
    clock.advance(FIRST_PAUSE.total_seconds())
    assert other.recovered()  # the probe from another process got through
    assert table.get(PARTITION, ROW) is None
    clock.advance(CACHE_SECONDS)
    assert one.current() is None


def test_a_process_that_knows_of_no_pause_ends_none_and_reads_nothing(clock: Clock) -> None:
    table = CountingTable()
    h = health(table, clock)
    assert h.current() is None and table.reads == 1
    assert not h.recovered()
    assert table.reads == 1


def test_a_process_reads_the_row_at_most_every_few_seconds(clock: Clock) -> None:
    table = CountingTable()
    h = health(table, clock)
    for _ in range(100):
        h.current()
        clock.advance(CACHE_SECONDS / 10)
    assert table.reads == 10


def test_health_says_sending_or_paused_with_when_and_why(clock: Clock) -> None:
    tables = MemoryTables()
    assert service_health(tables) == {
        "status": "ok",
        "sms": {"status": "sending", "pausedSince": None, "nextAttemptAt": None, "reason": None},
    }
    health(tables.table(PACING), clock).refused(REASON)
    assert service_health(tables) == {
        "status": "degraded",
        "sms": {
            "status": "paused",
            "pausedSince": "2026-03-02T09:00:00.000Z",
            "nextAttemptAt": "2026-03-02T09:00:15.000Z",
            "reason": REASON,
        },
    }


def test_the_row_is_not_the_rate_limiters_own() -> None:
    from shared_code.pacing import SharedPacer

    pacer = SharedPacer(MemoryTable(PACING), 600)
    assert (pacer.key, pacer.key) != (sms_pause.PARTITION, sms_pause.ROW)
