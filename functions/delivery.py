"""Event Grid trigger: SMS delivery reports from Azure Communication Services."""

from __future__ import annotations

import logging

import azure.functions as func

from functions.tracing import TracedBlueprint
from shared_code.storage import get_storage

bp = TracedBlueprint()
log = logging.getLogger("enclose.delivery")


@bp.function_name("delivery_report")
@bp.event_grid_trigger(arg_name="event")
def delivery_report(event: func.EventGridEvent) -> None:
    """Record a delivery report on its message (duplicates and old reports change nothing)."""
    from shared_code.delivery import DELIVERY_REPORT, apply_delivery_report

    if event.event_type != DELIVERY_REPORT:
        log.info("event %s of type %s ignored", event.id, event.event_type)
        return
    data = event.get_json()
    outcome = apply_delivery_report(get_storage(), data if isinstance(data, dict) else {})
    log.info("delivery report %s: %s", event.id, outcome)
