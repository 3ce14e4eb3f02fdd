"""Signed status callbacks: an organisation's endpoint, the events queued for it, and their delivery.

* The registration is one row per organisation in the `callbacks` table: the URL, the signing
  secret (sealed with a key derived from SESSION_KEY; shown once, when registered), and the last
  delivery and the last failure, which the practice reads back.
* `announce` is the one hook: `message_store.transition` calls it with the lifecycle events a
  change recorded, `events.record_event` with the patient's receipts. It puts the event on the
  `callbacks` queue and nothing more (no HTTP on the sending path), and never fails its caller.
* `deliver` runs from the queue trigger: it checks the URL again (resolving the name now, and
  connecting to the address it checked, so a name that changes its address after registration
  cannot reach a private one), POSTs the event signed `Enclose-Signature: t=<unix>,v1=<hex
  HMAC-SHA256 of "<t>.<body>">`, follows no redirect, and on a time-out, a refused connection, a
  5xx or a 429 puts the event back on the queue, hidden for a growing delay, until
  `RETRY_FOR` has passed since the first try; then (or at once for any other answer) it records
  the failure on the registration.

Each event has a stable id (from the message, its type, time and document), so a receiver can
drop a repeat: delivery is at least once.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from shared_code import clock
from shared_code.crypto import derive_key, seal, unseal
from shared_code.errors import FieldError, NotFound, Unprocessable
from shared_code.settings import Settings
from shared_code.storage import CALLBACK_QUEUE, CALLBACKS, Storage

log = logging.getLogger(__name__)

#: Lifecycle and receipt events a practice is told about (`scan_rejected` is told as `failed`).
CALLBACK_EVENTS = frozenset(
    {"sent", "delivered", "delivery_failed", "failed", "dob_verified", "downloaded", "locked", "revoked", "expired"}
)
_RENAMED = {"scan_rejected": "failed"}
#: Retried on time-outs, 5xx and 429 for at least this long after the first try.
RETRY_FOR = timedelta(hours=25)
#: The waits between tries, the last repeated: about 30 tries over the first day.
BACKOFF = (30, 120, 600, 1800, 3600, 3600 * 2)
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 10.0
MAX_URL_LENGTH = 2000
_ROW = ""
_NAMESPACE = uuid.UUID("6f1c2e0a-5b7d-4c1e-9a3f-2d8e7b6c5a41")
#: Deliveries one process makes at once. The queue trigger runs in the worker's one thread pool
#: (min(32, cores + 4) threads), which also sends the texts: a slow endpoint may hold a thread
#: for up to the time-outs, so at most this many are ever waiting on one; the rest are put back.
CONCURRENT_DELIVERIES = 2
#: When every delivery slot is taken, the entry comes back after this (not counted as a try).
DEFER_SECONDS = 5
_slots = threading.BoundedSemaphore(CONCURRENT_DELIVERIES)
#: How long a process trusts what it read of an organisation's registration on the sending path.
_CACHE_SECONDS = 30.0
_cache: dict[str, tuple[float, bool]] = {}

Resolver = Callable[[str, int], list[str]]


@dataclass(frozen=True)
class CallbackEvent:
    """One event for a practice's endpoint, as its JSON body says."""

    id: str
    type: str
    message_id: str | None
    batch_id: str | None
    status: str | None
    at: datetime

    def to_json(self) -> dict[str, Any]:
        """The body POSTed."""
        return {
            "id": self.id,
            "type": self.type,
            "messageId": self.message_id,
            "batchId": self.batch_id,
            "status": self.status,
            "at": clock.iso(self.at),
        }


