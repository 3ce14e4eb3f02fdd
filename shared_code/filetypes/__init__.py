"""What a file really is, and whether it is safe to hand to a patient.

Two steps, both judged by the bytes and never by the name:

* `sniff` runs at upload time. It is cheap: magic bytes, a ZIP or OLE directory, a text
  decode. Anything that is not one of the allowed types (or is two types at once) is refused
  with `UnsupportedType` (415), in words a receptionist understands.
* `validate` runs in the scan function. It parses the whole file with a real parser and
  rejects active or dangerous content (scripts, macros, embedded files, remote content, DDE,
  archive and image bombs, polyglots, damage) with `ContentRejected`. Its work is bounded
  (decoded bytes, operators, pages, objects, nesting, XML depth and elements): a file over a
  limit is "too complex to check safely". The scan calls it through
  `isolation.validate_isolated`, in a worker process under memory, CPU and wall-time ceilings.

Every refusal has a machine `rule` and a plain `reason` that completes the sentence
"This file ..." (for example "is password-protected, so the patient could not open it").

One module per format family says what that family rejects: `pdf`, `containers` (DOCX and
ODT), `legacy_office` (DOC), `rtf`, `images` (JPEG, PNG, TIFF) and `text` (TXT). What they
share is in `common` (types, limits, reasons, errors) and `active_content` (links, Word
fields); `sniffing` and `validation` hold the two entry points, `isolation` the worker
processes. Heavy parsers (pikepdf, Pillow, olefile, defusedxml) are imported inside the
functions that use them, so importing this package stays cheap.
"""

from __future__ import annotations

from shared_code.filetypes.active_content import unsafe_link
from shared_code.filetypes.common import (
    ALLOWED_TYPES_TEXT,
    DAMAGED,
    DOC,
    DOCX,
    ENCRYPTED,
    EXTENSIONS,
    JPEG,
    MAX_IMAGE_FRAMES,
    MAX_IMAGE_PIXELS,
    MAX_IMAGE_TOTAL_PIXELS,
    MAX_ZIP_ENTRIES,
    MAX_ZIP_RATIO,
    MAX_ZIP_TOTAL_BYTES,
    ODT,
    PDF,
    PNG,
    REASONS,
    RTF,
    TIFF,
    TXT,
    TYPES,
    ZIP_RATIO_MIN_BYTES,
    ContentRejected,
    FileType,
)
from shared_code.filetypes.containers import check_zip_limits
from shared_code.filetypes.sniffing import sniff
from shared_code.filetypes.validation import validate

__all__ = [
    "ALLOWED_TYPES_TEXT",
    "DAMAGED",
    "DOC",
    "DOCX",
    "ENCRYPTED",
    "EXTENSIONS",
    "JPEG",
    "MAX_IMAGE_FRAMES",
    "MAX_IMAGE_PIXELS",
    "MAX_IMAGE_TOTAL_PIXELS",
    "MAX_ZIP_ENTRIES",
    "MAX_ZIP_RATIO",
    "MAX_ZIP_TOTAL_BYTES",
    "ODT",
    "PDF",
    "PNG",
    "REASONS",
    "RTF",
    "TIFF",
    "TXT",
    "TYPES",
    "ZIP_RATIO_MIN_BYTES",
    "ContentRejected",
    "FileType",
    "check_zip_limits",
    "sniff",
    "unsafe_link",
    "validate",
]
