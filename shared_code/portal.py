"""The patient portal's rules: which links work, the date-of-birth check, sessions, downloads.

The HTTP shape (pages, headers) is in `functions/portal.py`; the form, cookies and
CSRF value in `shared_code/portal_forms.py`.
"""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass, replace
from datetime import date

from shared_code import clock, lifecycle
from shared_code.attachments import find_attachment
from shared_code.crypto import derive_key, dob_matches, sign, token_hash, unsign
from shared_code.errors import Forbidden, NotFound
from shared_code.events import OPENED_WINDOW, record_event
from shared_code.message_model import Message
from shared_code.message_store import find_message, transition
from shared_code.settings import Settings
from shared_code.storage import DOCUMENTS, LINKS, Storage

log = logging.getLogger(__name__)

DEFAULT_PRACTICE_NAME = "Your GP practice"
_TOKEN_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class LinkGone(NotFound):
    """Unknown, expired or revoked: one answer for all three, so none can be told apart."""

    title = "Link not found"

    def __init__(self) -> None:
        super().__init__("This link is not valid. It may have expired or been cancelled.")


class LinkLocked(Forbidden):
    """Too many wrong dates of birth: only the practice can unlock the link."""

    title = "Link locked"

    def __init__(self, practice_name: str) -> None:
        super().__init__("This link has been locked because the date of birth was entered wrongly too many times.")
        self.practice_name = practice_name


def practice_name(message: Message) -> str:
    """The practice's name as patients see it."""
    return message.practice_name or DEFAULT_PRACTICE_NAME


def resolve_link(storage: Storage, token: str) -> Message:
    """The live message behind a link token; LinkGone (404) or LinkLocked (403) otherwise."""
    if not 16 <= len(token) <= 64 or not set(token) <= _TOKEN_CHARS:
        raise LinkGone()
    row = storage.table(LINKS).get(token_hash(token), "")
    if row is None:
        raise LinkGone()
    message = find_message(storage, row["org"], row["messageId"])
    # A link works only once its text has gone, until it expires or is revoked.
    if message is None or not lifecycle.link_open(message, clock.now()):
        raise LinkGone()
    if message.locked:
        raise LinkLocked(practice_name(message))
    return message


def note_opened(storage: Storage, message: Message) -> None:
    """Record that the link was fetched (a phone's link preview counts: it is not proof of the patient).

    Opens within a few minutes of each other are one event (`OPENED_WINDOW`), so a link
    fetched in a loop costs one read each time, not a row.
    """
    record_event(storage, message.id, "portal_opened", once_per=OPENED_WINDOW)


# -- date of birth ----------------------------------------------------------------------


@dataclass(frozen=True)
class DobOutcome:
    """What a date-of-birth attempt led to.

    kind: `invalid` (not a real date: not an attempt), `wrong`, `locked` or `verified`.
    """

    kind: str
    field_errors: dict[str, str]
    summary: str | None = None
    attempts_left: int | None = None


def parse_dob_fields(day: str, month: str, year: str, today: date) -> tuple[date | None, dict[str, str], str | None]:
    """(date, {}, None) for a real past date; otherwise the NHS pattern's field errors and summary."""
    day, month, year = (day or "").strip(), (month or "").strip(), (year or "").strip()
    missing = [name for name, value in (("day", day), ("month", month), ("year", year)) if not value]
    if len(missing) == 3:
        return None, {"day": "", "month": "", "year": ""}, "Enter your date of birth"
    if missing:
        return None, {m: "" for m in missing}, f"Date of birth must include a {' and '.join(missing)}"
    fields = {}
    if not (day.isdigit() and len(day) <= 2):
        fields["day"] = ""
    if not (month.isdigit() and len(month) <= 2):
        fields["month"] = ""
    if not (year.isdigit() and len(year) == 4):
        fields["year"] = ""
    if fields:
        if list(fields) == ["year"]:
            return None, fields, "Year must include 4 numbers"
        return None, fields, "Date of birth must be a real date"
    try:
        value = date(int(year), int(month), int(day))
    except ValueError:
        return None, {"day": "", "month": "", "year": ""}, "Date of birth must be a real date"
    if value > today:
        return None, {"day": "", "month": "", "year": ""}, "Date of birth must be in the past"
    return value, {}, None


