"""Batch sending: one CSV, up to 10,000 patients, each texted exactly once, behind single sends.

This module creates and reads batches; `shared_code.batch_send` starts, cancels and sends them.

* Create (`create_batch`): the CSV is read (`batch_csv`) and every row judged as a single send
  would be (`batch_rows`); the rows to text and the refused ones are kept sealed
  (`batch_store`). Nothing is sent. The answer counts the rows, lists the first errors and
  previews the first texts.
* Send (`send_batch`, under `Idempotency-Key`): the batch becomes `sending` (or `scheduled`) and
  one `batch-rows` queue entry per chunk of rows is written, so the request answers at once
  however big the file. Each chunk (`make_chunk_messages`) makes its rows' messages with
  `message_create.create_message` under ids fixed by batch and row (`row_message_id`): a chunk
  redone after its worker was killed, or a repeated send, finds the messages made before and
  makes no second message, and so no second text.
* Single sends first: a batch's messages go on the `batch-dispatch` queue, whose worker hands a
  message to the dispatcher only while the `dispatch` queue (single sends) has nothing visible
  waiting; otherwise it puts it back for a moment without counting a try. Both draw on the
  one app-wide SMS rate (`pacing.SharedPacer`).
* Cancel: the batch is `cancelled` (chunks not yet made make nothing) and every made message
  not yet sent is revoked by the same ETag-checked write the dispatcher's send claim races
  against, so exactly one wins; a message already sent is left alone.
* `sendAt` delays the first text; `spreadMinutes` spreads the texts evenly from then on.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from shared_code import clock, lifecycle
from shared_code.auth import Principal
from shared_code.batch_csv import MAX_CSV_BYTES, read_csv
from shared_code.batch_rows import (
    MAX_ERRORS_SHOWN,
    BatchText,
    check_batch_body,
    check_rows,
    previews,
)
from shared_code.batch_store import (
    CANCELLED,
    DONE,
    INVALID,
    READY,
    SCHEDULED,
    SENDING,
    Batch,
    change_batch,
    get_batch,
    insert_batch,
    load_chunk,
    message_id_range,
    row_message_id,
    row_of,
    save_chunks,
)
from shared_code.errors import Conflict, FieldError, NotFound, Unprocessable
from shared_code.storage import MESSAGES
from shared_code.tables import Where, eq

log = logging.getLogger(__name__)

#: spreadMinutes may spread a batch's texts over up to 7 days.
MAX_SPREAD_MINUTES = 7 * 24 * 60
#: A page of a batch's messages.
DEFAULT_PAGE, MAX_PAGE = 50, 100
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# -- create ---------------------------------------------------------------------------------


def create_batch(
    storage: Any, settings: Any, principal: Principal, content_type: str | None, body: bytes
) -> dict[str, Any]:
    """Read, check and keep a batch CSV with its text; the 201 answer (nothing is sent)."""
    from shared_code.multipart import read_form

    upload, form = read_form(content_type, body, MAX_CSV_BYTES)
    fields = _form_fields(form, settings)
    text = _batch_text(storage, settings, principal, fields)
    csv_file = read_csv(upload.data)
    checked = check_rows(csv_file, text, settings, practice_name=principal.org_name)
    settings.check_secrets()  # the chunks are sealed with SESSION_KEY
    batch_id = str(uuid.uuid4())
    rows = save_chunks(storage, settings, principal.org, batch_id, "r", [r.to_json() for r in checked.valid])
    refused = [
        {"row": number, "cells": cells, "reasons": [e.message for e in checked.errors if e.row == number]}
        for number, cells in checked.refused.items()
    ]
    error_chunks = save_chunks(storage, settings, principal.org, batch_id, "e", refused)
    errors = tuple({"row": e.row, "column": e.column, "message": e.message} for e in checked.errors[:MAX_ERRORS_SHOWN])
    batch = insert_batch(
        storage,
        Batch(
            id=batch_id,
            org=principal.org,
            status=READY if checked.valid else INVALID,
            created_at=clock.now(),
            created_by=principal.user,
            practice_name=principal.org_name,
            header=csv_file.header,
            template_id=text.template_id,
            template_version=text.template_version,
            attachment_ids=text.attachment_ids,
            send_at=fields["sendAt"],
            spread_minutes=fields["spreadMinutes"],
            rows=checked.total,
            valid=len(checked.valid),
            invalid=len(checked.refused),
            duplicates=checked.duplicates,
            errors=errors,
            row_chunks=rows,
            error_chunks=error_chunks,
        ),
    )
    log.info(
        "batch %s created by %s/%s: %d rows, %d valid, %d refused, %d duplicates",
        batch.id,
        principal.org,
        principal.user,
        batch.rows,
        batch.valid,
        batch.invalid,
        batch.duplicates,
    )
    return {**batch_summary(batch), "errors": list(batch.errors), "preview": previews(checked, settings)}


def _one(form: Mapping[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise Unprocessable([FieldError(name, "Give this field once")])
    return values[0]


def _form_fields(form: Mapping[str, list[str]], settings: Any) -> dict[str, Any]:
    """The batch's form fields, checked for their shape (422 naming each bad one)."""
    errors: list[FieldError] = []
    template_id, body = _one(form, "templateId"), _one(form, "body")
    if template_id is None and body is None:
        errors.append(FieldError("templateId", "Choose a template, or give the text in body"))
    if body is not None:
        errors.extend(check_batch_body(body, settings))
    version = None
    raw_version = _one(form, "templateVersion")
    if raw_version is not None:
        if not _whole(raw_version) or not 1 <= int(raw_version) <= 1_000_000:
            errors.append(FieldError("templateVersion", "Give the template's version as a whole number from 1"))
        elif template_id is None:
            errors.append(FieldError("templateVersion", "Give the templateId too"))
        else:
            version = int(raw_version)
    ids: list[str] = []
    for value in form.get("attachmentIds", []):
        ids.extend(part.strip() for part in value.split(",") if part.strip())
    spread = 0
    raw_spread = _one(form, "spreadMinutes")
    if raw_spread is not None:
        if not _whole(raw_spread) or int(raw_spread) > MAX_SPREAD_MINUTES:
            errors.append(FieldError("spreadMinutes", f"Give a whole number of minutes from 0 to {MAX_SPREAD_MINUTES}"))
        else:
            spread = int(raw_spread)
    send_at = None
    raw_send_at = _one(form, "sendAt")
    if raw_send_at is not None:
        try:
            send_at = clock.parse_iso(raw_send_at)
            if send_at is None:
                raise ValueError
        except ValueError:
            errors.append(FieldError("sendAt", "Enter the send time as an ISO 8601 date and time with a time zone"))
    if errors:
        raise Unprocessable(errors)
    return {
        "templateId": template_id,
        "templateVersion": version,
        "body": body,
        "attachmentIds": ids,
        "sendAt": send_at,
        "sendAtRaw": raw_send_at,
        "spreadMinutes": spread,
    }


