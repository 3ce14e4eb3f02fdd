"""A paused sender: when ACS refuses our sender or identity, dispatch holds every text instead of failing it.

A 401 (a credential, or a From number the resource does not own: ACS answers `InternalError`),
a 403 (the managed identity lacks its role on the resource), a 404 (a sender the resource does
not own) or a 400 naming `From` say nothing about the message that met them: every text would
be refused the same way until an operator fixes the configuration (`SmsError.misconfigured`).
Failing each queued message in turn would burn the whole queue into `failed`, so instead:

* the first refusal pauses sending for every worker process and instance: one row in the
  `pacing` table (beside the shared rate limiter's row) holds when the pause began, why, how
  many probes in a row were refused, and when the next probe may go;
* a dispatcher that finds sending paused puts its entry back on the queue, hidden until the
  pause ends, without counting a try (the message stays `queued`);
* once the pause ends, the next sends are the probe: another refusal pauses again, twice as long
  (15 s, 30 s, 1 min... at most 5 min); a text accepted ends the pause, and sending resumes by itself;
* the operator sees it: `GET /api/v1/health` (`service_health`) and an error in the log when a pause
  begins or grows, with the reason's category and message ids only.

Each process reads the row at most every few seconds (`CACHE_SECONDS`), so the busy send path pays
one table read per process every few seconds, not one per text.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared_code import clock
from shared_code.storage import PACING, Storage
from shared_code.tables import RowChanged, RowExists, Table

log = logging.getLogger(__name__)

#: The row: the pacing table's "sms" partition, beside the rate limiter's own row.
PARTITION, ROW = "sms", "sender"
FIRST_PAUSE = timedelta(seconds=15)
MAX_PAUSE = timedelta(minutes=5)
#: How stale a process's view of the row may be.
CACHE_SECONDS = 5.0
#: Conditional writes tried before giving up on recording a refusal (another process records it).
WRITE_ATTEMPTS = 10


@dataclass(frozen=True)
class SenderPause:
    """Sending is paused: since when, until when (the next probe), after how many refusals, and why."""

    since: datetime
    until: datetime
    refusals: int
    reason: str
    etag: str | None = None

    def active(self, at: datetime) -> bool:
        """Whether no text may be sent at `at` (after `until`, the next sends probe whether it is fixed)."""
        return at < self.until

    def to_entity(self) -> dict[str, Any]:
        """The table row."""
        return {
            "PartitionKey": PARTITION,
            "RowKey": ROW,
            "since": clock.iso(self.since),
            "until": clock.iso(self.until),
            "refusals": self.refusals,
            "reason": self.reason,
        }

    @classmethod
    def from_row(cls, row: Any) -> SenderPause:
        """From the table row (keeping its ETag)."""
        since = clock.parse_iso(row.get("since")) or clock.now()
        return cls(
            since=since,
            until=clock.parse_iso(row.get("until")) or since,
            refusals=int(row.get("refusals") or 1),
            reason=str(row.get("reason") or ""),
            etag=row.etag,
        )


def pause_length(refusals: int) -> timedelta:
    """How long sending pauses after `refusals` refused probes in a row: doubling, at most MAX_PAUSE."""
    return min(MAX_PAUSE, FIRST_PAUSE * 2 ** min(16, max(0, refusals - 1)))


class SenderHealth:
    """One process's view of the shared pause, and the writes that start, grow and end it."""

    def __init__(
        self,
        table: Table,
        *,
        now: Callable[[], datetime] = clock.now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.table = table
        self._now = now
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._cached: SenderPause | None = None
        self._read_at: float | None = None

    def current(self) -> SenderPause | None:
        """The pause, as read at most CACHE_SECONDS ago; None when sending is not paused."""
        with self._lock:
            if self._read_at is not None and self._monotonic() - self._read_at < CACHE_SECONDS:
                return self._cached
        return self._remember(self._read())

    def refused(self, reason: str) -> tuple[SenderPause, bool]:
        """Record a refusal of the sender or identity: start the pause, or (when the pause had already
        ended, so this was a probe) grow it. Returns the pause and whether this call started or grew it
        (a refusal met while another process's pause still runs leaves that pause as it is)."""
        for _ in range(WRITE_ATTEMPTS):
            now = self._now()
            row = self.table.get(PARTITION, ROW)
            stored = SenderPause.from_row(row) if row is not None else None
            if stored is not None and stored.active(now):
                return self._remember(stored), False
            refusals = stored.refusals + 1 if stored is not None else 1
            pause = SenderPause(
                since=stored.since if stored is not None else now,
                until=now + pause_length(refusals),
                refusals=refusals,
                reason=reason,
            )
            try:
                if stored is None:
                    self.table.insert(pause.to_entity())
                else:
                    self.table.replace(pause.to_entity(), etag=stored.etag)
            except (RowExists, RowChanged):
                continue  # another process recorded a refusal first: read what it wrote
            return self._remember(pause), True
        return self._remember(self._read()) or SenderPause(self._now(), self._now(), 1, reason), False

    def recovered(self) -> bool:
        """A text was accepted: end the pause if this process knows of one; True if it did."""
        with self._lock:
            known = self._cached
        if known is None:
            return False
        self.table.delete(PARTITION, ROW)
        self._remember(None)
        return True

    def _read(self) -> SenderPause | None:
        row = self.table.get(PARTITION, ROW)
        return SenderPause.from_row(row) if row is not None else None

    def _remember(self, pause: SenderPause | None) -> SenderPause | None:
        with self._lock:
            self._cached, self._read_at = pause, self._monotonic()
        return pause


_healths_lock = threading.Lock()
_healths: dict[int, SenderHealth] = {}


def sender_health(storage: Storage) -> SenderHealth:
    """The process's view of the shared pause for this storage account (kept for its cache)."""
    table = storage.table(PACING)
    with _healths_lock:
        health = _healths.get(id(table))
        if health is None:
            health = _healths[id(table)] = SenderHealth(table)
        return health


def service_health(storage: Storage) -> dict[str, Any]:
    """What `GET /api/v1/health` answers: whether texts are going out, read fresh (no personal data)."""
    row = storage.table(PACING).get(PARTITION, ROW)
    if row is None:
        sms: dict[str, Any] = {"status": "sending", "pausedSince": None, "nextAttemptAt": None, "reason": None}
    else:
        pause = SenderPause.from_row(row)
        sms = {
            "status": "paused",
            "pausedSince": clock.iso(pause.since),
            "nextAttemptAt": clock.iso(pause.until),
            "reason": pause.reason,
        }
    return {"status": "ok" if row is None else "degraded", "sms": sms}
