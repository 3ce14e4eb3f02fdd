"""Making a message: checks, the link and its token, the documents' copies, and moving it on
from waiting on scans to the dispatch queue."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from shared_code import clock, history, lifecycle, sending_limits
from shared_code.attachments import CLEAN, REJECTED, find_attachment
from shared_code.auth import Principal
from shared_code.crypto import derive_key, dob_hash, new_link_token, new_salt, seal, token_hash
from shared_code.dispatch_queue import enqueue_dispatch
from shared_code.errors import FieldError, Unprocessable
from shared_code.message_model import Message, message_to_entity
from shared_code.message_request import NewMessage
from shared_code.message_store import copy_document, find_message, get_message, transition
from shared_code.settings import Settings
from shared_code.sms_text import measure
from shared_code.storage import LINKS, MESSAGES, Storage
from shared_code.tables import RowExists, eq

log = logging.getLogger(__name__)


def portal_link(settings: Settings, token: str) -> str:
    """The patient's link as it appears in the SMS."""
    return f"{settings.portal_base_url}/p/{token}"


def sms_text(body: str, link: str) -> str:
    """The SMS: the practice's text, then the link on its own line."""
    return f"{body}\n{link}"


def token_seal_key(settings: Settings) -> bytes:
    """The key that keeps a link token encrypted at rest until the SMS has gone."""
    return derive_key(settings.session_key.reveal(), "link-token-seal")


def create_message(
    storage: Storage,
    settings: Settings,
    principal: Principal,
    request: NewMessage,
    *,
    message_id: str | None = None,
    counted: bool = True,
) -> Message:
    """Record a message and its link, then move it on as far as it can go now.

    `message_id` (an Idempotency-Key claim's operation id) makes this idempotent: when a
    message with that id exists already, from an earlier run that may have died half-way,
    that message is finished and returned instead of a second one being made. A message made
    counts against the organisation's sending limits (`sending_limits`: 429 beyond them).
    Without both secrets nothing is written or counted: SecretUnavailable (503).
    A batch's row (`shared_code.batches`) is not `counted` (the batch is bounded and paced as a
    whole) and goes on `batch-dispatch`, behind single sends (`dispatch_queue.enqueue_dispatch`).
    """
    settings.check_secrets()
    if message_id is not None:
        existing = find_message(storage, principal.org, message_id)
        if existing is not None:
            return _finish_earlier_run(storage, settings, existing)
    errors: list[FieldError] = []
    attachments = []
    for index, attachment_id in enumerate(request.attachment_ids):
        attachment = find_attachment(storage, principal.org, attachment_id) if _is_uuid(attachment_id) else None
        attachments.append(attachment)
        if attachment is None or attachment.deleted:
            errors.append(FieldError(f"attachmentIds[{index}]", "There is no attachment with this id"))
        elif attachment.status == REJECTED:
            errors.append(FieldError(f"attachmentIds[{index}]", f"This attachment was rejected: {attachment.reason}"))
    token = new_link_token()
    length = measure(sms_text(request.body, portal_link(settings, token)))
    if length.segments > settings.max_segments:
        errors.append(
            FieldError(
                "body",
                f"The text is too long: it would be {length.segments} SMS segments "
                f"and the limit is {settings.max_segments}",
            )
        )
    if errors:
        raise Unprocessable(errors)

    now = clock.now()
    # Counted only now that every check has passed: a refused request takes no place.
    ticket = sending_limits.take(storage, settings, principal.org, now) if counted else None
    try:
        return _record_message(storage, settings, principal, request, message_id, token, length, attachments, now)
    except _MadeByAnotherRun as other:
        if ticket is not None:
            sending_limits.give_back(storage, ticket)  # that run counted it
        return other.message
    except BaseException:
        if ticket is not None:
            sending_limits.give_back(storage, ticket)  # not made, so not sent: not counted
        raise


class _MadeByAnotherRun(Exception):
    """Another run under the same Idempotency-Key made the message first (it is `message`)."""

    def __init__(self, message: Message) -> None:
        super().__init__("made by another run")
        self.message = message


