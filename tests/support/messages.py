"""Message records built in memory, for unit tests of rules that take a Message (no I/O)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from shared_code import clock
from shared_code.lifecycle import QUEUED
from shared_code.message_model import Message


def message_record(*, at: datetime | None = None, **changes: Any) -> Message:
    """A queued message with plausible fields, created at `at` (now by default), changed as asked."""
    at = at or clock.now()
    base = Message(
        id=str(uuid.uuid4()),
        org="A12345",
        state=QUEUED,
        created_at=at,
        created_by="gp1",
        link_expires_at=at + timedelta(days=28),
        segments=1,
        encoding="GSM-7",
        attachment_ids=(str(uuid.uuid4()),),
        token_hash="h" * 64,
        dob_salt="s",
        mobile="+447700900123",
        body="Your letter",
        sealed_token="sealed",
        dob_hash="d",
        repeatability_id=str(uuid.uuid4()),
    )
    return replace(base, **changes)
