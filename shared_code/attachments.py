"""Attachments: upload, status, delete, and the scan that decides whether one may be served.

An upload is first prepared (`upload_fitting`: hidden metadata removed, a PDF or picture over
the limit made to fit it); what that gives lands in `uploads/{org}/{id}` with status
`scanning`, and is what is scanned and served. The blob-triggered scan
validates it by content and scans it for malware; a clean file is written to
`documents/{org}/{id}`, a rejected one to `quarantine/{org}/{id}`, and the upload is
removed. Only `documents` is ever served, and only through a short SAS.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from shared_code import clock
from shared_code.auth import Principal
from shared_code.crypto import sha256_hex
from shared_code.errors import NotFound, ServiceUnavailable, dependency_failure
from shared_code.settings import Settings
from shared_code.storage import ATTACHMENTS, DOCUMENTS, QUARANTINE, TEMPLATE_DOCUMENTS, UPLOADS, Storage
from shared_code.tables import RowChanged

log = logging.getLogger(__name__)

SCANNING, CLEAN, REJECTED = "scanning", "clean", "rejected"
#: After this many failed scan attempts a file is rejected as "could not be scanned" (fail closed).
MAX_SCAN_ATTEMPTS = 5
COULD_NOT_SCAN = "This file could not be checked for viruses, so it cannot be sent. Please upload it again."


def _sentence(fragment: str) -> str:
    """A validator's or scanner's reason ("contains macros") as a sentence for the practice."""
    return f"This file {fragment.rstrip('.')}."


@dataclass(frozen=True)
class Attachment:
    """An uploaded document and what the scan decided about it."""

    id: str
    org: str
    filename: str
    content_type: str
    kind: str
    size: int
    sha256: str
    status: str
    created_at: datetime
    created_by: str
    reason: str | None = None
    scanned_at: datetime | None = None
    scan_engine: str | None = None
    scan_signature: str | None = None
    scan_attempts: int = 0
    deleted: bool = False
    #: Set on a template's own document (`shared_code.template_documents`): kept in
    #: `template-documents`, not shown by the attachments API, deleted only with its template.
    template_id: str | None = None
    #: What was uploaded, when preparation changed it (`size` and `sha256` are what is stored).
    original_size: int | None = None
    original_sha256: str | None = None
    #: Hidden metadata (EXIF, XMP, document information...) was removed at upload.
    cleaned: bool = False
    #: Made smaller at upload to fit MAX_ATTACHMENT_BYTES.
    reduced: bool = False
    etag: str | None = None

    @property
    def container(self) -> str:
        """Where the checked document is kept: a template's own ones apart from uploads'."""
        return TEMPLATE_DOCUMENTS if self.template_id else DOCUMENTS

    @property
    def blob_name(self) -> str:
        """The blob's name inside its container: `{org}/{id}`."""
        return f"{self.org}/{self.id}"

    def to_api(self) -> dict[str, Any]:
        """The attachment as the toolbar API shows it."""
        doc: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "filename": self.filename,
            "contentType": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
            "originalSize": self.original_size or self.size,
            "originalSha256": self.original_sha256 or self.sha256,
            "reduced": self.reduced,
            "metadataRemoved": self.cleaned,
            "createdAt": clock.iso(self.created_at),
        }
        if self.status == REJECTED:
            doc["reason"] = self.reason
        return doc


def _to_entity(a: Attachment) -> dict[str, Any]:
    return {
        "PartitionKey": a.org,
        "RowKey": a.id,
        "filename": a.filename,
        "contentType": a.content_type,
        "kind": a.kind,
        "size": a.size,
        "sha256": a.sha256,
        "status": a.status,
        "createdAt": clock.iso(a.created_at),
        "createdBy": a.created_by,
        "reason": a.reason,
        "scannedAt": clock.iso(a.scanned_at),
        "scanEngine": a.scan_engine,
        "scanSignature": a.scan_signature,
        "scanAttempts": a.scan_attempts,
        "deleted": a.deleted,
        "templateId": a.template_id,
        "originalSize": a.original_size,
        "originalSha256": a.original_sha256,
        "cleaned": a.cleaned,
        "reduced": a.reduced,
    }


