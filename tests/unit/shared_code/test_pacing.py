"""The process-wide token bucket that paces sends to the SMS provider's limit (a fake clock: no waiting)."""

from __future__ import annotations

import bisect
import threading

import pytest

from shared_code.pacing import Pacer, pacer_for


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


def test_one_pacer_per_rate_for_the_whole_process() -> None:
    assert pacer_for(600) is pacer_for(600)
    assert pacer_for(600) is not pacer_for(1200)
