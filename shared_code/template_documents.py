"""A template's documents: taken from the practice's clean uploads, kept with the template, and let go.

A document named in a template is copied from `documents/{org}/{upload id}` to
`template-documents/{org}/{document id}` under an id of its own, with an attachment record
(status `clean`, `template_id` set) beside it. It is the template's from then on: the upload
can be deleted, and the link retention (which deletes messages' copies under
`documents/{org}/{message id}/...`) and the storage lifecycle rule on `documents/` never
reach it. It is deleted only when its template is deleted or stops using it. Each message
sent with it gets its own copy, like any attachment (`message_store.copy_document`).

Its record is how the portal, the message view and the dispatcher already know a document;
the attachments API does not show it (`get_attachment` is 404 for it), so it cannot be
deleted from under its template.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from urllib.parse import quote

from shared_code import clock
from shared_code.attachments import CLEAN, REJECTED, SCANNING, Attachment, find_attachment, save_attachment
from shared_code.auth import Principal
from shared_code.errors import Conflict, FieldError, ServiceUnavailable, Unprocessable
from shared_code.storage import DOCUMENTS, TEMPLATE_DOCUMENTS, Storage
from shared_code.template_model import TemplateDocument

log = logging.getLogger(__name__)

#: How long a server-side copy may stay pending before it counts as failed.
COPY_WAIT_SECONDS = 30


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return False
    return True


def adopt_documents(
    storage: Storage,
    principal: Principal,
    template_id: str,
    attachment_ids: Sequence[str],
    kept: Sequence[TemplateDocument] = (),
) -> tuple[list[TemplateDocument], list[TemplateDocument]]:
    """The documents for `attachment_ids`, in order, and which of them are new copies.

    An id of one of the template's own documents (`kept`) keeps that document. Any other must
    be an upload of the caller's organisation: unknown, deleted, another template's or rejected
    is a 422 naming each; one still being scanned is a 409 (save the template once it is
    clean). Each upload is copied to a document of the template's own.
    """
    by_id = {d.id: d for d in kept}
    errors: list[FieldError] = []
    scanning: list[int] = []
    uploads: dict[int, Attachment] = {}
    for index, attachment_id in enumerate(attachment_ids):
        if attachment_id in by_id:
            continue
        found = find_attachment(storage, principal.org, attachment_id) if _is_uuid(attachment_id) else None
        where = f"attachmentIds[{index}]"
        if found is None or found.deleted or found.template_id:
            errors.append(FieldError(where, "There is no attachment with this id"))
        elif found.status == REJECTED:
            errors.append(FieldError(where, f"This attachment was rejected: {found.reason}"))
        elif found.status == SCANNING:
            scanning.append(index)
        else:
            uploads[index] = found
    if errors:
        raise Unprocessable(errors)
    if scanning:
        named = ", ".join(f"attachmentIds[{i}]" for i in scanning)
        raise Conflict(f"{named}: still being scanned. Save the template once every document is clean.")

    made: list[TemplateDocument] = []
    documents: list[TemplateDocument] = []
    try:
        for index, attachment_id in enumerate(attachment_ids):
            if attachment_id in by_id:
                documents.append(by_id[attachment_id])
                continue
            document = _copy_upload(storage, principal, template_id, uploads[index])
            made.append(document)
            documents.append(document)
    except BaseException:
        discard_documents(storage, principal.org, made)
        raise
    return documents, made


def _copy_upload(storage: Storage, principal: Principal, template_id: str, upload: Attachment) -> TemplateDocument:
    """Copy a clean upload to a new document of the template, with its record."""
    document = replace(
        upload,
        id=str(uuid.uuid4()),
        created_at=clock.now(),
        created_by=principal.user,
        template_id=template_id,
        etag=None,
    )
    copy_blob(storage, DOCUMENTS, upload.blob_name, TEMPLATE_DOCUMENTS, document.blob_name)
    save_attachment(storage, document, etag_check=False)
    log.info("template %s: attachment %s kept as document %s", template_id, upload.id, document.id)
    return TemplateDocument(document.id, document.filename, document.content_type, document.size)


def copy_blob(storage: Storage, source_container: str, source: str, target_container: str, target: str) -> None:
    """A server-side copy within the account; ServiceUnavailable when it does not complete."""
    origin = storage.container(source_container)
    # The source's URL, not a client for it: copying reads it server-side, in the same account.
    client = storage.container(target_container).get_blob_client(target)
    props = client.start_copy_from_url(f"{origin.url}/{quote(source)}", requires_sync=None)
    status = props.get("copy_status")
    deadline = time.monotonic() + COPY_WAIT_SECONDS
    while status == "pending" and time.monotonic() < deadline:
        time.sleep(0.1)
        status = client.get_blob_properties().copy.status
    if status != "success":
        raise ServiceUnavailable("A document could not be copied. Please try again.")


def discard_documents(storage: Storage, org: str, documents: Sequence[TemplateDocument]) -> None:
    """Delete documents a template no longer uses: their blobs, and their records marked deleted.

    Best effort, one by one: a document left behind is only storage, never sent (no version
    that is sent names it). Messages keep their own copies.
    """
    for document in documents:
        try:
            storage.delete_blob(TEMPLATE_DOCUMENTS, f"{org}/{document.id}")
            found = find_attachment(storage, org, document.id)
            if found is not None and not found.deleted:
                save_attachment(storage, replace(found, deleted=True), etag_check=False)
        except Exception:  # noqa: BLE001 - see above
            log.exception("template document %s could not be deleted", document.id)


def unavailable_documents(storage: Storage, org: str, documents: Sequence[TemplateDocument]) -> list[TemplateDocument]:
    """Those of `documents` that can no longer be sent: deleted (the template stopped using
    them) or withdrawn (the re-scan found them infected)."""
    gone = []
    for document in documents:
        found = find_attachment(storage, org, document.id)
        if found is None or found.deleted or found.status != CLEAN:
            gone.append(document)
    return gone
