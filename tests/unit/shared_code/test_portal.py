"""The portal's pure rules: date-of-birth fields, sessions and security headers."""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace

import pytest

from shared_code import portal
from shared_code.crypto import derive_key, sign, token_hash
from shared_code.portal import (
    LinkGone,
    LinkLocked,
    new_session,
    parse_dob_fields,
    session_valid,
)
from shared_code.settings import Settings, secret

TODAY = date(2026, 3, 15)
ALL = {"day": "", "month": "", "year": ""}
TOKEN = "AbCdEfGhIjKlMnOpQrStUvWx"
OTHER_TOKEN = "ZyXwVuTsRqPoNmLkJiHgFeDc"
SETTINGS = Settings(session_key=secret("SESSION_KEY", "s" * 64), session_ttl_seconds=900)
T0 = 1_800_000_000


# -- date-of-birth fields ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "month", "year", "expected"),
    [
        ("31", "1", "1970", date(1970, 1, 31)),
        ("01", "01", "1970", date(1970, 1, 1)),
        ("1", "1", "1970", date(1970, 1, 1)),
        (" 15 ", " 3 ", " 1984 ", date(1984, 3, 15)),
        ("29", "2", "2024", date(2024, 2, 29)),
    ],
)
def test_real_dates(day: str, month: str, year: str, expected: date) -> None:
    assert parse_dob_fields(day, month, year, TODAY) == (expected, {}, None)


def test_today_is_a_valid_date_of_birth() -> None:
    assert parse_dob_fields("15", "3", "2026", TODAY) == (TODAY, {}, None)


def test_tomorrow_is_in_the_future() -> None:
    tomorrow = TODAY + timedelta(days=1)
    result = parse_dob_fields(str(tomorrow.day), str(tomorrow.month), str(tomorrow.year), TODAY)
    assert result == (None, ALL, "Date of birth must be in the past")


def test_nothing_entered() -> None:
    assert parse_dob_fields("", "", "", TODAY) == (None, ALL, "Enter your date of birth")
    assert parse_dob_fields(" ", None, "", TODAY) == (None, ALL, "Enter your date of birth")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("day", "month", "year", "fields", "summary"),
    [
        ("", "3", "1984", {"day": ""}, "Date of birth must include a day"),
        ("15", "", "1984", {"month": ""}, "Date of birth must include a month"),
        ("15", "3", "", {"year": ""}, "Date of birth must include a year"),
        ("", "", "1984", {"day": "", "month": ""}, "Date of birth must include a day and month"),
        ("", "3", "", {"day": "", "year": ""}, "Date of birth must include a day and year"),
    ],
)
def test_missing_parts_are_named(day: str, month: str, year: str, fields: dict, summary: str) -> None:
    assert parse_dob_fields(day, month, year, TODAY) == (None, fields, summary)


@pytest.mark.parametrize("year", ["84", "984", "19840", "198x"])
def test_year_must_have_four_digits(year: str) -> None:
    assert parse_dob_fields("15", "3", year, TODAY) == (None, {"year": ""}, "Year must include 4 numbers")


@pytest.mark.parametrize(
    ("day", "month", "year", "fields"),
    [
        ("x", "3", "1984", {"day": ""}),
        ("015", "3", "1984", {"day": ""}),
        ("15", "March", "1984", {"month": ""}),
        ("-1", "3", "1984", {"day": ""}),
        ("1.5", "3", "1984", {"day": ""}),
        ("x", "y", "1984", {"day": "", "month": ""}),
        ("x", "3", "84", {"day": "", "year": ""}),
    ],
)
def test_non_numbers_are_not_a_real_date(day: str, month: str, year: str, fields: dict) -> None:
    assert parse_dob_fields(day, month, year, TODAY) == (None, fields, "Date of birth must be a real date")


@pytest.mark.parametrize(
    ("day", "month", "year"),
    [
        ("29", "2", "2023"),
        ("31", "4", "1984"),
        ("32", "1", "1984"),
        ("0", "1", "1984"),
        ("15", "13", "1984"),
        ("15", "0", "1984"),
        ("1", "1", "0000"),
    ],
)
def test_impossible_dates_are_not_real(day: str, month: str, year: str) -> None:
    assert parse_dob_fields(day, month, year, TODAY) == (None, ALL, "Date of birth must be a real date")


def test_unusual_digits_do_not_crash() -> None:
    # "²" is a digit to str.isdigit() but not to int(): it must be refused, not raise.
    date_, fields, summary = parse_dob_fields("²", "3", "1984", TODAY)
    assert date_ is None
    assert summary == "Date of birth must be a real date"


