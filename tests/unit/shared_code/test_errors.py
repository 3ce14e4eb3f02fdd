"""Domain errors: each carries its HTTP status; problem() is an RFC 9457 document."""

from __future__ import annotations

import pytest

from shared_code import errors
from shared_code.errors import (
    BadRequest,
    Conflict,
    DomainError,
    FieldError,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
    TooLarge,
    Unauthorized,
    Unprocessable,
    UnsupportedType,
    internal_error_problem,
)

PROBLEM_KEYS = {"type", "title", "status", "detail"}


@pytest.mark.parametrize(
    ("error_class", "status"),
    [
        (BadRequest, 400),
        (Unauthorized, 401),
        (Forbidden, 403),
        (NotFound, 404),
        (MethodNotAllowed, 405),
        (Conflict, 409),
        (TooLarge, 413),
        (UnsupportedType, 415),
        (ServiceUnavailable, 503),
    ],
)
def test_each_error_carries_its_status(error_class: type[DomainError], status: int) -> None:
    error = error_class("Something specific.")
    assert isinstance(error, DomainError)
    assert error.status == status
    problem = error.problem()
    assert set(problem) == PROBLEM_KEYS
    assert problem["status"] == status
    assert problem["title"] == error_class.title
    assert problem["detail"] == "Something specific."
    assert problem["type"].startswith("https://")
    assert problem["type"].endswith("/" + error_class.slug)
    assert str(error) == "Something specific."


def test_every_domain_error_has_its_own_type_uri() -> None:
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, DomainError)]
    assert len(classes) >= 11
    slugs = [c.slug for c in classes]
    assert len(set(slugs)) == len(slugs)


def test_detail_defaults_to_the_title() -> None:
    assert NotFound().detail == "Not found"
    assert NotFound().problem()["detail"] == "Not found"


def test_unprocessable_lists_every_field_error() -> None:
    error = Unprocessable(
        [
            FieldError("patient.mobile", "Enter a valid mobile phone number"),
            FieldError("body", "Enter the text of the message"),
        ]
    )
    assert error.status == 422
    problem = error.problem()
    assert set(problem) == PROBLEM_KEYS | {"errors"}
    assert problem["status"] == 422
    assert problem["errors"] == [
        {"field": "patient.mobile", "message": "Enter a valid mobile phone number"},
        {"field": "body", "message": "Enter the text of the message"},
    ]
    assert "patient.mobile" in problem["detail"]
    assert "body" in problem["detail"]


def test_unprocessable_with_its_own_detail() -> None:
    error = Unprocessable([FieldError("Idempotency-Key", "Already used")], "This key was already used.")
    assert error.problem()["detail"] == "This key was already used."
    assert error.problem()["errors"] == [{"field": "Idempotency-Key", "message": "Already used"}]


def test_unprocessable_keeps_its_own_copy_of_the_list() -> None:
    field_errors = [FieldError("body", "Enter the text of the message")]
    error = Unprocessable(field_errors)
    field_errors.append(FieldError("sendAt", "x"))
    assert len(error.problem()["errors"]) == 1


def test_only_unprocessable_adds_errors() -> None:
    assert "errors" not in BadRequest("x").problem()


def test_internal_error_problem_leaks_nothing() -> None:
    problem = internal_error_problem()
    assert set(problem) == PROBLEM_KEYS
    assert problem["status"] == 500
    assert "Traceback" not in problem["detail"]
    assert problem["detail"] == "An unexpected error occurred. Please try again."


def test_field_error_is_a_frozen_record() -> None:
    error = FieldError("body", "x")
    with pytest.raises(AttributeError):
        error.field = "other"  # type: ignore[misc]
