"""The one place errors become HTTP answers (functions/http.py): API problems and portal pages, without a host."""

from __future__ import annotations

import json

import azure.functions as func
import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError

import functions.http as http
from shared_code import auth
from shared_code.auth import Principal
from shared_code.errors import NotFound, ServiceUnavailable, TooLarge, TooManyRequests
from shared_code.portal import LinkGone, LinkLocked
from shared_code.portal_forms import BadForm
from shared_code.settings import SecretUnavailable


@pytest.fixture(autouse=True)
def signed_in(monkeypatch: pytest.MonkeyPatch) -> None:
    # The token check itself is tested in tests/unit/shared_code/test_auth.py; api_call looks it up when called.
    monkeypatch.setattr(auth, "authenticate", lambda header, settings: Principal("A12345", "gp1"))


def _request() -> func.HttpRequest:
    return func.HttpRequest("GET", "http://127.0.0.1/api/v1/x", headers={"Authorization": "Bearer t"}, body=b"")


def _call(action) -> tuple[int, str, dict]:
    answer = http.api_call(_request(), action)
    return answer.status_code, answer.mimetype, json.loads(answer.get_body())


def _raise(exc: BaseException):
    def action(principal: Principal) -> func.HttpResponse:
        raise exc

    return action


def test_a_domain_error_keeps_its_status() -> None:
    status, mimetype, problem = _call(_raise(TooLarge("The document is larger than the 3 MB limit.")))
    assert (status, mimetype) == (413, "application/problem+json")
    assert problem["status"] == 413 and problem["detail"] == "The document is larger than the 3 MB limit."


def test_too_many_requests_is_a_429_with_retry_after_in_whole_seconds() -> None:
    answer = http.api_call(_request(), _raise(TooManyRequests("Wait a minute and try again.", 37)))
    assert (answer.status_code, answer.mimetype) == (429, "application/problem+json")
    assert answer.headers["Retry-After"] == "37"
    problem = json.loads(answer.get_body())
    assert problem["type"].endswith("/too-many-requests") and problem["detail"] == "Wait a minute and try again."
    # Never 0: that would invite an immediate retry.
    assert http.api_call(_request(), _raise(TooManyRequests("x", 0))).headers["Retry-After"] == "1"
    assert "Retry-After" not in http.api_call(_request(), _raise(TooLarge("x"))).headers


@pytest.mark.parametrize("exc", [ServiceRequestError("connection refused"), HttpResponseError("503 from storage")])
def test_a_dependency_that_fails_is_a_503_not_a_500(exc: BaseException) -> None:
    status, mimetype, problem = _call(_raise(exc))
    assert (status, mimetype) == (503, "application/problem+json")
    assert "try again" in problem["detail"].lower()
    assert "connection refused" not in json.dumps(problem)


def test_a_secret_that_cannot_be_read_is_a_503_problem_that_does_not_name_it() -> None:
    status, mimetype, problem = _call(_raise(SecretUnavailable("DOB_HASH_KEY")))
    assert (status, mimetype) == (503, "application/problem+json")
    assert problem["type"] == "https://enclose.nhs.example/problems/unavailable"
    assert "try again later" in problem["detail"].lower() and "DOB_HASH_KEY" not in json.dumps(problem)


def test_storage_not_answering_is_a_503_the_operator_sees_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    from shared_code.tables import StorageUnavailable

    status, _, problem = _call(_raise(StorageUnavailable("Table Storage is not answering (ServiceRequestError).")))
    assert status == 503 and problem["type"].endswith("/unavailable")
    assert "StorageUnavailable" in caplog.text and "answered 503" in caplog.text
    caplog.clear()
    _call(_raise(NotFound("There is no message with this id.")))
    assert caplog.text == ""  # a caller's mistake is not the operator's problem


def test_anything_else_is_a_500_without_its_details() -> None:
    status, _, problem = _call(_raise(RuntimeError("patient Jo Bloggs 07700900123")))
    assert status == 500
    assert "Jo Bloggs" not in json.dumps(problem) and "07700900123" not in json.dumps(problem)
    assert set(problem) == {"type", "title", "status", "detail"}