# -- the URL ---------------------------------------------------------------------------------


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to now."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def check_url(settings: Settings, url: Any, resolve: Resolver = system_resolver) -> list[str]:
    """The addresses a callback URL may be reached at; 422 on `url` when it may not be used.

    https to a public address only; with CALLBACK_ALLOW_LOCAL (the local stack), http or https to
    127.0.0.1 too. Every address the name resolves to must pass: the instance metadata address
    (169.254.169.254), private, loopback, link-local and reserved ranges are refused.
    """

    def bad(reason: str) -> Unprocessable:
        return Unprocessable([FieldError("url", reason)])

    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise bad(f"Give the endpoint's address, at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise bad("This is not a web address") from None
    host = parts.hostname or ""
    if parts.username or parts.password or parts.fragment or not host:
        raise bad("Give an address without a user name, password or fragment")
    local = settings.callback_allow_local and _is_loopback_name(host)
    if parts.scheme != "https" and not (local and parts.scheme == "http"):
        raise bad("The address must start with https://")
    try:
        addresses = resolve(host, port or (443 if parts.scheme == "https" else 80))
    except (OSError, UnicodeError):
        raise bad("The endpoint's name does not resolve") from None
    if not addresses:
        raise bad("The endpoint's name does not resolve")
    for address in addresses:
        if not _allowed(address, local):
            raise bad("The address must be reachable on the internet, not a private or local one")
    return addresses


def _is_loopback_name(host: str) -> bool:
    return host in ("127.0.0.1", "localhost")


def _allowed(address: str, local: bool) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if local and ip == ipaddress.ip_address("127.0.0.1"):
        return True
    return ip.is_global and not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast
    )


# -- the registration ------------------------------------------------------------------------


def _secret_key(settings: Settings) -> bytes:
    return derive_key(settings.session_key.reveal(), "callback-secret")


def register(
    storage: Storage, settings: Settings, org: str, payload: Mapping[str, Any], resolve: Resolver = system_resolver
) -> dict[str, Any]:
    """Register (or replace) the organisation's endpoint: its view, with the new secret this once."""
    settings.check_secrets()
    url = payload.get("url")
    check_url(settings, url, resolve)
    secret = "whsec_" + secrets.token_urlsafe(32)
    now = clock.now()
    row = {
        "PartitionKey": org,
        "RowKey": _ROW,
        "url": url,
        "secret": seal(_secret_key(settings), secret),
        "createdAt": clock.iso(now),
    }
    storage.table(CALLBACKS).replace(row, etag=None)
    _cache.pop(org, None)
    return {**_view(row), "secret": secret}


def read_registration(storage: Storage, org: str) -> dict[str, Any]:
    """What the practice sees of its registration (never the secret); 404 when there is none."""
    row = storage.table(CALLBACKS).get(org, _ROW)
    if row is None:
        raise NotFound("No callback is registered.")
    return _view(row)


def delete_registration(storage: Storage, org: str) -> None:
    """Forget the endpoint: events not yet delivered are dropped when their turn comes."""
    if storage.table(CALLBACKS).get(org, _ROW) is None:
        raise NotFound("No callback is registered.")
    storage.table(CALLBACKS).delete(org, _ROW)
    _cache.pop(org, None)


def _view(row: Mapping[str, Any]) -> dict[str, Any]:
    failure = json.loads(row["lastFailure"]) if row.get("lastFailure") else None
    return {
        "url": row["url"],
        "createdAt": row["createdAt"],
        "lastDeliveredAt": row.get("lastDeliveredAt"),
        "lastFailure": failure,
    }


# -- queueing --------------------------------------------------------------------------------


def event_id(message_id: str, event_type: str, at: datetime, attachment_id: str | None = None) -> str:
    """The stable id of an event: the same event queued twice has the same id."""
    return str(uuid.uuid5(_NAMESPACE, f"{message_id}|{event_type}|{clock.iso(at)}|{attachment_id or ''}"))


def _has_registration(storage: Storage, org: str) -> bool:
    # The sending path asks this for every change: a short per-process memory keeps it one read
    # per organisation per half-minute (a registration made now is seen within that).
    cached = _cache.get(org)
    if cached is not None and time.monotonic() - cached[0] < _CACHE_SECONDS:
        return cached[1]
    found = storage.table(CALLBACKS).get(org, _ROW) is not None
    _cache[org] = (time.monotonic(), found)
    return found


