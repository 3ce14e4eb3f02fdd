"""Callback rules without I/O: which URLs may be used (every resolved address checked), the
signature a receiver checks, the back-off that covers a day, and stable event ids."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from shared_code.callbacks import (
    BACKOFF,
    RETRY_FOR,
    backoff_seconds,
    check_url,
    event_id,
    signature_header,
)
from shared_code.errors import Unprocessable
from shared_code.settings import load_settings

STRICT = load_settings({})
LOCAL = replace(STRICT, callback_allow_local=True)
PUBLIC = "20.50.2.1"


def resolver(*addresses: str):
    def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


def refused(settings, url, *addresses: str) -> str:
    with pytest.raises(Unprocessable) as caught:
        check_url(settings, url, resolver(*addresses))
    [error] = caught.value.errors
    assert error.field == "url"
    return error.message


def test_strict_is_the_default() -> None:
    assert STRICT.callback_allow_local is False


def test_https_to_a_public_address_is_allowed() -> None:
    assert check_url(STRICT, "https://practice.example.org/hooks/enclose", resolver(PUBLIC)) == [PUBLIC]
    assert check_url(STRICT, "https://practice.example.org:8443/x?y=1", resolver(PUBLIC, "2a01:111:f100::1"))


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",  # the instance metadata service
        "127.0.0.1",
        "10.0.0.5",
        "172.16.3.4",
        "192.168.1.1",
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:169.254.169.254",  # the metadata address written as IPv6
        "224.0.0.1",
        "240.0.0.1",
    ],
)
def test_a_private_loopback_or_link_local_address_is_refused(address: str) -> None:
    assert "private or local" in refused(STRICT, "https://practice.example.org/", address)


def test_every_resolved_address_must_pass() -> None:
    refused(STRICT, "https://practice.example.org/", PUBLIC, "169.254.169.254")


def test_a_literal_address_is_checked_too() -> None:
    refused(STRICT, "https://169.254.169.254/latest/meta-data", "169.254.169.254")
    refused(STRICT, "https://[::1]/", "::1")


@pytest.mark.parametrize(
    "url",
    [
        "http://practice.example.org/",
        "ftp://practice.example.org/",
        "https://user:pw@practice.example.org/",
        "https://practice.example.org/#x",
        "https:///nohost",
        "https://practice.example.org:99999/",
        "",
        None,
        42,
        "https://practice.example.org/" + "a" * 2000,
    ],
)
def test_other_urls_are_refused(url: object) -> None:
    refused(STRICT, url, PUBLIC)


def test_a_name_that_does_not_resolve_is_refused() -> None:
    def fails(host: str, port: int) -> list[str]:
        raise OSError("no such name")

    with pytest.raises(Unprocessable):
        check_url(STRICT, "https://nowhere.example.org/", fails)
    refused(STRICT, "https://nowhere.example.org/")


def test_locally_http_to_127_0_0_1_only() -> None:
    assert check_url(LOCAL, "http://127.0.0.1:9000/hook", resolver("127.0.0.1")) == ["127.0.0.1"]
    assert check_url(LOCAL, "http://localhost:9000/hook", resolver("127.0.0.1"))
    refused(STRICT, "http://127.0.0.1:9000/hook", "127.0.0.1")
    refused(STRICT, "https://127.0.0.1:9000/hook", "127.0.0.1")
    # Local does not open the private ranges, nor http to other hosts.
    refused(LOCAL, "http://10.0.0.5/hook", "10.0.0.5")
    refused(LOCAL, "https://localhost/hook", "169.254.169.254")
    refused(LOCAL, "http://practice.example.org/", PUBLIC)


def test_the_signature_is_hmac_sha256_of_time_dot_body() -> None:
    body = b'{"id":"e1","type":"sent"}'
    header = signature_header("whsec_abc", body, 1796029200)
    t, v1 = (part.split("=", 1)[1] for part in header.split(","))
    assert header.startswith("t=1796029200,v1=") and t == "1796029200"
    assert v1 == hmac.new(b"whsec_abc", b"1796029200." + body, hashlib.sha256).hexdigest()
    assert signature_header("whsec_abc", body + b" ", 1796029200) != header
    assert signature_header("whsec_abd", body, 1796029200) != header
    assert signature_header("whsec_abc", body, 1796029201) != header


def test_the_back_off_grows_and_covers_at_least_a_day() -> None:
    waits = [backoff_seconds(n) for n in range(1, 40)]
    assert waits == sorted(waits) and waits[0] == BACKOFF[0] and waits[-1] == BACKOFF[-1]
    assert RETRY_FOR.total_seconds() >= 24 * 3600
    # Every wait fits a queue message's visibility (at most 7 days).
    assert max(waits) < 7 * 24 * 3600


def test_an_event_id_is_stable_and_distinct() -> None:
    at = datetime(2026, 11, 30, 9, 14, tzinfo=timezone.utc)
    assert event_id("m1", "sent", at) == event_id("m1", "sent", at)
    assert len({event_id("m1", "sent", at), event_id("m2", "sent", at), event_id("m1", "delivered", at)}) == 3
    assert event_id("m1", "downloaded", at, "a1") != event_id("m1", "downloaded", at, "a2")


def test_the_readme_receiver_accepts_a_signed_body_and_refuses_anything_else() -> None:
    import re
    import time
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    [code] = [block for block in re.findall(r"```python\n(.*?)```", readme, re.S) if "def verify" in block]
    scope: dict = {}
    exec(code, scope)  # noqa: S102 - the README's own example, run as a receiver would
    verify = scope["verify"]
    body = b'{"id":"e1","type":"sent"}'
    now = int(time.time())
    assert verify("whsec_abc", signature_header("whsec_abc", body, now), body)
    assert not verify("whsec_abc", signature_header("whsec_abc", body, now), body + b" ")
    assert not verify("whsec_abd", signature_header("whsec_abc", body, now), body)
    assert not verify("whsec_abc", signature_header("whsec_abc", body, now - 3600), body)
    assert not verify("whsec_abc", "garbage", body)
