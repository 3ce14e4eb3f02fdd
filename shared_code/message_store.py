"""Message rows and their documents in storage: find, get, the ETag-checked write, and
`transition`, the one place a lifecycle change (`shared_code.lifecycle`) is stored."""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import replace

from shared_code.errors import NotFound, ServiceUnavailable
from shared_code.message_model import Message, message_from_entity, message_to_entity
from shared_code.storage import DOCUMENTS, MESSAGES, Storage
from shared_code.tables import RowChanged

log = logging.getLogger(__name__)

#: A change to a message: the new message, or None to leave it as it is.
Change = Callable[[Message], Message | None]


def find_message(storage: Storage, org: str, message_id: str) -> Message | None:
    """The message of this organisation with this id, or None."""
    row = storage.table(MESSAGES).get(org, message_id)
    return None if row is None else message_from_entity(row)


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

    Raises `shared_code.tables.RowChanged` on a lost race (the row was changed or deleted since);
    callers reload and decide again. That is what keeps the lock-out counter and the state
    machine exact.
    """
    if message.etag is None:
        # The table's replace without an ETag writes unconditionally: never for a message.
        raise ValueError("a message is saved only over the version it was read as")
    etag = storage.table(MESSAGES).replace(message_to_entity(message), etag=message.etag)
    return replace(message, etag=etag)


def transition(
    storage: Storage,
    org: str,
    message_id: str,
    change: Change,
    *,
    attempts: int = 10,
    known: Message | None = None,
) -> tuple[Message, bool]:
    """Apply `change` to the stored message, re-reading and retrying on a lost ETag race.

    Returns the message and whether this call changed it: exactly one of several racing
    callers gets True. With `known` (a version in hand, as the send path has), the change is
    first tried on it, which saves a read when nobody else wrote since; a refusal or a lost
    race there is decided again on the stored row, since only a write is final.
    """
    if known is not None:
        changed = change(known)
        if changed is not None and changed != known:
            try:
                return _announced(storage, known, save_message(storage, changed)), True
            except RowChanged:
                pass
    for _ in range(attempts):
        current = get_message(storage, org, message_id)
        changed = change(current)
        if changed is None or changed == current:
            return current, False
        try:
            return _announced(storage, current, save_message(storage, changed)), True
        except RowChanged:
            # Lost a race: a short random pause keeps racing callers from colliding again.
            time.sleep(random.uniform(0, 0.01))
            continue
    raise ServiceUnavailable("The message is busy. Please try again.")


def _announced(storage: Storage, before: Message, after: Message) -> Message:
    """The one hook for lifecycle callbacks: the events this change recorded go to the callbacks
    queue (`shared_code.callbacks.announce`, which never raises and makes no HTTP call)."""
    from shared_code.callbacks import announce

    announce(storage, after.org, after.id, after.history[len(before.history) :], after.status, batch_id=after.batch_id)
    return after


def copy_document(storage: Storage, message: Message, attachment_id: str, source: str = DOCUMENTS) -> None:
    """Give the message its own copy of a clean document (so deleting the attachment,
    or revoking another message, never breaks this one). `source` is the container the
    document is kept in: `documents` for an upload, `template-documents` for a template's."""
    from urllib.parse import quote

    origin = storage.container(source)
    # The source's URL, not a client for it: copying reads it server-side, in the same account.
    source_url = f"{origin.url}/{quote(f'{message.org}/{attachment_id}')}"
    target = storage.container(DOCUMENTS).get_blob_client(message.document_blob(attachment_id))
    props = target.start_copy_from_url(source_url, requires_sync=None)
    status = props.get("copy_status")
    deadline = time.monotonic() + 30
    while status == "pending" and time.monotonic() < deadline:
        time.sleep(0.1)
        status = target.get_blob_properties().copy.status
    if status != "success":
        raise ServiceUnavailable("A document could not be prepared for sending.")


def delete_documents(storage: Storage, message: Message) -> None:
    """Delete this message's copies of its documents."""
    for attachment_id in message.attachment_ids:
        storage.delete_blob(DOCUMENTS, message.document_blob(attachment_id))
