"""Request bodies as JSON objects, parsed only within hard bounds (bytes, nesting depth, numbers).

`json.loads` recurses once per nesting level and turns every digit string into an int, so an
unbounded body can raise RecursionError or spend seconds on one number. Every JSON body a caller
sends goes through `parse_json_object`, which checks size and depth before parsing and refuses
NaN/Infinity and over-long numbers, each as a plain 400 or 413.
"""

from __future__ import annotations

import json
from typing import Any

from shared_code.errors import BadRequest, RequestTooLarge

#: Largest JSON body accepted. A message request is at most a few kilobytes (its text is at most
#: 1,600 characters, and a character is at most 12 bytes escaped as two \uXXXX units).
MAX_JSON_BYTES = 64 * 1024
#: Deepest nesting accepted; every request in the API nests at most three levels.
MAX_JSON_DEPTH = 10


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in `text`, ignoring brackets inside strings.

    Linear in the length of `text`; `text` need not be valid JSON.
    """
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json_object(
    body: bytes, *, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH
) -> dict[str, Any]:
    """The body as a JSON object: 413 over `max_bytes`, 400 when it is not a JSON object within bounds."""
    if len(body) > max_bytes:
        raise RequestTooLarge(f"The request body is larger than {max_bytes:,} bytes.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("The request body is not valid JSON: it must be UTF-8 text.") from None
    if json_depth(text) > max_depth:
        raise BadRequest(f"The request body nests more than {max_depth} levels deep.")
    try:
        # ValueError covers malformed JSON and numbers past Python's digit limit for int().
        value = json.loads(text, parse_constant=_refuse_constant)
    except ValueError:
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(value, dict):
        raise BadRequest("The request body must be a JSON object.")
    return value
