"""The portal's form and cookies through real HTTP.

A bad form is a 400 page, and other sites' cookies never sign a patient out.
"""

from __future__ import annotations

import http.client
import re
from urllib.parse import urlparse

import requests

from shared_code.portal_forms import CSRF_COOKIE, MAX_FORM_BYTES, SESSION_COOKIE
from tests.support.stack import RunningStack, sample_pdf

RIGHT = {"dob-day": "31", "dob-month": "1", "dob-year": "1970"}
# What a parent domain (say .nhs.example) might set: raw JSON, which SimpleCookie cannot read.
FOREIGN = 'prefs={"consent":true,"tags":["a","b"]}'


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def _open(stack: RunningStack) -> tuple[str, str, str, str]:
    """A live link opened once: (message id, link, token, csrf value, also set as the cookie)."""
    message_id, link, _ = stack.send_clean(sample_pdf("Letter"))
    form = requests.get(link, timeout=10)
    assert form.status_code == 200
    csrf = _csrf(form.text)
    assert form.cookies[CSRF_COOKIE] == csrf
    return message_id, link, urlparse(link).path.rsplit("/", 1)[-1], csrf


def _post(link: str, body: bytes, cookie: str) -> requests.Response:
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
    return requests.post(link, data=body, headers=headers, allow_redirects=False, timeout=10)


def test_a_form_that_cannot_be_ours_is_a_400_page_and_not_an_attempt(stack: RunningStack) -> None:
    message_id, link, _, csrf = _open(stack)
    cookie = f"{CSRF_COOKIE}={csrf}"
    too_long = f"csrf={csrf}&dob-day=1&dob-month=2&dob-year=1971&pad=".encode()
    too_long += b"x" * (MAX_FORM_BYTES + 1 - len(too_long))
    too_many = "&".join([f"csrf={csrf}", *(f"f{i}=" for i in range(50))]).encode()
    not_utf8 = f"csrf={csrf}&dob-day=%ff&dob-month=2&dob-year=1971".encode()
    for body in (too_long, too_many, not_utf8):
        answer = _post(link, body, cookie)
        assert answer.status_code == 400, answer.text[:200]
        assert answer.headers["Content-Type"].startswith("text/html")
        assert "could not read your answer" in answer.text
        assert answer.headers["Cache-Control"] == "no-store"
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    assert "dob_failed" not in [e["type"] for e in stack.message(message_id)["events"]]
    # The same browser goes on as before.
    right = _post(link, f"csrf={csrf}&dob-day=31&dob-month=1&dob-year=1970".encode(), cookie)
    assert right.status_code == 303


def test_a_malformed_cookie_of_another_site_does_not_sign_the_patient_out(stack: RunningStack) -> None:
    _, link, token, csrf = _open(stack)
    body = f"csrf={csrf}&dob-day=31&dob-month=1&dob-year=1970".encode()
    right = _post(link, body, f"{FOREIGN}; {CSRF_COOKIE}={csrf}")
    assert right.status_code == 303, right.text[:300]
    session = right.cookies[SESSION_COOKIE]
    documents = requests.get(
        f"{stack.base_url}/p/{token}/documents",
        headers={"Cookie": f"{FOREIGN}; {SESSION_COOKIE}={session}; theme=dark"},
        allow_redirects=False,
        timeout=10,
    )
    assert documents.status_code == 200
    assert "fit-note.pdf" in documents.text


def test_repeated_cookie_headers_are_all_read(stack: RunningStack) -> None:
    _, link, token, csrf = _open(stack)
    right = _post(link, f"csrf={csrf}&dob-day=31&dob-month=1&dob-year=1970".encode(), f"{CSRF_COOKIE}={csrf}")
    session = right.cookies[SESSION_COOKIE]
    # requests folds headers into one; http.client sends each Cookie header as given.
    address = urlparse(stack.base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    try:
        connection.putrequest("GET", f"/p/{token}/documents")
        connection.putheader("Cookie", FOREIGN)
        connection.putheader("Cookie", f"{SESSION_COOKIE}={session}")
        connection.putheader("Cookie", "theme=dark")
        connection.endheaders()
        answer = connection.getresponse()
        answer.read()
    finally:
        connection.close()
    assert answer.status == 200


def test_without_our_cookie_a_foreign_one_changes_nothing(stack: RunningStack) -> None:
    _, link, token, _ = _open(stack)
    documents = requests.get(
        f"{stack.base_url}/p/{token}/documents", headers={"Cookie": FOREIGN}, allow_redirects=False, timeout=10
    )
    assert documents.status_code == 303 and documents.headers["Location"] == f"/p/{token}"
    # A form opened with only a foreign cookie still sets our CSRF cookie.
    form = requests.get(link, headers={"Cookie": FOREIGN}, timeout=10)
    assert form.status_code == 200 and form.cookies[CSRF_COOKIE] == _csrf(form.text)