def _batch_text(storage: Any, settings: Any, principal: Principal, fields: Mapping[str, Any]) -> BatchText:
    """The text and documents every row gets: the template version's (read once), or the batch's own.

    The template rules are `templates.apply_template`'s, applied once for the whole file.
    """
    from shared_code.attachments import REJECTED, find_attachment
    from shared_code.template_documents import unavailable_documents
    from shared_code.template_store import find_template, find_version

    errors: list[FieldError] = []
    text, documents, template_id, version_number = fields["body"], (), None, None
    if fields["templateId"] is not None:
        template = find_template(storage, principal.org, fields["templateId"])
        if template is None or not template.visible_to(principal.user):
            raise Unprocessable([FieldError("templateId", "There is no template with this id")])
        version = find_version(storage, template, fields["templateVersion"] or template.version)
        if version is None:
            raise Unprocessable([FieldError("templateVersion", "This template has no such version")])
        gone = unavailable_documents(storage, principal.org, version.documents)
        if gone:
            raise Conflict(
                f"Version {version.version} of this template can no longer be sent: one of its documents "
                f"has been removed or withdrawn. Send the current version ({template.version})."
            )
        text = text or version.body
        documents = tuple(d.id for d in version.documents)
        template_id, version_number = template.id, version.version
    ids = fields["attachmentIds"]
    for index, attachment_id in enumerate(ids):
        attachment = find_attachment(storage, principal.org, attachment_id) if _is_uuid(attachment_id) else None
        if attachment is None or attachment.deleted:
            errors.append(FieldError(f"attachmentIds[{index}]", "There is no attachment with this id"))
        elif attachment.status == REJECTED:
            errors.append(FieldError(f"attachmentIds[{index}]", f"This attachment was rejected: {attachment.reason}"))
        elif attachment_id in documents:
            errors.append(FieldError(f"attachmentIds[{index}]", "This document is already in the template"))
    total = len(documents) + len(ids)
    if total == 0:
        errors.append(FieldError("attachmentIds", "Attach at least one document"))
    elif total > settings.max_attachments:
        errors.append(FieldError("attachmentIds", f"Attach at most {settings.max_attachments} documents in all"))
    elif len(set(ids)) != len(ids):
        errors.append(FieldError("attachmentIds", "Each document can be attached only once"))
    if errors:
        raise Unprocessable(errors)
    return BatchText(text, template_id, version_number, documents + tuple(ids), fields["sendAtRaw"])


