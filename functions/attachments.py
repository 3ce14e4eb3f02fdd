"""Toolbar API: upload an attachment, read its status, delete it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func

from functions.http import api_call, json_response
from functions.tracing import TracedBlueprint
from shared_code.errors import MethodNotAllowed
from shared_code.settings import get_settings
from shared_code.storage import get_storage

if TYPE_CHECKING:
    from shared_code.auth import Principal

bp = TracedBlueprint()


@bp.route(route="api/v1/attachments", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def attachments_upload(req: func.HttpRequest) -> func.HttpResponse:
    """POST /api/v1/attachments: 202 while the file is scanned."""

    def action(principal: Principal) -> func.HttpResponse:
        from shared_code.attachments import upload_attachment
        from shared_code.multipart import read_file_part

        settings = get_settings()
        # Up to the larger upload limit: a PDF or picture over MAX_ATTACHMENT_BYTES is made to fit it.
        upload = read_file_part(req.headers.get("Content-Type"), req.get_body(), settings.upload_limit)
        attachment = upload_attachment(get_storage(), settings, principal, upload.filename, upload.data)
        return json_response(202, attachment.to_api(), {"Location": f"/api/v1/attachments/{attachment.id}"})

    return api_call(req, action)


@bp.route(route="api/v1/attachments/{id}", methods=["GET", "DELETE"], auth_level=func.AuthLevel.ANONYMOUS)
def attachments_item(req: func.HttpRequest) -> func.HttpResponse:
    """GET or DELETE /api/v1/attachments/{id}."""

    def action(principal: Principal) -> func.HttpResponse:
        from shared_code.attachments import delete_attachment, get_attachment

        attachment_id = req.route_params.get("id", "")
        if req.method == "GET":
            return json_response(200, get_attachment(get_storage(), principal.org, attachment_id).to_api())
        if req.method == "DELETE":
            delete_attachment(get_storage(), principal.org, attachment_id)
            return func.HttpResponse(status_code=204)
        raise MethodNotAllowed()

    return api_call(req, action)
