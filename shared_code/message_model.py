"""The message record: one text to a patient and the state of its link, and its table entity.

The states and every change to them are in `shared_code.lifecycle`; this module only holds
the fields and how they are stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shared_code import clock, lifecycle
from shared_code.events import LIFECYCLE_EVENTS, Event, history_from_json, history_to_json, new_event


@dataclass(frozen=True)
class Message:
    """One text to a patient and the state of its link."""

    id: str
    org: str
    state: str  # the sending lifecycle; see `status` for what the API shows
    created_at: datetime
    created_by: str
    link_expires_at: datetime
    segments: int
    encoding: str
    attachment_ids: tuple[str, ...]
    token_hash: str
    dob_salt: str
    practice_name: str | None = None
    mobile: str | None = field(default=None, repr=False)
    body: str | None = field(default=None, repr=False)
    sealed_token: str | None = field(default=None, repr=False)
    dob_hash: str | None = field(default=None, repr=False)
    dob_attempts: int = 0
    #: When a right date of birth was last given: written on every one, so that a right date is
    #: decided by a conditional write like a wrong one (see lifecycle.dob_checked).
    last_dob_verified_at: datetime | None = None
    #: When a right date of birth was first given (the practice's history shows it).
    first_dob_verified_at: datetime | None = None
    #: When the patient first downloaded or viewed a document (a batch's counters read it here,
    #: rather than in every message's event log).
    first_downloaded_at: datetime | None = None
    send_at: datetime | None = None
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    delivery_reported_at: datetime | None = None
    failure_reason: str | None = None
    locked: bool = False
    revoked_at: datetime | None = None
    purged_at: datetime | None = None
    repeatability_id: str = ""
    first_sent_at: datetime | None = None
    acs_message_id: str | None = None
    queued_at: datetime | None = None
    #: The template (and its version) the message was sent with, if any.
    template_id: str | None = None
    template_version: int | None = None
    #: The batch the message was made for (`shared_code.batches`), if any.
    batch_id: str | None = None
    #: The mobile's last four digits, for the record entry (the number itself goes once delivered).
    mobile_ending: str | None = None
    #: The keyed hash of the patient's NHS number (`shared_code.history`), never the number itself.
    nhs_hash: str | None = field(default=None, repr=False)
    #: Lifecycle events, written with the change they record (see shared_code.events).
    history: tuple[Event, ...] = ()
    etag: str | None = None

    @property
    def expired(self) -> bool:
        """Whether the link's lifetime is over."""
        return clock.now() >= self.link_expires_at

    @property
    def status(self) -> str:
        """What the API shows now (`lifecycle.shown_status`)."""
        return lifecycle.shown_status(self, clock.now())

    def document_blob(self, attachment_id: str) -> str:
        """This message's own copy of a document, in the `documents` container."""
        return f"{self.org}/{self.id}/{attachment_id}"

    def with_event(self, event_type: str, *, attachment_id: str | None = None, at: datetime | None = None) -> Message:
        """This message with a lifecycle event added, to be stored by the same write as the change."""
        event = new_event(event_type, attachment_id=attachment_id, at=at, kinds=LIFECYCLE_EVENTS)
        return replace(self, history=(*self.history, event))


_DATES = (
    "created_at",
    "link_expires_at",
    "send_at",
    "sent_at",
    "delivered_at",
    "delivery_reported_at",
    "revoked_at",
    "purged_at",
    "first_sent_at",
    "queued_at",
    "last_dob_verified_at",
    "first_downloaded_at",
    "first_dob_verified_at",
)
_NAMES = {
    "state": "status",
    "created_at": "createdAt",
    "created_by": "createdBy",
    "link_expires_at": "linkExpiresAt",
    "attachment_ids": "attachmentIds",
    "token_hash": "tokenHash",
    "dob_salt": "dobSalt",
    "practice_name": "practiceName",
    "sealed_token": "sealedToken",
    "dob_hash": "dobHash",
    "dob_attempts": "dobAttempts",
    "last_dob_verified_at": "lastDobVerifiedAt",
    "first_downloaded_at": "firstDownloadedAt",
    "first_dob_verified_at": "firstDobVerifiedAt",
    "send_at": "sendAt",
    "sent_at": "sentAt",
    "delivered_at": "deliveredAt",
    "delivery_reported_at": "deliveryReportedAt",
    "failure_reason": "failureReason",
    "revoked_at": "revokedAt",
    "purged_at": "purgedAt",
    "repeatability_id": "repeatabilityId",
    "first_sent_at": "firstSentAt",
    "acs_message_id": "acsMessageId",
    "queued_at": "queuedAt",
    "template_id": "templateId",
    "template_version": "templateVersion",
    "batch_id": "batchId",
    "mobile_ending": "mobileEnding",
    "nhs_hash": "nhsHash",
}


def message_to_entity(m: Message) -> dict[str, Any]:
    """A Message as its table entity."""
    entity: dict[str, Any] = {"PartitionKey": m.org, "RowKey": m.id}
    for name in Message.__dataclass_fields__:
        if name in ("id", "org", "etag"):
            continue
        value = getattr(m, name)
        if name in _DATES:
            value = clock.iso(value)
        elif name == "attachment_ids":
            value = json.dumps(list(value))
        elif name == "history":
            value = history_to_json(value)
        entity[_NAMES.get(name, name)] = value
    return entity


def message_from_entity(e: Any) -> Message:
    """A Message from its table row (a `shared_code.tables.Row`, whose `etag` it keeps)."""
    values: dict[str, Any] = {"id": e["RowKey"], "org": e["PartitionKey"]}
    for name in Message.__dataclass_fields__:
        if name in ("id", "org", "etag"):
            continue
        value = e.get(_NAMES.get(name, name))
        if name in _DATES:
            value = clock.parse_iso(value)
        elif name == "attachment_ids":
            value = tuple(json.loads(value))
        elif name == "history":
            value = history_from_json(value)
        elif name in ("segments", "dob_attempts"):
            value = int(value)
        elif name == "template_version":
            value = None if value is None else int(value)
        elif name == "locked":
            value = bool(value)
        values[name] = value
    values["etag"] = getattr(e, "etag", None)
    return Message(**values)
