"""Sending a queued message: the last checks, the SMS, retries, and what it leaves in the record.

The queue entry and every write to the queue are in `shared_code.dispatch_queue`; every
change to the message is a `shared_code.lifecycle` transition.

Exactly once, and never a queue burnt by a configuration fault, in six parts:

* The message's repeatability id is made with the message, and its first-sent time is
  stored before the first request leaves. Every retry repeats both, so ACS answers a
  repeat with the first answer and sends nothing, also when the first answer was lost
  (a 5xx after ACS recorded the text, a time-out, a dropped connection).
* Evidence before a repeat. Microsoft's repeatable-requests page says ACS answers a repeat
  of a request that failed with 5xx by executing it again, and one still in progress with
  409; no recording shows what ACS SMS does. So a try that may have reached ACS (a 5xx, a
  time-out, a dropped connection, a 409) is not repeated at once: the retry waits
  `SMS_EVIDENCE_WAIT_SECONDS` for the text's delivery report, which carries the message's
  tag, so `shared_code.delivery` marks the message sent and the retry finds nothing to do.
  Only a report later than the wait can still let a re-executing ACS send twice (the
  reliability run measures how often). A redelivered entry (its host died mid-send) waits
  out the same time from the first try.
* ACS remembers a repeatability id for 5 minutes. Retries are spaced to fit well inside
  that window. A message whose first try may have reached ACS and is older than the
  window is never sent again: it fails as "unconfirmed" (ACS would answer 412 anyway),
  because a text sent twice is worse than one the practice is told to check. A try
  that provably never reached ACS (429, connection refused) does not start the window.
  A delivery report (matched by the tag, which holds the message's id) later corrects
  such a message to delivered.
* Retries: a transient failure re-queues the entry with a delay (exponential back-off
  with jitter, at least the Retry-After) and `attempts` + 1. After `SMS_MAX_ATTEMPTS`
  tries the message is failed with the reason and the entry is copied to
  `dispatch-poison`. An unexpected error raises instead, so the host's own redelivery
  (visibilityTimeout, dequeue count, poison after maxDequeueCount) takes over.
* A refused sender or identity (`SmsError.misconfigured`: 401, 403, 404, a 400 naming
  `From`) is no fault of the message: sending pauses for every process (`sms_pause`), the
  entry waits on the queue without counting a try, and the first text accepted after the
  pause resumes sending.
* Pacing: each send reserves a slot in the app-wide token bucket of `SMS_RATE_PER_MINUTE`,
  shared through a table row by every worker process and instance (`pacing.SharedPacer`);
  a 429's Retry-After pauses the bucket for every message.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from shared_code import clock, lifecycle
from shared_code.attachments import REJECTED, find_attachment
from shared_code.crypto import unseal
from shared_code.dispatch_queue import DispatchRequest, enqueue_dispatch, poison_dispatch, requeue_dispatch
from shared_code.message_create import advance_message, portal_link, sms_text, token_seal_key
from shared_code.message_model import Message
from shared_code.message_store import Change, find_message, transition
from shared_code.pacing import SlotPacer, shared_pacer
from shared_code.retention import STUCK_AFTER
from shared_code.settings import Settings
from shared_code.sms import SmsError, SmsUnconfirmed, send_sms
from shared_code.sms_pause import SenderPause, sender_health
from shared_code.storage import DOCUMENTS, PACING, Storage

log = logging.getLogger(__name__)

#: How long ACS remembers a repeatability id after its first-sent time (ACS documents 5 minutes).
REPEATABILITY_WINDOW = timedelta(minutes=5)
#: Room for clock differences between this host and ACS.
WINDOW_MARGIN = timedelta(seconds=15)
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
#: A Retry-After is honoured up to this, which keeps a waiting message clear of the sweeper's
#: 10-minute "stuck" mark (retention.STUCK_AFTER).
MAX_RETRY_DELAY_SECONDS = 300.0
#: A worker waits for a paced slot at most this long; further out, the entry is re-queued.
MAX_PACING_WAIT_SECONDS = 2.0
#: A due time this close is waited out rather than re-queued (queue delays are whole seconds).
MAX_SCHEDULE_WAIT_SECONDS = 2.0
#: A message sent later than this after it was made has its documents checked again.
RECHECK_AFTER = timedelta(minutes=1)
#: A 429 without Retry-After still pauses the sender this long.
DEFAULT_THROTTLE_PAUSE_SECONDS = 1.0

INTERNAL_ERROR = "The text could not be sent because of an internal error."
UNCONFIRMED = (
    "The SMS service did not confirm that the text was sent, and it cannot be tried again "
    "without risking a second copy. If the patient did not receive it, send a new message."
)


def retry_delay(attempt: int, retry_after: float | None, rand: Callable[[], float] = random.random) -> float:
    """Seconds before try `attempt + 1`: exponential back-off with jitter, never less than Retry-After."""
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempt - 1))
    # "Equal jitter": at least half the back-off, so retries spread out without collapsing to 0.
    delay = ceiling / 2 + rand() * ceiling / 2
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, MAX_RETRY_DELAY_SECONDS)


def evidence_wait(settings: Settings) -> float:
    """Seconds a try that may have reached ACS waits for its delivery report before it is repeated
    (none without delivery reports: no evidence can come)."""
    return float(settings.sms_evidence_wait_seconds) if settings.sms_delivery_reports else 0.0


def wait_before_retry(
    attempt: int, error: SmsError, settings: Settings, rand: Callable[[], float] = random.random
) -> float:
    """Seconds before try `attempt + 1` after `error`: the back-off, and for a try that may have
    reached ACS at least the evidence wait."""
    delay = retry_delay(attempt, error.retry_after, rand)
    if error.may_have_sent:
        delay = max(delay, evidence_wait(settings))
    return delay


def window_closed(message: Message) -> bool:
    """Whether ACS may no longer recognise a repeat of this message's first try."""
    if message.first_sent_at is None:
        return False
    return clock.now() - message.first_sent_at > REPEATABILITY_WINDOW - WINDOW_MARGIN


