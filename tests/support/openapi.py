"""Checking HTTP answers against the API's OpenAPI document (`docs/openapi.yaml`) with openapi-core.

Used by the e2e suite on every `/api/v1` answer from the local stack, and reusable by any
other run (a property-based one, say) that drives the API over HTTP with `requests`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import requests

#: Hosts of the local stack: only answers from these are checked.
LOCAL_HOSTS = frozenset({"127.0.0.1"})
API_PREFIX = "/api/v1"


def _json(value: bytes, **parameters: str) -> Any:
    """A JSON body (openapi-core passes the media type's parameters, such as charset, too)."""
    return json.loads(value)


def _text(value: bytes, **parameters: str) -> str:
    """A text body (errors.csv) as the string its schema describes; bytes that are not UTF-8 fail."""
    return value.decode("utf-8")


@lru_cache(maxsize=1)
def openapi_spec() -> Any:  # -> openapi_core.OpenAPI
    """The API's OpenAPI document as an openapi-core object (built once per test process)."""
    from openapi_core import Config, OpenAPI

    from shared_code.openapi import load_openapi

    # openapi-core reads only a few JSON media types by itself; problem+json is JSON too.
    config = Config(extra_media_type_deserializers={"application/problem+json": _json, "text/csv": _text})
    # A fresh parse, not the app's cached dict: nothing here may change what the app serves.
    return OpenAPI.from_dict(load_openapi(), config=config)


def is_checked(url: str) -> bool:
    """Whether an answer from `url` is one of the API's on the local stack."""
    parts = urlsplit(url)
    path = parts.path or "/"
    return parts.hostname in LOCAL_HOSTS and (path == API_PREFIX or path.startswith(API_PREFIX + "/"))


def _describe(error: BaseException) -> list[str]:
    """An openapi-core error: the JSON Schema errors it wraps, each with its place, or its own words."""
    details: list[str] = []
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        for schema_error in getattr(cause, "schema_errors", None) or ():
            place = "/".join(str(p) for p in schema_error.absolute_path) or "(root)"
            details.append(f"  at {place}: {schema_error.message}")
        cause = cause.__cause__ or cause.__context__
    # With schema errors, the error's own text only repeats the whole body.
    return [f"{type(error).__name__}:", *details] if details else [f"{type(error).__name__}: {error}"]


def response_problems(response: requests.Response) -> list[str]:
    """Every way `response` departs from the OpenAPI document; empty when it conforms.

    A 500 is reported even though the document lists it: the API may answer it, but a test run
    that meets one has found a bug.
    """
    from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

    problems: list[str] = []
    if response.status_code == 500:
        problems.append("500: an unexpected error (see the host's log)")
    sent = response.request
    if not isinstance(sent.body, (str, bytes, type(None))):
        # A streamed (chunked) body is gone once sent; the answer is checked against the route alone.
        sent = sent.copy()
        sent.body = None
    request = RequestsOpenAPIRequest(sent)
    for error in openapi_spec().iter_response_errors(request, RequestsOpenAPIResponse(response)):
        problems.extend(_describe(error))
    return problems


def mismatch_report(response: requests.Response, problems: list[str]) -> str:
    """A readable account of one answer that does not match the document."""
    request = response.request
    body = response.content[:600].decode("utf-8", "replace")
    return "\n".join(
        [
            f"{request.method} {urlsplit(request.url or '').path} -> {response.status_code} "
            f"({response.headers.get('Content-Type', 'no Content-Type')}) does not match docs/openapi.yaml:",
            *(f"  {line}" for line in problems),
            f"  body: {body}",
        ]
    )
