"""Patient portal: the date-of-birth form, the document list, the download redirect.

No GET changes anything a patient relies on (link previews fetch links first); the
only write a GET makes is the `portal_opened` receipt. Errors become pages in
`functions/http.py`; the form and cookies are read by `shared_code/portal_forms.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import azure.functions as func

from functions.http import is_https, portal_call, portal_page, portal_redirect
from functions.tracing import TracedBlueprint
from shared_code.pages import KIND_LABELS, STATIC, human_size, render
from shared_code.portal_forms import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    cookie_header,
    csrf_max_age,
    csrf_valid,
    new_csrf,
    parse_form,
    read_cookies,
)
from shared_code.settings import get_settings
from shared_code.storage import get_storage

if TYPE_CHECKING:
    from shared_code.message_model import Message

# The portal's rules (`shared_code.portal`, with the message store under it) are imported in each
# handler: the app indexes (cold start) without them.
bp = TracedBlueprint()
_STATIC_TYPES = {
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}


def _cookies(req: func.HttpRequest) -> dict[str, str]:
    return read_cookies(req.headers.get("Cookie"))


def _form(
    req: func.HttpRequest,
    token: str,
    message: Message,
    status: int,
    csrf: str,
    *,
    values: dict[str, str] | None = None,
    summary: str | None = None,
    error_fields: dict[str, str] | None = None,
    attempts_left: int | None = None,
    set_csrf: bool,
) -> func.HttpResponse:
    from shared_code.portal import practice_name

    fields = list(error_fields or {})
    html = render(
        "dob_form.html",
        title="What is your date of birth?",
        practice_name=practice_name(message),
        token=token,
        csrf=csrf,
        values=values or {},
        error_summary=summary,
        error_fields=fields,
        first_error_field=fields[0] if fields else "day",
        attempts_left=attempts_left,
        document_count=len(message.attachment_ids),
    )
    extra = {}
    if set_csrf:
        extra["Set-Cookie"] = cookie_header(
            CSRF_COOKIE, csrf, token, secure=is_https(req), max_age=csrf_max_age(get_settings())
        )
    return portal_page(req, status, html, extra)


@bp.route(route="p/{token}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def portal_link(req: func.HttpRequest) -> func.HttpResponse:
    """GET shows the date-of-birth form; POST checks the date."""
    token = req.route_params.get("token", "")

    def action() -> func.HttpResponse:
        from shared_code.portal import check_dob, new_session, note_opened, resolve_link

        storage, settings = get_storage(), get_settings()
        message = resolve_link(storage, token)
        # An unknown link needs no secret for its 404; a live one needs both (503 page without them).
        settings.check_secrets()
        cookies = _cookies(req)
        if req.method == "GET":
            note_opened(storage, message)
            csrf = cookies.get(CSRF_COOKIE) or new_csrf()
            return _form(req, token, message, 200, csrf, set_csrf=CSRF_COOKIE not in cookies)

        form = parse_form(req.get_body())
        values = {"day": form.get("dob-day", ""), "month": form.get("dob-month", ""), "year": form.get("dob-year", "")}
        if not csrf_valid(cookies.get(CSRF_COOKIE), form.get("csrf")):
            csrf = new_csrf()
            return _form(
                req,
                token,
                message,
                400,
                csrf,
                values=values,
                summary="Your session has timed out. Enter your date of birth again.",
                error_fields={"day": ""},
                set_csrf=True,
            )
        outcome = check_dob(storage, settings, message, values["day"], values["month"], values["year"])
        if outcome.kind == "verified":
            cookie = cookie_header(
                SESSION_COOKIE,
                new_session(settings, token),
                token,
                secure=is_https(req),
                max_age=settings.session_ttl_seconds,
            )
            return portal_redirect(req, f"/p/{token}/documents", {"Set-Cookie": cookie})
        return _form(
            req,
            token,
            message,
            200,
            cookies[CSRF_COOKIE],
            values=values,
            summary=outcome.summary,
            error_fields=outcome.field_errors,
            attempts_left=outcome.attempts_left,
            set_csrf=False,
        )

    return portal_call(req, action)


def _signed_in(req: func.HttpRequest, then: Callable[[Message], func.HttpResponse]) -> func.HttpResponse:
    """Run `then` for a live link whose date of birth this browser confirmed; else back to the form."""
    token = req.route_params.get("token", "")

    def action() -> func.HttpResponse:
        from shared_code.portal import resolve_link, session_valid

        message = resolve_link(get_storage(), token)
        if not session_valid(get_settings(), token, _cookies(req).get(SESSION_COOKIE)):
            return portal_redirect(req, f"/p/{token}")
        return then(message)

    return portal_call(req, action)


@bp.route(route="p/{token}/documents", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def portal_documents(req: func.HttpRequest) -> func.HttpResponse:
    """The list of documents, for a patient who has confirmed their date of birth."""

    def show(message: Message) -> func.HttpResponse:
        from shared_code.portal import list_documents, practice_name

        documents = [
            {
                "id": d.id,
                "name": d.name,
                "label": KIND_LABELS.get(d.kind, d.kind.upper()),
                "size": human_size(d.size),
                "viewable": d.viewable,
            }
            for d in list_documents(get_storage(), message)
        ]
        return portal_page(
            req,
            200,
            render(
                "documents.html",
                title="Your document" if len(documents) == 1 else "Your documents",
                practice_name=practice_name(message),
                token=req.route_params.get("token", ""),
                documents=documents,
                error_summary=None,
                expires=f"{message.link_expires_at:%-d %B %Y}",
            ),
        )

    return _signed_in(req, show)


@bp.route(route="p/{token}/documents/{attachmentId}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def portal_download(req: func.HttpRequest) -> func.HttpResponse:
    """303 to a short-lived, read-only SAS URL for one document."""

    def redirect(message: Message) -> func.HttpResponse:
        from shared_code.portal import download_url

        attachment_id = req.route_params.get("attachmentId", "")
        return portal_redirect(req, download_url(get_storage(), get_settings(), message, attachment_id))

    return _signed_in(req, redirect)


@bp.route(route="p/{token}/documents/{attachmentId}/view", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def portal_view(req: func.HttpRequest) -> func.HttpResponse:
    """303 to the same short SAS URL, but for the phone to show it: inline, with its real type."""

    def redirect(message: Message) -> func.HttpResponse:
        from shared_code.portal import download_url

        attachment_id = req.route_params.get("attachmentId", "")
        return portal_redirect(req, download_url(get_storage(), get_settings(), message, attachment_id, inline=True))

    return _signed_in(req, redirect)


@bp.route(route="static/{*path}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def portal_static(req: func.HttpRequest) -> func.HttpResponse:
    """The portal's styles and assets (no user data; cacheable)."""
    relative = req.route_params.get("path", "")
    target = (STATIC / relative).resolve()
    suffix = target.suffix.lower()
    if not target.is_relative_to(STATIC.resolve()) or not target.is_file() or suffix not in _STATIC_TYPES:
        return func.HttpResponse("Not found", status_code=404, mimetype="text/plain")
    return func.HttpResponse(
        target.read_bytes(),
        status_code=200,
        mimetype=_STATIC_TYPES[suffix],
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
