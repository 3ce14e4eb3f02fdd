"""Idempotency-Key: the key's limits, the request fingerprint, and `run_once` on the in-memory table
(its races against the real service are in tests/integration/shared_code/test_idempotency.py)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from shared_code import clock
from shared_code.crypto import sha256_hex
from shared_code.errors import BadRequest, Conflict, Unprocessable
from shared_code.idempotency import MAX_KEY_LENGTH, TAKEOVER_AFTER, Reply, check_key, request_fingerprint, run_once
from shared_code.storage import IDEMPOTENCY
from shared_code.tables import MemoryTables

REQUEST = {
    "patient": {"nhsNumber": "9434765919", "dateOfBirth": "1970-01-31", "mobile": "07700900123"},
    "body": "Dear Jo, your fit note is attached.",
    "attachmentIds": ["a1", "a2"],
}


def test_fingerprint_ignores_key_order() -> None:
    reordered = {
        "attachmentIds": ["a1", "a2"],
        "body": "Dear Jo, your fit note is attached.",
        "patient": {"mobile": "07700900123", "dateOfBirth": "1970-01-31", "nhsNumber": "9434765919"},
    }
    assert request_fingerprint(reordered) == request_fingerprint(REQUEST)


def test_fingerprint_is_a_sha256_that_does_not_contain_the_request() -> None:
    fingerprint = request_fingerprint(REQUEST)
    assert len(fingerprint) == 64
    assert int(fingerprint, 16) >= 0
    assert "9434765919" not in fingerprint


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r.update(body="Dear Jo, your fit note is attached!"),
        lambda r: r.update(attachmentIds=["a2", "a1"]),  # order of documents is meaningful
        lambda r: r["patient"].update(mobile="07700900124"),
        lambda r: r.update(sendAt="2026-12-01T09:00:00Z"),
        lambda r: r.update(sendAt=None),  # an explicit null differs from an absent field
    ],
)
def test_fingerprint_changes_with_the_request(change) -> None:
    import copy

    other = copy.deepcopy(REQUEST)
    change(other)
    assert request_fingerprint(other) != request_fingerprint(REQUEST)


def test_fingerprint_of_unicode_is_stable() -> None:
    assert request_fingerprint({"body": "Jö 😀"}) == request_fingerprint({"body": "Jö 😀"})
    assert request_fingerprint({"body": "Jö 😀"}) != request_fingerprint({"body": "Jo 😀"})


def test_no_key() -> None:
    assert check_key(None) is None


@pytest.mark.parametrize("key", ["k", "a" * 254, "a" * 255, "550e8400-e29b-41d4-a716-446655440000", "key with spaces"])
def test_usable_keys(key: str) -> None:
    assert check_key(key) == key


def test_limit_is_255() -> None:
    assert MAX_KEY_LENGTH == 255


@pytest.mark.parametrize("key", ["", " ", "\t", "a" * 256, "a" * 1000])
def test_empty_or_too_long_key_is_400(key: str) -> None:
    with pytest.raises(BadRequest) as caught:
        check_key(key)
    assert caught.value.status == 400
    assert "255" in caught.value.detail


# -- run_once, on the in-memory table -----------------------------------------------------

ORG = "A12345"


@pytest.fixture
def storage() -> MemoryTables:
    return MemoryTables()


def _counting(body: dict | None = None) -> tuple[list[str | None], Callable[[str | None], Reply]]:
    runs: list[str | None] = []
    lock = threading.Lock()

    def action(operation_id: str | None) -> Reply:
        with lock:
            runs.append(operation_id)
        return Reply(202, body if body is not None else {"id": operation_id}, {"Location": f"/m/{operation_id}"})

    return runs, action


def _claim_row(storage: MemoryTables, key: str) -> dict | None:
    return storage.table(IDEMPOTENCY).get(ORG, sha256_hex(key.encode()))


def test_a_repeat_of_the_same_request_gets_the_first_answer_without_running_again(storage) -> None:
    runs, action = _counting()
    first = run_once(storage, ORG, "key-1", "fp", 24, action)
    again = run_once(storage, ORG, "key-1", "fp", 24, action)
    assert again == first and len(runs) == 1
    assert first.headers == {"Location": f"/m/{runs[0]}"}
    stored = _claim_row(storage, "key-1")
    assert stored["state"] == "done" and "key-1" not in stored.values()  # the key is kept hashed


def test_the_same_key_with_another_request_is_a_422_and_runs_nothing(storage) -> None:
    runs, action = _counting()
    run_once(storage, ORG, "key-1", request_fingerprint({"a": 1}), 24, action)
    with pytest.raises(Unprocessable) as refused:
        run_once(storage, ORG, "key-1", request_fingerprint({"a": 2}), 24, action)
    assert refused.value.status == 422
    assert [e.field for e in refused.value.errors] == ["Idempotency-Key"]
    assert len(runs) == 1


def test_a_failed_action_releases_the_key(storage) -> None:
    def fail(_operation_id: str | None) -> Reply:
        raise Unprocessable([])

    with pytest.raises(Unprocessable):
        run_once(storage, ORG, "key-1", "fp", 24, fail)
    assert _claim_row(storage, "key-1") is None
    runs, action = _counting({"id": "ok"})
    assert run_once(storage, ORG, "key-1", "fp", 24, action).body == {"id": "ok"}
    assert len(runs) == 1


def test_keys_are_per_organisation(storage) -> None:
    runs, action = _counting()
    run_once(storage, ORG, "key-1", "fp", 24, action)
    run_once(storage, "B99999", "key-1", "fp", 24, action)
    assert len(runs) == 2 and runs[0] != runs[1]


def test_without_a_key_the_action_runs_every_time_and_nothing_is_stored(storage) -> None:
    runs, action = _counting()
    run_once(storage, ORG, None, "fp", 24, action)
    run_once(storage, ORG, None, "fp", 24, action)
    assert runs == [None, None]
    assert list(storage.table(IDEMPOTENCY).query()) == []


def _pending_claim(storage: MemoryTables, key: str, fingerprint: str, age: timedelta) -> str:
    """The claim a request leaves when its process dies before answering; its operation id."""
    operation_id = str(uuid.uuid4())
    storage.table(IDEMPOTENCY).insert(
        {
            "PartitionKey": ORG,
            "RowKey": sha256_hex(key.encode()),
            "state": "pending",
            "fingerprint": fingerprint,
            "createdAt": clock.iso(clock.now() - age),
            "operationId": operation_id,
        }
    )
    return operation_id


def test_a_claim_younger_than_the_takeover_time_is_a_409(storage, monkeypatch) -> None:
    import shared_code.idempotency as idempotency

    monkeypatch.setattr(idempotency, "WAIT_FOR_FIRST_SECONDS", 0.0)
    _pending_claim(storage, "key-1", "fp", TAKEOVER_AFTER - timedelta(seconds=5))
    runs, action = _counting()
    with pytest.raises(Conflict):
        run_once(storage, ORG, "key-1", "fp", 24, action)
    assert runs == []


def test_a_claim_older_than_the_takeover_time_is_taken_over_once_under_its_operation_id(storage) -> None:
    operation_id = _pending_claim(storage, "key-1", "fp", TAKEOVER_AFTER + timedelta(seconds=5))
    runs, action = _counting()
    start = threading.Barrier(6)

    def repeat(_: int) -> Reply:
        start.wait()
        return run_once(storage, ORG, "key-1", "fp", 24, action)

    with ThreadPoolExecutor(max_workers=6) as pool:
        replies = list(pool.map(repeat, range(6)))
    assert runs == [operation_id]
    assert {r.body["id"] for r in replies} == {operation_id}
    assert _claim_row(storage, "key-1")["state"] == "done"


def test_an_expired_key_is_claimed_afresh_with_a_new_operation_id(storage) -> None:
    old = _pending_claim(storage, "key-1", "another request", timedelta(hours=24, seconds=5))
    runs, action = _counting()
    reply = run_once(storage, ORG, "key-1", "fp", 24, action)
    assert len(runs) == 1 and runs[0] != old and reply.body == {"id": runs[0]}
    assert _claim_row(storage, "key-1")["fingerprint"] == "fp"


def test_simultaneous_requests_with_one_key_run_once(storage) -> None:
    runs, action = _counting()
    start = threading.Barrier(8)

    def request(_: int) -> Reply:
        start.wait()
        return run_once(storage, ORG, "key-1", "fp", 24, action)

    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(request, range(8)))
    assert len(runs) == 1
    assert {r.body["id"] for r in replies} == {runs[0]}


def test_a_key_just_inside_its_lifetime_still_replays(storage) -> None:
    storage.table(IDEMPOTENCY).insert(
        {
            "PartitionKey": ORG,
            "RowKey": sha256_hex(b"key-1"),
            "state": "done",
            "fingerprint": "fp",
            "createdAt": clock.iso(clock.now() - timedelta(hours=24) + timedelta(seconds=5)),
            "operationId": "op",
            "status": 202,
            "body": '{"id": "op"}',
            "headers": "{}",
        }
    )
    runs, action = _counting()
    assert run_once(storage, ORG, "key-1", "fp", 24, action) == Reply(202, {"id": "op"}, {})
    assert runs == []
