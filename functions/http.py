"""The one place where domain errors become HTTP answers, and the bearer-token gate.

API errors become `application/problem+json` (`api_call`); portal errors become pages
(`portal_call`), with the portal's security headers on every one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import azure.functions as func

from shared_code.errors import DomainError, TooManyRequests, dependency_failure, internal_error_problem
from shared_code.pages import render, security_headers
from shared_code.request_framing import refuse_chunked_body
from shared_code.settings import get_settings

if TYPE_CHECKING:
    from shared_code.auth import Principal

# The bearer-token check (`shared_code.auth`) and the portal's rules (`shared_code.portal`) are imported
# where a request first needs them: the app indexes (cold start) without them.

log = logging.getLogger("enclose.http")
# Page headings patients see for API-style error titles (NHS service manual wording).
_PATIENT_TITLES = {404: "Page not found", 503: "Sorry, the service is unavailable"}


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> func.HttpResponse:
    """A JSON answer."""
    return func.HttpResponse(
        json.dumps(body),
        status_code=status,
        headers=headers or {},
        mimetype="application/json",
        charset="utf-8",
    )


def problem_response(problem: dict[str, Any], extra_headers: dict[str, str] | None = None) -> func.HttpResponse:
    """An RFC 9457 problem answer, with any headers the error itself calls for (`error_headers`)."""
    headers = {"WWW-Authenticate": 'Bearer realm="enclose"'} if problem["status"] == 401 else {}
    headers.update(extra_headers or {})
    return func.HttpResponse(
        json.dumps(problem),
        status_code=problem["status"],
        headers=headers,
        mimetype="application/problem+json",
        charset="utf-8",
    )


def error_headers(error: DomainError) -> dict[str, str]:
    """Headers a domain error's answer carries: `Retry-After` (whole seconds) on a 429."""
    if isinstance(error, TooManyRequests):
        return {"Retry-After": str(error.retry_after)}
    return {}


def api_call(req: func.HttpRequest, action: Callable[[Principal], func.HttpResponse]) -> func.HttpResponse:
    """Authenticate the caller, run the action, and turn any domain error into problem+json."""
    from shared_code.auth import authenticate

    try:
        refuse_chunked_body(req.headers)
        principal = authenticate(req.headers.get("Authorization"), get_settings())
        return action(principal)
    except DomainError as error:
        _log_unavailable(error, "API", req.method)
        return problem_response(error.problem(), error_headers(error))
    except Exception as exc:  # the last line of defence: never a stack trace or PII to the caller
        # The URL is not logged: a portal or API path can carry an id we keep out of logs.
        log.exception("unhandled error in an API %s request", req.method)
        unavailable = dependency_failure(exc)
        return problem_response(unavailable.problem() if unavailable else internal_error_problem())


def _log_unavailable(error: DomainError, where: str, method: str) -> None:
    """A 5xx domain error (storage not answering, a missing secret) is the operator's to see: logged by
    its type, which names what failed; its detail is for the caller and the URL may carry an id."""
    if error.status >= 500:
        log.error("%s %s request answered %d: %s", where, method, error.status, type(error).__name__)


def is_https(req: func.HttpRequest) -> bool:
    """Whether the browser reached us over https (directly or through the platform's front end)."""
    return req.url.startswith("https:") or req.headers.get("X-Forwarded-Proto", "") == "https"


def portal_page(
    req: func.HttpRequest, status: int, html: str, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    """A portal HTML page with the portal's security headers."""
    merged = security_headers(is_https(req))
    merged.update(headers or {})
    return func.HttpResponse(html, status_code=status, headers=merged, mimetype="text/html", charset="utf-8")


def portal_redirect(req: func.HttpRequest, location: str, headers: dict[str, str] | None = None) -> func.HttpResponse:
    """A 303 to another portal address (or a download URL) with the portal's security headers."""
    merged = security_headers(is_https(req))
    merged["Location"] = location
    merged.update(headers or {})
    return func.HttpResponse(status_code=303, headers=merged)


def _error_page(req: func.HttpRequest, status: int, title: str, detail: str) -> func.HttpResponse:
    html = render("error.html", title=title, detail=detail, practice_name=None, error_summary=None)
    return portal_page(req, status, html)


def portal_call(req: func.HttpRequest, action: Callable[[], func.HttpResponse]) -> func.HttpResponse:
    """Run a portal action and turn any domain error into its page (one page for every dead link)."""
    from shared_code.portal import LinkGone, LinkLocked

    try:
        refuse_chunked_body(req.headers)
        return action()
    except LinkLocked as locked:
        html = render(
            "locked.html", title="This link has been locked", practice_name=locked.practice_name, error_summary=None
        )
        return portal_page(req, 403, html)
    except LinkGone:
        # Unknown, expired and revoked links get the very same page, so none can be told apart.
        html = render("not_found.html", title="This link does not work", practice_name=None, error_summary=None)
        return portal_page(req, 404, html)
    except DomainError as error:
        _log_unavailable(error, "portal", req.method)
        return _error_page(req, error.status, _PATIENT_TITLES.get(error.status, error.title), error.detail)
    except Exception as exc:  # the last line of defence: never a stack trace or PII to the patient
        log.exception("unhandled error in the portal")
        status = 503 if dependency_failure(exc) else 500
        return _error_page(req, status, "Sorry, there is a problem with the service", "Try again later.")