def _record_message(
    storage: Storage,
    settings: Settings,
    principal: Principal,
    request: NewMessage,
    message_id: str | None,
    token: str,
    length: Any,
    attachments: list[Any],
    now: datetime,
) -> Message:
    """Store the checked message and its link, then move it on (see `create_message`)."""
    salt = new_salt()
    message = lifecycle.created(
        id=message_id or str(uuid.uuid4()),
        org=principal.org,
        created_at=now,
        created_by=principal.user,
        link_expires_at=(request.send_at or now) + timedelta(days=settings.link_ttl_days),
        segments=length.segments,
        encoding=length.encoding,
        attachment_ids=request.attachment_ids,
        token_hash=token_hash(token),
        dob_salt=salt,
        practice_name=principal.org_name,
        mobile=request.mobile,
        mobile_ending=request.mobile[-4:],
        nhs_hash=history.nhs_hash(settings, principal.org, request.nhs_number) if request.nhs_number else None,
        body=request.body,
        sealed_token=seal(token_seal_key(settings), token),
        dob_hash=dob_hash(settings.dob_hash_key.reveal(), salt, request.date_of_birth),
        send_at=request.send_at,
        repeatability_id=str(uuid.uuid4()),
        template_id=request.template_id,
        template_version=request.template_version,
        batch_id=request.batch_id,
    )
    # The common case, every attachment already clean, goes straight to queued (or scheduled):
    # fewer storage round trips than creating it waiting and moving it on.
    ready = all(a.status == CLEAN for a in attachments)
    if ready:
        for attachment in attachments:
            copy_document(storage, message, attachment.id, attachment.container)
        message = lifecycle.scans_passed(message, [a.id for a in attachments], now) or message
    history.index_message(storage, message)
    storage.table(LINKS).insert(
        {"PartitionKey": message.token_hash, "RowKey": "", "org": message.org, "messageId": message.id}
    )
    try:
        etag = storage.table(MESSAGES).insert(message_to_entity(message))
    except RowExists:
        # Another run under the same key made it first: that one is the message, and an error
        # answer now would free the key for a second one. Our link's token was never sent to
        # anyone, so its row goes (a leftover would only be an orphan no one can open).
        try:
            storage.table(LINKS).delete(message.token_hash, "")
            earlier = _finish_earlier_run(storage, settings, get_message(storage, message.org, message.id))
        except Exception:  # noqa: BLE001 - the message exists; the sweeper finishes it
            log.exception("message %s made by another run; its details could not be read", message.id)
            earlier = message
        raise _MadeByAnotherRun(earlier) from None
    message = replace(message, etag=etag)
    log.info(
        "message %s created by %s/%s with %d attachment(s)",
        message.id,
        principal.org,
        principal.user,
        len(message.attachment_ids),
    )
    # The message is accepted once its row exists. A failure after this point must not
    # become an error answer: the caller would retry and the patient get two texts. The
    # retention sweeper (`requeue_stuck`) finishes whatever is left undone here.
    try:
        if ready:
            enqueue_dispatch(storage, message)
            return message
        # A scan may have finished since we looked: moving on now closes that gap.
        return advance_message(storage, settings, message.org, message.id)
    except Exception:  # noqa: BLE001 - see above; the sweeper is the backstop
        log.exception("message %s accepted; finishing it is left to the sweeper", message.id)
        return message


def _finish_earlier_run(storage: Storage, settings: Settings, message: Message) -> Message:
    """A message found made by an earlier run: make sure it is on its way, and return it.

    The earlier run may have died before queueing it. Queueing it again is harmless: a
    second queue entry finds it sent, or repeats its first try under the same
    repeatability id, which ACS never delivers twice.
    """
    try:
        if message.revoked_at or message.first_sent_at:
            return message
        if lifecycle.waiting_to_send(message):
            enqueue_dispatch(storage, message)
        elif message.state == lifecycle.AWAITING_SCAN:
            return advance_message(storage, settings, message.org, message.id)
    except Exception:  # noqa: BLE001 - accepted already; the sweeper is the backstop
        log.exception("message %s: finishing an earlier run is left to the sweeper", message.id)
    return message


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def advance_message(storage: Storage, settings: Settings, org: str, message_id: str) -> Message:
    """Move a message waiting on scans on: fail it, or copy its documents and queue it.

    Safe to call any number of times from anywhere (message creation, each scan's end,
    the sweeper): an ETag-checked write lets exactly one caller make each step.
    """
    message = get_message(storage, org, message_id)
    if message.state != lifecycle.AWAITING_SCAN or message.revoked_at:
        return message
    attachments = [find_attachment(storage, org, a) for a in message.attachment_ids]
    failure = None
    for attachment in attachments:
        if attachment is None or attachment.deleted:
            failure = "An attachment was deleted before it could be sent."
        elif attachment.status == REJECTED:
            failure = f"The attachment {attachment.filename} was rejected: {attachment.reason}"
    if failure is None and any(a.status != CLEAN for a in attachments):
        return message  # still scanning: the scan's end calls us again

    if failure is None:
        for attachment in attachments:
            copy_document(storage, message, attachment.id, attachment.container)
        clean = [a.id for a in attachments]
        message, won = transition(storage, org, message_id, lambda m: lifecycle.scans_passed(m, clean, clock.now()))
        if won:
            enqueue_dispatch(storage, message)
        return message

    message, won = transition(storage, org, message_id, lambda m: lifecycle.scan_failed(m, failure, clock.now()))
    if won:
        log.info("message %s failed: an attachment was rejected or deleted", message.id)
    return message


def on_attachment_scanned(storage: Storage, settings: Settings, org: str, attachment_id: str) -> None:
    """After a verdict: move on every message of the organisation waiting on this attachment."""
    rows = storage.table(MESSAGES).query(
        eq("PartitionKey", org), eq("status", lifecycle.AWAITING_SCAN), select=["RowKey", "attachmentIds"]
    )
    for row in rows:
        if attachment_id in json.loads(row.get("attachmentIds") or "[]"):
            advance_message(storage, settings, org, row["RowKey"])
