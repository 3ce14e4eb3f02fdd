"""Toolbar API: this API's OpenAPI 3.1 description, served without a token."""

from __future__ import annotations

import azure.functions as func

from functions.http import json_response
from functions.tracing import TracedBlueprint

bp = TracedBlueprint()

#: Short caching: clients and proxies may keep it a few minutes, and a deployment shows soon after.
CACHE_CONTROL = "public, max-age=300"


@bp.route(route="api/v1/openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def openapi_json(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/v1/openapi.json: the OpenAPI document as JSON (no token needed)."""
    from shared_code.openapi import openapi_document

    return json_response(200, openapi_document(), {"Cache-Control": CACHE_CONTROL})
