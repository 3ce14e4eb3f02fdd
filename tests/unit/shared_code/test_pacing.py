"""The process-wide token bucket that paces sends to the SMS provider's limit (a fake clock: no waiting)."""

from __future__ import annotations

import bisect
import threading

import pytest

from shared_code.pacing import Pacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _starts(pacer: Pacer, clock: FakeClock, n: int) -> list[float]:
    """When each of n back-to-back sends may start, each one reserved as soon as the previous started."""
    starts = []
    for _ in range(n):
        wait = pacer.reserve(max_wait=3600)
        assert wait is not None
        clock.now += wait
        starts.append(clock.now)
    return starts


def test_a_burst_goes_at_once_then_the_steady_rate() -> None:
    clock = FakeClock()
    pacer = Pacer(600, clock=clock)  # 10 a second, burst 10
    starts = _starts(pacer, clock, 30)
    assert starts[:10] == [1000.0] * 10
    gaps = [round(b - a, 6) for a, b in zip(starts[10:], starts[11:], strict=False)]
    assert gaps == [0.1] * len(gaps)
    assert starts[-1] == pytest.approx(1000.0 + 20 * 0.1)


@pytest.mark.parametrize("rate", [1, 59, 60, 600, 6000])
def test_no_minute_ever_holds_more_than_the_rate(rate: int) -> None:
    clock = FakeClock()
    pacer = Pacer(rate, clock=clock)
    starts = _starts(pacer, clock, rate * 3)
    for i, start in enumerate(starts):
        in_window = bisect.bisect_left(starts, start + 60) - i
        # The burst is the only excess over the steady rate.
        assert in_window <= rate + pacer.burst


def test_reserve_refuses_a_slot_too_far_away_and_reserves_nothing() -> None:
    clock = FakeClock()
    pacer = Pacer(60, burst=1, clock=clock)  # one a second
    assert pacer.reserve(max_wait=0) == 0
    assert pacer.reserve(max_wait=0.5) is None  # the next slot is 1 s away
    assert pacer.next_slot_in() == pytest.approx(1.0)  # still free: nothing was taken
    assert pacer.reserve(max_wait=1.0) == pytest.approx(1.0)


def test_idle_time_refills_the_bucket_up_to_the_burst_only() -> None:
    clock = FakeClock()
    pacer = Pacer(600, clock=clock)
    _starts(pacer, clock, 25)
    clock.now += 3600  # an hour idle
    starts = _starts(pacer, clock, 12)
    assert starts.count(starts[0]) == pacer.burst == 10


def test_retry_after_pauses_every_sender_and_never_shortens() -> None:
    clock = FakeClock()
    pacer = Pacer(600, clock=clock)
    pacer.pause(5)
    pacer.pause(2)  # a shorter pause does not cut the longer one
    assert pacer.next_slot_in() == pytest.approx(5)
    assert pacer.reserve(max_wait=4.9) is None
    assert pacer.reserve(max_wait=5) == pytest.approx(5)
    clock.now += 5
    assert pacer.reserve(max_wait=0) == 0


def test_reservations_from_many_threads_never_share_a_slot() -> None:
    clock = FakeClock()
    pacer = Pacer(60, burst=1, clock=clock)
    waits: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(50):
            wait = pacer.reserve(max_wait=10_000)
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(waits) == [float(i) for i in range(400)]


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Pacer(0)


def test_one_shared_pacer_per_table_and_rate_in_a_process() -> None:
    from shared_code.pacing import shared_pacer
    from shared_code.tables import MemoryTable

    table = MemoryTable("pacing")
    assert shared_pacer(table, 600) is shared_pacer(table, 600)
    assert shared_pacer(table, 600) is not shared_pacer(table, 1200)


# ---------------------------------------------------------------------------------------
# SharedPacer: one bucket for every process, through a table row (the in-memory table)
# ---------------------------------------------------------------------------------------


def _shared(table, clock: FakeClock, rate: int = 600, **kwargs):
    from shared_code.pacing import SharedPacer

    return SharedPacer(table, rate, clock=clock, **kwargs)