# -- portal pages ----------------------------------------------------------------------------------


def _portal_request(url: str = "http://127.0.0.1/p/AbCdEfGhIjKlMnOpQrStUvWx", **headers: str) -> func.HttpRequest:
    return func.HttpRequest("GET", url, headers=headers, body=b"")


def _portal(exc: BaseException, request: func.HttpRequest | None = None) -> tuple[int, str, str, dict]:
    def action() -> func.HttpResponse:
        raise exc

    answer = http.portal_call(request or _portal_request(), action)
    return answer.status_code, answer.mimetype, answer.get_body().decode(), dict(answer.headers)


def _assert_portal_headers(headers: dict) -> None:
    lowered = {k.lower(): v for k, v in headers.items()}
    assert lowered["cache-control"] == "no-store"
    assert lowered["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in lowered["content-security-policy"]


def test_a_portal_action_that_succeeds_is_its_own_answer() -> None:
    page = http.portal_page(_portal_request(), 200, "<p>ok</p>", {"Set-Cookie": "a=b"})
    assert http.portal_call(_portal_request(), lambda: page) is page
    assert page.mimetype == "text/html" and page.headers["Set-Cookie"] == "a=b"
    _assert_portal_headers(dict(page.headers))


def test_a_dead_link_is_one_404_page() -> None:
    status, mimetype, html, headers = _portal(LinkGone())
    assert (status, mimetype) == (404, "text/html")
    assert "This link does not work" in html
    _assert_portal_headers(headers)


def test_a_locked_link_is_a_403_page_naming_the_practice() -> None:
    status, _, html, headers = _portal(LinkLocked("Riverside Surgery"))
    assert status == 403
    assert "This link has been locked" in html and "Riverside Surgery" in html
    _assert_portal_headers(headers)


@pytest.mark.parametrize(
    ("exc", "status", "heading"),
    [
        (BadForm(), 400, "Sorry, we could not read your answer"),
        (NotFound("There is no such document."), 404, "Page not found"),
        (ServiceUnavailable("Try again in a minute."), 503, "Sorry, the service is unavailable"),
        (SecretUnavailable("SESSION_KEY"), 503, "Sorry, the service is unavailable"),
    ],
)
def test_a_domain_error_is_a_page_with_its_status(exc: BaseException, status: int, heading: str) -> None:
    answer_status, mimetype, html, headers = _portal(exc)
    assert (answer_status, mimetype) == (status, "text/html")
    assert heading in html and exc.detail in html
    _assert_portal_headers(headers)


@pytest.mark.parametrize("exc", [ServiceRequestError("connection refused"), HttpResponseError("503 from storage")])
def test_a_dependency_that_fails_is_a_503_page(exc: BaseException) -> None:
    status, _, html, _ = _portal(exc)
    assert status == 503
    assert "Try again later" in html and "connection refused" not in html


def test_anything_else_is_a_500_page_without_its_details() -> None:
    status, mimetype, html, headers = _portal(RuntimeError("patient Jo Bloggs 07700900123"))
    assert (status, mimetype) == (500, "text/html")
    assert "Jo Bloggs" not in html and "07700900123" not in html
    _assert_portal_headers(headers)


@pytest.mark.parametrize(
    ("url", "headers", "https"),
    [
        ("https://enclose.example/p/x", {}, True),
        ("http://127.0.0.1/p/x", {"X-Forwarded-Proto": "https"}, True),
        ("http://127.0.0.1/p/x", {}, False),
    ],
)
def test_error_pages_over_https_are_strict(url: str, headers: dict, https: bool) -> None:
    _, _, _, answer = _portal(LinkGone(), _portal_request(url, **headers))
    assert ("Strict-Transport-Security" in answer) is https


def test_a_portal_redirect_is_a_303_with_the_portal_headers() -> None:
    answer = http.portal_redirect(_portal_request(), "/p/x/documents", {"Set-Cookie": "a=b"})
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/p/x/documents" and answer.headers["Set-Cookie"] == "a=b"
    _assert_portal_headers(dict(answer.headers))
