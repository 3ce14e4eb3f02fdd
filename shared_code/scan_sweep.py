"""No attachment stays `scanning` for ever: a sweep finds the ones nothing is checking any more.

An upload is checked by the blob trigger. That check can be lost: its invocation killed by the
host's `functionTimeout` (which restarts the whole worker process in Azure), the process lost
mid-check, or the trigger never fired at all (say, an upload made before the Event Grid
subscription existed). An attachment still `scanning` well after every invocation that could
hold it has timed out is therefore checked again here, by the same `scan_upload` the trigger
runs, so the rules are the same; a failure counts towards MAX_SCAN_ATTEMPTS as the trigger's
do, and the file ends rejected as "could not be scanned" rather than waiting for ever. An upload
whose bytes are gone cannot be checked at all and is rejected at once with that reason.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import timedelta

from shared_code import clock
from shared_code.attachments import (
    COULD_NOT_SCAN,
    REJECTED,
    SCANNING,
    Attachment,
    find_attachment,
    save_attachment,
    scan_upload,
)
from shared_code.message_create import on_attachment_scanned
from shared_code.settings import Settings
from shared_code.storage import ATTACHMENTS, UPLOADS, Storage
from shared_code.tables import RowChanged, at_most, eq

log = logging.getLogger(__name__)

#: Twice host.json's `functionTimeout` (5 minutes): no live invocation can still hold the file.
STUCK_SCAN_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did (counts only)."""

    rechecked: int = 0
    rejected_missing: int = 0
    failed: int = 0
    left_for_next_run: int = 0


def recheck_stuck_scans(storage: Storage, settings: Settings, *, budget_seconds: float = 120.0) -> SweepReport:
    """Check again every attachment stuck in `scanning`, within `budget_seconds` of work.

    The budget keeps the timer's own invocation far under `functionTimeout` (each check may
    take up to the validator's wall-time ceiling); whatever is left waits for the next run.
    """
    cutoff = clock.iso(clock.now() - STUCK_SCAN_AFTER)
    rows = storage.table(ATTACHMENTS).query(
        eq("status", SCANNING), at_most("createdAt", cutoff), select=["PartitionKey", "RowKey"]
    )
    started = time.monotonic()
    rechecked = rejected_missing = failed = left = 0
    for row in rows:
        if time.monotonic() - started > budget_seconds:
            left += 1
            continue
        attachment = find_attachment(storage, row["PartitionKey"], row["RowKey"])
        if attachment is None or attachment.deleted or attachment.status != SCANNING:
            continue
        # An upload the preparation refused may be stored as it came, up to the larger upload limit.
        data = storage.read_blob(UPLOADS, attachment.blob_name, limit=settings.upload_limit + 1)
        if data is None:
            if _reject_unscannable(storage, attachment):
                rejected_missing += 1
                on_attachment_scanned(storage, settings, attachment.org, attachment.id)
            continue
        try:
            decided = scan_upload(storage, settings, attachment.blob_name, data)
        except Exception as exc:  # noqa: BLE001 - counted by scan_upload; the next sweep tries again
            log.warning("re-check of attachment %s failed (%s)", attachment.id, type(exc).__name__)
            failed += 1
            continue
        rechecked += 1
        if decided is not None and decided.status != SCANNING:
            on_attachment_scanned(storage, settings, decided.org, decided.id)
    if rechecked or rejected_missing or failed or left:
        log.info(
            "scan sweep: %d re-checked, %d rejected (upload gone), %d failed, %d left for the next run",
            rechecked,
            rejected_missing,
            failed,
            left,
        )
    return SweepReport(rechecked, rejected_missing, failed, left)


def _reject_unscannable(storage: Storage, attachment: Attachment) -> bool:
    """Reject an attachment whose upload is gone; False when someone else decided first."""
    decided = replace(
        attachment,
        status=REJECTED,
        reason=COULD_NOT_SCAN,
        scanned_at=clock.now(),
        scan_engine="sweep",
        scan_signature="upload-missing",
    )
    try:
        save_attachment(storage, decided)
    except RowChanged:
        return False
    log.error("attachment %s was stuck scanning with its upload gone; rejected", attachment.id)
    return True
