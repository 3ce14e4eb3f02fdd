"""Messages: the text to a patient, its link, and everything that happens to it.

A message's stored `status` follows the sending lifecycle (awaiting_scan, scheduled,
queued, sent, delivered, failed). Revoked, expired and locked are facts about the
link, stored on their own, and `Message.status` derives what the API shows.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from shared_code import clock
from shared_code.attachments import CLEAN, REJECTED, find_attachment
from shared_code.auth import Principal
from shared_code.crypto import (
    derive_key,
    dob_hash,
    new_link_token,
    new_salt,
    seal,
    token_hash,
)
from shared_code.errors import FieldError, NotFound, ServiceUnavailable, Unprocessable
from shared_code.events import (
    LIFECYCLE_EVENTS,
    Event,
    download_counts,
    history_from_json,
    history_to_json,
    list_events,
    new_event,
)
from shared_code.message_request import NewMessage
from shared_code.settings import Settings
from shared_code.sms_text import measure
from shared_code.storage import DISPATCH, DOCUMENTS, LINKS, MESSAGES, Storage, insert_entity

log = logging.getLogger(__name__)

AWAITING_SCAN, SCHEDULED, QUEUED = "awaiting_scan", "scheduled", "queued"
SENT, DELIVERED, FAILED = "sent", "delivered", "failed"
LOCKED, REVOKED, EXPIRED = "locked", "revoked", "expired"
#: Azure Storage queues hide a message for at most 7 days; longer waits are re-queued.
MAX_QUEUE_DELAY = timedelta(days=7) - timedelta(minutes=5)


@dataclass(frozen=True)
class Message:
    """One text to a patient and the state of its link."""

    id: str
    org: str
    state: str  # the sending lifecycle; see `status` for what the API shows
    created_at: datetime
    created_by: str
    link_expires_at: datetime
    segments: int
    encoding: str
    attachment_ids: tuple[str, ...]
    token_hash: str
    dob_salt: str
    practice_name: str | None = None
    mobile: str | None = field(default=None, repr=False)
    body: str | None = field(default=None, repr=False)
    sealed_token: str | None = field(default=None, repr=False)
    dob_hash: str | None = field(default=None, repr=False)
    dob_attempts: int = 0
    send_at: datetime | None = None
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    delivery_reported_at: datetime | None = None
    failure_reason: str | None = None
    locked: bool = False
    revoked_at: datetime | None = None
    purged_at: datetime | None = None
    repeatability_id: str = ""
    first_sent_at: datetime | None = None
    acs_message_id: str | None = None
    queued_at: datetime | None = None
    #: Lifecycle events, written with the change they record (see shared_code.events).
    history: tuple[Event, ...] = ()
    etag: str | None = None

    @property
    def expired(self) -> bool:
        """Whether the link's lifetime is over."""
        return clock.now() >= self.link_expires_at

    @property
    def status(self) -> str:
        """What the API shows: revoked, expired and locked win over the sending state."""
        if self.revoked_at:
            return REVOKED
        if self.state in (SENT, DELIVERED) and (self.expired or self.purged_at):
            return EXPIRED
        if self.locked and self.state in (SENT, DELIVERED):
            return LOCKED
        return self.state

    def document_blob(self, attachment_id: str) -> str:
        """This message's own copy of a document, in the `documents` container."""
        return f"{self.org}/{self.id}/{attachment_id}"

    def with_event(self, event_type: str, *, attachment_id: str | None = None, at: datetime | None = None) -> Message:
        """This message with a lifecycle event added, to be stored by the same write as the change."""
        event = new_event(event_type, attachment_id=attachment_id, at=at, kinds=LIFECYCLE_EVENTS)
        return replace(self, history=(*self.history, event))


_DATES = (
    "created_at",
    "link_expires_at",
    "send_at",
    "sent_at",
    "delivered_at",
    "delivery_reported_at",
    "revoked_at",
    "purged_at",
    "first_sent_at",
    "queued_at",
)
_NAMES = {
    "state": "status",
    "created_at": "createdAt",
    "created_by": "createdBy",
    "link_expires_at": "linkExpiresAt",
    "attachment_ids": "attachmentIds",
    "token_hash": "tokenHash",
    "dob_salt": "dobSalt",
    "practice_name": "practiceName",
    "sealed_token": "sealedToken",
    "dob_hash": "dobHash",
    "dob_attempts": "dobAttempts",
    "send_at": "sendAt",
    "sent_at": "sentAt",
    "delivered_at": "deliveredAt",
    "delivery_reported_at": "deliveryReportedAt",
    "failure_reason": "failureReason",
    "revoked_at": "revokedAt",
    "purged_at": "purgedAt",
    "repeatability_id": "repeatabilityId",
    "first_sent_at": "firstSentAt",
    "acs_message_id": "acsMessageId",
    "queued_at": "queuedAt",
}


