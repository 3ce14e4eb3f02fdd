"""The scheduled re-scan of templates' documents, and the withdrawal of one found infected.

A template's documents are sent for months, so a file clean by last year's signatures is scanned
again with today's (the timer in functions/template_rescan.py, `TEMPLATE_RESCAN_SCHEDULE`). The
scanner is the configured one: ClamAV is given the bytes; Defender for Storage scans a fresh copy
written to `rescans/`, and its verdict is read as an upload's is (`scan_verdicts`).

A document found infected (or missing, or changed since it was checked) is withdrawn, in an order
that a crash at any point can resume from: its record is marked rejected first, so the portal
stops listing and serving it at once; its bytes go to quarantine; every unexpired message that
carries a copy loses the copy and records `document_withdrawn`; then the template gets a new
version without it, which lists it in `withdrawnAttachments`. A later run finds a rejected
document still in a template and finishes the job. A scan that gives no verdict (the scanner is
down, or cannot scan the file) changes nothing: the document is tried again next run. Logs carry
ids and the scanner's signature name only.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from shared_code import clock, lifecycle
from shared_code.attachments import CLEAN, REJECTED, Attachment, find_attachment, save_attachment
from shared_code.crypto import sha256_hex
from shared_code.message_store import transition
from shared_code.scanning import COULD_NOT_BE_SCANNED, ScanError, Verdict
from shared_code.settings import Settings
from shared_code.storage import DOCUMENTS, MESSAGES, QUARANTINE, RESCANS, TEMPLATE_DOCUMENTS, Storage
from shared_code.tables import RowChanged, Where, eq
from shared_code.template_documents import copy_blob
from shared_code.template_model import Template, TemplateDocument, Withdrawal
from shared_code.template_store import TemplateChanged, all_templates, find_template, replace_template

log = logging.getLogger(__name__)

#: A run starts no new scan after this long: well inside host.json's five-minute functionTimeout.
#: Documents are taken stalest first, so what a run leaves is first in the next.
RESCAN_BUDGET_SECONDS = 180
MISSING = "This file is no longer stored, so it cannot be sent."
CHANGED = "This file changed after it was checked, so it cannot be sent."
#: Outcomes of one document's re-scan.
STILL_CLEAN, WITHDRAWN, NO_VERDICT = "clean", "withdrawn", "no verdict"


@dataclass(frozen=True)
class RescanReport:
    """What one run did (counts only)."""

    scanned: int = 0
    withdrawn: int = 0
    #: Not judged this run: no verdict from the scanner, or the run's time was up.
    left: int = 0


def run_template_rescan(
    storage: Storage,
    settings: Settings,
    *,
    budget_seconds: float = RESCAN_BUDGET_SECONDS,
    monotonic: Callable[[], float] = time.monotonic,
) -> RescanReport:
    """Re-scan every template's documents, stalest first, within the time budget."""
    work: list[tuple[datetime | None, Template, TemplateDocument, Attachment | None]] = []
    for template in all_templates(storage):
        for document in template.documents:
            record = find_attachment(storage, template.org, document.id)
            work.append((record.scanned_at if record else None, template, document, record))
    work.sort(key=lambda item: (item[0] is not None, item[0] or clock.now()))
    deadline = monotonic() + budget_seconds
    scanned = withdrawn = left = 0
    for _, template, document, record in work:
        if monotonic() >= deadline:
            left += 1
            continue
        outcome = rescan_document(storage, settings, template, document, record)
        scanned += outcome != NO_VERDICT
        withdrawn += outcome == WITHDRAWN
        left += outcome == NO_VERDICT
    return RescanReport(scanned=scanned, withdrawn=withdrawn, left=left)


def rescan_document(
    storage: Storage, settings: Settings, template: Template, document: TemplateDocument, record: Attachment | None
) -> str:
    """Scan one template document again; withdraw it when it is infected, gone or changed."""
    if record is None or record.deleted:
        return _withdraw(storage, template, document, record, MISSING, "integrity", "record-missing")
    if record.status != CLEAN:  # withdrawn by a run that stopped half-way: finish it
        reason = record.reason or MISSING
        return _withdraw(storage, template, document, record, reason, record.scan_engine, record.scan_signature)
    # One byte over the limit is enough to tell a changed file: its hash will not match.
    data = storage.read_blob(TEMPLATE_DOCUMENTS, record.blob_name, limit=settings.max_attachment_bytes + 1)
    if data is None:
        return _withdraw(storage, template, document, record, MISSING, "integrity", "blob-missing")
    if sha256_hex(data) != record.sha256:
        return _withdraw(storage, template, document, record, CHANGED, "integrity", "sha256-mismatch")
    try:
        verdict = _scan(storage, settings, record, data)
    except ScanError as failure:
        log.warning("template document %s: no verdict now (%s); tried again next run", record.id, failure)
        return NO_VERDICT
    if verdict.clean:
        try:
            save_attachment(storage, replace(record, scanned_at=verdict.scanned_at, scan_engine=verdict.engine))
        except RowChanged:
            pass  # changed meanwhile (withdrawn or deleted): the next run sees what it became
        return STILL_CLEAN
    if verdict.reason == COULD_NOT_BE_SCANNED:
        # Not a finding: a file that was clean is not withdrawn because the scanner could not look.
        log.warning(
            "template document %s could not be scanned (%s); tried again next run", record.id, verdict.signature
        )
        return NO_VERDICT
    reason = f"This file {verdict.reason.rstrip('.')}."
    return _withdraw(storage, template, document, record, reason, verdict.engine, verdict.signature)


