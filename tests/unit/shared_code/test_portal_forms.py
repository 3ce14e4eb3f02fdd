"""The portal's form, cookies and CSRF value (shared_code/portal_forms.py): pure functions, no host."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest

from shared_code.errors import BadRequest
from shared_code.portal_forms import (
    CSRF_COOKIE,
    MAX_FORM_BYTES,
    MAX_FORM_FIELDS,
    SESSION_COOKIE,
    BadForm,
    cookie_header,
    csrf_max_age,
    csrf_valid,
    new_csrf,
    parse_form,
    read_cookies,
)
from shared_code.settings import Settings

TOKEN = "AbCdEfGhIjKlMnOpQrStUvWx"
CSRF = "Xy9_-abcdefghijklmnopqrstuvwxyz01"
SESSION = "0123456789abcdef0123456789abcdef~1800000900.AbC-_dEf"


# -- the form ------------------------------------------------------------------------------------------


def test_the_date_of_birth_form() -> None:
    body = urlencode({"csrf": CSRF, "dob-day": "31", "dob-month": "1", "dob-year": "1970"}).encode()
    assert parse_form(body) == {"csrf": CSRF, "dob-day": "31", "dob-month": "1", "dob-year": "1970"}


def test_escapes_and_blank_fields() -> None:
    assert parse_form(b"dob-day=+3%201&dob-month=&dob-year=caf%C3%A9") == {
        "dob-day": " 3 1",
        "dob-month": "",
        "dob-year": "café",
    }
    assert parse_form(b"") == {}


def test_a_repeated_field_keeps_its_first_value() -> None:
    assert parse_form(b"csrf=first&csrf=second") == {"csrf": "first"}


def test_a_form_at_the_limits_is_read() -> None:
    fields = {f"f{i}": "" for i in range(MAX_FORM_FIELDS)}
    assert len(parse_form(urlencode(fields).encode())) == MAX_FORM_FIELDS
    body = b"dob-day=" + b"1" * (MAX_FORM_BYTES - len(b"dob-day="))
    assert len(body) == MAX_FORM_BYTES
    assert parse_form(body)["dob-day"] == "1" * (MAX_FORM_BYTES - 8)


@pytest.mark.parametrize(
    "body",
    [
        b"dob-day=" + b"1" * MAX_FORM_BYTES,  # one byte over
        "&".join(f"f{i}=" for i in range(MAX_FORM_FIELDS + 1)).encode(),  # one field too many
        b"dob-day=\xff\xfe",  # not UTF-8
        b"dob-day=%ff%fe",  # an escape that is not UTF-8
    ],
    ids=["too-long", "too-many-fields", "raw-bytes-not-utf8", "escape-not-utf8"],
)
def test_a_form_that_cannot_be_ours_is_a_400(body: bytes) -> None:
    with pytest.raises(BadForm) as raised:
        parse_form(body)
    assert isinstance(raised.value, BadRequest)
    assert raised.value.status == 400
    assert "date of birth again" in raised.value.detail


# -- reading cookies -----------------------------------------------------------------------------------


def test_our_cookies_are_read_and_no_others() -> None:
    header = f"theme=dark; {CSRF_COOKIE}={CSRF}; {SESSION_COOKIE}={SESSION}; _ga=GA1.2.3"
    assert read_cookies(header) == {CSRF_COOKIE: CSRF, SESSION_COOKIE: SESSION}


@pytest.mark.parametrize("header", [None, "", ";", "  ;  ; ", "garbage", "=", "=x"])
def test_no_cookies(header: str | None) -> None:
    assert read_cookies(header) == {}


@pytest.mark.parametrize(
    "unrelated",
    [
        'prefs={"consent":true,"tags":["a","b"]}',  # a parent domain's raw JSON
        'prefs="unterminated',
        "bad name=x",
        "no-equals-sign",
        "x=\\",
        "x=caf\u00e9",
        "$Version=1",
    ],
)
@pytest.mark.parametrize("where", ["before", "after"])
def test_a_malformed_unrelated_cookie_does_not_lose_ours(unrelated: str, where: str) -> None:
    ours = f"{CSRF_COOKIE}={CSRF}; {SESSION_COOKIE}={SESSION}"
    header = f"{unrelated}; {ours}" if where == "before" else f"{ours}; {unrelated}"
    assert read_cookies(header) == {CSRF_COOKIE: CSRF, SESSION_COOKIE: SESSION}


def test_simplecookie_would_have_lost_them() -> None:
    # Why read_cookies exists: the standard library drops every cookie after a malformed one.
    from http.cookies import SimpleCookie

    jar = SimpleCookie()
    jar.load(f'prefs={{"a":1}}; {CSRF_COOKIE}={CSRF}')
    assert CSRF_COOKIE not in jar
    assert read_cookies(f'prefs={{"a":1}}; {CSRF_COOKIE}={CSRF}') == {CSRF_COOKIE: CSRF}


@pytest.mark.parametrize("separator", [", ", ",", "; "])
def test_repeated_cookie_headers_joined_by_the_host(separator: str) -> None:
    # A host joins repeated Cookie headers with ", " (HTTP/2 browsers may send one per cookie).
    header = separator.join([f"{CSRF_COOKIE}={CSRF}", "other=1", f"{SESSION_COOKIE}={SESSION}"])
    assert read_cookies(header) == {CSRF_COOKIE: CSRF, SESSION_COOKIE: SESSION}


def test_the_first_well_formed_value_of_a_name_wins() -> None:
    # Browsers send the cookie with the most specific path first.
    assert read_cookies(f"{CSRF_COOKIE}=first; {CSRF_COOKIE}=second") == {CSRF_COOKIE: "first"}
    assert read_cookies(f"{CSRF_COOKIE}=bad value; {CSRF_COOKIE}=good") == {CSRF_COOKIE: "good"}


@pytest.mark.parametrize("value", ["", '""', "a b", "a\\b", 'a"b', "caf\u00e9", "a\tb"])
def test_a_malformed_or_empty_value_of_ours_counts_as_absent(value: str) -> None:
    assert read_cookies(f"{CSRF_COOKIE}={value}; {SESSION_COOKIE}={SESSION}") == {SESSION_COOKIE: SESSION}


def test_a_quoted_value_is_unquoted_and_spaces_around_are_ignored() -> None:
    assert read_cookies(f'  {CSRF_COOKIE} = "{CSRF}" ') == {CSRF_COOKIE: CSRF}


def test_names_are_case_sensitive_and_can_be_chosen() -> None:
    assert read_cookies(f"{CSRF_COOKIE.upper()}={CSRF}") == {}
    assert read_cookies("a=1; b=2; c=3", names={"a", "c"}) == {"a": "1", "c": "3"}


def test_values_we_make_are_read_back() -> None:
    csrf = new_csrf()
    set_cookie = cookie_header(CSRF_COOKIE, csrf, TOKEN, secure=True, max_age=60)
    sent_back = set_cookie.split(";", 1)[0]  # a browser sends back only name=value
    assert read_cookies(sent_back) == {CSRF_COOKIE: csrf}


# -- CSRF lifetime -------------------------------------------------------------------------------------


def test_the_csrf_cookie_lives_four_sessions() -> None:
    assert csrf_max_age(Settings()) == 3600
    assert csrf_max_age(Settings(session_ttl_seconds=300)) == 1200


# -- CSRF ----------------------------------------------------------------------------------------------


def test_new_csrf_values_are_url_safe_and_unique() -> None:
    values = {new_csrf() for _ in range(100)}
    assert len(values) == 100
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}", v) for v in values)


def test_csrf_matches_its_cookie() -> None:
    value = new_csrf()
    assert csrf_valid(value, value)


@pytest.mark.parametrize(
    ("cookie", "field"),
    [("abc", "abd"), ("abc", "ab"), ("abc", None), (None, "abc"), (None, None), ("", ""), ("abc", ""), ("", "abc")],
)
def test_csrf_mismatch_or_missing(cookie: str | None, field: str | None) -> None:
    assert not csrf_valid(cookie, field)


@pytest.mark.parametrize(("cookie", "field"), [("abc", "é"), ("é", "abc"), ("abc", "abc\u00a0")])
def test_csrf_with_non_ascii_input_is_refused_not_an_error(cookie: str, field: str) -> None:
    # The form field comes straight from a (possibly hostile) POST body.
    assert not csrf_valid(cookie, field)


# -- cookies -----------------------------------------------------------------------------------------


def test_session_cookie_over_https() -> None:
    header = cookie_header(SESSION_COOKIE, "v.sig", TOKEN, secure=True, max_age=900)
    assert header == f"enclose_session=v.sig; Path=/p/{TOKEN}; Max-Age=900; HttpOnly; SameSite=Strict; Secure"


def test_cookie_over_http_is_not_secure() -> None:
    header = cookie_header(CSRF_COOKIE, "abc", TOKEN, secure=False, max_age=3600)
    assert header == f"enclose_csrf=abc; Path=/p/{TOKEN}; Max-Age=3600; HttpOnly; SameSite=Strict"
    assert "Secure" not in header


def test_cookie_path_is_limited_to_the_link() -> None:
    attributes = dict(
        part.split("=", 1)
        for part in cookie_header(SESSION_COOKIE, "v", TOKEN, secure=True, max_age=1).split("; ")
        if "=" in part
    )
    assert attributes["Path"] == f"/p/{TOKEN}"
    assert "Domain" not in attributes


def test_session_cookie_from_settings_lasts_at_most_15_minutes() -> None:
    max_age = Settings().session_ttl_seconds
    assert max_age <= 900
    assert f"Max-Age={max_age}" in cookie_header(SESSION_COOKIE, "v", TOKEN, secure=True, max_age=max_age)
