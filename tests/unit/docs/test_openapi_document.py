"""docs/openapi.yaml: a valid OpenAPI 3.1 document that says what the code does, route for route."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from shared_code import errors
from shared_code.openapi import OPENAPI_PATH, load_openapi

ROOT = Path(__file__).resolve().parents[3]
PROBLEM_BASE = "https://enclose.nhs.example/problems/"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return load_openapi()


def _schema(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return doc["components"]["schemas"][name]


def test_the_document_is_a_valid_openapi_3_1_document(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1.")
    validate(doc)  # raises on any departure from the OpenAPI 3.1 schema


def test_the_document_is_json_as_served() -> None:
    # YAML turns unquoted dates into date objects, which JSON cannot carry.
    assert json.loads(json.dumps(load_openapi(OPENAPI_PATH))) == load_openapi(OPENAPI_PATH)


def test_an_invalid_document_is_refused() -> None:
    # The validator really checks: a response without a description is not OpenAPI.
    broken = load_openapi()
    del broken["paths"]["/api/v1/messages"]["post"]["responses"]["202"]["description"]
    with pytest.raises(Exception, match="description"):
        validate(broken)


# -- every registered route is in the document, and nothing else ------------------------------

_LIST_ROUTES = """
import json, function_app
routes = []
for f in function_app.app.get_functions():
    for b in json.loads(f.get_function_json())["bindings"]:
        if b["type"] == "httpTrigger":
            routes.append([b["route"], b.get("methods") or []])