def message_to_entity(m: Message) -> dict[str, Any]:
    """A Message as its table entity."""
    entity: dict[str, Any] = {"PartitionKey": m.org, "RowKey": m.id}
    for name in Message.__dataclass_fields__:
        if name in ("id", "org", "etag"):
            continue
        value = getattr(m, name)
        if name in _DATES:
            value = clock.iso(value)
        elif name == "attachment_ids":
            value = json.dumps(list(value))
        elif name == "history":
            value = history_to_json(value)
        entity[_NAMES.get(name, name)] = value
    return entity


def message_from_entity(e: Any) -> Message:
    """A Message from its table entity."""
    values: dict[str, Any] = {"id": e["RowKey"], "org": e["PartitionKey"]}
    for name in Message.__dataclass_fields__:
        if name in ("id", "org", "etag"):
            continue
        value = e.get(_NAMES.get(name, name))
        if name in _DATES:
            value = clock.parse_iso(value)
        elif name == "attachment_ids":
            value = tuple(json.loads(value or "[]"))
        elif name == "history":
            value = history_from_json(value)
        elif name in ("segments", "dob_attempts"):
            value = int(value or 0)
        elif name == "locked":
            value = bool(value)
        values[name] = value
    values["etag"] = e.metadata.get("etag") if hasattr(e, "metadata") else None
    return Message(**values)


def find_message(storage: Storage, org: str, message_id: str) -> Message | None:
    """The message of this organisation with this id, or None."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return message_from_entity(storage.table(MESSAGES).get_entity(org, message_id))
    except ResourceNotFoundError:
        return None


def get_message(storage: Storage, org: str, message_id: str) -> Message:
    """A message of this organisation; 404 for unknown ids and other organisations' messages."""
    try:
        uuid.UUID(message_id)
    except ValueError:
        raise NotFound("There is no message with this id.") from None
    found = find_message(storage, org, message_id)
    if found is None:
        raise NotFound("There is no message with this id.")
    return found


def save_message(storage: Storage, message: Message) -> Message:
    """Write back a changed message only if nobody changed it since it was read (ETag).

    Raises azure.core.exceptions.ResourceModifiedError on a lost race; callers reload and
    decide again. That is what keeps the lock-out counter and the state machine exact.
    """
    from azure.core import MatchConditions
    from azure.data.tables import UpdateMode

    meta = storage.table(MESSAGES).update_entity(
        message_to_entity(message),
        mode=UpdateMode.REPLACE,
        etag=message.etag,
        match_condition=MatchConditions.IfNotModified,
    )
    return replace(message, etag=meta.get("etag"))


def transition(
    storage: Storage, org: str, message_id: str, change: Callable[[Message], Message | None], *, attempts: int = 10
) -> tuple[Message, bool]:
    """Apply `change` to the stored message, re-reading and retrying on a lost ETag race.

    `change` returns the new message, or None to leave it as it is. Returns the message
    and whether this call changed it: exactly one of several racing callers gets True.
    """
    from azure.core.exceptions import ResourceModifiedError

    for _ in range(attempts):
        current = get_message(storage, org, message_id)
        changed = change(current)
        if changed is None or changed == current:
            return current, False
        try:
            return save_message(storage, changed), True
        except ResourceModifiedError:
            # Lost a race: a short random pause keeps racing callers from colliding again.
            time.sleep(random.uniform(0, 0.01))
            continue
    raise ServiceUnavailable("The message is busy. Please try again.")


def update_message(storage: Storage, org: str, message_id: str, change: Callable[[Message], Message | None]) -> Message:
    """`transition`, when the caller only needs the resulting message."""
    return transition(storage, org, message_id, change)[0]


def portal_link(settings: Settings, token: str) -> str:
    """The patient's link as it appears in the SMS."""
    return f"{settings.portal_base_url}/p/{token}"


def sms_text(body: str, link: str) -> str:
    """The SMS: the practice's text, then the link on its own line."""
    return f"{body}\n{link}"


def token_seal_key(settings: Settings) -> bytes:
    """The key that keeps a link token encrypted at rest until the SMS has gone."""
    return derive_key(settings.session_key, "link-token-seal")


