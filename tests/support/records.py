"""Build real records in Azurite for integration tests of shared_code (no HTTP, no host)."""

from __future__ import annotations

import uuid
from dataclasses import replace

from shared_code import clock, lifecycle
from shared_code.attachments import CLEAN, Attachment, _settle, upload_attachment
from shared_code.auth import Principal
from shared_code.message_create import create_message
from shared_code.message_model import Message
from shared_code.message_request import parse_new_message
from shared_code.message_store import transition
from tests.support.stack import sample_pdf

DOB = "1970-01-31"


def principal(org: str = "A12345") -> Principal:
    """A caller of the given organisation."""
    return Principal(org=org, user="gp1", org_name="Riverside Surgery")


def clean_attachment(storage, settings, org: str = "A12345", data: bytes | None = None) -> Attachment:
    """An uploaded attachment given a clean verdict directly (the scan itself is tested elsewhere)."""
    data = data or sample_pdf("Letter")
    attachment = upload_attachment(storage, settings, principal(org), "letter.pdf", data)
    return _settle(storage, replace(attachment, status=CLEAN, scan_engine="test"), data)


def new_message(
    storage, settings, org: str = "A12345", attachment_ids: list[str] | None = None, **overrides
) -> Message:
    """A message created through the real rules."""
    if attachment_ids is None:
        attachment_ids = [clean_attachment(storage, settings, org).id]
    payload = {
        "patient": {"nhsNumber": "9434765919", "dateOfBirth": DOB, "mobile": "07700900123"},
        "body": "Your letter",
        "attachmentIds": attachment_ids,
        **overrides,
    }
    return create_message(storage, settings, principal(org), parse_new_message(payload, settings))


def mark_sent(storage, message: Message) -> Message:
    """Pretend the SMS went (dispatch is tested on its own)."""
    acs_message_id = str(uuid.uuid4())
    return transition(storage, message.org, message.id, lambda m: lifecycle.sent(m, acs_message_id, clock.now()))[0]
