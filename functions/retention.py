"""Timer trigger: purge expired links, re-queue anything a crash left behind, re-check stuck scans."""

from __future__ import annotations

import logging

import azure.functions as func

from functions.tracing import TracedBlueprint
from shared_code.settings import get_settings
from shared_code.storage import get_storage

bp = TracedBlueprint()
log = logging.getLogger("enclose.retention")


@bp.timer_trigger(arg_name="timer", schedule="0 */5 * * * *", run_on_startup=False)
def retention(timer: func.TimerRequest) -> None:
    """Every five minutes, so a link's documents go well within an hour of its expiry."""
    from shared_code.retention import run_retention
    from shared_code.scan_sweep import recheck_stuck_scans

    storage, settings = get_storage(), get_settings()
    report = run_retention(storage, settings)
    log.info(
        "retention: %d purged, %d re-queued, %d batch(es) done, %d batch(es) cleared, %d old scan result(s)",
        report.purged,
        report.requeued,
        report.batches_done,
        report.batch_rows_deleted,
        report.verdicts_forgotten,
    )
    recheck_stuck_scans(storage, settings)
