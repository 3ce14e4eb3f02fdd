"""Toolbar API: whether the service is sending texts, for operators and toolbars."""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func

from functions.http import api_call, json_response
from functions.tracing import TracedBlueprint
from shared_code.storage import get_storage

if TYPE_CHECKING:
    from shared_code.auth import Principal

bp = TracedBlueprint()


@bp.route(route="api/v1/health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/v1/health: 200 with whether texts are going out, or paused because ACS refuses the sender."""

    def action(principal: Principal) -> func.HttpResponse:
        from shared_code.sms_pause import service_health

        return json_response(200, service_health(get_storage()), {"Cache-Control": "no-store"})

    return api_call(req, action)