def sms_tag(message: Message) -> str:
    """The tag sent with the text and returned in its delivery reports: `{org}/{message id}`."""
    return f"{message.org}/{message.id}"


def dispatch_message(
    storage: Storage,
    settings: Settings,
    request: DispatchRequest,
    dequeue_count: int,
    *,
    pacer: SlotPacer | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Send the message if it is due and still wanted; returns what happened, for the log.

    Transient SMS failures re-queue the entry themselves (so this returns). An unexpected
    error raises, for the host to deliver the entry again, except on the last try, when
    the message is failed first so that the practice is told.
    """
    attempt = request.attempts + max(1, dequeue_count)
    try:
        pacer = pacer or shared_pacer(storage.table(PACING), settings.sms_rate_per_minute)
        return _dispatch(storage, settings, request, attempt, pacer, sleep)
    except Exception:
        if attempt < settings.sms_max_attempts:
            raise
        log.exception("message %s: the last try failed unexpectedly", request.message_id)
        message = find_message(storage, request.org, request.message_id)
        if message is not None:
            # Once a try may have left, the text may have arrived: say so rather than "not sent".
            _give_up(storage, request, message, UNCONFIRMED if message.first_sent_at else INTERNAL_ERROR)
        return "failed"


def _dispatch(
    storage: Storage,
    settings: Settings,
    request: DispatchRequest,
    attempt: int,
    pacer: SlotPacer,
    sleep: Callable[[float], None],
) -> str:
    org, message_id = request.org, request.message_id
    message = find_message(storage, org, message_id)
    if message is None:
        return "unknown"
    if message.state == lifecycle.AWAITING_SCAN:
        advance_message(storage, settings, org, message_id)
        return "awaiting_scan"
    if message.revoked_at:
        return "revoked"
    if not lifecycle.waiting_to_send(message):
        return message.state  # sent, delivered or failed already: nothing to do
    if message.send_at:
        due_in = (message.send_at - clock.now()).total_seconds()
        if due_in > MAX_SCHEDULE_WAIT_SECONDS:
            enqueue_dispatch(storage, message)  # further out than a queue can hide an entry
            return "rescheduled"
        if due_in > 0:
            sleep(due_in)

    problem = _why_not_sendable(storage, message)
    if problem:
        _fail(storage, message, problem)
        return "failed"
    if window_closed(message):
        _fail(storage, message, UNCONFIRMED)
        log.warning("message %s: first try older than the repeatability window; not sent again", message_id)
        return "unconfirmed"
    if message.first_sent_at is not None:
        # A repeat: an entry redelivered after its host died mid-send comes back sooner than a
        # retry would. Its try may have reached ACS, so it too waits for the delivery report.
        early = evidence_wait(settings) - (clock.now() - message.first_sent_at).total_seconds()
        if early > 0:
            requeue_dispatch(storage, replace(request, attempts=attempt - 1), early)
            return "awaiting_report"
    pause = sender_health(storage).current()
    if pause is not None and pause.active(clock.now()):
        return _hold(storage, request, message, attempt, pause)

    # Everything that can fail here is done before the first-sent time is stored.
    text = sms_text(message.body, portal_link(settings, unseal(token_seal_key(settings), message.sealed_token)))
    wait = pacer.reserve(MAX_PACING_WAIT_SECONDS)
    if wait is None:
        # Not a try: the entry comes back when the sender has room, with the same count.
        requeue_dispatch(storage, replace(request, attempts=attempt - 1), pacer.next_slot_in() + random.random())
        return "paced"
    if wait > 0:
        sleep(wait)

    # Persist the first-sent time before the request leaves, and re-check revoke and state
    # under the ETag: a message revoked by now is never sent.
    now = clock.now()
    started = now.replace(microsecond=now.microsecond // 1000 * 1000)  # as stored: whole milliseconds
    message, opened_window = _update(storage, message, lambda m: lifecycle.send_claimed(m, started))
    if message.revoked_at:
        return "revoked"
    if not lifecycle.waiting_to_send(message):
        return message.state

    try:
        accepted = send_sms(
            settings,
            to=message.mobile,
            text=text,
            repeatability_id=message.repeatability_id,
            first_sent=message.first_sent_at,
            tag=sms_tag(message),
        )
    except SmsUnconfirmed:
        _fail(storage, message, UNCONFIRMED)
        log.warning("message %s: ACS no longer recognises the first try (412); not sent again", message_id)
        return "unconfirmed"
    except SmsError as error:
        return _after_failure(storage, settings, request, message, attempt, error, pacer, opened_window=opened_window)

    _record_sent(storage, message, accepted.acs_message_id)
    if sender_health(storage).recovered():
        log.info("SMS sending resumed: ACS accepted a text again (message %s)", message.id)
    return "sent"


def _after_failure(
    storage: Storage,
    settings: Settings,
    request: DispatchRequest,
    message: Message,
    attempt: int,
    error: SmsError,
    pacer: SlotPacer,
    *,
    opened_window: bool,
) -> str:
    """Decide what a failed try leads to: a delayed retry, or the end."""
    if error.misconfigured:
        return _sender_refused(storage, request, message, attempt, error, pacer, opened_window=opened_window)
    if error.throttled or error.retry_after is not None:
        # The limit is the sender's: every message holds off, not only this one.
        pacer.pause(error.retry_after if error.retry_after is not None else DEFAULT_THROTTLE_PAUSE_SECONDS)
    # This try provably never reached ACS, so the window it opened protects nothing:
    # give it back, and the next try starts a fresh one.
    reopen = message.first_sent_at if opened_window and not error.may_have_sent else None

    if not error.retryable or attempt >= settings.sms_max_attempts:
        if reopen is not None:
            transition(storage, message.org, message.id, lambda m: lifecycle.window_reopened(m, reopen))
        if not error.retryable:
            _fail(storage, message, f"The text could not be sent: {error.reason}.")
        else:
            _give_up(storage, request, message, f"The text could not be sent after {attempt} tries: {error.reason}.")
        return "failed"

    _update(storage, message, lambda m: lifecycle.send_retried(m, clock.now(), reopen=reopen))
    delay = wait_before_retry(attempt, error, settings)
    requeue_dispatch(storage, replace(request, attempts=attempt), delay)
    log.warning(
        "message %s: try %d failed (%s); next try in %.1fs%s",
        message.id,
        attempt,
        error.reason,
        delay,
        ", unless its delivery report shows it went" if error.may_have_sent and evidence_wait(settings) else "",
    )
    return "retry"


def _sender_refused(
    storage: Storage,
    request: DispatchRequest,
    message: Message,
    attempt: int,
    error: SmsError,
    pacer: SlotPacer,
    *,
    opened_window: bool,
) -> str:
    """ACS refused our sender or identity: pause sending for everyone, and hold this message too."""
    if opened_window:
        # Refused before anything was sent: this try gives back the window it opened.
        first = message.first_sent_at
        transition(storage, message.org, message.id, lambda m: lifecycle.window_reopened(m, first))
    pause, began = sender_health(storage).refused(error.reason)
    remaining = max(0.0, (pause.until - clock.now()).total_seconds())
    pacer.pause(remaining)
    if began:
        log.error(
            "SMS sending paused for %.0fs (refusal %d in a row): %s. Queued texts wait, none is failed; "
            "sending resumes by itself once ACS accepts the sender again (refused: message %s)",
            remaining,
            pause.refusals,
            error.reason,
            message.id,
        )
    return _hold(storage, request, message, attempt, pause)


def _hold(storage: Storage, request: DispatchRequest, message: Message, attempt: int, pause: SenderPause) -> str:
    """Sending is paused: the entry comes back when the pause ends, spread over a few seconds so
    that the probe is not a burst; this was not a try, so the count stays."""
    now = clock.now()
    wait = max(0.0, (pause.until - now).total_seconds())
    if message.queued_at is None or now - message.queued_at > STUCK_AFTER / 2:
        # A long pause must not look like a lost entry to the sweeper (rows untouched for STUCK_AFTER).
        transition(storage, message.org, message.id, lambda m: lifecycle.requeued(m, now))
    requeue_dispatch(storage, replace(request, attempts=attempt - 1), wait + random.random() * min(5.0, 1.0 + wait))
    return "paused"


def _update(storage: Storage, message: Message, change: Change) -> tuple[Message, bool]:
    """`transition`, trying first with the version in hand (one read fewer on the busy path)."""
    return transition(storage, message.org, message.id, change, known=message)


def _record_sent(storage: Storage, message: Message, acs_message_id: str) -> None:
    # Delivery reports find the message by the tag sent with the text: no id table to write.
    sent, won = _update(storage, message, lambda m: lifecycle.sent(m, acs_message_id, clock.now()))
    if won:
        log.info("message %s sent (acs id %s)", sent.id, acs_message_id)


def _why_not_sendable(storage: Storage, message: Message) -> str | None:
    """What stops a queued message from going (revoked is checked by the caller)."""
    if message.expired:
        return "The link expired before the text could be sent."
    if not message.sealed_token or not message.mobile or not message.body:
        return "The message can no longer be sent."
    if clock.now() - message.created_at <= RECHECK_AFTER:
        # Made and queued moments ago, when every attachment was clean: a verdict is
        # final (`scan_upload` decides only attachments still scanning), and the message's
        # own copies go only with a revoke or the purge of an expired link, which the row
        # shows. Skipping the look keeps the busy send path two storage calls shorter.
        return None
    # It waited (on a scan, its send time, a long queue): anything an operator did since shows here.
    documents = storage.container(DOCUMENTS)
    for attachment_id in message.attachment_ids:
        attachment = find_attachment(storage, message.org, attachment_id)
        if attachment is not None and attachment.status == REJECTED:
            return f"The attachment {attachment.filename} was rejected, so the text was not sent."
        if not documents.get_blob_client(message.document_blob(attachment_id)).exists():
            return "A document is no longer available, so the text was not sent."
    return None


def _fail(storage: Storage, message: Message, reason: str) -> None:
    failed, won = _update(storage, message, lambda m: lifecycle.send_failed(m, reason, clock.now()))
    if won:
        log.info("message %s failed to send", failed.id)


def _give_up(storage: Storage, request: DispatchRequest, message: Message, reason: str) -> None:
    """The last try failed: fail the message and keep its entry in the poison queue for operators."""
    _fail(storage, message, reason)
    poison_dispatch(storage, request)
