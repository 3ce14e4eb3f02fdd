"""Timer trigger: scan templates' documents again with current signatures, withdrawing infected ones."""

from __future__ import annotations

import logging

import azure.functions as func

from functions.tracing import TracedBlueprint
from shared_code.settings import get_settings
from shared_code.storage import get_storage

bp = TracedBlueprint()
log = logging.getLogger("enclose.template_rescan")


@bp.timer_trigger(arg_name="timer", schedule=get_settings().template_rescan_schedule, run_on_startup=False)
def template_rescan(timer: func.TimerRequest) -> None:
    """On TEMPLATE_RESCAN_SCHEDULE (daily by default)."""
    from shared_code.template_rescan import run_template_rescan  # here: not needed to index the app

    report = run_template_rescan(get_storage(), get_settings())
    log.info(
        "template re-scan: %d scanned, %d withdrawn, %d left for the next run",
        report.scanned,
        report.withdrawn,
        report.left,
    )
