"""Idempotency-Key: the key's limits and the request fingerprint (the storage part is integration)."""

from __future__ import annotations

import pytest

from shared_code.errors import BadRequest
from shared_code.idempotency import MAX_KEY_LENGTH, check_key, request_fingerprint

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
