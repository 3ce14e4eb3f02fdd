"""The practice's actions on a message's link: revoke it, or unlock it after wrong dates of birth."""

from __future__ import annotations

import logging

from shared_code import clock, lifecycle
from shared_code.message_model import Message
from shared_code.message_store import delete_documents, transition
from shared_code.storage import Storage

log = logging.getLogger(__name__)


def revoke_message(storage: Storage, org: str, message_id: str) -> Message:
    """Kill the link at once, delete the documents, and make sure an unsent message never goes."""
    message, won = transition(storage, org, message_id, lambda m: lifecycle.revoked(m, clock.now()))
    delete_documents(storage, message)
    if won:
        log.info("message %s revoked", message.id)
    return message


def unlock_message(storage: Storage, org: str, message_id: str) -> Message:
    """Make a link locked by wrong dates of birth work again, with its attempts reset."""
    message, won = transition(storage, org, message_id, lambda m: lifecycle.unlocked(m, clock.now()))
    if won:
        log.info("message %s unlocked", message.id)
    return message
