"""The dispatch queue entry: what is written is read back, and anything else is not an entry."""

from __future__ import annotations

import json

import pytest

from shared_code.dispatch_queue import DispatchRequest


def test_an_entry_round_trips() -> None:
    request = DispatchRequest("A12345", "5f0c8f0e-8f0a-4d5e-9d1a-2b9f1c3d4e5f", attempts=3)
    assert DispatchRequest.from_bytes(request.to_bytes()) == request


def test_an_entry_without_its_attempts_is_not_one_of_ours() -> None:
    body = json.dumps({"org": "A12345", "id": "x"}).encode()
    assert DispatchRequest.from_bytes(body) is None
    assert DispatchRequest.from_bytes(json.dumps({"org": "A12345", "id": "x", "attempts": 0}).encode()) == (
        DispatchRequest("A12345", "x", 0)
    )


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"org": "A12345"}',
        b'{"id": "x"}',
        b'{"org": "A", "id": "x", "attempts": "many"}',
        b"\xff\xfe",
    ],
)
def test_what_is_not_a_dispatch_entry(body: bytes) -> None:
    assert DispatchRequest.from_bytes(body) is None


def test_negative_attempts_count_as_none() -> None:
    assert DispatchRequest.from_bytes(b'{"org": "A", "id": "x", "attempts": -4}').attempts == 0
