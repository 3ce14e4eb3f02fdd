"""Blob trigger: validate and scan each upload, then move on the messages waiting for it; and
the Event Grid trigger that records Defender for Storage's verdicts for that scan to read."""

from __future__ import annotations

import logging

import azure.functions as func

from functions.tracing import TracedBlueprint
from shared_code.settings import get_settings
from shared_code.storage import get_storage

bp = TracedBlueprint()
log = logging.getLogger("enclose.scan")


@bp.blob_trigger(
    arg_name="blob",
    path="uploads/{name}",
    connection="AzureWebJobsStorage",
    source=func.BlobSource(get_settings().blob_trigger_source),
)
def scan_uploaded_blob(blob: func.InputStream) -> None:
    """Give an uploaded file its verdict; a scanner failure raises so the host retries."""
    from shared_code.attachments import scan_upload
    from shared_code.message_create import on_attachment_scanned

    name = (blob.name or "").split("/", 1)[-1]  # "uploads/{org}/{id}" → "{org}/{id}"
    storage, settings = get_storage(), get_settings()
    attachment = scan_upload(storage, settings, name, blob.read())
    if attachment is not None:
        on_attachment_scanned(storage, settings, attachment.org, attachment.id)


@bp.function_name("record_scan_result")
@bp.event_grid_trigger(arg_name="event")
def record_scan_result(event: func.EventGridEvent) -> None:
    """Keep Defender's verdict on an upload (from its scan-results topic) for the scan to read."""
    from shared_code.scan_verdicts import store_scan_result
    from shared_code.scanning import MALWARE_SCANNING_RESULT

    if event.event_type != MALWARE_SCANNING_RESULT:
        log.info("event %s of type %s ignored", event.id, event.event_type)
        return
    data = event.get_json()
    outcome = store_scan_result(get_storage(), data if isinstance(data, dict) else {})
    log.info("scan result %s: %s", event.id, outcome)