def create_message(
    storage: Storage, settings: Settings, principal: Principal, request: NewMessage, *, message_id: str | None = None
) -> Message:
    """Record a message and its link, then move it on as far as it can go now.

    `message_id` (an Idempotency-Key claim's operation id) makes this idempotent: when a
    message with that id exists already, from an earlier run that may have died half-way,
    that message is finished and returned instead of a second one being made.
    """
    from azure.core.exceptions import ResourceExistsError

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
    salt = new_salt()
    message = Message(
        id=message_id or str(uuid.uuid4()),
        org=principal.org,
        state=AWAITING_SCAN,
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
        body=request.body,
        sealed_token=seal(token_seal_key(settings), token),
        dob_hash=dob_hash(settings.dob_hash_key, salt, request.date_of_birth),
        send_at=request.send_at,
        repeatability_id=str(uuid.uuid4()),
    )
    # The common case, every attachment already clean, goes straight to queued (or scheduled):
    # fewer storage round trips than creating it waiting and moving it on.
    ready = all(a.status == CLEAN for a in attachments)
    message = message.with_event("created", at=now)
    if ready:
        for attachment in attachments:
            _copy_document(storage, message, attachment.id)
            message = message.with_event("scan_clean", attachment_id=attachment.id, at=now)
        scheduled = message.send_at is not None and message.send_at > now
        message = replace(message, state=SCHEDULED if scheduled else QUEUED, queued_at=now)
        message = message.with_event("scheduled" if scheduled else "queued", at=now)
    insert_entity(
        storage.table(LINKS),
        {"PartitionKey": message.token_hash, "RowKey": "", "org": message.org, "messageId": message.id},
    )
    try:
        meta = insert_entity(storage.table(MESSAGES), message_to_entity(message))
    except ResourceExistsError:
        # Another run under the same key made it first: that one is the message, and an error
        # answer now would free the key for a second one. Our link's token was never sent to
        # anyone, so its row goes (a leftover would only be an orphan no one can open).
        try:
            storage.table(LINKS).delete_entity(message.token_hash, "")
            return _finish_earlier_run(storage, settings, get_message(storage, message.org, message.id))
        except Exception:  # noqa: BLE001 - the message exists; the sweeper finishes it
            log.exception("message %s made by another run; its details could not be read", message.id)
            return message
    message = replace(message, etag=meta.get("etag"))
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
        if message.state in (QUEUED, SCHEDULED):
            enqueue_dispatch(storage, message)
        elif message.state == AWAITING_SCAN:
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
    if message.state != AWAITING_SCAN or message.revoked_at:
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
            _copy_document(storage, message, attachment.id)
        scheduled = message.send_at is not None and message.send_at > clock.now()
        new_state = SCHEDULED if scheduled else QUEUED

        def to_ready(m: Message) -> Message | None:
            if m.state != AWAITING_SCAN or m.revoked_at:
                return None
            now = clock.now()
            for attachment in attachments:
                m = m.with_event("scan_clean", attachment_id=attachment.id, at=now)
            return replace(m, state=new_state, queued_at=now).with_event(new_state, at=now)

        message, won = transition(storage, org, message_id, to_ready)
        if won:
            enqueue_dispatch(storage, message)
        return message

    def to_failed(m: Message) -> Message | None:
        if m.state != AWAITING_SCAN or m.revoked_at:
            return None
        return replace(m, state=FAILED, failure_reason=failure).with_event("scan_rejected")

    message, won = transition(storage, org, message_id, to_failed)
    if won:
        log.info("message %s failed: an attachment was rejected or deleted", message.id)
    return message


def _copy_document(storage: Storage, message: Message, attachment_id: str) -> None:
    """Give the message its own copy of a clean document (so deleting the attachment,
    or revoking another message, never breaks this one)."""
    from urllib.parse import quote

    documents = storage.container(DOCUMENTS)
    # The source's URL, not a client for it: copying reads it server-side, in the same account.
    source_url = f"{documents.url}/{quote(f'{message.org}/{attachment_id}')}"
    target = documents.get_blob_client(message.document_blob(attachment_id))
    props = target.start_copy_from_url(source_url, requires_sync=None)
    status = props.get("copy_status")
    deadline = time.monotonic() + 30
    while status == "pending" and time.monotonic() < deadline:
        time.sleep(0.1)
        status = target.get_blob_properties().copy.status
    if status != "success":
        raise ServiceUnavailable("A document could not be prepared for sending.")


