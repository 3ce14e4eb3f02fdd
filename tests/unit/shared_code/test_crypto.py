"""Link tokens, keyed date-of-birth hashes, signed values, derived keys and sealed values."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import date

import pytest

from shared_code import crypto

KEY = b"k" * 32
OTHER_KEY = b"o" * 32


# -- link tokens ---------------------------------------------------------------------------------


def test_link_token_is_url_safe_and_carries_at_least_96_bits() -> None:
    token = crypto.new_link_token()
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert len(token) == 24  # 18 bytes = 144 bits, no padding
    assert len(base64.urlsafe_b64decode(token)) * 8 >= 96


def test_link_tokens_differ() -> None:
    assert len({crypto.new_link_token() for _ in range(200)}) == 200


def test_token_hash_is_sha256_hex() -> None:
    assert crypto.token_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert crypto.token_hash("abd") != crypto.token_hash("abc")


def test_sha256_hex() -> None:
    assert crypto.sha256_hex(b"") == hashlib.sha256(b"").hexdigest()
    assert crypto.sha256_hex(b"abc") == crypto.token_hash("abc")


# -- date-of-birth hash --------------------------------------------------------------------------


def test_salts_are_random_hex() -> None:
    salts = {crypto.new_salt() for _ in range(50)}
    assert len(salts) == 50
    assert all(re.fullmatch(r"[0-9a-f]{32}", s) for s in salts)


def test_dob_hash_is_an_hmac_of_salt_and_date() -> None:
    expected = hmac.new(KEY, b"s1|1970-01-31", hashlib.sha256).hexdigest()
    assert crypto.dob_hash(KEY, "s1", date(1970, 1, 31)) == expected


def test_dob_hash_depends_on_key_salt_and_date() -> None:
    base = crypto.dob_hash(KEY, "s1", date(1970, 1, 31))
    assert crypto.dob_hash(KEY, "s1", date(1970, 1, 31)) == base
    assert crypto.dob_hash(OTHER_KEY, "s1", date(1970, 1, 31)) != base
    assert crypto.dob_hash(KEY, "s2", date(1970, 1, 31)) != base
    assert crypto.dob_hash(KEY, "s1", date(1970, 1, 30)) != base
    assert crypto.dob_hash(KEY, "s1", date(1970, 1, 31)) != hashlib.sha256(b"s1|1970-01-31").hexdigest()


def test_dob_hash_needs_a_key() -> None:
    with pytest.raises(ValueError, match="not configured"):
        crypto.dob_hash(b"", "s1", date(1970, 1, 31))


def test_dob_matches() -> None:
    stored = crypto.dob_hash(KEY, "salt", date(1984, 3, 15))
    assert crypto.dob_matches(KEY, "salt", stored, date(1984, 3, 15))
    assert not crypto.dob_matches(KEY, "salt", stored, date(1984, 3, 16))
    assert not crypto.dob_matches(KEY, "other", stored, date(1984, 3, 15))
    assert not crypto.dob_matches(OTHER_KEY, "salt", stored, date(1984, 3, 15))
    assert not crypto.dob_matches(KEY, "salt", "", date(1984, 3, 15))


# -- signed values -------------------------------------------------------------------------------


def test_sign_then_unsign() -> None:
    signed = crypto.sign(KEY, "payload~123")
    assert signed.startswith("payload~123.")
    assert "=" not in signed
    assert crypto.unsign(KEY, signed) == "payload~123"


def test_payload_may_contain_dots() -> None:
    assert crypto.unsign(KEY, crypto.sign(KEY, "a.b.c")) == "a.b.c"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda s: "X" + s[1:],  # payload changed
        lambda s: s[:-1] + ("A" if s[-1] != "A" else "B"),  # signature changed
        lambda s: s.rpartition(".")[0],  # signature removed
        lambda s: s.rpartition(".")[0] + ".",  # empty signature
        lambda s: s + "x",
        lambda s: "." + s.rpartition(".")[2],  # payload removed
    ],
)
def test_unsign_refuses_tampered_values(tamper) -> None:
    signed = crypto.sign(KEY, "payload~123")
    assert crypto.unsign(KEY, tamper(signed)) is None


def test_unsign_refuses_another_keys_signature() -> None:
    assert crypto.unsign(OTHER_KEY, crypto.sign(KEY, "payload")) is None


@pytest.mark.parametrize("value", ["", ".", "no-dot-at-all", "é.é", "payload.é", "ü~1.abc"])
def test_unsign_refuses_garbage_without_raising(value: str) -> None:
    # Regression: non-ASCII text from a cookie made hmac.compare_digest raise TypeError.
    assert crypto.unsign(KEY, value) is None


def test_unsign_with_no_key_is_none_and_sign_with_no_key_raises() -> None:
    assert crypto.unsign(b"", crypto.sign(KEY, "payload")) is None
    with pytest.raises(ValueError, match="not configured"):
        crypto.sign(b"", "payload")


# -- derived keys --------------------------------------------------------------------------------


def test_derive_key_is_256_bits_per_label_and_master() -> None:
    a = crypto.derive_key(b"master", "portal-session")
    assert len(a) == 32
    assert crypto.derive_key(b"master", "portal-session") == a
    assert crypto.derive_key(b"master", "link-token-seal") != a
    assert crypto.derive_key(b"other", "portal-session") != a
    assert a != b"master"


def test_derive_key_needs_a_master() -> None:
    with pytest.raises(ValueError, match="not configured"):
        crypto.derive_key(b"", "portal-session")


# -- sealed values -------------------------------------------------------------------------------

SEAL_KEY = crypto.derive_key(b"master", "link-token-seal")


def test_seal_then_unseal() -> None:
    sealed = crypto.seal(SEAL_KEY, "AbC-123_xyz")
    assert "AbC-123_xyz" not in sealed
    assert crypto.unseal(SEAL_KEY, sealed) == "AbC-123_xyz"


def test_seal_round_trips_unicode_and_empty_text() -> None:
    for text in ["", "Jö – 😀"]:
        assert crypto.unseal(SEAL_KEY, crypto.seal(SEAL_KEY, text)) == text


def test_each_seal_uses_a_fresh_nonce() -> None:
    assert crypto.seal(SEAL_KEY, "same") != crypto.seal(SEAL_KEY, "same")


def test_unseal_with_the_wrong_key_raises_value_error() -> None:
    sealed = crypto.seal(SEAL_KEY, "secret")
    with pytest.raises(ValueError):
        crypto.unseal(crypto.derive_key(b"master", "other"), sealed)


def test_unseal_tampered_ciphertext_raises_value_error() -> None:
    blob = bytearray(base64.urlsafe_b64decode(crypto.seal(SEAL_KEY, "secret")))
    blob[-1] ^= 1
    with pytest.raises(ValueError):
        crypto.unseal(SEAL_KEY, base64.urlsafe_b64encode(bytes(blob)).decode())


@pytest.mark.parametrize("sealed", ["", "AAAA", "not base64!", "A"])
def test_unseal_garbage_raises_value_error(sealed: str) -> None:
    with pytest.raises(ValueError):
        crypto.unseal(SEAL_KEY, sealed)
