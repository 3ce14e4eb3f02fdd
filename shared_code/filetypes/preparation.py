"""What an upload becomes before it is stored, scanned and served (`prepare`), and the scan's
check that stored bytes went through it (`check_prepared`).

Preparation takes out hidden metadata (`sanitise`) and makes a picture or PDF over the size
limit fit it (`fitting`). It is done once, at upload, in the isolation worker; the bytes it
returns are the ones stored, scanned for malware and served, so what a patient gets is exactly
what was scanned. The order is fixed:

1. a file with nothing to remove and within the limit is returned as it is, without a parse
   beyond the cheap look `needs_cleaning` takes (the scan validates it, as it validates all);
2. otherwise the file is validated first: one the scan would refuse is not rewritten (qpdf and
   Pillow repair some damage, which would hide it) and is refused here for the same reason;
3. then cleaned, then fitted if still over the limit (`CannotFit` when it cannot be);
4. and what was written is validated again, and must need no cleaning: our own output is
   held to the rules any upload is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shared_code.filetypes.common import REASONS, ContentRejected, FileType, Refusal, damaged
from shared_code.filetypes.fitting import CannotFit, fit
from shared_code.filetypes.sanitise import CLEANED_KINDS, clean, needs_cleaning
from shared_code.filetypes.validation import validate

log = logging.getLogger(__name__)

#: The kinds made to fit a limit; any other kind over the limit is refused before this runs.
FITTED_KINDS = CLEANED_KINDS


@dataclass(frozen=True)
class Prepared:
    """The bytes to store (`data`; None when they are the upload's own), whether hidden metadata
    was taken out (`cleaned`) and whether the file was made smaller to fit (`reduced`)."""

    data: bytes | None
    cleaned: bool
    reduced: bool


def prepare(data: bytes, file_type: FileType, limit: int) -> Prepared:
    """The file as it will be stored: cleaned, and fitted to `limit` bytes.

    Raises `ContentRejected` for a file validation refuses (or one our tools cannot read), and
    `CannotFit` when it stays over `limit` after everything that may be done to it.
    """
    kind = file_type.kind
    if kind not in CLEANED_KINDS:
        if len(data) > limit:
            raise CannotFit
        return Prepared(None, cleaned=False, reduced=False)
    try:
        dirty = needs_cleaning(data, kind)
    except Exception:  # noqa: BLE001 - unreadable here: validation below says why
        dirty = True
    if not dirty and len(data) <= limit:
        return Prepared(None, cleaned=False, reduced=False)
    validate(data, file_type)
    try:
        cleaned = clean(data, kind) if dirty else data
        reduced = len(cleaned) > limit
        out = fit(cleaned, kind, limit) if reduced else cleaned
    except (CannotFit, ContentRejected):
        raise
    except Refusal as refusal:
        raise ContentRejected(refusal.reason, refusal.rule) from None
    except (MemoryError, RecursionError):
        raise ContentRejected(REASONS["too_complex"], "too_complex") from None
    except Exception as exc:  # noqa: BLE001 - fail closed: a file our tools cannot rewrite is damaged
        log.info("preparing a %s failed: %s", kind, type(exc).__name__)
        refusal = damaged(kind)
        raise ContentRejected(refusal.reason, refusal.rule) from None
    check_prepared(out, file_type)
    return Prepared(out, cleaned=dirty, reduced=reduced)


def check_prepared(data: bytes, file_type: FileType) -> None:
    """Validate stored bytes and refuse (`not_prepared`) any that still need cleaning: bytes
    that did not come through `prepare` never reach a patient."""
    validate(data, file_type)
    if file_type.kind not in CLEANED_KINDS:
        return
    try:
        dirty = needs_cleaning(data, file_type.kind)
    except (MemoryError, RecursionError):
        raise ContentRejected(REASONS["too_complex"], "too_complex") from None
    except Exception:  # noqa: BLE001 - validation read it; if this cannot, do not serve it
        dirty = True
    if dirty:
        raise ContentRejected(REASONS["not_prepared"], "not_prepared")
