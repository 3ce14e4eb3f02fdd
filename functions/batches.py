"""Toolbar API for batch sending (one CSV, many patients), and the two queues that carry it out."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import azure.functions as func

from functions.http import api_call, json_response
from functions.tracing import TracedBlueprint
from shared_code.settings import get_settings
from shared_code.storage import BATCH_DISPATCH, BATCH_ROWS, get_storage

if TYPE_CHECKING:
    from shared_code.auth import Principal

bp = TracedBlueprint()
log = logging.getLogger("enclose.batches")
# shared_code.batches is imported in each handler, not here: the app indexes (cold start) without it.


@bp.route(route="api/v1/batches", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def batches_create(req: func.HttpRequest) -> func.HttpResponse:
    """POST /api/v1/batches: 201 with the rows counted, the first errors and previews; nothing is sent."""

    def action(principal: Principal) -> func.HttpResponse:
        from shared_code.batches import create_batch

        answer = create_batch(get_storage(), get_settings(), principal, req.headers.get("Content-Type"), req.get_body())
        return json_response(201, answer, {"Location": f"/api/v1/batches/{answer['id']}"})

    return api_call(req, action)


@bp.route(route="api/v1/batches/{id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def batches_get(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/v1/batches/{id}: status and counters."""

    def action(principal: Principal) -> func.HttpResponse:
        from shared_code.batches import batch_view

        return json_response(200, batch_view(get_storage(), principal.org, req.route_params.get("id", "")))

    return api_call(req, action)


@bp.route(route="api/v1/batches/{id}/send", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def batches_send(req: func.HttpRequest) -> func.HttpResponse:
    """POST /api/v1/batches/{id}/send: 202, sending or scheduled (Idempotency-Key honoured)."""

    def action(principal: Principal) -> func.HttpResponse:
        from shared_code.batch_send import send_batch
        from shared_code.idempotency import Reply, check_key, request_fingerprint, run_once

        storage, settings = get_storage(), get_settings()
        batch_id = req.route_params.get("id", "")
        key = check_key(req.headers.get("Idempotency-Key"))

        def send(_: str | None) -> Reply:
            return Reply(202, send_batch(storage, principal.org, batch_id), {"Location": f"/api/v1/batches/{batch_id}"})

        fingerprint = request_fingerprint({"sendBatch": batch_id})
        reply = run_once(storage, principal.org, key, fingerprint, settings.idempotency_ttl_hours, send)
        return json_response(reply.status, reply.body, reply.headers)

    return api_call(req, action)


@bp.route(route="api/v1/batches/{id}/cancel", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def batches_cancel(req: func.HttpRequest) -> func.HttpResponse:
    """POST /api/v1/batches/{id}/cancel: rows not yet sent are never sent."""

    def action(principal: Principal) -> func.HttpResponse:
        from shared_code.batch_send import cancel_batch

        return json_response(200, cancel_batch(get_storage(), principal.org, req.route_params.get("id", "")))

    return api_call(req, action)


@bp.route(route="api/v1/batches/{id}/messages", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def batches_messages(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/v1/batches/{id}/messages: the batch's messages by row, a page at a time."""

    def action(principal: Principal) -> func.HttpResponse:
        from shared_code.batches import messages_page

        page = messages_page(get_storage(), principal.org, req.route_params.get("id", ""), req.params)
        return json_response(200, page)

    return api_call(req, action)


@bp.route(route="api/v1/batches/{id}/errors.csv", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def batches_errors_csv(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/v1/batches/{id}/errors.csv: the refused rows with a Reason column."""

    def action(principal: Principal) -> func.HttpResponse:
        from shared_code.batches import errors_csv

        batch_id = req.route_params.get("id", "")
        data = errors_csv(get_storage(), get_settings(), principal.org, batch_id)
        return func.HttpResponse(
            data,
            status_code=200,
            headers={
                "Content-Disposition": f'attachment; filename="batch-{batch_id}-errors.csv"',
                "Cache-Control": "no-store",
            },
            mimetype="text/csv",
            charset="utf-8",
        )

    return api_call(req, action)


@bp.queue_trigger(arg_name="msg", queue_name=BATCH_ROWS, connection="AzureWebJobsStorage")
def batch_rows_make_messages(msg: func.QueueMessage) -> None:
    """Make one chunk's messages (idempotent: a redelivered chunk makes none twice)."""
    from shared_code.batch_send import make_chunk_messages, read_chunk_entry

    entry = read_chunk_entry(msg.get_body())
    if entry is None:
        log.warning("queue message %s is not a batch chunk", msg.id)
        return
    org, batch_id, chunk = entry
    made = make_chunk_messages(get_storage(), get_settings(), org, batch_id, chunk)
    log.info("batch %s chunk %d: %d message(s)", batch_id, chunk, made)


@bp.queue_trigger(arg_name="msg", queue_name=BATCH_DISPATCH, connection="AzureWebJobsStorage")
def batch_dispatch_message(msg: func.QueueMessage) -> None:
    """Send one batch message, once no single send is waiting."""
    from shared_code.batch_send import dispatch_batch_message

    outcome = dispatch_batch_message(get_storage(), get_settings(), msg.get_body(), msg.dequeue_count or 1)
    log.info("batch dispatch of queue message %s: %s", msg.id, outcome)