def _from_entity(e: Any) -> Attachment:
    return Attachment(
        id=e["RowKey"],
        org=e["PartitionKey"],
        filename=e["filename"],
        content_type=e["contentType"],
        kind=e["kind"],
        size=int(e["size"]),
        sha256=e["sha256"],
        status=e["status"],
        created_at=clock.parse_iso(e["createdAt"]),
        created_by=e["createdBy"],
        reason=e.get("reason"),
        scanned_at=clock.parse_iso(e.get("scannedAt")),
        scan_engine=e.get("scanEngine"),
        scan_signature=e.get("scanSignature"),
        scan_attempts=int(e.get("scanAttempts") or 0),
        deleted=bool(e.get("deleted")),
        template_id=e.get("templateId"),
        original_size=int(e["originalSize"]) if e.get("originalSize") is not None else None,
        original_sha256=e.get("originalSha256"),
        cleaned=bool(e.get("cleaned")),
        reduced=bool(e.get("reduced")),
        etag=getattr(e, "etag", None),
    )


def find_attachment(storage: Storage, org: str, attachment_id: str) -> Attachment | None:
    """The attachment of this organisation with this id (deleted ones included), or None."""
    row = storage.table(ATTACHMENTS).get(org, attachment_id)
    return None if row is None else _from_entity(row)


def get_attachment(storage: Storage, org: str, attachment_id: str) -> Attachment:
    """A live attachment of this organisation; 404 for unknown, deleted or another's, and for a
    template's own document (its template owns it: it is not deleted from here)."""
    found = find_attachment(storage, org, attachment_id) if _plausible_id(attachment_id) else None
    if found is None or found.deleted or found.template_id:
        raise NotFound("There is no attachment with this id.")
    return found


def _plausible_id(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, TypeError):
        return False
    return True


def save_attachment(storage: Storage, attachment: Attachment, *, etag_check: bool = True) -> Attachment:
    """Write back a changed attachment; with `etag_check`, only if nobody changed it meanwhile."""
    etag = attachment.etag if etag_check else None
    # Without an ETag (none known, or no check asked for) the row is written whatever is stored.
    new_etag = storage.table(ATTACHMENTS).replace(_to_entity(attachment), etag=etag)
    return replace(attachment, etag=new_etag)


def upload_attachment(
    storage: Storage, settings: Settings, principal: Principal, filename: str | None, data: bytes
) -> Attachment:
    """Accept an upload: type by content (415), prepared (metadata out, made to fit: 413 when it
    cannot be), recorded as scanning and stored in `uploads`."""
    from azure.storage.blob import ContentSettings

    from shared_code.filenames import safe_filename
    from shared_code.filetypes import sniff
    from shared_code.upload_fitting import prepare_upload

    file_type = sniff(data, filename)
    original_size, original_sha256 = len(data), sha256_hex(data)
    stored = prepare_upload(data, file_type, settings)
    sent, data = data, stored.data
    attachment = Attachment(
        id=str(uuid.uuid4()),
        org=principal.org,
        filename=safe_filename(filename, file_type),
        content_type=file_type.mime,
        kind=file_type.kind,
        size=len(data),
        sha256=original_sha256 if data is sent else sha256_hex(data),
        status=SCANNING,
        created_at=clock.now(),
        created_by=principal.user,
        original_size=original_size,
        original_sha256=original_sha256,
        cleaned=stored.cleaned,
        reduced=stored.reduced,
    )
    try:
        # The row first: the scan, which the blob triggers, needs it.
        storage.table(ATTACHMENTS).insert(_to_entity(attachment))
        storage.container(UPLOADS).upload_blob(
            attachment.blob_name,
            data,
            overwrite=True,
            content_settings=ContentSettings(content_type=file_type.mime),
        )
    except Exception as exc:
        log.exception("upload of attachment %s failed", attachment.id)
        _forget(storage, attachment)
        if isinstance(exc, ServiceUnavailable) or dependency_failure(exc) is not None:
            raise ServiceUnavailable("The document could not be stored. Please try again.") from exc
        raise  # a fault of ours, not of storage: the caller's 500, not "try again"
    log.info(
        "attachment %s uploaded (%s, %d bytes; %d as sent%s%s)",
        attachment.id,
        file_type.kind,
        len(data),
        original_size,
        ", metadata removed" if stored.cleaned else "",
        ", reduced" if stored.reduced else "",
    )
    return attachment