def check_dob(storage: Storage, settings: Settings, message: Message, day: str, month: str, year: str) -> DobOutcome:
    """Check a date of birth against the link; count a wrong one, lock after the limit.

    Every answer, a right one too, is a write with an ETag condition on the stored record, so
    parallel guesses cannot overrun the limit: a right date is verified only while fewer than
    MAX_DOB_ATTEMPTS wrong ones have been counted before it.
    """
    candidate, fields, summary = parse_dob_fields(day, month, year, clock.now().date())
    if candidate is None:
        return DobOutcome("invalid", fields, summary)
    right = bool(message.dob_hash) and dob_matches(
        settings.dob_hash_key.reveal(), message.dob_salt, message.dob_hash, candidate
    )
    limit = settings.max_dob_attempts
    now = clock.now()
    # Tried first on the copy this request read; if any guess was counted since, its ETag no
    # longer matches and the answer is decided again on the stored record, right dates included.
    updated, won = transition(
        storage,
        message.org,
        message.id,
        lambda m: lifecycle.dob_checked(m, right, limit, now),
        attempts=200,
        known=message,
    )
    if not won:  # the one refusal: the link is locked
        raise LinkLocked(practice_name(updated))
    if right:
        record_event(
            storage, message.id, "dob_verified", org=message.org, status=message.status, batch_id=message.batch_id
        )
        return DobOutcome("verified", {})
    record_event(storage, message.id, "dob_failed")
    if updated.locked:
        log.info("message %s locked after %d wrong dates of birth", message.id, limit)
        raise LinkLocked(practice_name(updated))
    left = max(limit - updated.dob_attempts, 0)
    return DobOutcome(
        "wrong",
        {"day": "", "month": "", "year": ""},
        "The date of birth does not match our records. Check it and try again.",
        attempts_left=left,
    )


# -- sessions ---------------------------------------------------------------------------


def _session_key(settings: Settings) -> bytes:
    return derive_key(settings.session_key.reveal(), "portal-session")


def new_session(settings: Settings, token: str) -> str:
    """A signed session value for this link, valid for SESSION_TTL_SECONDS (at most 15 minutes)."""
    expires = int(time.time()) + settings.session_ttl_seconds
    return sign(_session_key(settings), f"{token_hash(token)[:32]}~{expires}")


def session_valid(settings: Settings, token: str, value: str | None) -> bool:
    """Whether a session cookie belongs to this link and has not expired."""
    if not value:
        return False
    payload = unsign(_session_key(settings), value)
    if payload is None:
        return False
    bound, _, expires = payload.partition("~")
    return hmac.compare_digest(bound, token_hash(token)[:32]) and expires.isdigit() and int(expires) > time.time()


# -- documents --------------------------------------------------------------------------


#: Kinds a phone shows by itself when served inline: PDF and the pictures every browser draws
#: (TIFF is left to the download: only Safari draws it).
VIEWABLE_KINDS = frozenset({"pdf", "jpeg", "png"})


@dataclass(frozen=True)
class DocumentItem:
    """One document as the patient's list shows it."""

    id: str
    name: str
    kind: str
    size: int

    @property
    def viewable(self) -> bool:
        """Whether the list offers "View" (served inline, for the phone's own viewer) beside "Download"."""
        return self.kind in VIEWABLE_KINDS


def list_documents(storage: Storage, message: Message) -> list[DocumentItem]:
    """The message's documents that can still be downloaded."""
    items = []
    for attachment_id in message.attachment_ids:
        attachment = find_attachment(storage, message.org, attachment_id)
        if attachment is not None and attachment.status == "clean":
            items.append(DocumentItem(attachment.id, attachment.filename, attachment.kind, attachment.size))
    return items


def download_url(
    storage: Storage, settings: Settings, message: Message, attachment_id: str, *, inline: bool = False
) -> str:
    """A short SAS URL for one of the message's documents; records the download (a view too: the
    patient has the document either way). With `inline`, the blob is served for the phone to show
    (`Content-Disposition: inline`), only for a `VIEWABLE_KINDS` document (404 otherwise)."""
    from shared_code.filenames import content_disposition
    from shared_code.sas import document_sas_url

    if attachment_id not in message.attachment_ids:
        raise NotFound("There is no such document.")
    attachment = find_attachment(storage, message.org, attachment_id)
    if attachment is None or attachment.status != "clean" or (inline and attachment.kind not in VIEWABLE_KINDS):
        raise NotFound("There is no such document.")
    url = document_sas_url(
        storage,
        settings,
        DOCUMENTS,
        message.document_blob(attachment_id),
        filename_disposition=content_disposition(attachment.filename, inline=inline),
        content_type=attachment.content_type,
    )
    record_event(
        storage,
        message.id,
        "downloaded",
        attachment_id=attachment_id,
        org=message.org,
        status=message.status,
        batch_id=message.batch_id,
    )
    if message.first_downloaded_at is None:
        _first_download(storage, message)
    return url


def _first_download(storage: Storage, message: Message) -> None:
    """Note the first download on the message itself, once (later ones find it noted)."""
    now = clock.now()
    transition(
        storage,
        message.org,
        message.id,
        lambda m: replace(m, first_downloaded_at=now) if m.first_downloaded_at is None else None,
        known=message,
    )
