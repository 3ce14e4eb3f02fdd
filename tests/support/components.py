"""Whether a real component is here; under CI a missing one fails the test, elsewhere it is skipped."""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    """True when running under CI (CI=true)."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing(component: str, how_to_get_it: str) -> None:
    """Fail (CI) or skip (a developer's machine) because a component is missing."""
    message = f"{component} is not available: {how_to_get_it}"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