def announce(
    storage: Storage,
    org: str,
    message_id: str,
    events: Iterable[Any],
    status: str | None,
    *,
    batch_id: str | None = None,
) -> None:
    """Queue the callback events among `events` (objects with `type`, `at`, `attachment_id`).

    Never raises: a callback must not fail or hold up what it reports on.
    """
    try:
        chosen = [e for e in events if _RENAMED.get(e.type, e.type) in CALLBACK_EVENTS]
        if not chosen or not _has_registration(storage, org):
            return
        for e in chosen:
            kind = _RENAMED.get(e.type, e.type)
            event = CallbackEvent(
                event_id(message_id, kind, e.at, getattr(e, "attachment_id", None)),
                kind,
                message_id,
                batch_id,
                status,
                e.at,
            )
            _enqueue(storage, org, event, first_at=clock.now(), tries=0, delay=0)
    except Exception:  # noqa: BLE001 - see above; the event is lost, the send is not
        log.exception("callback events for message %s could not be queued", message_id)


def announce_batch_done(storage: Storage, org: str, batch_id: str, at: datetime) -> None:
    """Queue a batch's `done` (every row settled) for the organisation's endpoint; never raises.

    For the code that sees a batch finish: its id is stable per batch, so a repeat is one event.
    """
    try:
        if not _has_registration(storage, org):
            return
        event_key = str(uuid.uuid5(_NAMESPACE, f"batch|{batch_id}|done"))
        event = CallbackEvent(event_key, "done", None, batch_id, "done", at)
        _enqueue(storage, org, event, first_at=clock.now(), tries=0, delay=0)
    except Exception:  # noqa: BLE001 - a callback must not fail what it reports on
        log.exception("the done event of batch %s could not be queued", batch_id)


def announce_test(storage: Storage, org: str) -> dict[str, Any]:
    """Queue a `test` event for the organisation's endpoint (404 when none is registered)."""
    read_registration(storage, org)
    now = clock.now()
    event = CallbackEvent(str(uuid.uuid4()), "test", None, None, None, now)
    _enqueue(storage, org, event, first_at=now, tries=0, delay=0)
    return event.to_json()


def _enqueue(storage: Storage, org: str, event: CallbackEvent, *, first_at: datetime, tries: int, delay: int) -> None:
    entry = {"org": org, "event": event.to_json(), "firstAt": clock.iso(first_at), "tries": tries}
    storage.queue(CALLBACK_QUEUE).send_message(json.dumps(entry).encode(), visibility_timeout=delay or None)


# -- delivery --------------------------------------------------------------------------------


def signature_header(secret: str, body: bytes, t: int) -> str:
    """`t=<t>,v1=<hex HMAC-SHA256 of "<t>.<body>">`."""
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def backoff_seconds(tries: int) -> int:
    """The wait after `tries` failed tries (1 or more)."""
    return BACKOFF[min(tries, len(BACKOFF)) - 1]


@dataclass(frozen=True)
class Outcome:
    """What became of one delivery try: `delivered`, `retry` (in `delay` seconds), `gave_up`,
    `dropped` (no registration, or not an entry of ours) or `deferred` (no slot free)."""

    result: str
    detail: str = ""
    delay: int = 0


def deliver(
    storage: Storage, settings: Settings, body: bytes, resolve: Resolver = system_resolver, post: Any = None
) -> Outcome:
    """Deliver one queued event (the `callbacks` queue entry `body`); `deferred` (put back for
    DEFER_SECONDS) while CONCURRENT_DELIVERIES are already under way in this process."""
    if not _slots.acquire(blocking=False):
        storage.queue(CALLBACK_QUEUE).send_message(body, visibility_timeout=DEFER_SECONDS)
        return Outcome("deferred", "every delivery slot is busy", DEFER_SECONDS)
    try:
        return _deliver(storage, settings, body, resolve, post)
    finally:
        _slots.release()


