"""Toolbar API: send a message, read what happened to it, revoke or unlock its link."""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func

from functions.http import api_call, json_response
from functions.tracing import TracedBlueprint
from shared_code.json_body import parse_json_object
from shared_code.settings import get_settings
from shared_code.storage import get_storage

if TYPE_CHECKING:
    from shared_code.auth import Principal
    from shared_code.idempotency import Reply

# The domain modules are imported in each handler: the app indexes (cold start) without them.

bp = TracedBlueprint()


@bp.route(route="api/v1/messages", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def messages_create(req: func.HttpRequest) -> func.HttpResponse:
    """POST /api/v1/messages: 202 with the message's first status."""

    def action(principal: Principal) -> func.HttpResponse:
        from shared_code.idempotency import Reply, check_key, request_fingerprint, run_once
        from shared_code.message_create import create_message
        from shared_code.message_request import parse_new_message
        from shared_code.message_views import accepted_view

        settings, storage = get_settings(), get_storage()
        key = check_key(req.headers.get("Idempotency-Key"))
        payload = parse_json_object(req.get_body())

        def create(operation_id: str | None) -> Reply:
            # Under a key, the message's id is the claim's operation id: a run that takes over
            # an abandoned claim finds the message that run made instead of making another.
            request = parse_new_message(payload, settings)
            if request.template_id is not None:
                # A template gives the text (filled for this patient) and documents before the usual
                # checks; imported only here, so the app indexes and plain sends run without it.
                from shared_code.templates import apply_template

                request = apply_template(storage, settings, principal, request)
            message = create_message(storage, settings, principal, request, message_id=operation_id)
            return Reply(202, accepted_view(message), {"Location": f"/api/v1/messages/{message.id}"})

        reply = run_once(
            storage, principal.org, key, request_fingerprint(payload), settings.idempotency_ttl_hours, create
        )
        return json_response(reply.status, reply.body, reply.headers)

    return api_call(req, action)


@bp.route(route="api/v1/messages", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def messages_list(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/v1/messages: the organisation's messages (to one patient, or since a time), newest first."""

    def action(principal: Principal) -> func.HttpResponse:
        from shared_code.history import list_history, parse_history_query

        query = parse_history_query(dict(req.params))
        return json_response(200, list_history(get_storage(), get_settings(), principal.org, query))

    return api_call(req, action)


@bp.route(route="api/v1/messages/{id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def messages_get(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/v1/messages/{id}: status, receipts and events."""

    def action(principal: Principal) -> func.HttpResponse:
        from shared_code.message_store import get_message
        from shared_code.message_views import message_view

        storage = get_storage()
        message = get_message(storage, principal.org, req.route_params.get("id", ""))
        return json_response(200, message_view(storage, message))

    return api_call(req, action)


@bp.route(route="api/v1/messages/{id}/revoke", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def messages_revoke(req: func.HttpRequest) -> func.HttpResponse:
    """POST /api/v1/messages/{id}/revoke: the link dies at once."""

    def action(principal: Principal) -> func.HttpResponse:
        from shared_code.message_links import revoke_message
        from shared_code.message_views import message_view

        storage = get_storage()
        message = revoke_message(storage, principal.org, req.route_params.get("id", ""))
        return json_response(200, message_view(storage, message))

    return api_call(req, action)


@bp.route(route="api/v1/messages/{id}/unlock", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def messages_unlock(req: func.HttpRequest) -> func.HttpResponse:
    """POST /api/v1/messages/{id}/unlock: a locked link works again."""

    def action(principal: Principal) -> func.HttpResponse:
        from shared_code.message_links import unlock_message
        from shared_code.message_views import message_view

        storage = get_storage()
        message = unlock_message(storage, principal.org, req.route_params.get("id", ""))
        return json_response(200, message_view(storage, message))

    return api_call(req, action)