@dataclass(frozen=True)
class DispatchRequest:
    """One dispatch queue entry: `{"org", "id", "attempts"}` as JSON."""

    org: str
    message_id: str
    attempts: int = 0  # send attempts made before this entry was written

    def to_bytes(self) -> bytes:
        """The entry's body."""
        return json.dumps({"org": self.org, "id": self.message_id, "attempts": self.attempts}).encode()

    @classmethod
    def from_bytes(cls, body: bytes) -> DispatchRequest | None:
        """The request in an entry's body, or None when it is not one of ours.

        Entries written before retries were counted have no `attempts`: they count as none.
        """
        try:
            doc = json.loads(body)
            attempts = int(doc.get("attempts") or 0)
            return cls(str(doc["org"]), str(doc["id"]), max(0, attempts))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def enqueue_dispatch(storage: Storage, message: Message) -> None:
    """Put the message on the dispatch queue, hidden until its send time (up to 7 days)."""
    delay = timedelta(0)
    if message.send_at:
        delay = min(max(message.send_at - clock.now(), timedelta(0)), MAX_QUEUE_DELAY)
    # Rounded up: a message must never become visible before its send time.
    storage.queue(DISPATCH).send_message(
        DispatchRequest(message.org, message.id).to_bytes(), visibility_timeout=math.ceil(delay.total_seconds()) or None
    )


def on_attachment_scanned(storage: Storage, settings: Settings, org: str, attachment_id: str) -> None:
    """After a verdict: move on every message of the organisation waiting on this attachment."""
    rows = storage.table(MESSAGES).query_entities(
        "PartitionKey eq @org and status eq @state",
        parameters={"org": org, "state": AWAITING_SCAN},
        select=["RowKey", "attachmentIds"],
    )
    for row in rows:
        if attachment_id in json.loads(row.get("attachmentIds") or "[]"):
            advance_message(storage, settings, org, row["RowKey"])


def message_events(storage: Storage, message: Message) -> list[Event]:
    """Everything that happened to the message, oldest first: its lifecycle and the patient's activity."""
    return list_events(storage, message.id, history=message.history)


def message_view(storage: Storage, message: Message) -> dict[str, Any]:
    """The message as `GET /api/v1/messages/{id}` shows it."""
    events = message_events(storage, message)
    counts = download_counts(events)
    attachments = []
    for attachment_id in message.attachment_ids:
        found = find_attachment(storage, message.org, attachment_id)
        attachments.append(
            {
                "id": attachment_id,
                "filename": found.filename if found else None,
                "downloads": counts.get(attachment_id, 0),
            }
        )
    return {
        "id": message.id,
        "status": message.status,
        "createdAt": clock.iso(message.created_at),
        "sentAt": clock.iso(message.sent_at),
        "deliveredAt": clock.iso(message.delivered_at),
        "failureReason": message.failure_reason,
        "linkExpiresAt": clock.iso(message.link_expires_at),
        "segments": message.segments,
        "attachments": attachments,
        "events": [{"type": e.type, "at": clock.iso(e.at)} for e in events],
    }


def accepted_view(message: Message) -> dict[str, Any]:
    """The 202 answer to a new message."""
    return {
        "id": message.id,
        "status": message.status,
        "segments": message.segments,
        "encoding": message.encoding,
        "linkExpiresAt": clock.iso(message.link_expires_at),
    }


def delete_documents(storage: Storage, message: Message) -> None:
    """Delete this message's copies of its documents."""
    for attachment_id in message.attachment_ids:
        storage.delete_blob(DOCUMENTS, message.document_blob(attachment_id))


def revoke_message(storage: Storage, org: str, message_id: str) -> Message:
    """Kill the link at once, delete the documents, and make sure an unsent message never goes."""

    def to_revoked(m: Message) -> Message | None:
        if m.revoked_at:
            return None
        return replace(m, revoked_at=clock.now(), sealed_token=None, body=None).with_event("revoked")

    message, won = transition(storage, org, message_id, to_revoked)
    delete_documents(storage, message)
    if won:
        log.info("message %s revoked", message.id)
    return message


def unlock_message(storage: Storage, org: str, message_id: str) -> Message:
    """Make a link locked by wrong dates of birth work again, with its attempts reset."""

    def to_unlocked(m: Message) -> Message | None:
        if not m.locked and m.dob_attempts == 0:
            return None
        return replace(m, locked=False, dob_attempts=0).with_event("unlocked")

    message, won = transition(storage, org, message_id, to_unlocked)
    if won:
        log.info("message %s unlocked", message.id)
    return message
