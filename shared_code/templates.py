"""Templates: a practice's saved texts with documents, and messages sent with them.

Create, read, list, change and delete a template (`template_store` keeps the rows,
`template_documents` the documents); preview its text for a patient; and `apply_template`,
which turns a message request naming a template into the text and documents it sends.

Decisions the contract states:

* A template is the organisation's (`shared`, the default) or its owner's alone. Whoever may
  see it may change or delete it; only its owner may make it private. Another organisation's
  template, or another user's private one, is 404.
* A change must name the version it changes (`If-Match` with the ETag): 428 without it, 412
  when it is stale. Every change makes a new version; earlier versions' text and document lists
  are kept, so a message may be sent with an earlier `templateVersion` as long as its documents
  are still kept (409 once one has been removed from the template or withdrawn by the re-scan).
* A message naming a template gets the template's text unless it gives its own `body` (whose
  placeholders are filled the same way), and always the template's documents, plus any
  `attachmentIds` it names: at most `MAX_ATTACHMENTS` in all.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from shared_code import clock
from shared_code.auth import Principal
from shared_code.body_links import disallowed_hosts
from shared_code.errors import Conflict, FieldError, PreconditionFailed, Unprocessable
from shared_code.message_request import NewMessage
from shared_code.placeholders import (
    FIRST_NAME,
    FULL_NAME,
    built_in_values,
    fill,
    is_personal_identifier,
    key,
    placeholders_in,
    text_problems,
    value_problem,
    values_by_key,
)
from shared_code.settings import Settings
from shared_code.sms_text import measure
from shared_code.storage import Storage
from shared_code.template_documents import adopt_documents, discard_documents, unavailable_documents
from shared_code.template_model import Template
from shared_code.template_request import (
    check_if_match,
    link_rule,
    parse_page,
    parse_preview,
    parse_template,
    sample_link,
)
from shared_code.template_store import (
    MAX_TEMPLATES_PER_ORG,
    TemplateChanged,
    count_templates,
    delete_template_rows,
    find_template,
    find_version,
    get_visible,
    insert_template,
    list_visible,
    replace_template,
)

log = logging.getLogger(__name__)

_STALE = "The template was changed since you read it. Read it again, then make your change to the new version."


# -- the templates API -------------------------------------------------------------------------


def create_template(storage: Storage, settings: Settings, principal: Principal, payload: Mapping[str, Any]) -> Template:
    """A new template, version 1, owned by the caller; its documents copied from the uploads named."""
    fields = parse_template(payload, settings)
    if count_templates(storage, principal.org) >= MAX_TEMPLATES_PER_ORG:
        raise Conflict(
            f"Your organisation has {MAX_TEMPLATES_PER_ORG} templates, the most it may keep. Delete one first."
        )
    template_id = str(uuid.uuid4())
    documents, made = adopt_documents(storage, principal, template_id, fields.attachment_ids)
    now = clock.now()
    template = Template(
        id=template_id,
        org=principal.org,
        name=fields.name,
        body=fields.body,
        shared=fields.shared,
        owner=principal.user,
        version=1,
        created_at=now,
        updated_at=now,
        documents=tuple(documents),
    )
    try:
        template = insert_template(storage, template)
    except BaseException:
        discard_documents(storage, principal.org, made)
        raise
    log.info("template %s created by %s/%s", template.id, principal.org, principal.user)
    return template


def read_template(storage: Storage, principal: Principal, template_id: str) -> Template:
    """A template the caller may see (404 otherwise)."""
    return get_visible(storage, principal.org, principal.user, template_id)


def list_templates(storage: Storage, principal: Principal, params: Mapping[str, str]) -> dict[str, Any]:
    """A page of the templates the caller may see, by name, with the token of the next page."""
    limit, after = parse_page(params)
    page, token = list_visible(storage, principal.org, principal.user, limit=limit, after=after)
    return {"items": [t.to_api() for t in page], "continuationToken": token}


def update_template(
    storage: Storage,
    settings: Settings,
    principal: Principal,
    template_id: str,
    if_match: str | None,
    payload: Mapping[str, Any],
) -> Template:
    """Replace a template's name, text, documents and sharing: its next version.

    Documents are named by `attachmentIds`: the template's own document ids keep those
    documents, upload ids add copies of them, and documents not named are deleted.
    """
    current = get_visible(storage, principal.org, principal.user, template_id)
    # The fields first: a caller with a stale copy and a bad field learns of both, field first.
    fields = parse_template(payload, settings)
    check_if_match(if_match, current.etag, required=True)
    if not fields.shared and current.shared and current.owner != principal.user:
        raise Unprocessable([FieldError("shared", "Only the template's owner can make it private")])
    documents, made = adopt_documents(storage, principal, current.id, fields.attachment_ids, current.documents)
    new = replace(
        current,
        name=fields.name,
        body=fields.body,
        shared=fields.shared,
        version=current.version + 1,
        updated_at=clock.now(),
        documents=tuple(documents),
    )
    try:
        saved = replace_template(storage, current, new)
    except TemplateChanged:
        discard_documents(storage, principal.org, made)
        raise PreconditionFailed(_STALE) from None
    except BaseException:
        discard_documents(storage, principal.org, made)
        raise
    kept = {d.id for d in saved.documents}
    discard_documents(storage, principal.org, [d for d in current.documents if d.id not in kept])
    log.info("template %s: version %d by %s/%s", saved.id, saved.version, principal.org, principal.user)
    return saved


def delete_template(storage: Storage, principal: Principal, template_id: str, if_match: str | None) -> None:
    """Delete a template, its earlier versions and its documents (messages keep their copies).

    `If-Match` is optional here; given, it must name the current version (412 otherwise).
    """
    template = get_visible(storage, principal.org, principal.user, template_id)
    check_if_match(if_match, template.etag, required=False)
    try:
        delete_template_rows(storage, template)
    except TemplateChanged:
        raise PreconditionFailed(_STALE) from None
    discard_documents(storage, principal.org, template.documents)
    log.info("template %s deleted by %s/%s", template.id, principal.org, principal.user)


# -- the text for a patient -------------------------------------------------------------------


@dataclass(frozen=True)
class Personalised:
    """A text with its placeholders filled: the text, the placeholders with no value, and the
    request's fields whose values cannot be used."""

    text: str
    missing: tuple[str, ...]
    errors: tuple[FieldError, ...]


