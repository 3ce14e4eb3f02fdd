"""JSON bodies: parsed only within their bounds, every refusal a 400 or 413, never an exception of Python's."""

from __future__ import annotations

import json

import pytest

from shared_code.errors import BadRequest, RequestTooLarge
from shared_code.json_body import MAX_JSON_BYTES, MAX_JSON_DEPTH, json_depth, parse_json_object

GOOD = {"patient": {"nhsNumber": "9434765919", "mobile": "07700900123"}, "attachmentIds": ["a", "b"], "body": "Hi"}


def _nested(levels: int) -> bytes:
    """An object whose value nests arrays so that the whole body is `levels` deep."""
    return b'{"a": ' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"


def test_an_object_is_parsed() -> None:
    assert parse_json_object(json.dumps(GOOD).encode()) == GOOD


@pytest.mark.parametrize(
    "body", [b"", b"{", b"[]", b'"text"', b"null", b"42", b"\xff\xfe{}", b"{'a': 1}", b"\xef\xbb\xbf{}"]
)
def test_what_is_not_a_json_object_is_a_400(body: bytes) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_json_object(body)
    assert caught.value.status == 400


def test_depth_at_the_limit_is_accepted_and_one_more_is_a_400() -> None:
    assert json_depth(_nested(MAX_JSON_DEPTH).decode()) == MAX_JSON_DEPTH
    assert parse_json_object(_nested(MAX_JSON_DEPTH)) == {"a": json.loads(_nested(MAX_JSON_DEPTH))["a"]}
    with pytest.raises(BadRequest, match="nests more than"):
        parse_json_object(_nested(MAX_JSON_DEPTH + 1))


def test_twenty_thousand_levels_are_a_400_not_a_recursion_error() -> None:
    body = b"[" * 20_000 + b"]" * 20_000
    with pytest.raises(BadRequest):
        parse_json_object(body)
    with pytest.raises(BadRequest):
        parse_json_object(b'{"patient": ' + body + b"}")


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"body": '[[[[[[[[[[[[[[[[[[[[ {{{{{{{{{{{{ \\" [[[[[[['})
    assert json_depth(text) == 1
    assert parse_json_object(text.encode())["body"].startswith("[[[")


def test_size_at_the_limit_is_accepted_and_one_byte_more_is_a_413() -> None:
    prefix, suffix = b'{"body": "', b'"}'
    exact = prefix + b"x" * (MAX_JSON_BYTES - len(prefix) - len(suffix)) + suffix
    assert len(exact) == MAX_JSON_BYTES
    assert len(parse_json_object(exact)["body"]) == MAX_JSON_BYTES - len(prefix) - len(suffix)
    with pytest.raises(RequestTooLarge) as caught:
        parse_json_object(exact[:-2] + b'x"}')
    assert caught.value.status == 413


@pytest.mark.parametrize(
    "body", [b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}', b'{"a": ' + b"9" * 5000 + b"}"]
)
def test_numbers_python_would_choke_on_or_json_does_not_allow_are_a_400(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_json_object(body)
