"""The pacing measures: the busiest 60-second window (every window, edges exactly) and the rate."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bench.pacing import busiest_window, rate_per_minute, steady_rate_per_minute

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)


def _at(*seconds: float) -> list[datetime]:
    return [T0 + timedelta(seconds=s) for s in seconds]


def test_a_text_exactly_60_seconds_later_is_in_the_next_window() -> None:
    assert busiest_window(_at(0, 30, 60)) == 2
    assert busiest_window(_at(0, 30, 59.999)) == 3


def test_the_busiest_window_may_start_at_any_text() -> None:
    assert busiest_window(_at(0, 50, 55, 58, 100, 109, 110)) == 5
    assert busiest_window([]) == 0


def test_the_rate_is_texts_between_the_first_and_the_last() -> None:
    assert rate_per_minute(_at(*range(0, 61))) == 60
    assert rate_per_minute(_at(0, 0.5, 1.0)) == 120


def test_the_steady_rate_leaves_out_the_first_and_last_tenth() -> None:
    slow_start_and_end = _at(0, 10, *range(20, 80), 200, 300)  # 64 texts; 6 left out at each end
    assert steady_rate_per_minute(slow_start_and_end) == 60
