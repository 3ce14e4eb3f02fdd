"""The rules for template requests: a template's fields, a preview, a page of the list, `If-Match`.

Every invalid field is named in one 422, as for messages. A template's text follows the
message body's rules (not empty, at most `MAX_BODY_CHARS`, links only to allowed domains) and
the placeholder rules (`placeholders.text_problems`: no date of birth, no NHS number); and as
values only ever add to it, a text that is too long with its placeholders left empty is
refused when it is saved, not at each send.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared_code.body_links import disallowed_hosts
from shared_code.crypto import TOKEN_BYTES
from shared_code.errors import FieldError, PreconditionFailed, PreconditionRequired, Unprocessable
from shared_code.message_request import MAX_BODY_CHARS, MAX_NAME_CHARS
from shared_code.placeholders import MAX_PERSONALISATION_KEYS, text_problems, without_placeholders
from shared_code.settings import Settings
from shared_code.sms_text import measure
from shared_code.template_store import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, BadCursor, decode_cursor

MAX_TEMPLATE_NAME_CHARS = 100
#: Longest personalisation key: a placeholder name with room for spacing the caller adds.
MAX_PERSONALISATION_KEY_CHARS = 100
#: The length of a link token (`crypto.new_link_token`: URL-safe base64 of TOKEN_BYTES, unpadded).
#: Previews and length checks use a stand-in this long, so they count what a real link costs.
LINK_TOKEN_CHARS = -(-TOKEN_BYTES * 4 // 3)


@dataclass(frozen=True)
class TemplateFields:
    """A template's fields as a create or an update gives them."""

    name: str
    body: str
    attachment_ids: tuple[str, ...]
    shared: bool


@dataclass(frozen=True)
class PreviewRequest:
    """Who a preview is for: the patient's names, and values for other placeholders."""

    full_name: str | None = None
    first_name: str | None = None
    personalisation: Mapping[str, Any] = field(default_factory=dict)


def sample_link(settings: Settings) -> str:
    """A link of the real length, for previews and length checks (its token is a stand-in)."""
    return f"{settings.portal_base_url}/p/{'x' * LINK_TOKEN_CHARS}"


def _plain_line(value: str) -> bool:
    return not any(unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"} for ch in value)


def link_rule(allowed: tuple[str, ...]) -> str:
    """Why a text with a disallowed web address is refused (the address is never repeated)."""
    sites = " or ".join(allowed) if allowed else "no"
    return (
        f"The message can only link to {sites} websites. Remove any other web address: "
        "the link to the documents is added for you"
    )


def parse_template(payload: Mapping[str, Any], settings: Settings) -> TemplateFields:
    """Check a template's fields (a create, or the whole of an update); 422 naming each invalid one."""
    errors: list[FieldError] = []
    name = payload.get("name")
    if not isinstance(name, str) or not name.strip():
        errors.append(FieldError("name", "Enter a name for the template"))
    elif len(name.strip()) > MAX_TEMPLATE_NAME_CHARS or not _plain_line(name):
        errors.append(
            FieldError("name", f"The name must be plain text on one line, at most {MAX_TEMPLATE_NAME_CHARS} characters")
        )

    body = payload.get("body")
    if not isinstance(body, str) or not body.strip():
        errors.append(FieldError("body", "Enter the text of the message"))
    elif len(body) > MAX_BODY_CHARS:
        errors.append(FieldError("body", f"The message must be at most {MAX_BODY_CHARS} characters"))
    elif "\x00" in body:
        errors.append(FieldError("body", "The message contains a character that cannot be sent"))
    else:
        problems = text_problems(body)
        errors.extend(FieldError("body", problem) for problem in problems)
        if disallowed_hosts(body, settings.allowed_link_domains):
            errors.append(FieldError("body", link_rule(settings.allowed_link_domains)))
        elif not problems:
            # Values only add characters, so the text with every placeholder empty is the least it costs.
            least = measure(f"{without_placeholders(body.strip())}\n{sample_link(settings)}")
            if least.segments > settings.max_segments:
                errors.append(
                    FieldError(
                        "body",
                        f"The text is too long: even with its placeholders empty it would be {least.segments} SMS "
                        f"segments and the limit is {settings.max_segments}",
                    )
                )

    ids = payload.get("attachmentIds", [])
    attachment_ids: tuple[str, ...] = ()
    if ids is None:
        ids = []
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        errors.append(FieldError("attachmentIds", "Give the documents as a list of attachment ids"))
    elif len(ids) > settings.max_attachments:
        errors.append(FieldError("attachmentIds", f"Attach at most {settings.max_attachments} documents"))
    elif len(set(ids)) != len(ids):
        errors.append(FieldError("attachmentIds", "Each document can be attached only once"))
    else:
        attachment_ids = tuple(ids)

    shared = payload.get("shared", True)
    if shared is None:
        shared = True
    if not isinstance(shared, bool):
        errors.append(FieldError("shared", "Say true (everyone in the practice) or false (only you)"))

    if errors:
        raise Unprocessable(errors)
    return TemplateFields(name=name.strip(), body=body.strip(), attachment_ids=attachment_ids, shared=shared)


def personalisation_errors(raw: Any) -> list[FieldError]:
    """What is wrong with the shape of a `personalisation` object (its values are checked when used)."""
    if raw is None:
        return []
    if not isinstance(raw, dict):
        return [FieldError("personalisation", "Give personalisation as an object of names and values")]
    if len(raw) > MAX_PERSONALISATION_KEYS:
        return [FieldError("personalisation", f"Give at most {MAX_PERSONALISATION_KEYS} values")]
    if any(not key.strip() or len(key) > MAX_PERSONALISATION_KEY_CHARS for key in raw):
        return [
            FieldError(
                "personalisation", f"Each name must be 1 to {MAX_PERSONALISATION_KEY_CHARS} characters, not only spaces"
            )
        ]
    return []


def name_errors(patient: Mapping[str, Any]) -> list[FieldError]:
    """What is wrong with a patient's `name` and `firstName` (both optional)."""
    errors = []
    for key in ("name", "firstName"):
        value = patient.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_NAME_CHARS):
            errors.append(FieldError(f"patient.{key}", f"The name must be text of at most {MAX_NAME_CHARS} characters"))
    return errors