def _forget(storage: Storage, attachment: Attachment) -> None:
    """Best-effort removal of a half-written upload, so no row points at nothing."""
    try:
        storage.table(ATTACHMENTS).delete(attachment.org, attachment.id)
    except Exception:  # noqa: BLE001 - we are already failing; the lifecycle policy is the backstop
        log.warning("could not remove the row of failed upload %s", attachment.id)


def delete_attachment(storage: Storage, org: str, attachment_id: str) -> None:
    """Delete an attachment: gone from the API at once, its blobs removed.

    Messages already made with it keep working: each message has its own copy
    of its documents (see `message_store.copy_document`).
    """
    attachment = get_attachment(storage, org, attachment_id)
    save_attachment(storage, replace(attachment, deleted=True), etag_check=False)
    for container in (UPLOADS, DOCUMENTS, QUARANTINE):
        storage.delete_blob(container, attachment.blob_name)
    log.info("attachment %s deleted", attachment.id)


# -- the scan ---------------------------------------------------------------------------


def _verdict_fields(
    attachment: Attachment, status: str, reason: str | None, engine: str, signature: str | None
) -> Attachment:
    return replace(
        attachment, status=status, reason=reason, scanned_at=clock.now(), scan_engine=engine, scan_signature=signature
    )


def scan_upload(storage: Storage, settings: Settings, blob_name: str, data: bytes) -> Attachment | None:
    """Validate and scan `uploads/{org}/{id}`; move it to `documents` or `quarantine`.

    Idempotent: run twice, it gives the same outcome with no duplicate copies.
    Fails closed: a scanner error is raised (so the trigger retries) until
    MAX_SCAN_ATTEMPTS, after which the file is rejected as "could not be scanned".
    Returns the attachment with its verdict, or None when the upload has no live record.
    """
    from shared_code.filetypes import ContentRejected, FileType
    from shared_code.filetypes.isolation import ValidatorUnavailable, validate_isolated
    from shared_code.scan_verdicts import StoredVerdicts, forget_scan_results
    from shared_code.scanning import DefenderScanner, ScanError, scanner_from_settings
    from shared_code.upload_fitting import megabytes

    org, _, attachment_id = blob_name.partition("/")
    attachment = find_attachment(storage, org, attachment_id) if _plausible_id(attachment_id) else None
    if attachment is None or attachment.deleted:
        storage.delete_blob(UPLOADS, blob_name)
        log.info("upload %s has no live attachment; removed", attachment_id)
        return None
    if attachment.status != SCANNING:
        # Already decided by an earlier run; make sure the upload is gone and stop.
        storage.delete_blob(UPLOADS, blob_name)
        return attachment

    if sha256_hex(data) != attachment.sha256:
        decided = _verdict_fields(
            attachment,
            REJECTED,
            "This file changed after it was uploaded. Please upload it again.",
            "integrity",
            "sha256-mismatch",
        )
        return _settle(storage, decided, data)
    file_type = FileType(
        kind=attachment.kind, mime=attachment.content_type, extension=attachment.filename.rsplit(".", 1)[-1]
    )
    try:
        # In a worker process under memory, CPU and wall-time ceilings: a file that hits one is
        # rejected as too complex to check safely (not retried), and the host is never at risk.
        # `prepared`: a picture or PDF must also have come through the upload's preparation.
        validate_isolated(data, file_type, prepared=True)
        if len(data) > settings.max_attachment_bytes:
            # Only an upload the preparation refused is stored over the limit; validation has
            # said why in every case seen, this is the guard.
            raise ContentRejected(f"is larger than the {megabytes(settings.max_attachment_bytes)} limit", "too_large")
    except ContentRejected as rejected:
        decided = _verdict_fields(
            attachment, REJECTED, _sentence(rejected.reason), "enclose-validator", getattr(rejected, "rule", None)
        )
        return _settle(storage, decided, data)
    except ValidatorUnavailable as failure:
        return _scan_failed(storage, attachment, data, failure)

    scanner = scanner_from_settings(settings, verdicts=StoredVerdicts(storage))
    try:
        verdict = scanner.scan(data, blob_name=blob_name)
    except ScanError as failure:
        return _scan_failed(storage, attachment, data, failure)
    status = CLEAN if verdict.clean else REJECTED
    decided = _verdict_fields(
        attachment, status, None if verdict.clean else _sentence(verdict.reason), verdict.engine, verdict.signature
    )
    settled = _settle(storage, decided, data)
    if verdict.engine == DefenderScanner.engine:
        forget_scan_results(storage, blob_name)  # decided for good: a retry stops at the status check
    return settled