def test_oldest_date_the_api_accepts_still_opens_the_link_later() -> None:
    # The API accepts a date of birth up to exactly 130 years ago; the link lives up to 28 days after a
    # send that may be 30 days ahead. A patient born 1896-12-01 texted on 2026-11-30 (129 years old)
    # who opens the link on 2027-01-05 must be able to enter that date and have it checked.
    assert parse_dob_fields("1", "12", "1896", date(2027, 1, 5)) == (date(1896, 12, 1), {}, None)


# -- link errors ---------------------------------------------------------------------------------------


def test_unknown_expired_and_revoked_links_share_one_answer() -> None:
    a, b = LinkGone(), LinkGone()
    assert a.status == 404
    assert a.problem() == b.problem()


def test_locked_link_is_403_and_keeps_the_practice_name() -> None:
    error = LinkLocked("Riverside Surgery")
    assert error.status == 403
    assert error.practice_name == "Riverside Surgery"
    assert "Riverside" not in error.detail


# -- sessions ----------------------------------------------------------------------------------------


@pytest.fixture
def at(monkeypatch: pytest.MonkeyPatch):
    """Set the portal's wall clock: at(seconds)."""
    now = {"t": float(T0)}
    monkeypatch.setattr(portal, "time", SimpleNamespace(time=lambda: now["t"]))

    def set_time(seconds: float) -> None:
        now["t"] = seconds

    return set_time


def test_new_session_is_valid_for_its_link(at) -> None:
    value = new_session(SETTINGS, TOKEN)
    assert session_valid(SETTINGS, TOKEN, value)


def test_session_value_reveals_neither_token_nor_its_full_hash(at) -> None:
    value = new_session(SETTINGS, TOKEN)
    assert TOKEN not in value
    assert token_hash(TOKEN) not in value


def test_session_lasts_exactly_its_ttl(at) -> None:
    value = new_session(SETTINGS, TOKEN)
    at(T0 + 899)
    assert session_valid(SETTINGS, TOKEN, value)
    at(T0 + 899.999)
    assert session_valid(SETTINGS, TOKEN, value)
    at(T0 + 900)
    assert not session_valid(SETTINGS, TOKEN, value)
    at(T0 + 86400)
    assert not session_valid(SETTINGS, TOKEN, value)


def test_session_ttl_comes_from_settings(at) -> None:
    short = Settings(session_key=SETTINGS.session_key, session_ttl_seconds=60)
    value = new_session(short, TOKEN)
    at(T0 + 59)
    assert session_valid(short, TOKEN, value)
    at(T0 + 60)
    assert not session_valid(short, TOKEN, value)


def test_session_is_bound_to_its_link(at) -> None:
    assert not session_valid(SETTINGS, OTHER_TOKEN, new_session(SETTINGS, TOKEN))


def test_session_signed_with_another_key_is_refused(at) -> None:
    other = Settings(session_key=secret("SESSION_KEY", "o" * 64))
    assert not session_valid(SETTINGS, TOKEN, new_session(other, TOKEN))


def test_tampered_session_is_refused(at) -> None:
    value = new_session(SETTINGS, TOKEN)
    payload, _, signature = value.rpartition(".")
    bound, _, expires = payload.partition("~")
    # Pushing the expiry out breaks the signature.
    assert not session_valid(SETTINGS, TOKEN, f"{bound}~{int(expires) + 3600}.{signature}")
    assert not session_valid(SETTINGS, TOKEN, value[:-1] + ("A" if value[-1] != "A" else "B"))


def test_signed_session_with_a_non_numeric_expiry_is_refused(at) -> None:
    key = derive_key(SETTINGS.session_key.reveal(), "portal-session")
    assert session_valid(SETTINGS, TOKEN, sign(key, f"{token_hash(TOKEN)[:32]}~{T0 + 60}"))  # control
    assert not session_valid(SETTINGS, TOKEN, sign(key, f"{token_hash(TOKEN)[:32]}~soon"))
    assert not session_valid(SETTINGS, TOKEN, sign(key, f"{token_hash(TOKEN)[:32]}~-1"))
    assert not session_valid(SETTINGS, TOKEN, sign(key, f"{token_hash(TOKEN)[:32]}"))


@pytest.mark.parametrize("value", [None, "", ".", "garbage", "a~1.b", "é~1.x", "ü"])
def test_missing_or_garbage_session_is_refused(at, value: str | None) -> None:
    assert not session_valid(SETTINGS, TOKEN, value)
