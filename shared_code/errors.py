"""Domain errors that carry their HTTP meaning.

Each error knows its status and title, so exactly one place (`functions/http.py`)
turns any of them into `application/problem+json` (RFC 9457). Messages are plain
words for a receptionist and never contain personal data or tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldError:
    """One invalid field of a request, named by its JSON path (e.g. `patient.mobile`)."""

    field: str
    message: str


class DomainError(Exception):
    """Base of every error a caller can be told about."""

    status: int = 500
    title: str = "Something went wrong"
    slug: str = "internal-error"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.title
        super().__init__(self.detail)

    def problem(self) -> dict[str, Any]:
        """This error as an RFC 9457 problem document."""
        return {
            "type": f"https://enclose.nhs.example/problems/{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }


class BadRequest(DomainError):
    status, title, slug = 400, "Bad request", "bad-request"


class Unauthorized(DomainError):
    status, title, slug = 401, "Not signed in", "unauthorized"


class Forbidden(DomainError):
    status, title, slug = 403, "Not allowed", "forbidden"


class NotFound(DomainError):
    status, title, slug = 404, "Not found", "not-found"


class MethodNotAllowed(DomainError):
    status, title, slug = 405, "Method not allowed", "method-not-allowed"


class Conflict(DomainError):
    status, title, slug = 409, "Conflict", "conflict"


class PreconditionFailed(DomainError):
    """An `If-Match` that no longer names the resource's current version: nothing was changed."""

    status, title, slug = 412, "Precondition failed", "precondition-failed"


class PreconditionRequired(DomainError):
    """A change that must say which version it changes (`If-Match`) did not (RFC 6585)."""

    status, title, slug = 428, "Precondition required", "precondition-required"


class TooLarge(DomainError):
    status, title, slug = 413, "File too large", "too-large"


class RequestTooLarge(DomainError):
    """A request body (not a file) over its limit."""

    status, title, slug = 413, "Request too large", "request-too-large"


class LengthRequired(DomainError):
    """A body sent without a Content-Length (chunked), which Azure's host would drop."""

    status, title, slug = 411, "Length required", "length-required"


class UnsupportedType(DomainError):
    status, title, slug = 415, "File type not allowed", "unsupported-type"


class Unprocessable(DomainError):
    """A 422 naming each invalid field."""

    status, title, slug = 422, "The request has invalid fields", "validation-failed"

    def __init__(self, errors: list[FieldError], detail: str | None = None) -> None:
        self.errors = list(errors)
        super().__init__(detail or "; ".join(f"{e.field}: {e.message}" for e in self.errors))

    def problem(self) -> dict[str, Any]:
        doc = super().problem()
        doc["errors"] = [{"field": e.field, "message": e.message} for e in self.errors]
        return doc


class TooManyRequests(DomainError):
    """A limit on how much a caller may do in a time was reached; `retry_after` says when to try again."""

    status, title, slug = 429, "Too many requests", "too-many-requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        # At least a second: a Retry-After of 0 would invite an immediate, pointless retry.
        self.retry_after = max(1, int(retry_after))
        super().__init__(detail)


class ServiceUnavailable(DomainError):
    """A dependency (storage, scanner, SMS provider) is down; the caller may retry."""

    status, title, slug = 503, "Service temporarily unavailable", "unavailable"


def dependency_failure(exc: BaseException) -> DomainError | None:
    """A failure of storage, ACS or another Azure service as the 503 it means to a caller, else None.

    The caller may try again: nothing was half-written that a retry would duplicate (writes are
    keyed by fresh ids or guarded by ETags and Idempotency-Key).
    """
    from azure.core.exceptions import AzureError

    if isinstance(exc, AzureError):
        return ServiceUnavailable("A service we depend on is not answering. Please try again in a minute.")
    return None


def internal_error_problem() -> dict[str, Any]:
    """The problem document for an unexpected failure: no detail leaks out."""
    return DomainError("An unexpected error occurred. Please try again.").problem()