def _deliver(storage: Storage, settings: Settings, body: bytes, resolve: Resolver, post: Any) -> Outcome:
    try:
        entry = json.loads(body)
        org, event, first_at, tries = (
            entry["org"],
            entry["event"],
            clock.parse_iso(entry["firstAt"]),
            int(entry["tries"]),
        )
    except (ValueError, KeyError, TypeError):
        log.warning("a callbacks queue entry is not one of ours; dropped")
        return Outcome("dropped", "unreadable")
    row = storage.table(CALLBACKS).get(org, _ROW)
    if row is None:
        return Outcome("dropped", "no callback registered")
    payload = json.dumps(event, separators=(",", ":")).encode()
    try:
        addresses = check_url(settings, row["url"], resolve)
    except Unprocessable:
        return _failed(storage, row, event, "The endpoint's address is no longer allowed or does not resolve")
    secret = unseal(_secret_key(settings), row["secret"])
    sender = post or _post
    try:
        status = sender(row["url"], addresses[0], payload, signature_header(secret, payload, int(time.time())))
    except OSError as exc:
        reason = f"No answer from the endpoint ({type(exc).__name__})"
        status = None
    else:
        reason = f"The endpoint answered {status}"
    if status is not None and 200 <= status < 300:
        row = {**row, "lastDeliveredAt": clock.iso(clock.now())}
        storage.table(CALLBACKS).replace(row, etag=None)
        return Outcome("delivered", reason)
    retryable = status is None or status == 429 or status >= 500
    tries += 1
    if retryable and clock.now() - first_at < RETRY_FOR:
        delay = backoff_seconds(tries)
        _enqueue(storage, org, _event(event), first_at=first_at, tries=tries, delay=delay)
        return Outcome("retry", reason, delay)
    return _failed(storage, row, event, reason)


def _event(doc: Mapping[str, Any]) -> CallbackEvent:
    return CallbackEvent(
        doc["id"], doc["type"], doc.get("messageId"), doc.get("batchId"), doc.get("status"), clock.parse_iso(doc["at"])
    )


def _failed(storage: Storage, row: Mapping[str, Any], event: Mapping[str, Any], reason: str) -> Outcome:
    failure = {
        "at": clock.iso(clock.now()),
        "eventId": event.get("id"),
        "eventType": event.get("type"),
        "reason": reason,
    }
    storage.table(CALLBACKS).replace({**row, "lastFailure": json.dumps(failure)}, etag=None)
    log.warning("callback event %s for %s given up: %s", event.get("id"), row["PartitionKey"], reason)
    return Outcome("gave_up", reason)


def _post(url: str, address: str, body: bytes, signature: str) -> int:
    """POST to `url` at the checked `address` (never re-resolved), no redirects, bounded time-outs."""
    import urllib3

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=READ_TIMEOUT_SECONDS)
    headers = {
        "Host": parts.netloc.rsplit("@", 1)[-1],
        "Content-Type": "application/json",
        "User-Agent": "Enclose-Callbacks/1",
        "Enclose-Signature": signature,
    }
    if parts.scheme == "https":
        # Connect to the checked address; the certificate is still checked against the name.
        pool: Any = urllib3.HTTPSConnectionPool(
            address,
            port,
            server_hostname=parts.hostname,
            assert_hostname=parts.hostname,
            timeout=timeout,
            retries=False,
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
    try:
        response = pool.urlopen("POST", path, body=body, headers=headers, redirect=False, preload_content=True)
    except urllib3.exceptions.HTTPError as exc:
        raise OSError(str(type(exc).__name__)) from None
    finally:
        pool.close()
    return int(response.status)


def clear_cache() -> None:
    """Forget what this process read of registrations (tests)."""
    _cache.clear()
