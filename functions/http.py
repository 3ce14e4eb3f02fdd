"""The one place where domain errors become HTTP answers, and the bearer-token gate.

API errors become `application/problem+json`; portal errors become pages.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import azure.functions as func

from shared_code.auth import Principal, authenticate
from shared_code.errors import DomainError, dependency_failure, internal_error_problem
from shared_code.settings import get_settings

log = logging.getLogger("enclose.http")


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> func.HttpResponse:
    """A JSON answer."""
    return func.HttpResponse(
        json.dumps(body),
        status_code=status,
        headers=headers or {},
        mimetype="application/json",
        charset="utf-8",
    )


def problem_response(problem: dict[str, Any]) -> func.HttpResponse:
    """An RFC 9457 problem answer."""
    headers = {"WWW-Authenticate": 'Bearer realm="enclose"'} if problem["status"] == 401 else {}
    return func.HttpResponse(
        json.dumps(problem),
        status_code=problem["status"],
        headers=headers,
        mimetype="application/problem+json",
        charset="utf-8",
    )


def api_call(req: func.HttpRequest, action: Callable[[Principal], func.HttpResponse]) -> func.HttpResponse:
    """Authenticate the caller, run the action, and turn any domain error into problem+json."""
    try:
        principal = authenticate(req.headers.get("Authorization"), get_settings())
        return action(principal)
    except DomainError as error:
        return problem_response(error.problem())
    except Exception as exc:  # the last line of defence: never a stack trace or PII to the caller
        # The URL is not logged: a portal or API path can carry an id we keep out of logs.
        log.exception("unhandled error in an API %s request", req.method)
        unavailable = dependency_failure(exc)
        return problem_response(unavailable.problem() if unavailable else internal_error_problem())
