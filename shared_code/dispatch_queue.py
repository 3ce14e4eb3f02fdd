"""The dispatch queues: their entry format and every write to them (enqueue, re-queue, poison).

An entry is `{"org", "id", "attempts"}` as JSON; `attempts` counts the send attempts made
before the entry was written, so try number n is `attempts + dequeue count`. A batch's message
goes on `batch-dispatch` (behind single sends) with `"queue"` and its `"batch"` id, so whoever
queues it (its batch's worker, the dispatcher re-queueing it, the sweeper) keeps it there and its
sender can check that the batch was not cancelled.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from shared_code import clock
from shared_code.storage import BATCH_DISPATCH, DISPATCH, Storage

if TYPE_CHECKING:
    from shared_code.message_model import Message

log = logging.getLogger(__name__)

DISPATCH_POISON = f"{DISPATCH}-poison"
#: Azure Storage queues hide a message for at most 7 days; longer waits are re-queued.
MAX_QUEUE_DELAY = timedelta(days=7) - timedelta(minutes=5)


@dataclass(frozen=True)
class DispatchRequest:
    """One dispatch queue entry: `{"org", "id", "attempts"}` as JSON."""

    org: str
    message_id: str
    attempts: int = 0  # send attempts made before this entry was written
    #: The queue the entry lives on: a batch's messages stay on theirs, behind single sends, when re-queued.
    queue: str = DISPATCH
    #: The batch a message on `batch-dispatch` belongs to.
    batch_id: str | None = None

    def to_bytes(self) -> bytes:
        """The entry's body."""
        doc: dict = {"org": self.org, "id": self.message_id, "attempts": self.attempts}
        if self.queue != DISPATCH:
            doc["queue"] = self.queue
        if self.batch_id is not None:
            doc["batch"] = self.batch_id
        return json.dumps(doc).encode()

    @classmethod
    def from_bytes(cls, body: bytes) -> DispatchRequest | None:
        """The request in an entry's body, or None when it is not one of ours."""
        try:
            doc = json.loads(body)
            queue = doc.get("queue", DISPATCH)
            if queue not in (DISPATCH, BATCH_DISPATCH):
                return None
            batch = doc.get("batch")
            return cls(
                str(doc["org"]),
                str(doc["id"]),
                max(0, int(doc["attempts"])),
                queue,
                None if batch is None else str(batch),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def _send(storage: Storage, request: DispatchRequest, delay_seconds: float) -> None:
    # Rounded up: an entry must never become visible before it is due.
    seconds = math.ceil(max(0.0, delay_seconds))
    storage.queue(request.queue).send_message(request.to_bytes(), visibility_timeout=seconds or None)


def enqueue_dispatch(storage: Storage, message: Message) -> None:
    """Put the message on its dispatch queue (a batch's message on `batch-dispatch`), hidden until
    its send time (up to 7 days)."""
    delay = timedelta(0)
    if message.send_at:
        delay = min(max(message.send_at - clock.now(), timedelta(0)), MAX_QUEUE_DELAY)
    queue = BATCH_DISPATCH if message.batch_id else DISPATCH
    _send(
        storage, DispatchRequest(message.org, message.id, queue=queue, batch_id=message.batch_id), delay.total_seconds()
    )


def requeue_dispatch(storage: Storage, request: DispatchRequest, delay_seconds: float) -> None:
    """Put an entry back for a later try (`request.attempts` says how many were made)."""
    _send(storage, request, delay_seconds)


def poison_dispatch(storage: Storage, request: DispatchRequest) -> None:
    """Keep the entry of a message given up on in the poison queue, for operators."""
    storage.queue(DISPATCH_POISON).send_message(request.to_bytes())
    log.warning("message %s: gave up; its entry is in %s", request.message_id, DISPATCH_POISON)


def poison_unreadable(storage: Storage, body: bytes) -> None:
    """Move an entry that is not a dispatch request straight to the poison queue (retrying cannot help)."""
    storage.queue(DISPATCH_POISON).send_message(body)
    log.warning("an unreadable dispatch entry was moved to %s", DISPATCH_POISON)
