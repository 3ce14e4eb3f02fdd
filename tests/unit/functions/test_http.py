"""The one place errors become HTTP answers (functions/http.py), driven without a host."""

from __future__ import annotations

import json

import azure.functions as func
import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError

import functions.http as http
from shared_code.auth import Principal
from shared_code.errors import TooLarge


@pytest.fixture(autouse=True)
def signed_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "authenticate", lambda header, settings: Principal("A12345", "gp1"))


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


@pytest.mark.parametrize("exc", [ServiceRequestError("connection refused"), HttpResponseError("503 from storage")])
def test_a_dependency_that_fails_is_a_503_not_a_500(exc: BaseException) -> None:
    status, mimetype, problem = _call(_raise(exc))
    assert (status, mimetype) == (503, "application/problem+json")
    assert "try again" in problem["detail"].lower()
    assert "connection refused" not in json.dumps(problem)


def test_anything_else_is_a_500_without_its_details() -> None:
    status, _, problem = _call(_raise(RuntimeError("patient Jo Bloggs 07700900123")))
    assert status == 500
    assert "Jo Bloggs" not in json.dumps(problem) and "07700900123" not in json.dumps(problem)
    assert set(problem) == {"type", "title", "status", "detail"}
