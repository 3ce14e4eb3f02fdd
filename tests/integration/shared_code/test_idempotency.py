"""Idempotency-Key against real Azurite: one message for simultaneous repeats."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared_code import clock
from shared_code.crypto import sha256_hex
from shared_code.errors import Conflict, Unprocessable
from shared_code.idempotency import TAKEOVER_AFTER, Reply, request_fingerprint, run_once
from shared_code.storage import IDEMPOTENCY


def test_simultaneous_requests_with_one_key_run_once(storage) -> None:
    runs = []
    lock = threading.Lock()
    key = str(uuid.uuid4())

    def action(operation_id) -> Reply:
        with lock:
            runs.append(operation_id)
        return Reply(202, {"id": str(uuid.uuid4())}, {"Location": "/x"})

    with ThreadPoolExecutor(max_workers=10) as pool:
        replies = list(pool.map(lambda _: run_once(storage, "A12345", key, "fp", 24, action), range(10)))
    assert len(runs) == 1
    assert len({r.body["id"] for r in replies}) == 1


def test_same_key_other_request_is_422(storage) -> None:
    key = str(uuid.uuid4())
    run_once(storage, "A12345", key, request_fingerprint({"a": 1}), 24, lambda _op: Reply(202, {"id": "1"}, {}))
    with pytest.raises(Unprocessable):
        run_once(storage, "A12345", key, request_fingerprint({"a": 2}), 24, lambda _op: Reply(202, {"id": "2"}, {}))


def test_keys_are_per_organisation(storage) -> None:
    key = str(uuid.uuid4())
    first = run_once(storage, "A12345", key, "fp", 24, lambda _op: Reply(202, {"id": "a"}, {}))
    other = run_once(storage, "B99999", key, "fp", 24, lambda _op: Reply(202, {"id": "b"}, {}))
    assert (first.body["id"], other.body["id"]) == ("a", "b")


def test_a_failed_first_request_frees_the_key(storage) -> None:
    key = str(uuid.uuid4())

    def fail(_operation_id) -> Reply:
        raise Unprocessable([])

    with pytest.raises(Unprocessable):
        run_once(storage, "A12345", key, "fp", 24, fail)
    assert run_once(storage, "A12345", key, "fp", 24, lambda _op: Reply(202, {"id": "ok"}, {})).body == {"id": "ok"}


def _abandoned_claim(storage, key: str, fingerprint: str, age) -> str:
    """The pending claim a request leaves when its process dies before answering; its operation id."""
    operation_id = str(uuid.uuid4())
    storage.table(IDEMPOTENCY).insert(
        {
            "PartitionKey": "A12345",
            "RowKey": sha256_hex(key.encode()),
            "state": "pending",
            "fingerprint": fingerprint,
            "createdAt": clock.iso(clock.now() - age),
            "operationId": operation_id,
        }
    )
    return operation_id


def test_a_claim_abandoned_longer_than_the_takeover_time_is_taken_over_once(storage) -> None:
    from datetime import timedelta

    key = str(uuid.uuid4())
    operation_id = _abandoned_claim(storage, key, "fp", TAKEOVER_AFTER + timedelta(seconds=1))
    runs = []
    lock = threading.Lock()

    def action(operation) -> Reply:
        with lock:
            runs.append(operation)
        return Reply(202, {"id": operation}, {})

    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda _: run_once(storage, "A12345", key, "fp", 24, action), range(8)))
    assert runs == [operation_id]  # once, under the dead run's operation id
    assert {r.body["id"] for r in replies} == {operation_id}
    assert storage.table(IDEMPOTENCY).get("A12345", sha256_hex(key.encode()))["state"] == "done"


def test_a_claim_still_in_its_first_minutes_is_waited_for_then_a_409(storage, monkeypatch) -> None:
    import shared_code.idempotency as idempotency

    monkeypatch.setattr(idempotency, "WAIT_FOR_FIRST_SECONDS", 0.3)
    key = str(uuid.uuid4())
    _abandoned_claim(storage, key, "fp", TAKEOVER_AFTER / 2)  # maybe still running: not ours to take
    with pytest.raises(Conflict):
        run_once(storage, "A12345", key, "fp", 24, lambda _op: Reply(202, {"id": "no"}, {}))


def test_an_abandoned_claim_of_another_request_is_still_a_422(storage) -> None:
    from datetime import timedelta

    key = str(uuid.uuid4())
    _abandoned_claim(storage, key, request_fingerprint({"a": 1}), TAKEOVER_AFTER + timedelta(minutes=1))
    with pytest.raises(Unprocessable):
        run_once(storage, "A12345", key, request_fingerprint({"a": 2}), 24, lambda _op: Reply(202, {}, {}))


def test_each_claim_has_its_own_operation_id_and_an_expired_key_gets_a_new_one(storage) -> None:
    seen = []

    def action(operation_id) -> Reply:
        seen.append(operation_id)
        return Reply(202, {"id": operation_id}, {})

    key = str(uuid.uuid4())
    run_once(storage, "A12345", key, "fp", 24, action)
    run_once(storage, "A12345", str(uuid.uuid4()), "fp", 24, action)
    # A day later (a zero-hour window stands for it) the same key claims afresh.
    run_once(storage, "A12345", key, "fp", 0, action)
    assert len(seen) == 3 and len(set(seen)) == 3
    assert all(uuid.UUID(op).version == 4 for op in seen)
    assert run_once(storage, "A12345", None, "fp", 24, action).body == {"id": None}
