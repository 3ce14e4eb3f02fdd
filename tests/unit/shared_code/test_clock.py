"""Time in one place: aware UTC, RFC 3339 with `Z` and milliseconds."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared_code import clock


def test_now_is_aware_utc() -> None:
    now = clock.now()
    assert now.tzinfo is not None
    assert now.utcoffset() == timedelta(0)


def test_iso_formats_with_z_and_milliseconds() -> None:
    value = datetime(2026, 12, 1, 9, 0, 0, 123456, tzinfo=timezone.utc)
    assert clock.iso(value) == "2026-12-01T09:00:00.123Z"


def test_iso_converts_other_zones_to_utc() -> None:
    value = datetime(2026, 7, 1, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    assert clock.iso(value) == "2026-07-01T09:00:00.000Z"


def test_iso_of_none_is_none() -> None:
    assert clock.iso(None) is None


@pytest.mark.parametrize("value", [None, ""])
def test_parse_iso_of_nothing_is_none(value: str | None) -> None:
    assert clock.parse_iso(value) is None


def test_parse_iso_round_trips_iso() -> None:
    value = datetime(2026, 12, 1, 9, 0, 0, 123000, tzinfo=timezone.utc)
    assert clock.parse_iso(clock.iso(value)) == value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01T09:00:00Z", datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)),
        ("2026-12-01T09:00:00+00:00", datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)),
        ("2026-12-01T10:00:00+01:00", datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)),
        ("2026-12-01T04:00:00-05:00", datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)),
    ],
)
def test_parse_iso_converts_to_utc(text: str, expected: datetime) -> None:
    parsed = clock.parse_iso(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["2026-12-01T09:00:00", "2026-12-01"])
def test_parse_iso_needs_a_zone(text: str) -> None:
    with pytest.raises(ValueError, match="time zone"):
        clock.parse_iso(text)


@pytest.mark.parametrize("text", ["tomorrow", "2026-13-01T09:00:00Z", "Z"])
def test_parse_iso_refuses_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        clock.parse_iso(text)
