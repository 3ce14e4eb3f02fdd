"""`Idempotency-Key`: the same key and request within the window gets the first answer again.

The key is claimed with an insert (which only one caller can win), so two requests
with the same key at the same moment make one message. The stored record holds a
hash of the request and the first answer, never the request itself.

Each claim carries an operation id, made when the key is claimed and handed to the
action: a message made under the claim takes it as its id. A claim whose holder died (a
killed process, a lost instance) stays pending; after TAKEOVER_AFTER a repeat of the same
request takes it over, keeping its operation id, and runs the action again, which finds the
message the dead run made (or makes it, under that id), never a second one. The key is
then not blocked for its whole lifetime. Once the key expires, a new claim gets a new
operation id, so a key used again a day later makes a new message, as it should.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from shared_code import clock
from shared_code.crypto import sha256_hex
from shared_code.errors import BadRequest, Conflict, FieldError, Unprocessable
from shared_code.storage import IDEMPOTENCY, Storage
from shared_code.tables import RowChanged, RowExists

MAX_KEY_LENGTH = 255
#: How long a second request waits for the first one with the same key to finish.
WAIT_FOR_FIRST_SECONDS = 20.0
#: A claim still pending after this long is taken to be abandoned: no request takes this long
#: (storage calls time out in seconds), so its holder has died.
TAKEOVER_AFTER = timedelta(minutes=2)


@dataclass(frozen=True)
class Reply:
    """An answer that can be replayed: status, JSON body and headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]


def request_fingerprint(payload: dict[str, Any]) -> str:
    """A hash of a request's meaning (key order and spacing do not matter)."""
    return sha256_hex(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())


def check_key(key: str | None) -> str | None:
    """The key if usable, None when absent; 400 when empty or too long."""
    if key is None:
        return None
    if not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise BadRequest(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.")
    return key


def run_once(
    storage: Storage, org: str, key: str | None, fingerprint: str, ttl_hours: int, action: Callable[[str | None], Reply]
) -> Reply:
    """Run `action` once per (organisation, key); replay its answer to repeats of the same request.

    `action` gets the claim's operation id (None without a key) and must be idempotent under it.
    """
    if key is None:
        return action(None)
    table = storage.table(IDEMPOTENCY)
    row_key = sha256_hex(key.encode())
    deadline = time.monotonic() + WAIT_FOR_FIRST_SECONDS
    while True:
        claim = {
            "PartitionKey": org,
            "RowKey": row_key,
            "fingerprint": fingerprint,
            "state": "pending",
            "createdAt": clock.iso(clock.now()),
            "operationId": str(uuid.uuid4()),
        }
        try:
            table.insert(claim)
            break  # the key is ours
        except RowExists:
            pass
        row = table.get(org, row_key)
        if row is None:
            continue  # released by a failed first request: claim it again
        created = clock.parse_iso(row.get("createdAt"))
        if created and clock.now() - created > timedelta(hours=ttl_hours):
            try:  # expired: remove it (only as we read it) and claim afresh
                table.delete(org, row_key, etag=row.etag)
            except RowChanged:
                pass
            continue
        if row.get("fingerprint") != fingerprint:
            raise Unprocessable(
                [FieldError("Idempotency-Key", "This key was already used for a different request")],
                "This Idempotency-Key was already used for a different request.",
            )
        if row.get("state") == "done":
            return Reply(int(row["status"]), json.loads(row["body"]), json.loads(row["headers"]))
        if created and clock.now() - created > TAKEOVER_AFTER:
            # Abandoned: take it over, with its operation id, by a conditional write that only
            # one repeat wins.
            claim["operationId"] = row["operationId"]
            try:
                table.replace(claim, etag=row.etag)
                break
            except RowChanged:
                continue
        if time.monotonic() > deadline:
            raise Conflict("A request with this Idempotency-Key is still being processed. Try again shortly.")
        time.sleep(0.05)

    try:
        reply = action(claim["operationId"])
    except BaseException:
        # A refused or failed request claims nothing: the key may be used again once it is fixed.
        table.delete(org, row_key)
        raise
    table.replace(
        {
            **claim,
            "state": "done",
            "status": reply.status,
            "body": json.dumps(reply.body),
            "headers": json.dumps(reply.headers),
        },
        etag=None,
    )
    return reply
