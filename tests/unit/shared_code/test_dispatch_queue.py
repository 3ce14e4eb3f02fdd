"""The dispatch queue entry: what is written is read back, and anything else is not an entry."""

from __future__ import annotations

import json

import pytest

from shared_code.dispatch_queue import DispatchRequest
from shared_code.storage import BATCH_DISPATCH, DISPATCH


def test_an_entry_round_trips() -> None:
    request = DispatchRequest("A12345", "5f0c8f0e-8f0a-4d5e-9d1a-2b9f1c3d4e5f", attempts=3)
    assert DispatchRequest.from_bytes(request.to_bytes()) == request


def test_a_batch_entry_names_its_queue_and_a_single_one_does_not() -> None:
    batch = DispatchRequest("A12345", "x", attempts=1, queue=BATCH_DISPATCH, batch_id="b-1")
    assert json.loads(batch.to_bytes())["queue"] == BATCH_DISPATCH
    assert json.loads(batch.to_bytes())["batch"] == "b-1"
    assert DispatchRequest.from_bytes(batch.to_bytes()) == batch
    assert "queue" not in json.loads(DispatchRequest("A12345", "x").to_bytes())
    assert DispatchRequest.from_bytes(DispatchRequest("A12345", "x").to_bytes()).queue == DISPATCH


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
        b'{"org": "A", "id": "x", "attempts": 0, "queue": "elsewhere"}',
    ],
)
def test_what_is_not_a_dispatch_entry(body: bytes) -> None:
    assert DispatchRequest.from_bytes(body) is None


def test_negative_attempts_count_as_none() -> None:
    assert DispatchRequest.from_bytes(b'{"org": "A", "id": "x", "attempts": -4}').attempts == 0
