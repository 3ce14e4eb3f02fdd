"""What every format family shares: the allowed types, the limits, the refusal words and errors.

A refusal inside the package is a `Refusal` (a machine `rule` and a plain `reason`); `sniff` and
`validate` turn it into the caller's error (`UnsupportedType` or `ContentRejected`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FileType:
    """An allowed type: `kind` is the short id, `extension` has no leading dot."""

    kind: str  # "pdf", "docx", "doc", "odt", "rtf", "txt", "jpeg", "png", "tiff"
    mime: str
    extension: str


PDF = FileType("pdf", "application/pdf", "pdf")
DOCX = FileType("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx")
DOC = FileType("doc", "application/msword", "doc")
ODT = FileType("odt", "application/vnd.oasis.opendocument.text", "odt")
RTF = FileType("rtf", "application/rtf", "rtf")
TXT = FileType("txt", "text/plain; charset=utf-8", "txt")
JPEG = FileType("jpeg", "image/jpeg", "jpg")
PNG = FileType("png", "image/png", "png")
TIFF = FileType("tiff", "image/tiff", "tiff")

#: Every allowed type by kind (TXT here is the UTF-8 one; `sniff` names the real charset).
TYPES: dict[str, FileType] = {t.kind: t for t in (PDF, DOCX, DOC, ODT, RTF, TXT, JPEG, PNG, TIFF)}

#: File name extensions (lower case, no dot) that correctly name each kind.
EXTENSIONS: dict[str, frozenset[str]] = {
    "pdf": frozenset({"pdf"}),
    "docx": frozenset({"docx"}),
    "doc": frozenset({"doc"}),
    "odt": frozenset({"odt"}),
    "rtf": frozenset({"rtf"}),
    "txt": frozenset({"txt", "text"}),
    "jpeg": frozenset({"jpg", "jpeg", "jpe", "jfif"}),
    "png": frozenset({"png"}),
    "tiff": frozenset({"tif", "tiff"}),
}

ALLOWED_TYPES_TEXT = "PDF, Word (DOCX or DOC), OpenDocument text (ODT), RTF, plain text, JPEG, PNG or TIFF"

# Magic numbers that more than one module needs (sniffing and the family that reads them).
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ODT_MIMETYPE = b"application/vnd.oasis.opendocument.text"

# Limits. Tests check each one exactly at the limit and one over it.
MAX_ZIP_ENTRIES = 1000
MAX_ZIP_TOTAL_BYTES = 100 * 1024 * 1024
MAX_ZIP_RATIO = 100
ZIP_RATIO_MIN_BYTES = 1024 * 1024  # below this an entry cannot be a bomb; small XML compresses hard
MAX_IMAGE_PIXELS = 50_000_000
MAX_IMAGE_FRAMES = 200
MAX_IMAGE_TOTAL_PIXELS = 1_000_000_000  # ~110 A4 pages scanned at 300 dpi
# Work limits: a small file must not decode into unbounded work (issue 13). A file over any of
# them is "too_complex"; real letters and results are far below each.
MAX_PDF_DECODED_BYTES = 64 * 1024 * 1024  # all page content streams together, decoded
MAX_PDF_OPERATORS = 1_000_000  # content-stream operators in the whole document
MAX_PDF_PAGES = 5000
MAX_PDF_OBJECTS = 200_000
MAX_PDF_NESTING = 100  # levels of arrays and dictionaries in one object, the object itself the first
MAX_XML_DEPTH = 256  # levels of elements, the root element the first
MAX_XML_ELEMENTS = 1_000_000  # in all the XML parts of one document

TOO_COMPLEX = "is too complex to check safely"
DAMAGED = "is damaged or incomplete, so the patient may not be able to open it"
ENCRYPTED = "is password-protected, so the patient could not open it"
HIDDEN_REVISIONS = "has comments or tracked changes: accept or remove them and save it again"

#: rule -> reason, for every rule `validate` can raise ("<kind>_damaged" uses DAMAGED).
REASONS: dict[str, str] = {
    "empty": "is empty",
    "too_complex": TOO_COMPLEX,
    "type_mismatch": "is not the type of file it was when it was uploaded",
    "polyglot_zip": "is disguised: it is also a ZIP archive",
    "polyglot_pdf": "is disguised: it has a PDF hidden inside it",
    "polyglot_html": "is disguised: it contains web page code (HTML or script)",
    "trailing_data": "has extra data hidden after the end of the document",
    "damaged": DAMAGED,
    "encrypted": ENCRYPTED,
    "pdf_truncated": "is incomplete: the end of the PDF is missing",
    "pdf_no_pages": "has no pages",
    "pdf_javascript": "contains JavaScript (a program that runs inside the PDF)",
    "pdf_launch": "contains an action that opens another program or file",
    "pdf_embedded_file": "has other files attached inside it",
    "pdf_rich_media": "contains embedded media (video, sound, Flash or 3D)",
    "pdf_xfa": "contains a dynamic (XFA) form that most devices cannot show",
    "pdf_data_action": "contains a form action that sends or loads data",
    "pdf_auto_action": "does something automatically when it is opened (such as opening a web address)",
    "unsafe_link": "contains a link that runs a program or opens a file on the computer",
    "zip_entries": f"has too many parts inside it (more than {MAX_ZIP_ENTRIES:,})",
    "zip_size": f"expands to more than {MAX_ZIP_TOTAL_BYTES // (1024 * 1024)} MB when opened",
    "zip_ratio": "is compressed in a way used to attack computers (a 'zip bomb')",
    "zip_nested": "has another compressed archive inside it",
    "macros": "contains macros (programs that can run when it is opened)",
    "activex": "contains ActiveX controls (programs that can run when it is opened)",
    "external_content": "loads content from the internet or another computer when it is opened",
    "embedded_object": "has another file or object embedded in it",
    "dde": "contains a DDE field that can run commands when it is opened",
    "rtf_binary": "contains hidden binary data",
    "text_encoding": "is not readable text (its character encoding is not recognised)",
    "text_control": "contains hidden control characters",
    "image_too_large": f"is too large a picture (more than {MAX_IMAGE_PIXELS:,} pixels)",
    "image_frames": f"has too many pages or frames (more than {MAX_IMAGE_FRAMES})",
    "image_trailing_data": "has extra data hidden after the picture",
    # Hidden content a patient must not get (issue 18): refused rather than silently changed, since
    # a clinical letter edited by us is worse than one the practice is asked to save again.
    "comments": HIDDEN_REVISIONS,
    "tracked_changes": HIDDEN_REVISIONS,
    "hidden_text": "has hidden text: show or delete it and save it again",
    "pdf_sticky_notes": "has sticky-note comments: delete them and save it again",
    "pdf_hidden_layers": "has hidden layers: show or delete them and save it again",
    # What the scan says of stored bytes that were not prepared at upload (never expected: a guard).
    "not_prepared": "still has hidden information (such as where a photo was taken) that could not be removed",
}


class ContentRejected(Exception):
    """The file is not safe or not usable; `reason` completes "This file ...", `rule` is an id."""

    def __init__(self, reason: str, rule: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.rule = rule


class Refusal(Exception):
    """Internal to the package: carries a rule and a reason until sniff/validate turn it into their error."""

    def __init__(self, rule: str, reason: str | None = None) -> None:
        super().__init__(rule)
        self.rule = rule
        self.reason = reason or REASONS[rule]


def damaged(kind: str) -> Refusal:
    """The refusal for a file of `kind` that its parser cannot read ("<kind>_damaged")."""
    return Refusal(f"{kind}_damaged", DAMAGED)


def encrypted(kind: str) -> Refusal:
    """The refusal for a password-protected file of `kind` ("<kind>_encrypted")."""
    return Refusal(f"{kind}_encrypted", ENCRYPTED)