def _whole(text: str) -> bool:
    """ASCII digits only, at most 7 (str.isdigit also takes "²" and other digits int() refuses)."""
    return re.fullmatch(r"[0-9]{1,7}", text) is not None


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


# -- read -----------------------------------------------------------------------------------


def batch_summary(batch: Batch) -> dict[str, Any]:
    """A batch's id, status and row counts, as every batch answer starts."""
    return {
        "id": batch.id,
        "status": batch.status,
        "rows": batch.rows,
        "valid": batch.valid,
        "invalid": batch.invalid,
        "duplicates": batch.duplicates,
    }


def batch_message_rows(storage: Any, batch: Batch, after_row: int = -1) -> Any:
    """The batch's messages made so far, by row (their ids are one row-key range)."""
    low, high = message_id_range(batch.id)
    start = row_message_id(batch.id, after_row + 1) if after_row >= 0 else low
    return storage.table(MESSAGES).query(
        eq("PartitionKey", batch.org), Where("RowKey", "ge", (start,)), Where("RowKey", "le", (high,))
    )


def counters(storage: Any, batch: Batch) -> dict[str, int]:
    """How far the batch has gone: the total to text, and how many are at each stage."""
    from shared_code.message_model import message_from_entity

    counts = dict.fromkeys(("sent", "delivered", "failed", "verified", "downloaded", "cancelled"), 0)
    made = 0
    for row in batch_message_rows(storage, batch):
        message = message_from_entity(row)
        made += 1
        if message.revoked_at and message.first_sent_at is None:
            counts["cancelled"] += 1
            continue
        if message.state in (lifecycle.SENT, lifecycle.DELIVERED, lifecycle.FAILED):
            counts[message.state] += 1
        if message.last_dob_verified_at is not None:
            counts["verified"] += 1
        if message.first_downloaded_at is not None:
            counts["downloaded"] += 1
    unmade = sum(batch.unmade.values())
    counts["failed"] += unmade  # rows whose message could not be made: they will never be sent
    if batch.status == CANCELLED:
        counts["cancelled"] += batch.valid - made - unmade  # rows whose messages will never be made
    settled = sum(counts[k] for k in ("sent", "delivered", "failed", "cancelled"))
    return {"total": batch.valid, "queued": max(0, batch.valid - settled), **counts}