def personalise(
    text: str,
    settings: Settings,
    *,
    full_name: str | None,
    first_name: str | None,
    practice_name: str | None,
    personalisation: Mapping[str, Any],
) -> Personalised:
    """Fill `text` for one patient: built-ins from the request (`patient.name`, `patient.firstName`,
    the token's practice name), anything else from `personalisation` (extra keys are ignored)."""
    built_ins = built_in_values(full_name=full_name, first_name=first_name, practice_name=practice_name)
    values = values_by_key(personalisation, built_ins)
    given = {}
    for raw in personalisation:
        given.setdefault(key(raw), raw)
    errors: list[FieldError] = []
    usable: dict[str, str] = {}
    # A date of birth or NHS number is never filled, nor asked for: a text naming one is refused.
    used = [p for p in placeholders_in(text) if not is_personal_identifier(p.key)]
    for placeholder in used:
        if placeholder.key not in values:
            continue
        problem = value_problem(values[placeholder.key], settings.allowed_link_domains)
        if problem is None:
            usable[placeholder.key] = values[placeholder.key]
        else:
            errors.append(FieldError(_value_field(placeholder.key, built_ins, given, first_name), problem))
    filled = fill(text, usable)
    missing = tuple(p.name for p in used if p.key not in values)
    if not errors and disallowed_hosts(filled.text, settings.allowed_link_domains):
        # The values make an address with the text around them ("((site)).com").
        errors.append(FieldError("body", link_rule(settings.allowed_link_domains)))
    return Personalised(filled.text, missing, tuple(errors))


