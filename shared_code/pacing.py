"""Pacing sends to the SMS provider's rate limit, shared by every thread of the process.

ACS limits each sender (600 texts a minute for an alphanumeric sender ID). Sending
faster only earns 429s, so every send first reserves a slot here: a token bucket kept
as one "theoretical arrival time" (the GCRA form), which is exact, needs no timer
thread, and lets a caller know how long it would wait *before* it commits to waiting.

A 429's Retry-After pauses the whole bucket, because the limit belongs to the sender,
not to the one message that hit it. The pacing is per process: the limit is divided
between the worker processes (`Settings.sms_rate_per_process`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

_EPSILON = 1e-6


class Pacer:
    """A thread-safe token bucket of `rate_per_minute` with a burst of `burst` sends."""

    def __init__(
        self, rate_per_minute: int, *, burst: int | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate_per_minute < 1:
            raise ValueError("rate_per_minute must be at least 1")
        self.rate_per_minute = rate_per_minute
        self.interval = 60.0 / rate_per_minute
        # One second's worth by default: smooth enough for a per-minute limit, and a
        # restart cannot fire a larger burst than that.
        self.burst = max(1, burst if burst is not None else rate_per_minute // 60)
        self._clock = clock
        self._lock = threading.Lock()
        self._tat = clock()  # when the bucket would be empty again at the steady rate
        self._paused_until = 0.0

    def reserve(self, max_wait: float) -> float | None:
        """Reserve the next send slot: seconds to wait before sending (0 = now).

        Returns None, reserving nothing, when the slot is more than `max_wait` away:
        the caller should come back later rather than hold a worker that long.
        """
        with self._lock:
            now = self._clock()
            tolerance = (self.burst - 1) * self.interval
            start = max(now, self._tat - tolerance, self._paused_until)
            if start - now < _EPSILON:
                start = now  # float rounding must not cost a burst slot
            wait = start - now
            if wait > max_wait:
                return None
            self._tat = max(self._tat, start) + self.interval
            return wait

    def pause(self, seconds: float) -> None:
        """Hold every send for `seconds` from now (a 429's Retry-After); never shortens a pause."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))

    def next_slot_in(self) -> float:
        """Seconds until a send could start, without reserving it."""
        with self._lock:
            now = self._clock()
            start = max(now, self._tat - (self.burst - 1) * self.interval, self._paused_until)
            return 0.0 if start - now < _EPSILON else start - now


_pacers: dict[int, Pacer] = {}
_pacers_lock = threading.Lock()


def pacer_for(rate_per_minute: int) -> Pacer:
    """The process-wide pacer for this rate (one per configured rate, so tests can vary it)."""
    with _pacers_lock:
        pacer = _pacers.get(rate_per_minute)
        if pacer is None:
            pacer = _pacers[rate_per_minute] = Pacer(rate_per_minute)
        return pacer