def _scan(storage: Storage, settings: Settings, record: Attachment, data: bytes) -> Verdict:
    """The configured scanner's verdict on the document's bytes now."""
    from shared_code.scanning import scanner_from_settings

    if settings.scanner != "defender":
        return scanner_from_settings(settings).scan(data, blob_name=f"{TEMPLATE_DOCUMENTS}/{record.blob_name}")
    # Defender scans blobs as they are written: a fresh copy gets today's verdict.
    from shared_code.scan_verdicts import StoredVerdicts, forget_scan_results

    name = f"{record.blob_name}/{uuid.uuid4()}"
    storage.container(RESCANS).upload_blob(name, data, overwrite=True)
    try:
        return scanner_from_settings(settings, verdicts=StoredVerdicts(storage, RESCANS)).scan(data, blob_name=name)
    finally:
        storage.delete_blob(RESCANS, name)
        forget_scan_results(storage, name, RESCANS)


def _withdraw(
    storage: Storage,
    template: Template,
    document: TemplateDocument,
    record: Attachment | None,
    reason: str,
    engine: str | None,
    signature: str | None,
) -> str:
    """Take the document out of service everywhere (see the module's docstring for the order)."""
    now = clock.now()
    if record is not None and record.status != REJECTED:
        save_attachment(
            storage,
            replace(
                record, status=REJECTED, reason=reason, scanned_at=now, scan_engine=engine, scan_signature=signature
            ),
            etag_check=False,
        )
    name = f"{template.org}/{document.id}"
    try:
        copy_blob(storage, TEMPLATE_DOCUMENTS, name, QUARANTINE, name)
    except Exception:  # noqa: BLE001 - quarantine is for the support desk; withdrawing matters more
        log.info("template document %s: not copied to quarantine (gone already?)", document.id)
    storage.delete_blob(TEMPLATE_DOCUMENTS, name)
    messages = _withdraw_from_messages(storage, template.org, document.id, now)
    _withdraw_from_template(storage, template, document, reason, now)
    log.warning(
        "template %s: document %s withdrawn (%s %s) from the template and %d message(s)",
        template.id,
        document.id,
        engine,
        signature,
        messages,
    )
    return WITHDRAWN


def _withdraw_from_messages(storage: Storage, org: str, document_id: str, now: datetime) -> int:
    """Delete every unexpired message's copy of the document and record it; how many."""
    rows = storage.table(MESSAGES).query(
        eq("PartitionKey", org), Where("linkExpiresAt", "gt", (clock.iso(now),)), select=["RowKey", "attachmentIds"]
    )
    count = 0
    for row in rows:
        if document_id not in (row.get("attachmentIds") or ""):
            continue  # a cheap look first; the transition decides on the parsed list
        message_id = row["RowKey"]
        storage.delete_blob(DOCUMENTS, f"{org}/{message_id}/{document_id}")
        _, won = transition(storage, org, message_id, lambda m: lifecycle.document_withdrawn(m, document_id, now))
        count += won
    return count


def _withdraw_from_template(
    storage: Storage, template: Template, document: TemplateDocument, reason: str, now: datetime
) -> None:
    """The template's next version, without the document and with the withdrawal listed."""
    for _ in range(10):
        current = find_template(storage, template.org, template.id)
        if current is None or all(d.id != document.id for d in current.documents):
            return  # deleted, or no longer using it
        new = replace(
            current,
            version=current.version + 1,
            updated_at=now,
            documents=tuple(d for d in current.documents if d.id != document.id),
            withdrawn=(*current.withdrawn, Withdrawal(document.id, document.filename, reason, now)),
        )
        try:
            replace_template(storage, current, new)
            return
        except TemplateChanged:
            continue  # a practice's change landed first: decide again on it
    log.error("template %s: document %s could not be taken out (busy); the next run retries", template.id, document.id)