def batch_view(storage: Any, org: str, batch_id: str) -> dict[str, Any]:
    """GET /api/v1/batches/{id}: the batch, its status and counters."""
    batch = get_batch(storage, org, batch_id)
    counts = counters(storage, batch)
    status = batch.status
    if status == SCHEDULED and batch.send_at is not None and batch.send_at <= clock.now():
        status = SENDING
    if status == SENDING and counts["queued"] == 0:
        status = DONE
        batch = settle_batch(storage, batch)
    return {
        **batch_summary(batch),
        "status": status,
        "createdAt": clock.iso(batch.created_at),
        "sendAt": clock.iso(batch.send_at) if batch.send_at else None,
        "spreadMinutes": batch.spread_minutes,
        "templateId": batch.template_id,
        "templateVersion": batch.template_version,
        "counters": counts,
        "errors": list(batch.errors),
    }


def settle_batch(storage: Any, batch: Batch) -> Batch:
    """Store `done` for a batch every row of which is settled, announce it once (callbacks) and
    delete its sealed rows to text, which are no longer needed: the conditional write lets exactly
    one caller (a reader of the batch, or the retention timer) do all three."""
    from shared_code.batch_store import delete_chunks
    from shared_code.callbacks import announce_batch_done

    now = clock.now()
    settled, won = change_batch(
        storage,
        batch.org,
        batch.id,
        lambda b: replace(b, status=DONE, rows_deleted_at=now) if b.status in (SENDING, SCHEDULED) else None,
    )
    if won:
        announce_batch_done(storage, batch.org, batch.id, now)
        delete_chunks(storage, batch.org, batch.id, "r", batch.row_chunks)
        log.info("batch %s done", batch.id)
    return settled


def is_finished(storage: Any, batch: Batch) -> bool:
    """Whether a sending batch has no row left to send (so it is done)."""
    return batch.status in (SENDING, SCHEDULED) and counters(storage, batch)["queued"] == 0


def messages_page(storage: Any, org: str, batch_id: str, params: Mapping[str, str]) -> dict[str, Any]:
    """GET /api/v1/batches/{id}/messages: the messages made so far, by row, a page at a time."""
    batch = get_batch(storage, org, batch_id)
    limit, after = _page(params)
    items: list[dict[str, Any]] = []
    token = None
    from shared_code.message_model import message_from_entity

    for row in batch_message_rows(storage, batch, after):
        if len(items) == limit:
            token = str(items[-1]["row"])
            break
        message = message_from_entity(row)
        items.append({"row": row_of(batch.id, message.id), "messageId": message.id, "status": message.status})
    return {"items": items, "continuationToken": token}


def _page(params: Mapping[str, str]) -> tuple[int, int]:
    errors = []
    raw_limit = params.get("limit")
    limit = DEFAULT_PAGE
    if raw_limit is not None:
        if not _whole(raw_limit) or not 1 <= int(raw_limit) <= MAX_PAGE:
            errors.append(FieldError("limit", f"Give a limit from 1 to {MAX_PAGE}"))
        else:
            limit = int(raw_limit)
    after = -1
    token = params.get("continuationToken")
    if token is not None:
        if not _whole(token):
            errors.append(FieldError("continuationToken", "Send back the continuationToken of the previous page"))
        else:
            after = int(token)
    if errors:
        raise Unprocessable(errors)
    return limit, after


def errors_csv(storage: Any, settings: Any, org: str, batch_id: str) -> bytes:
    """GET /api/v1/batches/{id}/errors.csv: the refused rows as uploaded, with a Reason column.

    Cells a spreadsheet would run as a formula (starting `=`, `+`, `-`, `@`, tab or carriage
    return, OWASP's CSV-injection list) are written with a leading apostrophe, which a
    spreadsheet shows as text. UTF-8 with a byte-order mark, so Excel reads it as UTF-8.
    """
    batch = get_batch(storage, org, batch_id)
    if batch.errors_deleted_at is not None:
        raise NotFound("The refused rows of this batch have been deleted: they are kept as long as a link works.")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([_safe_cell(c) for c in (*batch.header, "Reason")])
    for index in range(batch.error_chunks):
        for item in load_chunk(storage, settings, org, batch.id, "e", index):
            writer.writerow([_safe_cell(c) for c in (*item["cells"], " ".join(item["reasons"]))])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _safe_cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value
