"""Deep validation (`validate`): identify the file again, then hand it to its family's validator.

Each family module says what it rejects; here is only the dispatch, and the rules that any
unexpected parser error counts as damage (fail closed), and running out of memory or stack as
"too complex to check safely". `isolation.validate_isolated` runs this in a worker process
under hard memory and CPU limits; this function itself applies the format limits only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from shared_code.filetypes.common import OLE_MAGIC, PNG_MAGIC, ContentRejected, FileType, Refusal, damaged
from shared_code.filetypes.containers import validate_docx, validate_odt
from shared_code.filetypes.images import validate_image
from shared_code.filetypes.legacy_office import validate_doc
from shared_code.filetypes.pdf import validate_pdf
from shared_code.filetypes.rtf import validate_rtf
from shared_code.filetypes.sniffing import identify
from shared_code.filetypes.text import validate_text

log = logging.getLogger(__name__)


def validate(data: bytes, file_type: FileType) -> None:
    """Parse the whole file and raise `ContentRejected` if it is unsafe, damaged or not
    `file_type`. Returns None when the file may be sent to a patient (after a malware scan)."""
    try:
        if not data:
            raise Refusal("empty")
        try:
            actual = identify(data)
        except Refusal as refusal:
            family = _FAMILY_MAGIC.get(file_type.kind)
            if refusal.rule == "not_allowed" and family and data.startswith(family):
                # Starts as the uploaded type but cannot be read as it: damaged, not disguised.
                raise damaged(file_type.kind) from None
            raise
        if actual.kind != file_type.kind:
            raise Refusal("type_mismatch")
        validator = _VALIDATORS[actual.kind]
        try:
            validator(data)
        except Refusal:
            raise
        except (MemoryError, RecursionError):
            # Out of memory (the worker's ceiling) or stack: the file is too much work, not damaged.
            raise Refusal("too_complex") from None
        except Exception as exc:  # noqa: BLE001 - fail closed: a parser error means damaged
            log.info("validator %s failed: %s", actual.kind, type(exc).__name__)
            raise damaged(actual.kind) from None
    except Refusal as refusal:
        raise ContentRejected(refusal.reason, refusal.rule) from None


_FAMILY_MAGIC: dict[str, tuple[bytes, ...]] = {
    "pdf": (b"%PDF-",),
    "docx": (b"PK\x03\x04",),
    "odt": (b"PK\x03\x04",),
    "doc": (OLE_MAGIC,),
    "rtf": (b"{\\rtf",),
    "jpeg": (b"\xff\xd8\xff",),
    "png": (PNG_MAGIC,),
    "tiff": (b"II*\x00", b"MM\x00*"),
}

_VALIDATORS: dict[str, Callable[[bytes], None]] = {
    "pdf": validate_pdf,
    "docx": validate_docx,
    "odt": validate_odt,
    "doc": validate_doc,
    "rtf": validate_rtf,
    "txt": validate_text,
    "jpeg": lambda data: validate_image(data, "jpeg", "JPEG"),
    "png": lambda data: validate_image(data, "png", "PNG"),
    "tiff": lambda data: validate_image(data, "tiff", "TIFF"),
}
