"""Idempotency-Key against real Azurite: one message for simultaneous repeats."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared_code import clock
from shared_code.crypto import sha256_hex
from shared_code.errors import Conflict, Unprocessable
from shared_code.idempotency import TAKEOVER_AFTER, Reply, message_id_for_key, request_fingerprint, run_once
from shared_code.storage import IDEMPOTENCY


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


def _abandoned_claim(storage, key: str, fingerprint: str, age) -> None:
    """The pending claim a request leaves when its process dies before answering."""
    storage.table(IDEMPOTENCY).create_entity({
        "PartitionKey": "A12345", "RowKey": sha256_hex(key.encode()), "state": "pending",
        "fingerprint": fingerprint, "createdAt": clock.iso(clock.now() - age),
    })


def test_a_claim_abandoned_longer_than_the_takeover_time_is_taken_over_once(storage) -> None:
    from datetime import timedelta

    key = str(uuid.uuid4())
    _abandoned_claim(storage, key, "fp", TAKEOVER_AFTER + timedelta(seconds=1))
    runs = []
    lock = threading.Lock()

    def action() -> Reply:
        with lock:
            runs.append(1)
        return Reply(202, {"id": message_id_for_key("A12345", key)}, {})

    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda _: run_once(storage, "A12345", key, "fp", 24, action), range(8)))
    assert len(runs) == 1
    assert {r.body["id"] for r in replies} == {message_id_for_key("A12345", key)}
    assert storage.table(IDEMPOTENCY).get_entity("A12345", sha256_hex(key.encode()))["state"] == "done"


def test_a_claim_still_in_its_first_minutes_is_waited_for_then_a_409(storage, monkeypatch) -> None:
    import shared_code.idempotency as idempotency

    monkeypatch.setattr(idempotency, "WAIT_FOR_FIRST_SECONDS", 0.3)
    key = str(uuid.uuid4())
    _abandoned_claim(storage, key, "fp", TAKEOVER_AFTER / 2)  # maybe still running: not ours to take
    with pytest.raises(Conflict):
        run_once(storage, "A12345", key, "fp", 24, lambda: Reply(202, {"id": "no"}, {}))


def test_an_abandoned_claim_of_another_request_is_still_a_422(storage) -> None:
    from datetime import timedelta

    key = str(uuid.uuid4())
    _abandoned_claim(storage, key, request_fingerprint({"a": 1}), TAKEOVER_AFTER + timedelta(minutes=1))
    with pytest.raises(Unprocessable):
        run_once(storage, "A12345", key, request_fingerprint({"a": 2}), 24, lambda: Reply(202, {}, {}))


def test_message_ids_from_keys_are_stable_and_per_organisation() -> None:
    assert message_id_for_key("A12345", "k") == message_id_for_key("A12345", "k")
    assert message_id_for_key("A12345", "k") != message_id_for_key("B99999", "k")
    assert uuid.UUID(message_id_for_key("A12345", "k")).version == 5

