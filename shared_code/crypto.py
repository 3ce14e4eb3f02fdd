"""Secrets of a link: the token in the SMS, the keyed date-of-birth hash, signed values.

There are only ~45,000 plausible dates of birth, so a plain or slow hash of one is
reversible by anyone who reads the table: the hash is an HMAC under a key from Key
Vault, salted per message so equal dates do not show as equal hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import date

#: 18 random bytes = 144 bits (the design asks for at least 96), 24 URL-safe characters.
TOKEN_BYTES = 18


def new_link_token() -> str:
    """A fresh random link token for the SMS (URL-safe, no padding)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """The SHA-256 of a link token, hex: the only form in which a token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_salt() -> str:
    """A per-message salt for the date-of-birth hash."""
    return secrets.token_hex(16)


def dob_hash(key: bytes, salt: str, dob: date) -> str:
    """Keyed, salted hash of a date of birth (HMAC-SHA256), hex."""
    if not key:
        raise ValueError("the date-of-birth hash key is not configured")
    msg = f"{salt}|{dob.isoformat()}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def dob_matches(key: bytes, salt: str, stored_hash: str, candidate: date) -> bool:
    """Whether a candidate date matches the stored hash, compared in constant time."""
    return hmac.compare_digest(dob_hash(key, salt, candidate), stored_hash)


def sign(key: bytes, payload: str) -> str:
    """`payload.signature` with an HMAC-SHA256 signature (URL-safe base64)."""
    if not key:
        raise ValueError("the signing key is not configured")
    mac = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return payload + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def unsign(key: bytes, signed: str) -> str | None:
    """The payload of a value made by `sign`, or None when the signature does not match."""
    payload, _, _sig = signed.rpartition(".")
    if not payload or not key:
        return None
    # Bytes, not str: compare_digest raises TypeError on non-ASCII text, and `signed` comes from outside.
    return payload if hmac.compare_digest(sign(key, payload).encode(), signed.encode()) else None


def sha256_hex(data: bytes) -> str:
    """SHA-256 of bytes, hex."""
    return hashlib.sha256(data).hexdigest()


def derive_key(master: bytes, label: str) -> bytes:
    """A 256-bit key for one purpose, derived from a master secret (HMAC-SHA256 as a KDF)."""
    if not master:
        raise ValueError("the master key is not configured")
    return hmac.new(master, f"enclose:{label}".encode(), hashlib.sha256).digest()


def seal(key: bytes, plaintext: str) -> str:
    """Encrypt text with AES-256-GCM (random nonce); URL-safe base64 of nonce + ciphertext."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = secrets.token_bytes(12)
    blob = nonce + AESGCM(key).encrypt(nonce, plaintext.encode(), None)
    return base64.urlsafe_b64encode(blob).decode()


def unseal(key: bytes, sealed: str) -> str:
    """Decrypt what `seal` made; raises ValueError when it was tampered with or the key is wrong."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    blob = base64.urlsafe_b64decode(sealed.encode())
    try:
        return AESGCM(key).decrypt(blob[:12], blob[12:], None).decode()
    except InvalidTag:
        raise ValueError("sealed value cannot be opened") from None