def parse_preview(payload: Mapping[str, Any]) -> PreviewRequest:
    """Check a preview request: an optional patient (only the names are used) and personalisation."""
    errors: list[FieldError] = []
    patient = payload.get("patient")
    if patient is None:
        patient = {}
    if not isinstance(patient, dict):
        errors.append(FieldError("patient", "Give the patient as an object"))
        patient = {}
    errors.extend(name_errors(patient))
    raw = payload.get("personalisation")
    errors.extend(personalisation_errors(raw))
    if errors:
        raise Unprocessable(errors)
    return PreviewRequest(patient.get("name"), patient.get("firstName"), raw or {})


def parse_page(params: Mapping[str, str]) -> tuple[int, tuple[str, str] | None]:
    """`limit` (1 to MAX_PAGE_SIZE, default DEFAULT_PAGE_SIZE) and the position of `continuationToken`."""
    errors: list[FieldError] = []
    limit = DEFAULT_PAGE_SIZE
    raw_limit = params.get("limit")
    if raw_limit is not None:
        if not raw_limit.isascii() or not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE_SIZE:
            errors.append(FieldError("limit", f"Give a whole number from 1 to {MAX_PAGE_SIZE}"))
        else:
            limit = int(raw_limit)
    after = None
    token = params.get("continuationToken")
    if token is not None:
        try:
            after = decode_cursor(token)
        except BadCursor:
            errors.append(FieldError("continuationToken", "Use the continuationToken of the previous page, unchanged"))
    if errors:
        raise Unprocessable(errors)
    return limit, after


def check_if_match(header: str | None, current_etag: str, *, required: bool) -> None:
    """`If-Match` against the template's current ETag (strong comparison, as RFC 9110 says).

    Missing: 428 when `required` (an update must say which version it changes). Not matching,
    a weak ETag included: 412, and nothing is changed.
    """
    if header is None or not header.strip():
        if required:
            raise PreconditionRequired(
                "Say which version you are changing: send If-Match with the template's ETag from your last read."
            )
        return
    tags = [tag.strip() for tag in header.split(",")]
    if "*" in tags or current_etag in tags:
        return
    raise PreconditionFailed(
        "The template was changed since you read it. Read it again, then make your change to the new version."
    )
