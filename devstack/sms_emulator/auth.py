"""ACS request authentication: the HMAC-SHA256 signature check, and the clock and date formats it relies on."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any

REQUIRED_SIGNED_HEADERS = ("x-ms-date", "host", "x-ms-content-sha256")
# Azure's usual tolerance for a request's clock against the service's.
MAX_CLOCK_SKEW = timedelta(minutes=15)

# The emulator has always logged as "devstack.sms_emulator": every module keeps that one name.
log = logging.getLogger("devstack.sms_emulator")


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """A timestamp as ACS writes it: UTC, milliseconds, `Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def parse_http_date(value: str) -> datetime:
    """An IMF-fixdate (`Mon, 01 Apr 2019 06:22:03 GMT`) as an aware datetime; ValueError if not one."""
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError) as exc:
        raise ValueError("not an HTTP date") from exc
    if moment is None:
        raise ValueError("not an HTTP date")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def check_signature(
    *, method: str, target: str, headers: Message, body: bytes, key: bytes, now: datetime
) -> str | None:
    """Check an ACS HMAC-SHA256 request signature; None if good, else why not (no secrets in it).

    The string to sign is `VERB\\n<path?query>\\n<signed header values joined by ';'>`, as the
    SDK's `HMACCredentialsPolicy` builds it; `x-ms-content-sha256` must also be the body's hash,
    or a body could be swapped under a valid signature.
    """
    scheme, _, params = (headers.get("Authorization") or "").partition(" ")
    if scheme != "HMAC-SHA256":
        return "no HMAC-SHA256 Authorization header"
    fields = dict(part.partition("=")[::2] for part in params.split("&"))
    signed = [name.strip().lower() for name in fields.get("SignedHeaders", "").split(";") if name.strip()]
    if not set(REQUIRED_SIGNED_HEADERS) <= set(signed):
        return "x-ms-date, host and x-ms-content-sha256 must be signed"
    values = []
    for name in signed:
        value = headers.get(name)
        if value is None:
            return f"signed header {name} is missing"
        values.append(value)
    try:
        sent = parse_http_date(headers["x-ms-date"])
    except ValueError:
        return "x-ms-date is not an HTTP date"
    if abs(now - sent) > MAX_CLOCK_SKEW:
        return "x-ms-date is too far from the current time"
    if not hmac.compare_digest(headers["x-ms-content-sha256"].encode("latin-1"), _b64_sha256(body).encode()):
        return "x-ms-content-sha256 does not match the body"
    string_to_sign = f"{method}\n{target}\n{';'.join(values)}"
    expected = base64.b64encode(hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).digest())
    if not hmac.compare_digest(fields.get("Signature", "").encode("latin-1"), expected):
        return "signature does not match"
    return None


def bearer_refusal(identity_key: Any, token: str, allowed: frozenset[str] | None) -> int | None:
    """None when ACS would take this bearer token; else the status it refuses it with.

    401 for a token that is not genuine (or when the resource takes no tokens, `identity_key`
    None), 403 for a genuine one whose principal holds no role on the resource (`allowed`: the
    principals that do; None, any).
    """
    import jwt

    from devstack.identity import ACS_RESOURCE, verify_token

    try:
        if identity_key is None:
            raise jwt.InvalidTokenError("tokens are not accepted")
        claims = verify_token(identity_key, token, ACS_RESOURCE)
    except jwt.InvalidTokenError as exc:
        log.info("send refused: 401 (bearer token: %s)", type(exc).__name__)
        return 401
    if allowed is not None and claims["oid"] not in allowed:
        log.info("send refused: 403 (principal %s has no role on the resource)", claims["oid"])
        return 403
    return None
