"""Toolbar API: templates (saved texts with documents): create, list, read, change, delete, preview."""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func

from functions.http import api_call, json_response
from functions.tracing import TracedBlueprint
from shared_code.errors import MethodNotAllowed
from shared_code.json_body import parse_json_object
from shared_code.settings import get_settings
from shared_code.storage import get_storage

if TYPE_CHECKING:
    from shared_code.auth import Principal

bp = TracedBlueprint()
# shared_code.templates is imported in each handler, not here: the app indexes (cold start) without it.


@bp.route(route="api/v1/templates", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def templates_collection(req: func.HttpRequest) -> func.HttpResponse:
    """GET a page of templates; POST a new one (201)."""

    def action(principal: Principal) -> func.HttpResponse:
        from shared_code.templates import create_template, list_templates

        if req.method == "GET":
            return json_response(200, list_templates(get_storage(), principal, dict(req.params)))
        if req.method == "POST":
            payload = parse_json_object(req.get_body())
            template = create_template(get_storage(), get_settings(), principal, payload)
            headers = {"Location": f"/api/v1/templates/{template.id}", "ETag": template.etag}
            return json_response(201, template.to_api(), headers)
        raise MethodNotAllowed()

    return api_call(req, action)


@bp.route(route="api/v1/templates/{id}", methods=["GET", "PUT", "DELETE"], auth_level=func.AuthLevel.ANONYMOUS)
def templates_item(req: func.HttpRequest) -> func.HttpResponse:
    """GET, PUT (with If-Match) or DELETE one template."""

    def action(principal: Principal) -> func.HttpResponse:
        from shared_code.templates import delete_template, read_template, update_template

        template_id = req.route_params.get("id", "")
        if req.method == "GET":
            template = read_template(get_storage(), principal, template_id)
            return json_response(200, template.to_api(), {"ETag": template.etag})
        if req.method == "PUT":
            payload = parse_json_object(req.get_body())
            template = update_template(
                get_storage(), get_settings(), principal, template_id, req.headers.get("If-Match"), payload
            )
            return json_response(200, template.to_api(), {"ETag": template.etag})
        if req.method == "DELETE":
            delete_template(get_storage(), principal, template_id, req.headers.get("If-Match"))
            return func.HttpResponse(status_code=204)
        raise MethodNotAllowed()

    return api_call(req, action)


@bp.route(route="api/v1/templates/{id}/preview", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def templates_preview(req: func.HttpRequest) -> func.HttpResponse:
    """POST: the template's text as a patient would get it, with segments and what is missing."""

    def action(principal: Principal) -> func.HttpResponse:
        from shared_code.templates import preview_template

        payload = parse_json_object(req.get_body())
        preview = preview_template(get_storage(), get_settings(), principal, req.route_params.get("id", ""), payload)
        return json_response(200, preview)

    return api_call(req, action)