def _value_field(
    placeholder_key: str, built_ins: Mapping[str, str], given: Mapping[str, str], first: str | None
) -> str:
    """The request field a placeholder's value came from, to name in a 422."""
    if placeholder_key in built_ins:
        if placeholder_key == FIRST_NAME and first:
            return "patient.firstName"
        return "patient.name"
    return f"personalisation.{given[placeholder_key]}"


def missing_errors(missing: tuple[str, ...]) -> list[FieldError]:
    """One 422 entry per placeholder with no value: the patient's name for the built-in names."""
    errors = []
    for name in missing:
        if key(name) in (FIRST_NAME, FULL_NAME):
            errors.append(FieldError("patient.name", f"The text uses (({name})): enter the patient's name"))
        else:
            errors.append(FieldError(f"personalisation.{name}", f"Give a value for the placeholder (({name}))"))
    return errors


def preview_template(
    storage: Storage, settings: Settings, principal: Principal, template_id: str, payload: Mapping[str, Any]
) -> dict[str, Any]:
    """The text as the patient would get it (link included), its segments and encoding, and the
    placeholders still without a value (left as written)."""
    template = get_visible(storage, principal.org, principal.user, template_id)
    request = parse_preview(payload)
    personalised = personalise(
        template.body,
        settings,
        full_name=request.full_name,
        first_name=request.first_name,
        practice_name=principal.org_name,
        personalisation=request.personalisation,
    )
    if personalised.errors:
        raise Unprocessable(list(personalised.errors))
    text = f"{personalised.text}\n{sample_link(settings)}"
    length = measure(text)
    return {
        "body": text,
        "segments": length.segments,
        "encoding": length.encoding,
        "missing": list(personalised.missing),
    }


# -- a message sent with a template -----------------------------------------------------------


def apply_template(storage: Storage, settings: Settings, principal: Principal, request: NewMessage) -> NewMessage:
    """The message request with its template's text (filled) and documents, and the version used.

    A request without `templateId` is returned as it is. Everything wrong is named in one 422:
    an unknown template or version, each placeholder with no value, each unusable value, too
    many documents in all; 409 for an earlier version whose documents are no longer kept.
    """
    if request.template_id is None:
        return request
    template = find_template(storage, principal.org, request.template_id)
    if template is None or not template.visible_to(principal.user):
        raise Unprocessable([FieldError("templateId", "There is no template with this id")])
    version = find_version(storage, template, request.template_version or template.version)
    if version is None:
        raise Unprocessable([FieldError("templateVersion", f"This template has no version {request.template_version}")])
    gone = unavailable_documents(storage, principal.org, version.documents)
    if gone:
        raise Conflict(
            f"Version {version.version} of this template can no longer be sent: its document "
            f"{gone[0].filename} has been removed or withdrawn. Send the current version ({template.version})."
        )

    errors: list[FieldError] = []
    text = request.body or version.body
    if request.body:
        errors.extend(FieldError("body", problem) for problem in text_problems(request.body))
    personalised = personalise(
        text,
        settings,
        full_name=request.patient_name,
        first_name=request.first_name,
        practice_name=principal.org_name,
        personalisation=request.personalisation,
    )
    errors.extend(personalised.errors)
    errors.extend(missing_errors(personalised.missing))

    documents = tuple(d.id for d in version.documents)
    for index, attachment_id in enumerate(request.attachment_ids):
        if attachment_id in documents:
            errors.append(FieldError(f"attachmentIds[{index}]", "This document is already in the template"))
    total = len(documents) + len(request.attachment_ids)
    if total > settings.max_attachments:
        errors.append(
            FieldError(
                "attachmentIds",
                f"The template has {len(documents)} document(s), so at most "
                f"{max(0, settings.max_attachments - len(documents))} more can be attached "
                f"({settings.max_attachments} in all)",
            )
        )
    elif total == 0:
        errors.append(FieldError("attachmentIds", "The template has no documents: attach at least one"))
    if errors:
        raise Unprocessable(errors)
    return replace(
        request,
        body=personalised.text.strip(),
        attachment_ids=documents + request.attachment_ids,
        template_version=version.version,
    )
