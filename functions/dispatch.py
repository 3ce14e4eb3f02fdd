"""Queue trigger: send each due message as an SMS."""

from __future__ import annotations

import logging

import azure.functions as func

from functions.tracing import TracedBlueprint
from shared_code.settings import get_settings
from shared_code.storage import DISPATCH, get_storage

bp = TracedBlueprint()
log = logging.getLogger("enclose.dispatch")


@bp.queue_trigger(arg_name="msg", queue_name=DISPATCH, connection="AzureWebJobsStorage")
def dispatch_queued_message(msg: func.QueueMessage) -> None:
    """Send one message. Transient SMS failures re-queue it with a delay; other errors raise."""
    from shared_code.dispatch import dispatch_message
    from shared_code.dispatch_queue import DispatchRequest, poison_unreadable

    body = msg.get_body()
    request = DispatchRequest.from_bytes(body)
    if request is None:
        poison_unreadable(get_storage(), body)  # retrying cannot make it readable
        log.warning("queue message %s is not a dispatch request", msg.id)
        return
    outcome = dispatch_message(get_storage(), get_settings(), request, dequeue_count=msg.dequeue_count or 1)
    log.info(
        "dispatch of message %s: %s (try %d)", request.message_id, outcome, request.attempts + (msg.dequeue_count or 1)
    )
