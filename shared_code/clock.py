"""Time, in one place: always timezone-aware UTC, formatted as the API shows it."""

from __future__ import annotations

from datetime import datetime, timezone


def now() -> datetime:
    """The current time, UTC."""
    return datetime.now(timezone.utc)


def iso(value: datetime | None) -> str | None:
    """RFC 3339 with a `Z` and whole milliseconds, or None."""
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: str | None) -> datetime | None:
    """The datetime an `iso()` string (or any RFC 3339 string with a zone) names, or None."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("a time zone is required")
    return parsed.astimezone(timezone.utc)
