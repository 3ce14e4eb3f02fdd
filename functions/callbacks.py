"""Status callbacks: the practice registers its endpoint; a queue trigger delivers each event."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import azure.functions as func

from functions.http import api_call, json_response
from functions.tracing import TracedBlueprint
from shared_code.settings import get_settings
from shared_code.storage import CALLBACK_QUEUE, get_storage

if TYPE_CHECKING:
    from shared_code.auth import Principal

bp = TracedBlueprint()
log = logging.getLogger("enclose.callbacks")


@bp.route(route="api/v1/callback", methods=["GET", "PUT", "DELETE"], auth_level=func.AuthLevel.ANONYMOUS)
def callback_registration(req: func.HttpRequest) -> func.HttpResponse:
    """PUT registers the endpoint (the secret shown this once), GET shows it, DELETE removes it."""

    def action(principal: Principal) -> func.HttpResponse:
        from shared_code.callbacks import delete_registration, read_registration, register
        from shared_code.json_body import parse_json_object

        storage = get_storage()
        if req.method == "PUT":
            return json_response(
                200, register(storage, get_settings(), principal.org, parse_json_object(req.get_body()))
            )
        if req.method == "DELETE":
            delete_registration(storage, principal.org)
            return func.HttpResponse(status_code=204)
        return json_response(200, read_registration(storage, principal.org))

    return api_call(req, action)


@bp.route(route="api/v1/callback/test", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def callback_test(req: func.HttpRequest) -> func.HttpResponse:
    """POST /api/v1/callback/test: queue a `test` event for the endpoint."""

    def action(principal: Principal) -> func.HttpResponse:
        from shared_code.callbacks import announce_test

        return json_response(202, announce_test(get_storage(), principal.org))

    return api_call(req, action)


@bp.queue_trigger(arg_name="msg", queue_name=CALLBACK_QUEUE, connection="AzureWebJobsStorage")
def deliver_callback(msg: func.QueueMessage) -> None:
    """POST one event to its organisation's endpoint; a retry is a new queue entry, never a raise."""
    from shared_code.callbacks import deliver

    outcome = deliver(get_storage(), get_settings(), msg.get_body())
    log.info("callback queue entry %s: %s %s", msg.id, outcome.result, outcome.detail)
