"""What an upload is stored as (issue 18): hidden metadata removed, and a picture or PDF over
`MAX_ATTACHMENT_BYTES` made to fit it, before it is stored and scanned.

This runs in the upload's HTTP request, so the answer can say at once what was done
(`reduced`, `metadataRemoved`, the original size and SHA-256), and the bytes stored in
`uploads` are the ones the scan checks (ClamAV, or Defender on upload) and the patient gets.
The work itself happens in the isolation worker (`filetypes.isolation.prepare_isolated`),
bounded like validation. Other kinds are not changed, and keep the `MAX_ATTACHMENT_BYTES` limit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shared_code.errors import ServiceUnavailable, TooLarge
from shared_code.filetypes.common import ContentRejected, FileType
from shared_code.settings import Settings

log = logging.getLogger(__name__)

_NAMES = {"pdf": "PDF", "jpeg": "picture", "png": "picture", "tiff": "picture"}


@dataclass(frozen=True)
class StoredUpload:
    """The bytes to store for an upload, and what was done to make them."""

    data: bytes
    cleaned: bool
    reduced: bool


def megabytes(size: int) -> str:
    """A byte limit in words: "3 MB" (binary megabytes, as the limits are set)."""
    value = size / (1024 * 1024)
    return f"{value:.0f} MB" if value == int(value) else f"{value:.1f} MB"


def prepare_upload(data: bytes, file_type: FileType, settings: Settings) -> StoredUpload:
    """The upload as it will be stored; 413 (`TooLarge`) with a plain reason when it is over
    MAX_ATTACHMENT_BYTES and cannot be made to fit, 503 when the worker cannot be started.

    A file that validation refuses is stored as it came: the scan refuses it again, with the
    reason in the attachment's answer, as for any upload. (It is never served: the scan also
    refuses a picture or PDF still over the limit or with metadata, `not_prepared`.)
    """
    from shared_code.filetypes.fitting import CannotFit
    from shared_code.filetypes.isolation import ValidatorUnavailable, prepare_isolated
    from shared_code.filetypes.preparation import FITTED_KINDS

    limit = settings.max_attachment_bytes
    if file_type.kind not in FITTED_KINDS:
        if len(data) > limit:
            raise TooLarge(
                f"The document is larger than the {megabytes(limit)} limit. Save it as a PDF and upload "
                "that instead: PDFs and pictures are made smaller automatically."
            )
        return StoredUpload(data, cleaned=False, reduced=False)
    try:
        outcome = prepare_isolated(data, file_type, limit)
    except CannotFit:
        raise TooLarge(_cannot_fit(file_type.kind, limit)) from None
    except ContentRejected as rejected:
        log.info("upload not prepared (%s): stored as it is for the scan to refuse", rejected.rule)
        return StoredUpload(data, cleaned=False, reduced=False)
    except ValidatorUnavailable as exc:
        log.error("upload could not be prepared: %s", exc)
        raise ServiceUnavailable("The document could not be checked just now. Please try again.") from None
    return StoredUpload(outcome.data or data, cleaned=outcome.cleaned, reduced=outcome.reduced)


def _cannot_fit(kind: str, limit: int) -> str:
    if kind == "pdf":
        return (
            f"This PDF is still larger than the {megabytes(limit)} limit after its pictures were made smaller: "
            "most of it is text or drawings. Split it into smaller PDFs, or remove pages, and upload them again."
        )
    return (
        f"This {_NAMES.get(kind, 'file')} is still larger than the {megabytes(limit)} limit after it was made "
        "smaller. Save it with fewer pages or as a PDF, and upload it again."
    )
