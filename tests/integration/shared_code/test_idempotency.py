"""Idempotency-Key against real Azurite: one message for simultaneous repeats."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared_code.errors import Unprocessable
from shared_code.idempotency import Reply, request_fingerprint, run_once


def test_simultaneous_requests_with_one_key_run_once(storage) -> None:
    runs = []
    lock = threading.Lock()
    key = str(uuid.uuid4())

    def action() -> Reply:
        with lock:
            runs.append(1)
        return Reply(202, {"id": str(uuid.uuid4())}, {"Location": "/x"})

    with ThreadPoolExecutor(max_workers=10) as pool:
        replies = list(pool.map(lambda _: run_once(storage, "A12345", key, "fp", 24, action), range(10)))
    assert len(runs) == 1
    assert len({r.body["id"] for r in replies}) == 1


def test_same_key_other_request_is_422(storage) -> None:
    key = str(uuid.uuid4())
    run_once(storage, "A12345", key, request_fingerprint({"a": 1}), 24, lambda: Reply(202, {"id": "1"}, {}))
    with pytest.raises(Unprocessable):
        run_once(storage, "A12345", key, request_fingerprint({"a": 2}), 24, lambda: Reply(202, {"id": "2"}, {}))


def test_keys_are_per_organisation(storage) -> None:
    key = str(uuid.uuid4())
    first = run_once(storage, "A12345", key, "fp", 24, lambda: Reply(202, {"id": "a"}, {}))
    other = run_once(storage, "B99999", key, "fp", 24, lambda: Reply(202, {"id": "b"}, {}))
    assert (first.body["id"], other.body["id"]) == ("a", "b")


def test_a_failed_first_request_frees_the_key(storage) -> None:
    key = str(uuid.uuid4())

    def fail() -> Reply:
        raise Unprocessable([])

    with pytest.raises(Unprocessable):
        run_once(storage, "A12345", key, "fp", 24, fail)
    assert run_once(storage, "A12345", key, "fp", 24, lambda: Reply(202, {"id": "ok"}, {})).body == {"id": "ok"}
