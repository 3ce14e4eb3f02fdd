"""Sending a queued message: the last checks, the SMS, and what it leaves in the record.

A queue message is `{"org", "id"}`. Sending is safe to repeat: the stored state says
whether the text already went, and the stored repeatability id makes ACS drop a
repeat of a send whose answer was lost.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace

from shared_code import clock
from shared_code.crypto import unseal
from shared_code.events import record_event
from shared_code.messages import (
    FAILED,
    QUEUED,
    SCHEDULED,
    SENT,
    Message,
    advance_message,
    enqueue_dispatch,
    find_message,
    portal_link,
    sms_text,
    token_seal_key,
    transition,
)
from shared_code.settings import Settings
from shared_code.sms import SmsError, send_sms
from shared_code.storage import DOCUMENTS, SMS_IDS, Storage

log = logging.getLogger(__name__)


class DispatchRetry(Exception):
    """Sending failed in a way that may pass: the queue should deliver the message again."""


def parse_dispatch(body: bytes) -> tuple[str, str] | None:
    """(org, message id) from a queue message, or None when it is not one of ours."""
    try:
        doc = json.loads(body)
        return str(doc["org"]), str(doc["id"])
    except (ValueError, KeyError, TypeError):
        return None


def dispatch_message(storage: Storage, settings: Settings, org: str, message_id: str,
                     dequeue_count: int) -> str:
    """Send the message if it is due and still wanted; returns what happened, for the log.

    Raises DispatchRetry for a transient failure before the last attempt, and also on
    the last one after recording the failure, so the queue entry ends in the poison queue.
    """
    message = find_message(storage, org, message_id)
    if message is None:
        return "unknown"
    if message.state == "awaiting_scan":
        advance_message(storage, settings, org, message_id)
        return "awaiting_scan"
    if message.revoked_at:
        return "revoked"
    if message.state not in (QUEUED, SCHEDULED):
        return message.state  # sent, delivered or failed already: nothing to do
    if message.send_at and message.send_at > clock.now():
        enqueue_dispatch(storage, message)  # further out than a queue can hide a message
        return "rescheduled"

    problem = _why_not_sendable(storage, message)
    if problem:
        _fail(storage, message, problem)
        return "failed"

    if message.first_sent_at is None:
        message, _ = transition(storage, org, message_id,
                                lambda m: None if m.first_sent_at else replace(m, first_sent_at=clock.now()))
    token = unseal(token_seal_key(settings), message.sealed_token)
    try:
        accepted = send_sms(
            settings, to=message.mobile, text=sms_text(message.body, portal_link(settings, token)),
            repeatability_id=message.repeatability_id, first_sent=message.first_sent_at,
            tag=message.id,
        )
    except SmsError as error:
        if error.retryable and dequeue_count < settings.sms_max_attempts:
            record_event(storage, message.id, "send_retry")
            log.warning("message %s: send attempt %d failed (%s); will retry",
                        message.id, dequeue_count, error.reason)
            raise DispatchRetry(error.reason) from None
        _fail(storage, message, f"The text could not be sent: {error.reason}.")
        if error.retryable:
            raise DispatchRetry(error.reason) from None  # keep the entry in the poison queue
        return "failed"

    storage.table(SMS_IDS).upsert_entity(
        {"PartitionKey": accepted.acs_message_id, "RowKey": "", "org": org, "messageId": message_id}
    )

    def to_sent(m: Message) -> Message | None:
        if m.state not in (QUEUED, SCHEDULED):
            return None
        # The text has gone: its words and the token are no longer needed, so not kept.
        return replace(m, state=SENT, sent_at=clock.now(), acs_message_id=accepted.acs_message_id,
                       body=None, sealed_token=None)

    message, won = transition(storage, org, message_id, to_sent)
    if won:
        record_event(storage, message.id, "sent")
        log.info("message %s sent (acs id %s)", message.id, accepted.acs_message_id)
    return "sent"


def _why_not_sendable(storage: Storage, message: Message) -> str | None:
    if message.expired:
        return "The link expired before the text could be sent."
    if not message.sealed_token or not message.mobile or not message.body:
        return "The message can no longer be sent."
    documents = storage.container(DOCUMENTS)
    for attachment_id in message.attachment_ids:
        if not documents.get_blob_client(message.document_blob(attachment_id)).exists():
            return "A document is no longer available, so the text was not sent."
    return None


def _fail(storage: Storage, message: Message, reason: str) -> None:
    def to_failed(m: Message) -> Message | None:
        if m.state not in (QUEUED, SCHEDULED):
            return None
        return replace(m, state=FAILED, failure_reason=reason, sealed_token=None, body=None)

    message, won = transition(storage, message.org, message.id, to_failed)
    if won:
        record_event(storage, message.id, "delivery_failed")
        log.info("message %s failed to send", message.id)
