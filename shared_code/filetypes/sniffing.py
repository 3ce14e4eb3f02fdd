"""Identifying an upload by its bytes (`sniff`): cheap checks only, never the file name.

Each family's own identification (which ZIP is a DOCX or ODT, which OLE file is a DOC, which
bytes are text) lives in that family's module; here are the order they are tried in, the
recognised-but-refused types, and the polyglot checks that apply to every family.
"""

from __future__ import annotations

import re

from shared_code.errors import UnsupportedType
from shared_code.filetypes.common import (
    ALLOWED_TYPES_TEXT,
    JPEG,
    OLE_MAGIC,
    PDF,
    PNG,
    PNG_MAGIC,
    RTF,
    TIFF,
    TXT,
    FileType,
    Refusal,
)
from shared_code.filetypes.containers import identify_zip, is_zip
from shared_code.filetypes.legacy_office import identify_ole
from shared_code.filetypes.text import decode_text

# Recognised but not allowed: say what the file is, so the receptionist knows what to do.
_REFUSED_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"MZ", "is a program (an executable), not a document"),
    (b"\x7fELF", "is a program (an executable), not a document"),
    (b"\xca\xfe\xba\xbe", "is a program, not a document"),
    (b"\xfe\xed\xfa\xce", "is a program, not a document"),
    (b"\xfe\xed\xfa\xcf", "is a program, not a document"),
    (b"\xcf\xfa\xed\xfe", "is a program, not a document"),
    (b"#!", "is a script (a program), not a document"),
    (b"GIF87a", "is a GIF picture; only JPEG, PNG and TIFF pictures are allowed"),
    (b"GIF89a", "is a GIF picture; only JPEG, PNG and TIFF pictures are allowed"),
    (b"BM", "is a BMP picture; only JPEG, PNG and TIFF pictures are allowed"),
    (b"\x1f\x8b", "is a compressed archive, not a document"),
    (b"7z\xbc\xaf\x27\x1c", "is a compressed archive, not a document"),
    (b"Rar!\x1a\x07", "is a compressed archive, not a document"),
    (b"BZh", "is a compressed archive, not a document"),
    (b"\xfd7zXZ\x00", "is a compressed archive, not a document"),
    (b"PK\x05\x06", "is an empty ZIP archive, not a document"),
)

# WHATWG MIME sniffing's "HTML" patterns: a tag name followed by a space or '>'.
_HTML_START = re.compile(
    rb"<(?:!doctype\s+html|html|head|script|iframe|h1|div|font|table|a|style|title|b|body|br|p"
    rb"|!--)[\s>]",
    re.IGNORECASE,
)
_XML_START = re.compile(rb"<(?:\?xml|svg)[\s>]", re.IGNORECASE)
# Anywhere near the start of a binary file: what a browser's legacy sniffing would act on.
_HTML_ANYWHERE = re.compile(rb"<(?:html|script|iframe|body|head|svg|!doctype\s+html)[\s>/]", re.I)


def sniff(data: bytes, declared_name: str | None = None) -> FileType:
    """Identify an upload by its bytes, or raise `UnsupportedType` (415) saying what it is.

    `declared_name` is accepted for the caller's convenience but never decides the type: a
    wrong extension is fixed when the name is made safe (`filenames.safe_filename`).
    Empty data is the caller's 400; here it would be identified as (empty) text.
    """
    del declared_name  # judged by content only (contract: "judged by content, not by name")
    try:
        return identify(data)
    except Refusal as refusal:
        raise UnsupportedType(f"This file {refusal.reason}. Allowed types: {ALLOWED_TYPES_TEXT}.") from None


def identify(data: bytes) -> FileType:
    """The one allowed type `data` is, or a `Refusal`. Cheap checks only."""
    if data.startswith(b"%PDF-"):
        _refuse_polyglot(data, "pdf")
        return PDF
    if data.startswith(b"PK\x03\x04"):
        kind = identify_zip(data)
        _refuse_polyglot(data, kind.kind)
        return kind
    if data.startswith(OLE_MAGIC):
        kind = identify_ole(data)
        _refuse_polyglot(data, kind.kind)
        return kind
    if data.startswith(b"{\\rtf"):
        _refuse_polyglot(data, "rtf")
        return RTF
    for magic, file_type in (
        (b"\xff\xd8\xff", JPEG),
        (PNG_MAGIC, PNG),
        (b"II*\x00", TIFF),
        (b"MM\x00*", TIFF),
    ):
        if data.startswith(magic):
            _refuse_polyglot(data, file_type.kind)
            return file_type
    if b"%PDF-" in data[:1024]:
        # PDF readers accept a header anywhere in the first 1 KB: a file dressed as something
        # else with a PDF inside is a classic disguise.
        raise Refusal("polyglot_pdf")
    for magic, words in _REFUSED_MAGIC:
        if data.startswith(magic):
            raise Refusal("not_allowed", words)
    if data[4:8] == b"ftyp":
        raise Refusal("not_allowed", "is a video or HEIC picture, not a document")
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        raise Refusal("not_allowed", "is a WebP picture; only JPEG, PNG and TIFF are allowed")
    if is_zip(data):
        raise Refusal("not_allowed", "is a compressed archive, not a document")
    try:
        first_chars, charset = decode_text(data)
    except Refusal as refusal:
        if refusal.rule == "text_encoding":
            raise Refusal("not_allowed", "is not one of the allowed types") from None
        raise
    head = first_chars.lstrip("\ufeff \t\r\n\f")[:64].encode("utf-8", "replace")
    if _HTML_START.match(head):
        raise Refusal("not_allowed", "is a web page (HTML), not a document")
    if _XML_START.match(head):
        raise Refusal("not_allowed", "is an XML or SVG file, not a document")
    return TXT if charset == "utf-8" else FileType("txt", f"text/plain; charset={charset}", "txt")


def _refuse_polyglot(data: bytes, kind: str) -> None:
    """Refuse a file that is also another type a program could open it as."""
    if kind not in ("docx", "odt") and is_zip(data):
        raise Refusal("polyglot_zip")
    if kind != "pdf" and b"%PDF-" in data[:1024]:
        raise Refusal("polyglot_pdf")
    if kind not in ("txt", "rtf") and _HTML_ANYWHERE.search(data[:1024]):
        raise Refusal("polyglot_html")