def _scan_failed(storage: Storage, attachment: Attachment, data: bytes, failure: Exception) -> Attachment:
    """Count a failure of our checking machinery (scanner or validation worker); raise `failure`
    (so the trigger retries) until MAX_SCAN_ATTEMPTS, then reject the file as "could not be scanned"."""
    # Failures are counted in the row (the blob trigger has no dequeue count to tell us).
    attachment = save_attachment(storage, replace(attachment, scan_attempts=attachment.scan_attempts + 1))
    if attachment.scan_attempts < MAX_SCAN_ATTEMPTS:
        log.warning("scan of attachment %s failed (attempt %d); will retry", attachment.id, attachment.scan_attempts)
        raise failure
    log.error("attachment %s could not be scanned after %d attempts; rejected", attachment.id, attachment.scan_attempts)
    decided = _verdict_fields(attachment, REJECTED, COULD_NOT_SCAN, "scanner", "unavailable")
    return _settle(storage, decided, data)


def _place(storage: Storage, attachment: Attachment, target: str, data: bytes) -> None:
    """Put the checked bytes at `{target}/{org}/{id}`.

    A server-side copy of the upload is cheapest; it is kept only if the copy's MD5 is that
    of the bytes we checked (so what is served is exactly what was scanned), else the
    checked bytes are written instead.
    """
    import hashlib

    from azure.storage.blob import ContentSettings

    source = storage.container(UPLOADS).get_blob_client(attachment.blob_name)
    destination = storage.container(target).get_blob_client(attachment.blob_name)
    expected_md5 = hashlib.md5(data, usedforsecurity=False).digest()
    try:
        copy = destination.start_copy_from_url(source.url, metadata={"sha256": attachment.sha256})
        if copy.get("copy_status") == "success":
            props = destination.get_blob_properties()
            if bytes(props.content_settings.content_md5 or b"") == expected_md5:
                return
    except Exception:  # noqa: BLE001 - the upload vanished or cannot be copied: write the bytes instead
        log.info("attachment %s: server-side copy not usable; writing the checked bytes", attachment.id)
    destination.upload_blob(
        data,
        overwrite=True,
        content_settings=ContentSettings(content_type=attachment.content_type),
        metadata={"sha256": attachment.sha256},
    )


def _settle(storage: Storage, decided: Attachment, data: bytes) -> Attachment:
    """Store the verdict: the upload copied to documents or quarantine, row updated, upload removed."""
    target = DOCUMENTS if decided.status == CLEAN else QUARANTINE
    _place(storage, decided, target, data)
    try:
        saved = save_attachment(storage, decided)
    except RowChanged:
        # Changed while we scanned: only a delete does that. Keep it deleted.
        current = find_attachment(storage, decided.org, decided.id)
        if current is None or current.deleted:
            storage.delete_blob(target, decided.blob_name)
            storage.delete_blob(UPLOADS, decided.blob_name)
            return current
        saved = save_attachment(storage, replace(decided, etag=current.etag))
    storage.delete_blob(UPLOADS, decided.blob_name)
    log.info("attachment %s scanned: %s (%s)", decided.id, decided.status, decided.scan_engine)
    return saved
