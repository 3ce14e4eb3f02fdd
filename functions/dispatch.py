"""Queue trigger: send each due message as an SMS."""

from __future__ import annotations

import logging

import azure.functions as func

from shared_code.dispatch import dispatch_message, parse_dispatch
from shared_code.settings import get_settings
from shared_code.storage import DISPATCH, get_storage

bp = func.Blueprint()
log = logging.getLogger("enclose.dispatch")


@bp.queue_trigger(arg_name="msg", queue_name=DISPATCH, connection="AzureWebJobsStorage")
def dispatch_queued_message(msg: func.QueueMessage) -> None:
    """Send one message; a transient failure raises so the queue delivers it again."""
    target = parse_dispatch(msg.get_body())
    if target is None:
        # Not ours: raising would only move it to the poison queue after 5 tries; do it now.
        raise ValueError(f"queue message {msg.id} is not a dispatch request")
    outcome = dispatch_message(get_storage(), get_settings(), *target, dequeue_count=msg.dequeue_count or 1)
    log.info("dispatch of message %s: %s (try %s)", target[1], outcome, msg.dequeue_count)