def _send_all(pacers, clock: FakeClock, n: int, threads: int = 4) -> list[float]:
    """n sends by `threads` busy senders in each of `pacers` (processes), in simulated time: each sender
    reserves as soon as it is free and sends when its slot comes. Their send times."""
    import heapq

    ready = [(clock.now, i) for i in range(len(pacers) * threads)]
    starts: list[float] = []
    while len(starts) < n:
        clock.now, sender = heapq.heappop(ready)
        wait = pacers[sender // threads].reserve(max_wait=3600)
        assert wait is not None
        starts.append(clock.now + wait)
        heapq.heappush(ready, (clock.now + wait, sender))
    return starts


def _most_in_any_window(starts: list[float], window: float = 60.0) -> int:
    starts = sorted(starts)
    return max(bisect.bisect_left(starts, t + window) - i for i, t in enumerate(starts))


@pytest.mark.parametrize("processes", [1, 4, 40])
def test_processes_sharing_the_row_never_exceed_the_limit_in_any_minute(processes: int) -> None:
    from shared_code.tables import MemoryTable

    clock, table = FakeClock(), MemoryTable("pacing")
    pacers = [_shared(table, clock) for _ in range(processes)]
    starts = _send_all(pacers, clock, 1800)
    assert _most_in_any_window(starts) <= 600
    # ...and the limit is used: every minute of the steady middle of the run sees at least 90 % of it.
    first = min(starts)
    for minute in (first + 60, first + 90):
        assert sum(minute <= t < minute + 60 for t in starts) >= 540


def test_a_slot_not_used_in_its_time_is_dropped_not_used_late() -> None:
    from shared_code.tables import MemoryTable

    clock, table = FakeClock(), MemoryTable("pacing")
    idle, busy = _shared(table, clock, block=10), _shared(table, clock, block=10)
    assert idle.reserve(max_wait=5) == 0  # leases ten slots, uses one
    clock.now += 30  # the other nine pass unused
    starts = _send_all([busy], clock, 600, threads=1) + _send_all([idle], clock, 5, threads=1)
    assert _most_in_any_window(starts) <= 600


def test_a_pause_in_one_process_holds_every_process() -> None:
    from shared_code.tables import MemoryTable

    clock, table = FakeClock(), MemoryTable("pacing")
    first, second = _shared(table, clock), _shared(table, clock)
    assert first.reserve(max_wait=5) == 0
    first.pause(30)
    assert second.reserve(max_wait=5) is None  # the next slot is 30 s away
    assert second.next_slot_in() == pytest.approx(30, abs=0.2)
    assert second.reserve(max_wait=60) == pytest.approx(30, abs=0.2)
    first.pause(5)  # never shortens a pause
    assert table.get("sms", "sms")["pausedUntil"] == pytest.approx(clock.now + 30)


def test_nothing_is_reserved_past_max_wait() -> None:
    from shared_code.tables import MemoryTable

    clock, table = FakeClock(), MemoryTable("pacing")
    pacer = _shared(table, clock, rate=60, block=1)  # one a second, less the safety margin
    assert pacer.reserve(max_wait=0.5) == 0
    assert pacer.reserve(max_wait=0.5) is None
    assert pacer.reserve(max_wait=2) == pytest.approx(pacer.interval)
    assert 1.0 < pacer.interval <= 1.0 / 0.97 + 1e-9


def test_a_lease_lost_to_every_rival_reserves_nothing() -> None:
    from tests.support.tables import ContendedTable

    clock, table = FakeClock(), ContendedTable("pacing")
    table.insert({"PartitionKey": "sms", "RowKey": "sms", "tat": 0.0, "pausedUntil": 0.0})
    assert _shared(table, clock).reserve(max_wait=5) is None


def test_threads_of_processes_take_distinct_slots() -> None:
    from shared_code.tables import MemoryTable

    clock, table = FakeClock(), MemoryTable("pacing")
    pacers = [_shared(table, clock, rate=6000) for _ in range(4)]
    waits: list[float] = []
    lock = threading.Lock()

    def take(pacer) -> None:
        for _ in range(50):
            wait = pacer.reserve(max_wait=3600)
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=take, args=(p,)) for p in pacers for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(waits) == 600 and len(set(round(w, 6) for w in waits)) == 600