print(json.dumps(routes))
"""


@lru_cache(maxsize=1)
def registered_routes() -> set[tuple[str, str]]:
    """(route, method) of every HTTP function of the app, read the way the host reads them."""
    # A separate process: get_functions() may be called only once per app object.
    proc = subprocess.run(
        [sys.executable, "-c", _LIST_ROUTES],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    routes = json.loads(proc.stdout.strip().splitlines()[-1])
    return {("/" + route, method.lower()) for route, methods in routes for method in methods}


def documented_routes(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method) for path, item in doc["paths"].items() for method in item if method in HTTP_METHODS}


def test_every_api_route_the_app_registers_is_documented_with_its_methods(doc: dict[str, Any]) -> None:
    api = {(route, method) for route, method in registered_routes() if route.startswith("/api/v1/")}
    assert len(api) >= 8
    assert api - documented_routes(doc) == set()


def test_every_documented_route_is_registered(doc: dict[str, Any]) -> None:
    assert documented_routes(doc) - registered_routes() == set()


def test_each_operation_has_an_id_a_summary_and_its_security(doc: dict[str, Any]) -> None:
    ids = []
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            ids.append(operation["operationId"])
            assert operation["summary"], (path, method)
            public = (path, method) == ("/api/v1/openapi.json", "get")
            assert (operation.get("security") == []) is public, (path, method)
            # Every route behind a token documents its 401 with the challenge header.
            if not public:
                unauthorized = operation["responses"]["401"]["$ref"].rsplit("/", 1)[-1]
                assert "WWW-Authenticate" in doc["components"]["responses"][unauthorized]["headers"]
                # ...and its 403: a valid token without the app role (shared_code.auth).
                forbidden = operation["responses"]["403"]["$ref"].rsplit("/", 1)[-1]
                assert forbidden == "Forbidden", (path, method)
            else:
                assert "403" not in operation["responses"], (path, method)
    assert len(ids) == len(set(ids))
    assert doc["security"] == [{"bearerAuth": []}]
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        **doc["components"]["securitySchemes"]["bearerAuth"],
        "type": "http",
        "scheme": "bearer",
    }


# -- problem types, enums and limits are the code's own -----------------------------------------


def _domain_errors() -> list[type[errors.DomainError]]:
    found, todo = [], [errors.DomainError]
    while todo:
        cls = todo.pop()
        if cls.__module__ == errors.__name__:
            found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_problem_type_of_the_code_is_documented_and_no_other(doc: dict[str, Any]) -> None:
    slugs = {cls.slug for cls in _domain_errors()}
    assert {"internal-error", "validation-failed", "unauthorized"} <= slugs
    assert set(_schema(doc, "ProblemType")["enum"]) == {PROBLEM_BASE + slug for slug in slugs}


def _problem_consts(doc: dict[str, Any]) -> Iterator[tuple[str, str, int]]:
    for name, response in doc["components"]["responses"].items():
        for media, content in response.get("content", {}).items():
            schema = content["schema"]
            if "$ref" in schema:
                schema = _schema(doc, schema["$ref"].rsplit("/", 1)[-1])
            parts = schema.get("allOf", [schema])
            props = {k: v for part in parts for k, v in part.get("properties", {}).items()}
            yield name, media, props["type"]["const"], props["status"]["const"]


def test_each_problem_response_names_the_type_and_status_the_code_gives_it(doc: dict[str, Any]) -> None:
    statuses = {PROBLEM_BASE + cls.slug: cls.status for cls in _domain_errors()}
    consts = list(_problem_consts(doc))
    assert len(consts) >= 10
    for name, media, type_uri, status in consts:
        assert media == "application/problem+json", name
        assert statuses[type_uri] == status, name


def test_enums_are_the_codes_own(doc: dict[str, Any]) -> None:
    from shared_code import attachments, lifecycle
    from shared_code.events import EVENT_TYPES
    from shared_code.sms_text import GSM7, UCS2

    assert set(_schema(doc, "EventType")["enum"]) == set(EVENT_TYPES)
    assert set(_schema(doc, "AttachmentStatus")["enum"]) == {
        attachments.SCANNING,
        attachments.CLEAN,
        attachments.REJECTED,
    }
    statuses = {
        lifecycle.AWAITING_SCAN,
        lifecycle.SCHEDULED,
        lifecycle.QUEUED,
        lifecycle.SENT,
        lifecycle.DELIVERED,
        lifecycle.FAILED,
        lifecycle.LOCKED,
        lifecycle.REVOKED,
        lifecycle.EXPIRED,
    }
    assert set(_schema(doc, "MessageStatus")["enum"]) == statuses
    assert set(_schema(doc, "Encoding")["enum"]) == {GSM7, UCS2}


def test_request_limits_are_the_codes_own(doc: dict[str, Any]) -> None:
    from shared_code import filenames, filetypes, idempotency, message_request
    from shared_code.settings import Settings

    new = _schema(doc, "NewMessage")["properties"]
    assert new["body"]["maxLength"] == message_request.MAX_BODY_CHARS
    assert new["patient"]["properties"]["name"]["maxLength"] == message_request.MAX_NAME_CHARS
    assert new["attachmentIds"]["maxItems"] == Settings.max_attachments
    key = doc["components"]["parameters"]["IdempotencyKey"]["schema"]
    assert key["maxLength"] == idempotency.MAX_KEY_LENGTH
    filename = _schema(doc, "Attachment")["properties"]["filename"]
    assert filename["maxLength"] == filenames.MAX_NAME_CHARS
    for extension in {e for group in filetypes.EXTENSIONS.values() for e in group}:
        assert re.search(filename["pattern"], f"letter.{extension}"), extension
    types = set(_schema(doc, "Attachment")["properties"]["contentType"]["enum"])
    assert {t.mime for t in (filetypes.PDF, filetypes.DOCX, filetypes.DOC, filetypes.ODT, filetypes.RTF)} <= types
    assert {t.mime for t in (filetypes.TXT, filetypes.JPEG, filetypes.PNG, filetypes.TIFF)} <= types


def test_body_pattern_refuses_what_the_code_refuses(doc: dict[str, Any]) -> None:
    pattern = _schema(doc, "NewMessage")["properties"]["body"]["pattern"]
    assert re.search(pattern, "Dear Jo,\nyour letter is attached.")
    for refused in ("   ", "\n\t", "Hello\x00"):
        assert not re.search(pattern, refused), repr(refused)


# -- every example is valid against its schema ---------------------------------------------------


def _examples(doc: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(where, JSON pointer of the schema, example value) for every example in the document."""

    def value_of(example: dict[str, Any]) -> Any:
        if "$ref" in example:
            example = doc["components"]["examples"][example["$ref"].rsplit("/", 1)[-1]]
        return example["value"]

    def walk(node: Any, pointer: str) -> Iterator[tuple[str, str, Any]]:
        if isinstance(node, dict):
            if "schema" in node and isinstance(node["schema"], dict):
                if "example" in node:
                    yield pointer, pointer + "/schema", node["example"]
                for name, example in (node.get("examples") or {}).items():
                    yield f"{pointer}/examples/{name}", pointer + "/schema", value_of(example)
            if isinstance(node.get("examples"), list):  # a schema's own examples (JSON Schema)
                for index, value in enumerate(node["examples"]):
                    yield f"{pointer}/examples/{index}", pointer, value
            for key, child in node.items():
                yield from walk(child, f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                yield from walk(child, f"{pointer}/{index}")

    yield from walk(doc, "")


def _validator(doc: dict[str, Any], pointer: str) -> OAS31Validator:
    # The schema at `pointer`, with the document's components beside it so its $refs resolve.
    root = {"components": doc["components"], "paths": doc["paths"], "$ref": "#" + pointer}
    return OAS31Validator(root, format_checker=OAS31Validator.FORMAT_CHECKER)


def test_every_example_is_valid_against_its_schema(doc: dict[str, Any]) -> None:
    found = list(_examples(doc))
    assert len(found) >= 30
    failures = [
        f"{where}: {error.message}"
        for where, pointer, value in found
        for error in _validator(doc, pointer).iter_errors(value)
    ]
    assert failures == []


def test_the_example_check_catches_a_wrong_example(doc: dict[str, Any]) -> None:
    pointer = "/components/schemas/Attachment"
    good = doc["components"]["examples"]["AttachmentClean"]["value"]
    _validator(doc, pointer).validate(good)
    for bad in ({**good, "status": "infected"}, {**good, "extra": 1}, {**good, "reason": "clean, but"}):
        with pytest.raises(ValidationError):
            _validator(doc, pointer).validate(bad)
