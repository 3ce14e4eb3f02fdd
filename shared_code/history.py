"""The practice's history: what it sent a patient (by NHS number), or lately, newest first, in pages.

The NHS number is never stored: a message keeps a keyed hash of it (HMAC-SHA256, with a key derived
from the date-of-birth hash key, so the same secret guards both; an NHS number has only about 10^9
valid values, so a plain hash would be reversible), and the `history` table has one index row per
message in two partitions: `{org}|all` (the organisation's messages) and `{org}|{nhs hash}` (the
patient's). The row key is the reverse of the creation time in milliseconds then the message id,
so a page is one partition query read in key order, newest first. The hash is keyed per
organisation too (the org is in the hashed text), so one organisation's hashes say nothing about
another's patients, and the partition key keeps their messages apart.

The cursor is the last row key of the page and the query it belongs to, signed: a cursor that was
altered, or sent with another query, is refused (422 on `cursor`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from shared_code import clock
from shared_code.attachments import find_attachment
from shared_code.crypto import derive_key, sign, unsign
from shared_code.errors import FieldError, Unprocessable
from shared_code.message_model import Message
from shared_code.message_store import find_message
from shared_code.nhs import is_valid_nhs_number, normalise_nhs_number
from shared_code.settings import Settings
from shared_code.storage import HISTORY, Storage
from shared_code.tables import RowExists, Where, at_most, eq

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
#: Reverse-time keys count down from here: 13 digits of milliseconds last until the year 2286.
_KEY_MAX = 10**13 - 1
_ALL = "all"


@dataclass(frozen=True)
class HistoryQuery:
    """A checked history request: whose messages, since when, how many, after which row."""

    nhs_number: str | None
    since: datetime | None
    limit: int
    cursor: str | None


def nhs_hash(settings: Settings, org: str, nhs_number: str) -> str:
    """The keyed hash of an NHS number within an organisation (hex)."""
    key = derive_key(settings.dob_hash_key.reveal(), "nhs-number")
    text = f"{org}|{normalise_nhs_number(nhs_number)}"
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def _row_key(created_at: datetime, message_id: str) -> str:
    return f"{_reverse(created_at)}|{message_id}"


def _reverse(at: datetime) -> str:
    millis = int(at.timestamp() * 1000)
    return f"{_KEY_MAX - millis:013d}"


def index_message(storage: Storage, message: Message) -> None:
    """Add the message's index rows (its organisation's, and its patient's when hashed).

    Written before the message row: a message is never missing from its history. A row left by a
    run that died before the message was made points at nothing, or at a message made later by
    the same key with another time, and is skipped when read.
    """
    table = storage.table(HISTORY)
    partitions = [f"{message.org}|{_ALL}"]
    if message.nhs_hash:
        partitions.append(f"{message.org}|{message.nhs_hash}")
    for partition in partitions:
        try:
            table.insert(
                {"PartitionKey": partition, "RowKey": _row_key(message.created_at, message.id), "messageId": message.id}
            )
        except RowExists:
            pass  # a repeat of the same run's write


def parse_history_query(params: Mapping[str, str]) -> HistoryQuery:
    """`nhsNumber`, `since`, `limit` and `cursor` from the query string; 422 naming each bad one."""
    errors: list[FieldError] = []
    nhs = params.get("nhsNumber")
    if nhs is not None and not is_valid_nhs_number(nhs):
        errors.append(FieldError("nhsNumber", "Enter a valid 10-digit NHS number"))
    since = None
    raw_since = params.get("since")
    if raw_since is not None:
        since = _parse_time(raw_since)
        if since is None:
            errors.append(FieldError("since", "Give a date and time with its zone, such as 2026-11-30T09:00:00Z"))
    limit = DEFAULT_LIMIT
    raw_limit = params.get("limit")
    if raw_limit is not None:
        if not raw_limit.isascii() or not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
            errors.append(FieldError("limit", f"Give a whole number from 1 to {MAX_LIMIT}"))
        else:
            limit = int(raw_limit)
    if errors:
        raise Unprocessable(errors)
    return HistoryQuery(nhs, since, limit, params.get("cursor"))


def _parse_time(raw: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None or not 1970 <= value.year <= 2200:
        return None
    return value.astimezone(timezone.utc)


def list_history(storage: Storage, settings: Settings, org: str, query: HistoryQuery) -> dict[str, Any]:
    """One page of the organisation's messages (to one patient, or since a time), newest first,
    with the cursor of the next page (None on the last). 503 without the hash key."""
    settings.check_secrets()
    partition = f"{org}|{nhs_hash(settings, org, query.nhs_number) if query.nhs_number else _ALL}"
    scope = {"p": partition, "s": clock.iso(query.since)}
    where: list[Where] = [eq("PartitionKey", partition)]
    if query.cursor is not None:
        where.append(Where("RowKey", "gt", (_open_cursor(settings, query.cursor, scope),)))
    if query.since is not None:
        # Newer messages have smaller keys: everything at or after `since` sorts at or before its key.
        where.append(at_most("RowKey", f"{_reverse(query.since)}|~"))
    items: list[dict[str, Any]] = []
    last_key = None
    rows = storage.table(HISTORY).query(*where)
    more = False
    names = _Names(storage, org)
    for row in rows:
        if len(items) == query.limit:
            more = True
            break
        message = find_message(storage, org, row["messageId"])
        if message is None or _row_key(message.created_at, message.id) != row["RowKey"]:
            continue  # left by a run that died before its message was made
        items.append(history_item(message, names))
        last_key = row["RowKey"]
    cursor = _make_cursor(settings, last_key, scope) if more and last_key else None
    return {"items": items, "cursor": cursor}


class _Names:
    """Template names and document filenames, each read once for a page (a patient's messages
    mostly share them)."""

    def __init__(self, storage: Storage, org: str) -> None:
        self._storage, self._org = storage, org
        self._templates: dict[str, str | None] = {}
        self._files: dict[str, str | None] = {}

    def template(self, template_id: str) -> str | None:
        from shared_code.template_store import find_template

        if template_id not in self._templates:
            found = find_template(self._storage, self._org, template_id)
            self._templates[template_id] = found.name if found else None
        return self._templates[template_id]

    def filename(self, attachment_id: str) -> str | None:
        if attachment_id not in self._files:
            found = find_attachment(self._storage, self._org, attachment_id)
            self._files[attachment_id] = found.filename if found else None
        return self._files[attachment_id]


def history_item(message: Message, names: _Names) -> dict[str, Any]:
    """A message as the history lists it: what it was and the patient's receipts (kept on the
    message itself, so a page reads no event log)."""
    return {
        "id": message.id,
        "status": message.status,
        "createdAt": clock.iso(message.created_at),
        "templateId": message.template_id,
        "templateName": names.template(message.template_id) if message.template_id else None,
        "attachments": [{"id": a, "filename": names.filename(a)} for a in message.attachment_ids],
        "dobVerifiedAt": clock.iso(message.first_dob_verified_at) if message.first_dob_verified_at else None,
        "firstDownloadedAt": clock.iso(message.first_downloaded_at) if message.first_downloaded_at else None,
    }


def _cursor_key(settings: Settings) -> bytes:
    return derive_key(settings.dob_hash_key.reveal(), "history-cursor")


def _make_cursor(settings: Settings, after: str, scope: Mapping[str, Any]) -> str:
    payload = base64.urlsafe_b64encode(json.dumps({**scope, "a": after}).encode()).decode().rstrip("=")
    return sign(_cursor_key(settings), payload)


def _open_cursor(settings: Settings, cursor: str, scope: Mapping[str, Any]) -> str:
    """The row key a cursor continues after; 422 when it was altered or made for another query."""
    bad = Unprocessable([FieldError("cursor", "Send back the cursor of the page before, unchanged")])
    payload = unsign(_cursor_key(settings), cursor) if cursor.isascii() else None
    if payload is None:
        raise bad
    try:
        value = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error):
        raise bad from None
    if not isinstance(value, dict) or not isinstance(value.get("a"), str):
        raise bad
    if value.get("p") != scope["p"] or value.get("s") != scope["s"]:
        raise bad
    return value["a"]
