"""What the portal reads from and writes to a browser: its form, its cookies and the CSRF value.

Pure functions on text and bytes (no `azure.functions`, no I/O), so `functions/portal.py` only
passes a request's parts in and an answer's parts out. What the form's dates mean, and whether
a session is valid, is decided in `shared_code/portal.py`.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Collection

from shared_code.errors import BadRequest
from shared_code.settings import Settings

SESSION_COOKIE = "enclose_session"
CSRF_COOKIE = "enclose_csrf"
#: The only cookies the portal reads; every other cookie in the header is ignored.
OUR_COOKIES = frozenset({SESSION_COOKIE, CSRF_COOKIE})

#: The date-of-birth form sends four short fields (about 100 bytes). These limits leave room for
#: long typing mistakes, which get a field error, while a body that cannot be our form is refused.
MAX_FORM_BYTES = 4096
MAX_FORM_FIELDS = 20

# RFC 6265 cookie-octet: what a well-formed cookie value may hold (ours are URL-safe base64 and dots).
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]+")


class BadForm(BadRequest):
    """A POST body that is not a form our page could have sent: too long, too many fields or not UTF-8."""

    title = "Sorry, we could not read your answer"

    def __init__(self) -> None:
        super().__init__("Go back to the link in your text message and enter your date of birth again.")


def parse_form(body: bytes) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body as {field: value}; BadForm (400) when it cannot be ours.

    A field sent twice keeps its first value, as a browser's own form never repeats one.
    """
    if len(body) > MAX_FORM_BYTES:
        raise BadForm()
    from urllib.parse import parse_qsl

    try:
        # Strict UTF-8 on the body and on every percent-escape: the page declares UTF-8, so browsers send it.
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict", max_num_fields=MAX_FORM_FIELDS)
    except ValueError:  # UnicodeDecodeError is one, and so is "Max number of fields exceeded"
        raise BadForm() from None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


def read_cookies(header: str | None, names: Collection[str] = OUR_COOKIES) -> dict[str, str]:
    """Our cookies from a Cookie header, each only if its value is well formed.

    Read by hand rather than with `http.cookies.SimpleCookie`, which drops every cookie when any one
    is malformed: a parent domain's cookie holding raw JSON must not sign a patient out. Commas
    separate cookies too, because a host joins repeated Cookie headers with ", ". When a name comes
    twice the first well-formed one wins: browsers send the cookie with the longest path first.
    """
    found: dict[str, str] = {}
    for part in re.split(r"[;,]", header or ""):
        name, equals, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not equals or name not in names or name in found:
            continue
        if len(value) >= 2 and value[0] == value[-1] == '"':  # RFC 6265 allows a quoted value
            value = value[1:-1]
        if _COOKIE_VALUE.fullmatch(value):
            found[name] = value
    return found


def cookie_header(name: str, value: str, token: str, *, secure: bool, max_age: int) -> str:
    """A Set-Cookie value: HttpOnly, SameSite=Strict, limited to this link's path."""
    parts = [f"{name}={value}", f"Path=/p/{token}", f"Max-Age={max_age}", "HttpOnly", "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def new_csrf() -> str:
    """A fresh CSRF value (double-submit: the form's hidden field must equal the cookie)."""
    return secrets.token_urlsafe(24)


def csrf_valid(cookie: str | None, field: str | None) -> bool:
    """Whether the form's CSRF field matches its cookie."""
    if not cookie or not field:
        return False
    return hmac.compare_digest(cookie.encode("utf-8", "replace"), field.encode("utf-8", "replace"))


def csrf_max_age(settings: Settings) -> int:
    """How long the CSRF cookie lives, in seconds.

    Four sessions long (an hour by default): a patient who leaves the form open while finding
    their details is not told their session timed out, yet the value does not live for days.
    """
    return settings.session_ttl_seconds * 4
