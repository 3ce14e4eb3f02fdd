"""Pacing sends to the SMS provider's rate limit, shared by every process and instance.

ACS limits each sender (600 texts a minute for an alphanumeric sender ID). Sending
faster only earns 429s, so every send first reserves a slot. The arithmetic is a token
bucket kept as one "theoretical arrival time" (the GCRA form), which is exact, needs no
timer thread, and lets a caller know how long it would wait *before* it commits to waiting.

`Pacer` keeps that time in memory, for one process. `SharedPacer` keeps it in one table
row that every worker process of every instance leases from, so the limit holds however
far Azure scales out: a process takes a block of consecutive slots (about a second's
worth) with one ETag-conditional write, and hands them to its own threads. A slot not
used by its time is dropped, never used late, so no minute can see more than the limit.

A 429's Retry-After pauses the whole bucket, because the limit belongs to the sender,
not to the one message that hit it; the shared pacer stores the pause in its row.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from shared_code.tables import RowChanged, RowExists, Table

_EPSILON = 1e-6


class SlotPacer(Protocol):
    """What the send path needs of a pacer."""

    def reserve(self, max_wait: float) -> float | None:
        """Seconds to wait before sending (0 = now), or None when the slot is more than `max_wait` away."""
        ...

    def pause(self, seconds: float) -> None:
        """Hold every send for `seconds` from now."""
        ...

    def next_slot_in(self) -> float:
        """Seconds until a send could start, without reserving it."""
        ...


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


_pacers_lock = threading.Lock()


#: A slot this far past its time is still used (a thread woken a little late); older ones are dropped.
LATE_SLOT_TOLERANCE = 0.05
#: The shared bucket runs at this share of the limit. ACS counts texts as they arrive, and the time
#: from a slot to its arrival varies (a thread woken late, a slower request): without a margin a
#: 60-second window of arrivals measured 242 texts at a limit of 240. 3 % is 1.8 s a minute of slack.
RATE_MARGIN = 0.97
#: Conditional writes a process tries before it gives up on a lease for now (the caller requeues).
LEASE_ATTEMPTS = 20


class SharedPacer:
    """A token bucket of `rate_per_minute` shared through one table row by every process.

    The row holds `tat` (when the bucket is next free, in Unix seconds) and `pausedUntil`.
    Each lease moves `tat` on by `block` slots in one ETag-conditional write, so processes
    never hand out the same slot; time is each machine's wall clock (NTP-synchronised in
    Azure, so skew is milliseconds against a slot of 0.1 s at 600 a minute).
    """

    def __init__(
        self,
        table: Table,
        rate_per_minute: int,
        *,
        key: str = "sms",
        block: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if rate_per_minute < 1:
            raise ValueError("rate_per_minute must be at least 1")
        self.table = table
        self.key = key
        self.rate_per_minute = rate_per_minute
        self.interval = 60.0 / (rate_per_minute * RATE_MARGIN)
        self.block = max(1, block if block is not None else rate_per_minute // 60)
        self._clock = clock
        self._lock = threading.Lock()
        self._slots: deque[float] = deque()

    def reserve(self, max_wait: float) -> float | None:
        """Seconds to wait before sending (0 = now), or None (nothing reserved) past `max_wait`."""
        with self._lock:
            now = self._clock()
            while self._slots and self._slots[0] < now - LATE_SLOT_TOLERANCE:
                self._slots.popleft()  # unused in its time: never used late
            if not self._slots and not self._lease(now, max_wait):
                return None
            wait = max(0.0, self._slots[0] - now)
            if wait > max_wait:
                return None
            self._slots.popleft()
            return wait

    def pause(self, seconds: float) -> None:
        """Hold every process's sends for `seconds` from now; never shortens a pause."""
        with self._lock:
            self._slots.clear()
            until = self._clock() + max(0.0, seconds)
            for _ in range(LEASE_ATTEMPTS):
                row = self.table.get(self.key, self.key)
                if row is not None and float(row.get("pausedUntil") or 0) >= until:
                    return
                entity = {
                    "PartitionKey": self.key,
                    "RowKey": self.key,
                    "tat": float(row.get("tat") or 0) if row is not None else 0.0,
                    "pausedUntil": until,
                }
                try:
                    if row is None:
                        self.table.insert(entity)
                    else:
                        self.table.replace(entity, etag=row.etag)
                    return
                except (RowExists, RowChanged):
                    continue

    def next_slot_in(self) -> float:
        """Seconds until a send could start, without reserving it."""
        with self._lock:
            now = self._clock()
            if self._slots and self._slots[-1] >= now - LATE_SLOT_TOLERANCE:
                return max(0.0, self._slots[0] - now)
            row = self.table.get(self.key, self.key)
            if row is None:
                return 0.0
            return max(0.0, float(row.get("tat") or 0) - now, float(row.get("pausedUntil") or 0) - now)

    def _lease(self, now: float, max_wait: float) -> bool:
        """Take the next block of slots from the shared row; False when they start past `max_wait`
        or every attempt lost a race (the caller comes back later either way)."""
        for _ in range(LEASE_ATTEMPTS):
            row = self.table.get(self.key, self.key)
            tat = float(row.get("tat") or 0) if row is not None else 0.0
            paused = float(row.get("pausedUntil") or 0) if row is not None else 0.0
            start = max(now, tat, paused)
            if start - now > max_wait:
                return False
            entity = {
                "PartitionKey": self.key,
                "RowKey": self.key,
                "tat": start + self.block * self.interval,
                "pausedUntil": paused,
            }
            try:
                if row is None:
                    self.table.insert(entity)
                else:
                    self.table.replace(entity, etag=row.etag)
            except (RowExists, RowChanged):
                continue  # another process leased first: read its tat and go after it
            self._slots.extend(start + i * self.interval for i in range(self.block))
            return True
        return False


_shared: dict[tuple[int, int], SharedPacer] = {}


def shared_pacer(table: Table, rate_per_minute: int) -> SharedPacer:
    """The process's view of the app-wide pacer for this rate and table (kept for its leased slots)."""
    with _pacers_lock:
        key = (id(table), rate_per_minute)
        pacer = _shared.get(key)
        if pacer is None:
            pacer = _shared[key] = SharedPacer(table, rate_per_minute)
        return pacer
