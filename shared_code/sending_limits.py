"""Per-organisation sending limits: a rate per minute and a quota per UTC day (429 beyond either).

One compromised account must neither flood patients nor use up the ACS sending rate that
every practice shares. Each organisation has two counter rows, one per window kind, kept
in the `idempotency` table beside its Idempotency-Key claims (the same per-organisation
request bookkeeping, so no other table or role is needed; claims' row keys are hex hashes
and cannot collide with these). A row holds the window it counts and its count; a request
in a later window starts the count again, so an organisation never has more than two rows.

Every change is an ETag-conditional write, so parallel requests on any number of processes
and instances cannot overrun a limit: of several writers of one version exactly one wins,
and the others read again and decide again. A message takes its place (`take`) only once
its request has passed every check, and gives it back (`give_back`) when it is not made after
all, so refused requests do not count; an Idempotency-Key repeat is answered before it
gets here, so it does not count twice.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared_code import clock
from shared_code.counters import take_slot
from shared_code.errors import ServiceUnavailable, TooManyRequests
from shared_code.settings import Settings
from shared_code.storage import IDEMPOTENCY, Storage
from shared_code.tables import RowChanged

log = logging.getLogger(__name__)

#: The table the counters live in (see the module's docstring).
LIMITS_TABLE = IDEMPOTENCY
_ROW_PREFIX = "sending-limit~"
#: Lost ETag races tolerated for one counter before the request is told to try again (503):
#: enough for far more parallel requests from one organisation than its limit lets through.
_ATTEMPTS = 200


@dataclass(frozen=True)
class Window:
    """One limit as it applies at a moment: its kind, its bound, and the period it counts."""

    kind: str  # "minute" or "day"
    limit: int
    start: datetime
    end: datetime

    @property
    def key(self) -> str:
        """The window's identity as stored in its counter row."""
        return clock.iso(self.start)

    def seconds_left(self, at: datetime) -> int:
        """Whole seconds from `at` until the window ends (at least 1): the 429's `Retry-After`."""
        return max(1, math.ceil((self.end - at).total_seconds()))


@dataclass(frozen=True)
class Ticket:
    """The places one message took, to give back if it is not made after all."""

    org: str
    windows: tuple[Window, ...]


def windows_at(settings: Settings, at: datetime) -> tuple[Window, Window]:
    """The minute and the UTC day that `at` falls in, with their limits."""
    minute = at.replace(second=0, microsecond=0)
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    return (
        Window("minute", settings.org_sms_per_minute, minute, minute + timedelta(minutes=1)),
        Window("day", settings.org_daily_sms_quota, day, day + timedelta(days=1)),
    )


def take(storage: Storage, settings: Settings, org: str, at: datetime | None = None) -> Ticket:
    """Count one message against the organisation's limits, or raise TooManyRequests (429).

    Both counts go up or neither does: a day quota reached after the minute's count was
    taken gives the minute's place back.
    """
    at = at or clock.now()
    taken: list[Window] = []
    for window in windows_at(settings, at):
        if not _take_one(storage, org, window):
            _give_back_all(storage, org, taken)
            log.info("organisation %s reached its %s sending limit", org, window.kind)
            raise TooManyRequests(_refusal(window), window.seconds_left(at))
        taken.append(window)
    return Ticket(org, tuple(taken))


def give_back(storage: Storage, ticket: Ticket) -> None:
    """Return a ticket's places: the message it was for was not made. Never raises (best effort:
    a place not given back only makes the limit a little stricter until its window ends)."""
    _give_back_all(storage, ticket.org, list(ticket.windows))


def _refusal(window: Window) -> str:
    if window.kind == "minute":
        return (
            f"Your organisation has sent {window.limit} messages in the last minute, the most allowed. "
            "Wait a minute and try again."
        )
    return (
        f"Your organisation has sent {window.limit} messages today, the most allowed in a day. "
        "Try again tomorrow, or contact the service desk if you need a higher limit."
    )


def _row_key(window: Window) -> str:
    return _ROW_PREFIX + window.kind


def _take_one(storage: Storage, org: str, window: Window) -> bool:
    """Add one to the window's count if it is under the limit; False when it is not."""
    taken = take_slot(
        storage.table(LIMITS_TABLE), org, _row_key(window), window.limit, period=window.key, attempts=_ATTEMPTS
    )
    if taken is None:
        raise ServiceUnavailable("Too many messages are being sent at once. Please try again.")
    return taken


def _give_back_all(storage: Storage, org: str, windows: list[Window]) -> None:
    for window in windows:
        try:
            _give_back_one(storage, org, window)
        except Exception:  # noqa: BLE001 - see give_back: a lost place only tightens the limit briefly
            log.exception("organisation %s: a %s sending-limit place could not be given back", org, window.kind)


def _give_back_one(storage: Storage, org: str, window: Window) -> None:
    table = storage.table(LIMITS_TABLE)
    for _ in range(_ATTEMPTS):
        row = table.get(org, _row_key(window))
        if row is None or row.get("window") != window.key or int(row.get("count") or 0) <= 0:
            return  # the window has moved on: nothing of ours is counted any more
        entity = {"PartitionKey": org, "RowKey": _row_key(window), "window": window.key, "count": row["count"] - 1}
        try:
            table.replace(entity, etag=row.etag)
            return
        except RowChanged:
            time.sleep(random.uniform(0, 0.02))
    raise ServiceUnavailable("A sending-limit count could not be corrected.")
