"""The OpenAPI document through the local Functions host: no token needed, JSON, short caching."""

from __future__ import annotations

import requests

from shared_code.openapi import load_openapi
from tests.support.stack import RunningStack


def test_the_openapi_document_is_served_without_a_token(stack: RunningStack) -> None:
    answer = requests.get(f"{stack.base_url}/api/v1/openapi.json", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    assert "max-age=" in answer.headers["Cache-Control"]
    assert answer.json() == load_openapi()
