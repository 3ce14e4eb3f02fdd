"""The message lifecycle: its states and every change to them, as pure functions.

The stored `state` follows the sending lifecycle:

    awaiting_scan ─▶ scheduled / queued ─▶ sent ─▶ delivered
          │                  │               │
          └──────────────────┴──▶ failed ◀───┘   (a delivery report may still correct it)

Revoked, expired, locked and purged are facts about the link, stored beside the state;
`shown_status` derives what the API shows from both.

Every transition here takes a message and returns the changed message, or None when the
rule refuses (the message is not in a state the change applies to): "no change". They do no
I/O; `message_store.transition` reads the row, applies one, and writes it back under its
ETag. Each change also says what it scrubs: the text and the link token once they are no
longer needed to send (`_scrub`); the mobile number once the message reaches a final
delivery state (delivered, or failed for good: nothing sends it again, and a late delivery
report is matched by its tag and ACS id, never by number); and with the purge the
date-of-birth hash too. No other module sets a message's state.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared_code import clock

if TYPE_CHECKING:
    from collections.abc import Iterable

    from shared_code.message_model import Message

AWAITING_SCAN, SCHEDULED, QUEUED = "awaiting_scan", "scheduled", "queued"
SENT, DELIVERED, FAILED = "sent", "delivered", "failed"
#: The stored states, in lifecycle order.
STATES = (AWAITING_SCAN, SCHEDULED, QUEUED, SENT, DELIVERED, FAILED)
#: Shown by the API only, derived from the facts about the link (`shown_status`).
LOCKED, REVOKED, EXPIRED = "locked", "revoked", "expired"
SHOWN_STATUSES = (*STATES, LOCKED, REVOKED, EXPIRED)

_WAITING_TO_SEND = frozenset({QUEUED, SCHEDULED})
_TEXT_GONE = frozenset({SENT, DELIVERED})
#: A delivery report can only be about a text that may have been sent.
_REPORTABLE = frozenset({QUEUED, SCHEDULED, SENT, DELIVERED, FAILED})


# -- what a state means -------------------------------------------------------------------


def waiting_to_send(m: Message) -> bool:
    """Whether the message is queued or scheduled: the dispatcher may still send it."""
    return m.state in _WAITING_TO_SEND


def text_gone(m: Message) -> bool:
    """Whether the text has left (sent or delivered): only then can its link work."""
    return m.state in _TEXT_GONE


def link_open(m: Message, at: datetime) -> bool:
    """Whether the link leads to the documents at `at` (a locked link is open, but asks the practice)."""
    return text_gone(m) and not m.revoked_at and not m.purged_at and at < m.link_expires_at


def shown_status(m: Message, at: datetime) -> str:
    """What the API shows at `at`: revoked, expired and locked win over the sending state."""
    if m.revoked_at:
        return REVOKED
    if text_gone(m) and (at >= m.link_expires_at or m.purged_at):
        return EXPIRED
    if m.locked and text_gone(m):
        return LOCKED
    return m.state


def _scrub(m: Message, *, final: bool = False, personal: bool = False) -> Message:
    """Drop what is no longer needed: the text and the link token; with `final` (a final
    delivery state) the mobile number; with `personal`, the number and date-of-birth hash (the purge)."""
    m = replace(m, body=None, sealed_token=None)
    if final:
        m = replace(m, mobile=None)
    return replace(m, mobile=None, dob_hash=None) if personal else m


# -- created and scanned ------------------------------------------------------------------


def created(*, created_at: datetime, **fields: Any) -> Message:
    """A new message: awaiting the scans of its attachments, with its `created` event."""
    from shared_code.message_model import Message  # the model imports this module for `status`

    return Message(state=AWAITING_SCAN, created_at=created_at, **fields).with_event("created", at=created_at)


def scans_passed(m: Message, attachment_ids: Iterable[str], at: datetime) -> Message | None:
    """Every attachment is clean and copied: scheduled when its send time is still ahead, else queued."""
    if m.state != AWAITING_SCAN or m.revoked_at:
        return None
    for attachment_id in attachment_ids:
        m = m.with_event("scan_clean", attachment_id=attachment_id, at=at)
    state = SCHEDULED if m.send_at is not None and m.send_at > at else QUEUED
    return replace(m, state=state, queued_at=at).with_event(state, at=at)


def scan_failed(m: Message, reason: str, at: datetime) -> Message | None:
    """An attachment was rejected or deleted before the message could go."""
    if m.state != AWAITING_SCAN or m.revoked_at:
        return None
    # Never to be sent: the number is not needed (the text stays until the purge, as before).
    return replace(m, state=FAILED, failure_reason=reason, mobile=None).with_event("scan_rejected", at=at)


def requeued(m: Message, at: datetime) -> Message | None:
    """The sweeper queues a stuck message again: the touch keeps the next sweep from doing it twice."""
    if not waiting_to_send(m) or m.revoked_at:
        return None
    return replace(m, queued_at=at)


# -- sending ------------------------------------------------------------------------------


def send_claimed(m: Message, at: datetime) -> Message | None:
    """The first try is about to leave: its time opens the repeatability window.

    Refused once revoked, once no longer waiting to send, and when a try has been made.
    """
    if m.revoked_at or not waiting_to_send(m) or m.first_sent_at:
        return None
    return replace(m, first_sent_at=at)


def window_reopened(m: Message, first_sent_at: datetime | None) -> Message | None:
    """A try that provably never reached ACS gives back the window it opened (only that try's)."""
    if m.first_sent_at is None or clock.iso(m.first_sent_at) != clock.iso(first_sent_at):
        return None
    return replace(m, first_sent_at=None)


def send_retried(m: Message, at: datetime, *, reopen: datetime | None = None) -> Message | None:
    """A try failed and another will follow; `reopen` is the first-sent time to give back, if any."""
    if not waiting_to_send(m):
        return None
    if reopen is not None:
        m = window_reopened(m, reopen) or m
    return m.with_event("send_retry", at=at)


def sent(m: Message, acs_message_id: str, at: datetime) -> Message | None:
    """ACS accepted the text: its words and the token are no longer needed, so not kept."""
    if not waiting_to_send(m):
        return None  # a delivery report got here first
    return _scrub(replace(m, state=SENT, sent_at=at, acs_message_id=acs_message_id)).with_event("sent", at=at)


def send_failed(m: Message, reason: str, at: datetime) -> Message | None:
    """The text will not go (or may have gone unconfirmed): the practice is told why."""
    if not waiting_to_send(m):
        return None
    # Failed for good: no path sends a failed message again, so the number goes too.
    return _scrub(replace(m, state=FAILED, failure_reason=reason), final=True).with_event("delivery_failed", at=at)


def reported(
    m: Message, acs_message_id: str, received: datetime, *, delivered: bool, failure_reason: str
) -> Message | None:
    """A delivery report: delivered, or failed with `failure_reason`; None when it changes nothing.

    Duplicates and any order of arrival end in the same state: a report no newer than the
    last applied changes nothing, delivered is final, and a report for a message still
    queued (its answer lost) or failed as unconfirmed proves that ACS sent it.
    """
    if m.acs_message_id and m.acs_message_id != acs_message_id:
        return None  # a report for some other text
    if m.state not in _REPORTABLE:
        return None
    if m.sent_at is None and m.first_sent_at is None:
        return None  # never tried, so ACS cannot have sent it
    if m.delivery_reported_at and received <= m.delivery_reported_at:
        return None  # a duplicate, or older than what we know
    if m.state == DELIVERED and not delivered:
        return None  # delivered is final
    # Sent just before it was reported, when the dispatcher never heard ACS's answer.
    sent_at = m.sent_at or received - timedelta(milliseconds=1)
    if m.sent_at is None:
        # It went, though the dispatcher never heard ACS say so: the report is the proof.
        m = m.with_event("sent", at=sent_at)
    # Delivered and failed are both final: the number goes. (A later report that corrects one to
    # the other is matched by tag and ACS id, never by number.)
    m = _scrub(replace(m, acs_message_id=acs_message_id, delivery_reported_at=received, sent_at=sent_at), final=True)
    if delivered:
        m = replace(m, state=DELIVERED, delivered_at=m.delivered_at or received, failure_reason=None)
        return m.with_event("delivered", at=received)
    return replace(m, state=FAILED, failure_reason=failure_reason).with_event("delivery_failed", at=received)


def pending_reported(m: Message, acs_message_id: str, received: datetime) -> Message | None:
    """A report that is not final (ACS's Pending or Unknown); None when it changes nothing.

    It decides nothing about delivery, but it proves that ACS took the text: a message still
    queued (its answer lost) or failed as unconfirmed by the dispatcher is recorded as sent.
    A message already known to be sent, or decided by a final report, keeps what it has, so a
    non-final report arriving late or twice never undoes a final one.
    """
    if m.acs_message_id and m.acs_message_id != acs_message_id:
        return None  # a report for some other text
    if m.sent_at is not None or m.delivery_reported_at is not None:
        return None
    if m.first_sent_at is None or m.state not in (QUEUED, SCHEDULED, FAILED):
        return None  # never tried, so ACS cannot have sent it
    sent_at = received - timedelta(milliseconds=1)
    m = replace(m, state=SENT, sent_at=sent_at, acs_message_id=acs_message_id, failure_reason=None)
    return _scrub(m).with_event("sent", at=sent_at)


# -- the link -----------------------------------------------------------------------------


def dob_checked(m: Message, right: bool, limit: int, at: datetime) -> Message | None:
    """Count a date-of-birth attempt: a wrong one adds one and locks at `limit`, a right one resets.

    A right one always changes the record (its time), so it is stored by the same ETag-checked
    write as a wrong one: judged on a copy read before parallel wrong guesses were counted, it
    loses the race and is judged again on the stored count. Refused on a locked link: only the
    practice can unlock it.
    """
    if m.locked:
        return None
    if right:
        return replace(m, dob_attempts=0, last_dob_verified_at=at, first_dob_verified_at=m.first_dob_verified_at or at)
    attempts = m.dob_attempts + 1
    if attempts >= limit:
        return replace(m, dob_attempts=attempts, locked=True).with_event("locked", at=at)
    return replace(m, dob_attempts=attempts)


def unlocked(m: Message, at: datetime) -> Message | None:
    """The practice makes a locked link work again, with its attempts reset."""
    if not m.locked and m.dob_attempts == 0:
        return None
    return replace(m, locked=False, dob_attempts=0).with_event("unlocked", at=at)


def document_withdrawn(m: Message, attachment_id: str, at: datetime) -> Message | None:
    """A template document the scheduled re-scan found infected is taken from the message (its
    copy is deleted by the caller); recorded once per document. Refused once the link is dead
    (revoked or purged: its copies are gone already) or the message does not carry it."""
    if m.revoked_at or m.purged_at or attachment_id not in m.attachment_ids:
        return None
    if any(e.type == "document_withdrawn" and e.attachment_id == attachment_id for e in m.history):
        return None
    return m.with_event("document_withdrawn", attachment_id=attachment_id, at=at)


def revoked(m: Message, at: datetime) -> Message | None:
    """The link dies at once, and an unsent text never goes (its words and token are dropped)."""
    if m.revoked_at:
        return None
    return _scrub(replace(m, revoked_at=at)).with_event("revoked", at=at)


def expired(m: Message) -> Message | None:
    """The `expired` event, at the link's end, for a link that worked until then."""
    if not text_gone(m) or m.revoked_at or m.purged_at:
        return None
    return m.with_event("expired", at=m.link_expires_at)


def purged(m: Message, at: datetime) -> Message | None:
    """After the link's end: the personal data goes, the event log stays."""
    if m.purged_at:
        return None
    m = expired(m) or m
    return _scrub(replace(m, purged_at=at), personal=True).with_event("purged", at=at)
