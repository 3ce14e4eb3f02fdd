"""tests/support/openapi.py, the check the e2e suite runs on every answer: it passes what conforms
and names what does not (so the e2e check can fail)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from tests.support.openapi import is_checked, mismatch_report, response_problems

BASE = "http://127.0.0.1:50123"
JSON = "application/json; charset=utf-8"
PROBLEM = "application/problem+json; charset=utf-8"
ATTACHMENT_ID = "3f2b8c1e-6d4a-4f0e-9b7a-2c5d8e1f4a60"
ATTACHMENT = {
    "id": ATTACHMENT_ID,
    "status": "scanning",
    "filename": "Fit note.pdf",
    "contentType": "application/pdf",
    "size": 48213,
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "originalSize": 48213,
    "originalSha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "reduced": False,
    "metadataRemoved": False,
    "createdAt": "2026-11-30T09:14:03.512Z",
}
NOT_FOUND = {
    "type": "https://enclose.nhs.example/problems/not-found",
    "title": "Not found",
    "status": 404,
    "detail": "There is no attachment with this id.",
}


def answer(
    method: str, path: str, status: int, body: Any = None, content_type: str | None = JSON, **headers: str
) -> requests.Response:
    """A `requests` answer as the library builds one, without a network."""
    response = requests.Response()
    response.status_code = status
    response._content = b"" if body is None else json.dumps(body).encode()
    if content_type:
        response.headers["Content-Type"] = content_type
    response.headers.update({name.replace("_", "-"): value for name, value in headers.items()})
    response.request = requests.Request(method, BASE + path).prepare()
    response.url = BASE + path
    return response


def upload_answer(**changes: Any) -> requests.Response:
    location = {"Location": f"/api/v1/attachments/{ATTACHMENT_ID}"}
    return answer("POST", "/api/v1/attachments", 202, {**ATTACHMENT, **changes}, **location)


def test_conforming_answers_pass() -> None:
    assert response_problems(upload_answer()) == []
    assert response_problems(answer("GET", f"/api/v1/attachments/{ATTACHMENT_ID}", 404, NOT_FOUND, PROBLEM)) == []
    assert response_problems(answer("DELETE", f"/api/v1/attachments/{ATTACHMENT_ID}", 204, None, None)) == []
    rejected = {**ATTACHMENT, "status": "rejected", "reason": "This file contains macros."}
    assert response_problems(answer("GET", f"/api/v1/attachments/{ATTACHMENT_ID}", 200, rejected)) == []


def test_an_undocumented_status_fails() -> None:
    problems = response_problems(answer("GET", f"/api/v1/attachments/{ATTACHMENT_ID}", 418, {}))
    assert any("418" in p for p in problems)


def test_a_500_fails_although_the_document_lists_it() -> None:
    internal = {
        "type": "https://enclose.nhs.example/problems/internal-error",
        "title": "Something went wrong",
        "status": 500,
        "detail": "An unexpected error occurred. Please try again.",
    }
    problems = response_problems(answer("GET", f"/api/v1/attachments/{ATTACHMENT_ID}", 500, internal, PROBLEM))
    assert problems and "500" in problems[0]


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"extra": "field"}, "'extra' was unexpected"),
        ({"status": "infected"}, "at status"),
        ({"createdAt": "2026-11-30 09:14"}, "at createdAt"),
        ({"reason": "A reason on a file that was not rejected"}, "should not be valid"),
        ({"size": "48213"}, "at size"),
    ],
)
def test_a_body_that_departs_from_its_schema_fails(changes: dict[str, Any], where: str) -> None:
    problems = response_problems(upload_answer(**changes))
    assert any(where in p for p in problems), problems


def test_a_missing_field_fails() -> None:
    body = {k: v for k, v in ATTACHMENT.items() if k != "sha256"}
    response = answer("GET", f"/api/v1/attachments/{ATTACHMENT_ID}", 200, body)
    assert any("'sha256' is a required property" in p for p in response_problems(response))


def test_a_wrong_content_type_fails() -> None:
    response = answer("GET", f"/api/v1/attachments/{ATTACHMENT_ID}", 404, NOT_FOUND, JSON)
    assert any("application/json" in p for p in response_problems(response))


def test_a_problem_of_the_wrong_type_fails() -> None:
    wrong = {**NOT_FOUND, "type": "https://enclose.nhs.example/problems/unauthorized"}
    response = answer("GET", f"/api/v1/attachments/{ATTACHMENT_ID}", 404, wrong, PROBLEM)
    assert response_problems(response)


def test_a_missing_header_fails() -> None:
    no_location = answer("POST", "/api/v1/attachments", 202, ATTACHMENT)
    assert any("Location" in p for p in response_problems(no_location))
    unauthorized = {
        "type": "https://enclose.nhs.example/problems/unauthorized",
        "title": "Not signed in",
        "status": 401,
        "detail": "Sign in: this request needs a bearer token.",
    }
    no_challenge = answer("GET", f"/api/v1/attachments/{ATTACHMENT_ID}", 401, unauthorized, PROBLEM)
    assert any("WWW-Authenticate" in p for p in response_problems(no_challenge))
    challenged = answer(
        "GET",
        f"/api/v1/attachments/{ATTACHMENT_ID}",
        401,
        unauthorized,
        PROBLEM,
        WWW_Authenticate='Bearer realm="enclose"',
    )
    assert response_problems(challenged) == []


def test_an_undocumented_route_fails() -> None:
    assert response_problems(answer("GET", "/api/v1/nothing-here", 404, None, None))
    assert response_problems(answer("PUT", f"/api/v1/attachments/{ATTACHMENT_ID}", 404, None, None))


def test_only_api_answers_of_the_local_stack_are_checked() -> None:
    assert is_checked(f"{BASE}/api/v1/messages")
    assert is_checked(f"{BASE}/api/v1/attachments/{ATTACHMENT_ID}?x=1")
    assert not is_checked(f"{BASE}/p/abc")
    assert not is_checked(f"{BASE}/api/v10/messages")
    assert not is_checked("http://127.0.0.1:10000/devstoreaccount1/documents/x")
    assert not is_checked("https://example.org/api/v1/messages")


def test_the_report_names_the_request_and_each_problem() -> None:
    response = upload_answer(extra="field")
    report = mismatch_report(response, response_problems(response))
    assert report.startswith("POST /api/v1/attachments -> 202")
    assert "'extra' was unexpected" in report
