"""The SMS adapter's pure parts: sender IDs, Retry-After, the first-sent header."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from shared_code import clock
from shared_code.settings import SettingsError
from shared_code.sms import (
    SmsError,
    SmsUnconfirmed,
    fail_aiohttp_probe_fast,
    first_sent_header,
    parse_retry_after,
    validate_sender_id,
)


@pytest.mark.parametrize(
    "sender",
    ["Enclose", "A", "GP Surgery", "Surgery123", "ABCDEFGHIJK", "1A", "NHS 111 GP", "+447700900123", "+18005550123"],
)
def test_valid_sender_ids(sender: str) -> None:
    assert validate_sender_id(sender) == sender


@pytest.mark.parametrize(
    "sender",
    [
        "",
        " ",
        "ABCDEFGHIJKL",  # empty, blank, 12 characters
        "12345",
        "123 456",  # no letter: networks take it for a number
        " Enclose",
        "Enclose ",  # leading or trailing space
        "Dr. Smith",
        "GP-Surgery",
        "Café",
        "Surgery!",  # characters networks do not carry
        "+44",
        "07700900123",
        "+0447700900123",
        "+4477009001234567",  # not E.164
    ],
)
def test_invalid_sender_ids(sender: str) -> None:
    with pytest.raises(SettingsError) as error:
        validate_sender_id(sender)
    assert "SMS_SENDER" in str(error.value)


class Headers(dict):
    """Case-insensitive enough for the header names used here."""

    def get(self, key: str, default=None):
        for name, value in self.items():
            if name.lower() == key.lower():
                return value
        return default


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "0"}, 0.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"x-ms-retry-after-ms": "1200", "Retry-After": "9"}, 1.2),
        ({"Retry-After": "-3"}, 0.0),
        ({}, None),
        ({"Retry-After": "soon"}, None),
    ],
)
def test_retry_after(headers: dict, seconds: float | None) -> None:
    assert parse_retry_after(Headers(headers)) == seconds


def test_retry_after_as_an_http_date() -> None:
    when = format_datetime(clock.now() + timedelta(seconds=30), usegmt=True)
    assert 28 <= parse_retry_after(Headers({"Retry-After": when})) <= 30
    past = format_datetime(clock.now() - timedelta(hours=1), usegmt=True)
    assert parse_retry_after(Headers({"Retry-After": past})) == 0.0


def test_retry_after_without_headers() -> None:
    assert parse_retry_after(None) is None


def test_first_sent_is_an_imf_fixdate_in_gmt() -> None:
    moment = datetime(2019, 4, 1, 7, 22, 3, 456000, tzinfo=timezone(timedelta(hours=1)))
    assert first_sent_header(moment) == "Mon, 01 Apr 2019 06:22:03 GMT"


def test_unconfirmed_is_final_and_may_have_sent() -> None:
    error = SmsUnconfirmed()
    assert isinstance(error, SmsError)
    assert not error.retryable and error.may_have_sent


AIOHTTP_TRANSPORT = "azure.core.pipeline.transport._aiohttp"


def test_the_aiohttp_probe_fails_fast_without_aiohttp(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import sys

    monkeypatch.setitem(sys.modules, AIOHTTP_TRANSPORT, None)  # restored to what it was afterwards
    monkeypatch.delitem(sys.modules, AIOHTTP_TRANSPORT)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "aiohttp" else object())
    fail_aiohttp_probe_fast()
    assert sys.modules[AIOHTTP_TRANSPORT] is None
    # The SDK's probe catches ImportError: it must still get one, now without reading the module.
    with pytest.raises(ImportError):
        from azure.core.pipeline.transport import AioHttpTransport  # noqa: F401


def test_the_aiohttp_probe_is_left_alone_when_aiohttp_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import sys

    monkeypatch.setitem(sys.modules, AIOHTTP_TRANSPORT, None)  # restored to what it was afterwards
    monkeypatch.delitem(sys.modules, AIOHTTP_TRANSPORT)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    fail_aiohttp_probe_fast()
    assert AIOHTTP_TRANSPORT not in sys.modules
