"""GET /api/v1/openapi.json (functions/openapi.py): the document as JSON, no token, cacheable."""

from __future__ import annotations

import json

import azure.functions as func
import pytest

from functions import openapi
from shared_code.openapi import load_openapi, openapi_document


@pytest.fixture(scope="module")
def function() -> func.Function:
    # A fresh app with only this blueprint: get_functions() may be called once per app object.
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    app.register_functions(openapi.bp)
    (only,) = app.get_functions()
    return only


def test_the_route_is_a_get_without_a_function_key(function: func.Function) -> None:
    (trigger,) = [b for b in json.loads(function.get_function_json())["bindings"] if b["type"] == "httpTrigger"]
    assert trigger["route"] == "api/v1/openapi.json"
    assert trigger["methods"] == ["GET"]
    assert trigger["authLevel"] == "ANONYMOUS"


def test_it_serves_the_document_as_json_without_a_token(function: func.Function) -> None:
    request = func.HttpRequest("GET", "http://127.0.0.1:7071/api/v1/openapi.json", headers={}, body=b"")
    response = function.get_user_function()(request)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert json.loads(response.get_body()) == load_openapi()
    cache = response.headers["Cache-Control"]
    assert "no-store" not in cache and 0 < int(cache.split("max-age=")[1].split(",")[0]) <= 3600


def test_the_document_is_read_once_per_process() -> None:
    assert openapi_document() is openapi_document()
