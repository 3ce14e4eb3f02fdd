"""What a file really is, and whether it is safe to hand to a patient.

Two steps, both judged by the bytes and never by the name:

* `sniff` runs at upload time. It is cheap: magic bytes, a ZIP or OLE directory, a text
  decode. Anything that is not one of the allowed types (or is two types at once) is refused
  with `UnsupportedType` (415), in words a receptionist understands.
* `validate` runs in the scan function. It parses the whole file with a real parser and
  rejects active or dangerous content (scripts, macros, embedded files, remote content, DDE,
  archive and image bombs, polyglots, damage) with `ContentRejected`.

Every refusal has a machine `rule` and a plain `reason` that completes the sentence
"This file ..." (for example "is password-protected, so the patient could not open it").
Heavy parsers (pikepdf, Pillow, olefile, defusedxml) are imported inside the functions that
use them, so importing this module stays cheap.
"""

from __future__ import annotations

import codecs
import io
import logging
import posixpath
import re
import struct
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from shared_code.errors import UnsupportedType

log = logging.getLogger(__name__)


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

# Limits. Tests check each one exactly at the limit and one over it.
MAX_ZIP_ENTRIES = 1000
MAX_ZIP_TOTAL_BYTES = 100 * 1024 * 1024
MAX_ZIP_RATIO = 100
ZIP_RATIO_MIN_BYTES = 1024 * 1024  # below this an entry cannot be a bomb; small XML compresses hard
MAX_IMAGE_PIXELS = 50_000_000
MAX_IMAGE_FRAMES = 200
MAX_IMAGE_TOTAL_PIXELS = 1_000_000_000  # ~110 A4 pages scanned at 300 dpi

DAMAGED = "is damaged or incomplete, so the patient may not be able to open it"
ENCRYPTED = "is password-protected, so the patient could not open it"

#: rule -> reason, for every rule `validate` can raise ("<kind>_damaged" uses DAMAGED).
REASONS: dict[str, str] = {
    "empty": "is empty",
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
}


class ContentRejected(Exception):
    """The file is not safe or not usable; `reason` completes "This file ...", `rule` is an id."""

    def __init__(self, reason: str, rule: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.rule = rule


class _Refusal(Exception):
    """Internal: carries a rule and a reason until sniff/validate turn it into their error."""

    def __init__(self, rule: str, reason: str | None = None) -> None:
        super().__init__(rule)
        self.rule = rule
        self.reason = reason or REASONS[rule]


def _damaged(kind: str) -> _Refusal:
    return _Refusal(f"{kind}_damaged", DAMAGED)


def _encrypted(kind: str) -> _Refusal:
    return _Refusal(f"{kind}_encrypted", ENCRYPTED)


# --------------------------------------------------------------------------- sniffing

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_ODT_MIMETYPE = b"application/vnd.oasis.opendocument.text"

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
        return _identify(data)
    except _Refusal as refusal:
        raise UnsupportedType(f"This file {refusal.reason}. Allowed types: {ALLOWED_TYPES_TEXT}.") from None


def _identify(data: bytes) -> FileType:
    """The one allowed type `data` is, or a `_Refusal`. Cheap checks only."""
    if data.startswith(b"%PDF-"):
        _refuse_polyglot(data, "pdf")
        return PDF
    if data.startswith(b"PK\x03\x04"):
        return _identify_zip(data)
    if data.startswith(_OLE_MAGIC):
        kind = _identify_ole(data)
        _refuse_polyglot(data, kind.kind)
        return kind
    if data.startswith(b"{\\rtf"):
        _refuse_polyglot(data, "rtf")
        return RTF
    for magic, file_type in (
        (b"\xff\xd8\xff", JPEG),
        (_PNG_MAGIC, PNG),
        (b"II*\x00", TIFF),
        (b"MM\x00*", TIFF),
    ):
        if data.startswith(magic):
            _refuse_polyglot(data, file_type.kind)
            return file_type
    if b"%PDF-" in data[:1024]:
        # PDF readers accept a header anywhere in the first 1 KB: a file dressed as something
        # else with a PDF inside is a classic disguise.
        raise _Refusal("polyglot_pdf")
    for magic, words in _REFUSED_MAGIC:
        if data.startswith(magic):
            raise _Refusal("not_allowed", words)
    if data[4:8] == b"ftyp":
        raise _Refusal("not_allowed", "is a video or HEIC picture, not a document")
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        raise _Refusal("not_allowed", "is a WebP picture; only JPEG, PNG and TIFF are allowed")
    if _is_zip(data):
        raise _Refusal("not_allowed", "is a compressed archive, not a document")
    try:
        first_chars, charset = _decode_text(data)
    except _Refusal as refusal:
        if refusal.rule == "text_encoding":
            raise _Refusal("not_allowed", "is not one of the allowed types") from None
        raise
    head = first_chars.lstrip("\ufeff \t\r\n\f")[:64].encode("utf-8", "replace")
    if _HTML_START.match(head):
        raise _Refusal("not_allowed", "is a web page (HTML), not a document")
    if _XML_START.match(head):
        raise _Refusal("not_allowed", "is an XML or SVG file, not a document")
    return TXT if charset == "utf-8" else FileType("txt", f"text/plain; charset={charset}", "txt")


def _identify_zip(data: bytes) -> FileType:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            names = {i.filename for i in infos}
            kind = _zip_kind(zf, infos, names)
    except _Refusal:
        raise
    except Exception:  # noqa: BLE001 - any parser failure means "not a readable document"
        raise _Refusal("not_allowed", "is damaged, or is a compressed archive rather than a document") from None
    _refuse_polyglot(data, kind.kind)
    return kind


def _zip_kind(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], names: set[str]) -> FileType:
    if infos and infos[0].filename == "mimetype":
        if infos[0].file_size > 200:
            raise _Refusal("not_allowed", "is an unrecognised compressed file")
        mimetype = zf.read(infos[0]).strip()
        if mimetype == _ODT_MIMETYPE:
            return ODT
        if mimetype.startswith(b"application/vnd.oasis.opendocument."):
            raise _Refusal(
                "not_allowed",
                "is an OpenDocument file that is not a text document (for example a spreadsheet or presentation)",
            )
    if "[Content_Types].xml" in names:
        if any(n.startswith("word/") for n in names):
            return DOCX
        if any(n.startswith("xl/") for n in names):
            raise _Refusal("not_allowed", "is an Excel spreadsheet, not a document")
        if any(n.startswith("ppt/") for n in names):
            raise _Refusal("not_allowed", "is a PowerPoint presentation, not a document")
    raise _Refusal("not_allowed", "is a compressed archive (ZIP), not a document")


def _identify_ole(data: bytes) -> FileType:
    import olefile

    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            streams = {"/".join(p).lower() for p in ole.listdir(streams=True, storages=True)}
    except Exception:  # noqa: BLE001
        raise _Refusal("not_allowed", "is a damaged Microsoft Office file") from None
    if "worddocument" in streams:
        return DOC
    if "encryptedpackage" in streams or "encryptioninfo" in streams:
        raise _Refusal("encrypted", ENCRYPTED)
    if "workbook" in streams or "book" in streams:
        raise _Refusal("not_allowed", "is an Excel spreadsheet, not a document")
    if "powerpoint document" in streams:
        raise _Refusal("not_allowed", "is a PowerPoint presentation, not a document")
    if any(s.startswith("__substg1.0_") for s in streams):
        raise _Refusal("not_allowed", "is an Outlook message, not a document")
    raise _Refusal("not_allowed", "is a Microsoft Office file that is not a Word document")


def _refuse_polyglot(data: bytes, kind: str) -> None:
    """Refuse a file that is also another type a program could open it as."""
    if kind not in ("docx", "odt") and _is_zip(data):
        raise _Refusal("polyglot_zip")
    if kind != "pdf" and b"%PDF-" in data[:1024]:
        raise _Refusal("polyglot_pdf")
    if kind not in ("txt", "rtf") and _HTML_ANYWHERE.search(data[:1024]):
        raise _Refusal("polyglot_html")


def _is_zip(data: bytes) -> bool:
    """True when a ZIP reader would find at least one real entry in `data`."""
    if b"PK\x05\x06" not in data[-(0xFFFF + 22) :]:
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except Exception:  # noqa: BLE001 - not a readable ZIP directory, so not a ZIP
        return False
    # A stray end-of-directory signature inside compressed data is not an archive; a real one
    # points at a local file header.
    return any(data[i.header_offset : i.header_offset + 4] == b"PK\x03\x04" for i in infos)


# --------------------------------------------------------------------------- text

_TEXT_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")


def _decode_text(data: bytes) -> tuple[str, str]:
    """(the first characters, charset) for text in an encoding we can name, free of control
    characters: UTF-8 (with or without a BOM), UTF-16 with a BOM (Notepad's "Unicode") or
    Windows-1252 (legacy Windows text). Raises `_Refusal` "text_encoding" or "text_control".

    Decodes in chunks, so a large upload is never held twice in memory as text.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        attempts = [("utf-16", "utf-16")]
    elif b"\x00" in data:
        raise _Refusal("text_encoding")  # NUL without a UTF-16 BOM: binary, not text
    else:
        attempts = [("utf-8", "utf-8-sig"), ("windows-1252", "cp1252")]
    for charset, codec in attempts:
        decoder = codecs.getincrementaldecoder(codec)("strict")
        head = ""
        try:
            for start in range(0, len(data), _TEXT_CHUNK):
                text = decoder.decode(data[start : start + _TEXT_CHUNK], final=start + _TEXT_CHUNK >= len(data))
                if _TEXT_CONTROL.search(text):
                    raise _Refusal("text_control")
                if len(head) < 1024:
                    head += text[: 1024 - len(head)]
            if not data:
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return head, charset
    raise _Refusal("text_encoding")


_TEXT_CHUNK = 64 * 1024


def _validate_text(data: bytes) -> None:
    _decode_text(data)  # sniffing has done this too; repeated so validate stands on its own


# --------------------------------------------------------------------------- validate


def validate(data: bytes, file_type: FileType) -> None:
    """Parse the whole file and raise `ContentRejected` if it is unsafe, damaged or not
    `file_type`. Returns None when the file may be sent to a patient (after a malware scan)."""
    try:
        if not data:
            raise _Refusal("empty")
        try:
            actual = _identify(data)
        except _Refusal as refusal:
            family = _FAMILY_MAGIC.get(file_type.kind)
            if refusal.rule == "not_allowed" and family and data.startswith(family):
                # Starts as the uploaded type but cannot be read as it: damaged, not disguised.
                raise _damaged(file_type.kind) from None
            raise
        if actual.kind != file_type.kind:
            raise _Refusal("type_mismatch")
        validator = _VALIDATORS[actual.kind]
        try:
            validator(data)
        except _Refusal:
            raise
        except Exception as exc:  # noqa: BLE001 - fail closed: a parser error means damaged
            log.info("validator %s failed: %s", actual.kind, type(exc).__name__)
            raise _damaged(actual.kind) from None
    except _Refusal as refusal:
        raise ContentRejected(refusal.reason, refusal.rule) from None


_FAMILY_MAGIC: dict[str, tuple[bytes, ...]] = {
    "pdf": (b"%PDF-",),
    "docx": (b"PK\x03\x04",),
    "odt": (b"PK\x03\x04",),
    "doc": (_OLE_MAGIC,),
    "rtf": (b"{\\rtf",),
    "jpeg": (b"\xff\xd8\xff",),
    "png": (_PNG_MAGIC,),
    "tiff": (b"II*\x00", b"MM\x00*"),
}

# ---- PDF

_PDF_PRIORITY = (
    "pdf_javascript",
    "pdf_launch",
    "pdf_embedded_file",
    "pdf_rich_media",
    "pdf_xfa",
    "pdf_data_action",
    "unsafe_link",
    "pdf_auto_action",
)
_PDF_MEDIA_SUBTYPES = {"/RichMedia", "/Movie", "/Sound", "/Screen", "/3D"}
_PDF_MEDIA_ACTIONS = {"/Rendition", "/Movie", "/Sound", "/RichMediaExecute", "/GoTo3DView"}


def _validate_pdf(data: bytes) -> None:
    import pikepdf

    end = data.rstrip(b"\x00\t\n\r\f ")
    if not end.endswith(b"%%EOF"):
        raise _Refusal("trailing_data" if b"%%EOF" in data[-4096:] else "pdf_truncated")
    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except pikepdf.PasswordError:
        raise _encrypted("pdf") from None
    except pikepdf.PdfError:
        raise _damaged("pdf") from None
    with pdf:
        # An owner-password-only PDF (permissions, no open password) opens for everyone;
        # qpdf has decrypted it, so its content is checked like any other.
        findings: set[str] = set()
        _pdf_scan_object(pdf.trailer, findings)
        for obj in pdf.objects:
            _pdf_scan_object(obj, findings)
        for rule in _PDF_PRIORITY:
            if rule in findings:
                raise _Refusal(rule)
        if len(pdf.pages) == 0:
            raise _Refusal("pdf_no_pages")
        for page in pdf.pages:
            # Decodes and tokenises every content stream: catches corrupt or truncated data.
            pikepdf.parse_content_stream(page)


def _pdf_scan_object(obj: Any, findings: set[str]) -> None:
    """Record dangerous features of `obj` and its direct (not indirect) children."""
    import pikepdf

    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, pikepdf.Stream):
            _pdf_check_dict(item.stream_dict, findings)
            children = list(item.stream_dict.values())
        elif isinstance(item, pikepdf.Dictionary):
            _pdf_check_dict(item, findings)
            children = list(item.values())
        elif isinstance(item, pikepdf.Array):
            children = list(item)
        else:
            continue
        # Indirect objects are visited on their own from pdf.objects; this avoids cycles.
        stack.extend(
            c
            for c in children
            if isinstance(c, (pikepdf.Dictionary, pikepdf.Array, pikepdf.Stream)) and not c.is_indirect
        )


def _pdf_name(d: Any, key: str) -> str | None:
    import pikepdf

    value = d.get(key)
    return str(value) if isinstance(value, pikepdf.Name) else None


def _pdf_check_dict(d: Any, findings: set[str]) -> None:
    import pikepdf

    keys = set(d.keys())
    action = _pdf_name(d, "/S")
    subtype = _pdf_name(d, "/Subtype")
    type_ = _pdf_name(d, "/Type")
    if "/JS" in keys or action == "/JavaScript" or "/JavaScript" in keys:
        findings.add("pdf_javascript")
    if action in ("/Launch", "/GoToR") or type_ == "/Launch":
        findings.add("pdf_launch")
    if (
        keys & {"/EmbeddedFiles", "/EF"}
        or type_ == "/EmbeddedFile"
        or subtype == "/FileAttachment"
        or action == "/GoToE"
    ):
        findings.add("pdf_embedded_file")
    if subtype in _PDF_MEDIA_SUBTYPES or action in _PDF_MEDIA_ACTIONS or "/RichMediaContent" in keys:
        findings.add("pdf_rich_media")
    if "/XFA" in keys:
        findings.add("pdf_xfa")
    if action in ("/SubmitForm", "/ImportData"):
        findings.add("pdf_data_action")
    if action == "/URI":
        uri = d.get("/URI")
        if isinstance(uri, pikepdf.String) and unsafe_link(bytes(uri).decode("latin-1")):
            findings.add("unsafe_link")
    if "/OpenAction" in keys and not _pdf_harmless_auto(d.get("/OpenAction")):
        findings.add("pdf_auto_action")
    if "/AA" in keys:
        triggers = d.get("/AA")
        if not isinstance(triggers, pikepdf.Dictionary) or not all(_pdf_harmless_auto(t) for t in triggers.values()):
            findings.add("pdf_auto_action")


def _pdf_harmless_auto(action: Any, depth: int = 0) -> bool:
    """An automatic action is harmless only when it just goes to a place in the document."""
    import pikepdf

    if depth > 50:
        return False
    if isinstance(action, (pikepdf.Array, pikepdf.Name, pikepdf.String)):
        return True  # an explicit or named destination
    if not isinstance(action, pikepdf.Dictionary):
        return False
    if _pdf_name(action, "/S") != "/GoTo":
        return False
    nxt = action.get("/Next")
    if nxt is None:
        return True
    chain = list(nxt) if isinstance(nxt, pikepdf.Array) else [nxt]
    return all(isinstance(a, pikepdf.Dictionary) and _pdf_harmless_auto(a, depth + 1) for a in chain)


# ---- links shared by PDF, DOCX and ODT

_UNSAFE_SCHEMES = {"javascript", "vbscript", "file", "vnd.sun.star.script", "macro", "smb", "ms-msdt"}


def unsafe_link(target: str) -> bool:
    """True for a link that runs code or opens a local or network file when clicked."""
    t = target.strip().lower()
    if t.startswith(("\\\\", "//")):
        return True  # UNC path: a click connects to another computer
    match = re.match(r"([a-z][a-z0-9+.\-]*):", t)
    return bool(match and match.group(1) in _UNSAFE_SCHEMES)


# ---- ZIP containers (DOCX, ODT)

_STORED_OR_DEFLATED = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_ARCHIVE_MAGIC = (
    b"PK\x03\x04",
    b"\x1f\x8b",
    b"7z\xbc\xaf\x27\x1c",
    b"Rar!\x1a\x07",
    b"BZh",
    b"\xfd7zXZ\x00",
)


def check_zip_limits(infos: list[zipfile.ZipInfo]) -> None:
    """Refuse archive bombs from the directory alone (entry count, total size, ratio)."""
    if len(infos) > MAX_ZIP_ENTRIES:
        raise _Refusal("zip_entries")
    if sum(i.file_size for i in infos) > MAX_ZIP_TOTAL_BYTES:
        raise _Refusal("zip_size")
    for info in infos:
        if info.file_size > ZIP_RATIO_MIN_BYTES and (info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1)):
            raise _Refusal("zip_ratio")


def _eocd_ends_file(data: bytes) -> bool:
    pos = data.rfind(b"PK\x05\x06")
    if pos < 0 or pos + 22 > len(data):
        return False
    (comment_len,) = struct.unpack_from("<H", data, pos + 20)
    return pos + 22 + comment_len == len(data)


def _open_container(data: bytes, kind: str, findings: set[str]) -> zipfile.ZipFile:
    """Open a DOCX/ODT ZIP after its structural and bomb checks, reading every entry once.

    Adds "zip_nested" (an archive inside) and "embedded_object" (an OLE file inside) to
    `findings`: the caller reports the most telling finding (macros before objects).
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError):
        raise _damaged(kind) from None
    infos = zf.infolist()
    if not infos:
        raise _damaged(kind)
    check_zip_limits(infos)
    if min(i.header_offset for i in infos) != 0 or not _eocd_ends_file(data):
        raise _Refusal("trailing_data")  # data before the first entry or after the directory
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        folded = name.casefold()
        if folded in seen or name.startswith(("/", "\\")) or "\\" in name or "\x00" in name or ".." in name.split("/"):
            raise _damaged(kind)  # duplicate or escaping names: readers would disagree
        seen.add(folded)
        if info.flag_bits & 0x1:
            raise _encrypted(kind)
        if info.compress_type not in _STORED_OR_DEFLATED:
            raise _damaged(kind)
    # zipfile never expands an entry past its declared size (the checksum fails instead), so
    # the directory checks above bound everything read here.
    for info in infos:
        if info.is_dir():
            continue
        with zf.open(info) as stream:  # reading to the end checks the CRC
            first = stream.read(8)
            if first.startswith(_ARCHIVE_MAGIC):
                findings.add("zip_nested")
            elif first.startswith(_OLE_MAGIC):
                findings.add("embedded_object")
            while stream.read(1 << 16):
                pass
    return zf


def _iter_xml(zf: zipfile.ZipFile, name: str) -> Iterator[tuple[str, Any]]:
    """(local tag name, element) for each element of an XML part, at its end, DTDs forbidden.

    Each element is dropped from the tree once seen, so memory follows the nesting depth,
    not the size of the part.
    """
    from defusedxml.ElementTree import iterparse

    open_elements: list[Any] = []
    with zf.open(name) as stream:
        for event, elem in iterparse(stream, events=("start", "end"), forbid_dtd=True):
            if event == "start":
                open_elements.append(elem)
                continue
            open_elements.pop()
            yield _local(elem.tag), elem
            elem.clear()
            if open_elements:
                open_elements[-1].remove(elem)


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def _attr(elem: Any, local_name: str) -> str | None:
    for key, value in elem.attrib.items():
        if _local(key) == local_name:
            return value
    return None


class _Fields:
    """Collects Word field instructions (split over runs) and judges each one."""

    _DDE = re.compile(r"^\s*DDE(?:AUTO)?\b", re.IGNORECASE)
    _REMOTE = re.compile(r"^\s*(?:INCLUDETEXT|INCLUDEPICTURE|LINK|IMPORT)\b", re.IGNORECASE)

    def __init__(self) -> None:
        self.stack: list[list[str]] = []
        self.findings: set[str] = set()

    def begin(self) -> None:
        self.stack.append([])

    def text(self, text: str) -> None:
        if self.stack:
            self.stack[-1].append(text)
        else:
            self.judge(text)  # instruction text outside a begin/end pair still counts

    def separate(self) -> None:
        if self.stack:
            self.judge("".join(self.stack[-1]))
            self.stack[-1] = [""]  # the result part follows; the instruction is judged

    def end(self) -> None:
        if self.stack:
            self.judge("".join(self.stack.pop()))

    def judge(self, instruction: str) -> None:
        if self._DDE.match(instruction):
            self.findings.add("dde")
        elif self._REMOTE.match(instruction):
            self.findings.add("external_content")


_CONTAINER_PRIORITY = (
    "macros",
    "activex",
    "dde",
    "embedded_object",
    "external_content",
    "unsafe_link",
    "zip_nested",
)


def _raise_first(findings: set[str]) -> None:
    for rule in _CONTAINER_PRIORITY:
        if rule in findings:
            raise _Refusal(rule)


# ---- DOCX

_OOXML_MAIN_TYPES = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml",
}
_REL_EMBEDDED = ("/oleobject", "/package", "/afchunk")
_REL_ACTIVEX = ("/control", "/activexcontrolbinary")
_REL_MACROS = ("/vbaproject", "/wordvbadata", "/vbaprojectsignature")


def _validate_docx(data: bytes) -> None:
    findings: set[str] = set()
    zf = _open_container(data, "docx", findings)
    with zf:
        names = {i.filename for i in zf.infolist() if not i.is_dir()}
        if "[Content_Types].xml" not in names or "_rels/.rels" not in names:
            raise _damaged("docx")
        defaults: dict[str, str] = {}
        overrides: dict[str, str] = {}
        for tag, elem in _iter_xml(zf, "[Content_Types].xml"):
            if tag == "Default":
                defaults[(_attr(elem, "Extension") or "").lower()] = _attr(elem, "ContentType") or ""
            elif tag == "Override":
                part = (_attr(elem, "PartName") or "").lstrip("/").casefold()
                overrides[part] = _attr(elem, "ContentType") or ""
        main_part: str | None = None
        fields = _Fields()
        for name in sorted(names):
            lower = name.casefold()
            content_type = overrides.get(lower) or defaults.get(lower.rsplit(".", 1)[-1], "")
            ct = content_type.lower()
            if "macroenabled" in ct or "vbaproject" in ct or "vbadata" in ct:
                findings.add("macros")
            if "activex" in ct:
                findings.add("activex")
            if "oleobject" in ct:
                findings.add("embedded_object")
            if lower.endswith(("vbaproject.bin", "vbadata.xml")):
                findings.add("macros")
            if lower.startswith("word/activex/"):
                findings.add("activex")
            if lower.startswith("word/embeddings/"):
                findings.add("embedded_object")
            if lower.endswith(".rels"):
                main_part = _docx_rels(zf, name, findings) or main_part
            elif lower.endswith(".xml") and name != "[Content_Types].xml":
                for tag, elem in _iter_xml(zf, name):
                    _docx_element(tag, elem, fields, findings)
        findings |= fields.findings
        _raise_first(findings)
        if main_part is None or main_part not in names:
            raise _damaged("docx")
        main_type = overrides.get(main_part.casefold()) or defaults.get(main_part.rsplit(".", 1)[-1].lower(), "")
        if main_type.lower() not in _OOXML_MAIN_TYPES:
            raise _damaged("docx")


def _docx_rels(zf: zipfile.ZipFile, name: str, findings: set[str]) -> str | None:
    """Check one relationships part; returns the main document part if this is the root."""
    main: str | None = None
    # "word/_rels/document.xml.rels" describes "word/document.xml": targets are relative to "word/".
    base = posixpath.dirname(posixpath.dirname(name))
    for tag, elem in _iter_xml(zf, name):
        if tag != "Relationship":
            continue
        rel_type = (_attr(elem, "Type") or "").lower()
        target = _attr(elem, "Target") or ""
        external = (_attr(elem, "TargetMode") or "").lower() == "external"
        if rel_type.endswith(_REL_MACROS):
            findings.add("macros")
        elif rel_type.endswith(_REL_ACTIVEX):
            findings.add("activex")
        elif rel_type.endswith(_REL_EMBEDDED):
            findings.add("embedded_object")
        if external:
            if rel_type.endswith("/hyperlink"):
                if unsafe_link(target):
                    findings.add("unsafe_link")
            else:
                findings.add("external_content")
        elif name == "_rels/.rels" and rel_type.endswith("/officedocument"):
            main = posixpath.normpath(posixpath.join(base, target)).lstrip("/")
    return main


def _docx_element(tag: str, elem: Any, fields: _Fields, findings: set[str]) -> None:
    if tag == "fldChar":
        kind = _attr(elem, "fldCharType")
        if kind == "begin":
            fields.begin()
        elif kind == "separate":
            fields.separate()
        elif kind == "end":
            fields.end()
    elif tag == "instrText":
        fields.text(elem.text or "")
    elif tag == "fldSimple":
        fields.judge(_attr(elem, "instr") or "")
    elif tag in ("OLEObject", "altChunk", "objectEmbed", "objectLink"):
        findings.add("embedded_object")
    elif tag == "control":
        findings.add("activex")


# ---- ODT

_ODF_EMBEDDED = {"object", "object-ole", "applet", "plugin"}
_ODF_DDE = {"dde-connection-decl", "dde-source", "dde-link", "dde-connection"}
_ODF_LINK_TAGS = {"a"}  # text:a and draw:a are hyperlinks: followed only when clicked


def _validate_odt(data: bytes) -> None:
    findings: set[str] = set()
    zf = _open_container(data, "odt", findings)
    with zf:
        infos = zf.infolist()
        if infos[0].filename != "mimetype" or zf.read(infos[0]).strip() != _ODT_MIMETYPE:
            raise _damaged("odt")
        names = {i.filename for i in infos if not i.is_dir()}
        if "META-INF/manifest.xml" not in names or "content.xml" not in names:
            raise _damaged("odt")
        for name in sorted(names):
            top = name.split("/", 1)[0]
            if top in ("Basic", "Scripts"):
                findings.add("macros")
            elif top.startswith("Object ") or top == "ObjectReplacements":
                findings.add("embedded_object")
            if name.endswith(".xml") or name.endswith(".rdf"):
                for tag, elem in _iter_xml(zf, name):
                    _odt_element(tag, elem, findings)
        if "encrypted" in findings:
            raise _encrypted("odt")
        _raise_first(findings)


def _odt_element(tag: str, elem: Any, findings: set[str]) -> None:
    if tag == "encryption-data":
        findings.add("encrypted")
    elif tag in ("event-listener", "script"):
        findings.add("macros")
    elif tag in _ODF_EMBEDDED:
        findings.add("embedded_object")
    elif tag in _ODF_DDE:
        findings.add("dde")
    elif tag == "floating-frame":
        findings.add("external_content")
    href = _attr(elem, "href")
    if href is not None:
        if tag in _ODF_LINK_TAGS:
            if unsafe_link(href):
                findings.add("unsafe_link")
        elif not _odf_internal(href):
            findings.add("external_content")


def _odf_internal(href: str) -> bool:
    """True for a reference to something inside the package (or in the document itself)."""
    h = href.strip()
    if h.startswith(("/", "\\", "../")) or h == "..":
        return False
    return re.match(r"[A-Za-z][A-Za-z0-9+.\-]*:", h) is None


# ---- DOC (OLE compound file)

_DOC_DDE = (
    re.compile(rb"\x13[ \t]*DDE(?:AUTO)?\b", re.IGNORECASE),
    re.compile(rb"\x13\x00(?:[ \t]\x00)*D\x00D\x00E\x00", re.IGNORECASE),
)


def _validate_doc(data: bytes) -> None:
    import olefile

    try:
        ole = olefile.OleFileIO(io.BytesIO(data), raise_defects=olefile.DEFECT_INCORRECT)
    except Exception:  # noqa: BLE001
        raise _damaged("doc") from None
    with ole:
        paths = ole.listdir(streams=True, storages=True)
        lowered = [[part.lower() for part in p] for p in paths]
        if any(part in ("macros", "_vba_project_cur", "vba") for p in lowered for part in p):
            raise _Refusal("macros")
        if any(p[0] == "objectpool" and len(p) > 1 for p in lowered):
            raise _Refusal("embedded_object")
        streams: dict[str, bytes] = {}
        for path in ole.listdir(streams=True, storages=False):
            # Reading every stream to the end proves the sector chains are whole.
            streams["/".join(path)] = ole.openstream(path).read()
    word = streams.get("WordDocument", b"")
    if len(word) < 32 or word[:2] != b"\xec\xa5":
        raise _damaged("doc")
    (flags,) = struct.unpack_from("<H", word, 0x0A)
    if flags & 0x0100 or flags & 0x8000:  # fEncrypted, fObfuscated
        raise _encrypted("doc")
    table = "1Table" if flags & 0x0200 else "0Table"
    if table not in streams:
        raise _damaged("doc")
    # Field codes live in the document text between 0x13 and 0x14; the text is stored as
    # 8-bit or UTF-16 pieces inside the WordDocument stream.
    if any(p.search(word) for p in _DOC_DDE):
        raise _Refusal("dde")


# ---- RTF

_RTF_TOKEN = re.compile(
    rb"\\([a-zA-Z]{1,32})(-?\d{1,10})? ?|\\'([0-9a-fA-F]{2})|\\[^a-zA-Z]|[{}]|[^\\{}]+|\\",
    re.DOTALL,
)
_RTF_OBJECT_WORDS = {
    b"object", b"objdata", b"objemb", b"objlink", b"objautlink", b"objsub", b"objpub",
    b"objicemb", b"objhtml", b"objocx", b"objclass", b"objupdate", b"objalias", b"objsect",
    b"datastore", b"oleclsid",
}  # fmt: skip
_RTF_BAD_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _validate_rtf(data: bytes) -> None:
    body = data.rstrip(b"\x00\t\r\n ")  # some writers pad the end
    if not body.startswith(b"{\\rtf") or not body.endswith(b"}"):
        raise _damaged("rtf")
    depth = 0
    fields = _Fields()
    fldinst_depths: list[int] = []  # depth of each open \fldinst group
    findings: set[str] = set()
    skip = 0  # characters still to drop after a \uN (its plain-text fallback)
    uc = 1
    pos = 0
    for match in _RTF_TOKEN.finditer(body):
        if match.start() != pos:
            raise _damaged("rtf")
        pos = match.end()
        token = match.group(0)
        word, param, hex_char = match.group(1), match.group(2), match.group(3)
        if token == b"{":
            depth += 1
        elif token == b"}":
            if fldinst_depths and fldinst_depths[-1] == depth:
                fldinst_depths.pop()
                fields.end()
            depth -= 1
            if depth < 0 or (depth == 0 and pos != len(body)):
                raise _damaged("rtf")  # unbalanced, or content after the document's group
        elif word is not None:
            word = word.lower()
            if word in _RTF_OBJECT_WORDS:
                findings.add("embedded_object")
            elif word == b"bin":
                raise _Refusal("rtf_binary")  # raw bytes follow: hides content from parsers
            elif word == b"template":
                findings.add("external_content")
            elif word == b"fldinst":
                fldinst_depths.append(depth)
                fields.begin()
            elif word == b"uc" and param is not None:
                uc = max(int(param), 0)
            elif word == b"u" and param is not None and fldinst_depths:
                fields.text(chr(int(param) % 0x10000))
                skip = uc
        elif fldinst_depths:
            # Word reads field codes after decoding escapes, so judge the decoded text.
            if hex_char is not None:
                text = chr(int(hex_char, 16))
            elif token.startswith(b"\\"):
                continue
            else:
                text = token.decode("latin-1")
            if skip:
                dropped = min(skip, len(text))
                text, skip = text[dropped:], skip - dropped
            fields.text(text)
    if depth != 0 or _RTF_BAD_BYTES.search(body):
        raise _damaged("rtf")  # checked after \bin, whose raw bytes would also land here
    findings |= fields.findings
    _raise_first(findings)


# ---- images


def _validate_image(data: bytes, kind: str, pil_format: str) -> None:
    import warnings

    from PIL import Image

    def opened() -> Any:
        return Image.open(io.BytesIO(data), formats=[pil_format])

    with warnings.catch_warnings():
        # Pillow warns, then carries on, on corrupt tags or EXIF: here that counts as damage.
        warnings.simplefilter("error")
        try:
            with opened() as im:
                frames = getattr(im, "n_frames", 1)
                if frames > MAX_IMAGE_FRAMES:
                    raise _Refusal("image_frames")
                _check_pixels(im.size)
                im.verify()  # checksums and structure; the image must be reopened after it
            total = 0
            with opened() as im:
                for index in range(frames):
                    im.seek(index)
                    _check_pixels(im.size)
                    total += im.size[0] * im.size[1]
                    if total > MAX_IMAGE_TOTAL_PIXELS:
                        raise _Refusal("image_too_large")
                    im.load()  # decodes every pixel: catches truncated or corrupt data
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _Refusal("image_too_large") from None
        except _Refusal:
            raise
        except Exception:  # noqa: BLE001
            raise _damaged(kind) from None
    trailer = _TRAILERS[kind](data)
    if (
        trailer
        and trailer.strip(b"\x00\xff\r\n\t ")
        and not (
            kind == "jpeg" and trailer.startswith(b"\xff\xd8\xff")  # MPF: more pictures follow
        )
    ):
        raise _Refusal("image_trailing_data")


def _check_pixels(size: tuple[int, int]) -> None:
    width, height = size
    if width * height > MAX_IMAGE_PIXELS:
        raise _Refusal("image_too_large")


def _png_trailer(data: bytes) -> bytes:
    """Whatever follows the IEND chunk."""
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        chunk_type = data[pos + 4 : pos + 8]
        pos += 12 + length
        if chunk_type == b"IEND":
            return data[pos:]
    return b""


def _jpeg_trailer(data: bytes) -> bytes:
    """Whatever follows the end-of-image marker of the first picture."""
    pos = 2
    n = len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return b""  # not at a marker: Pillow has judged the structure already
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1  # fill byte
            continue
        if marker == 0xD9:
            return data[pos + 2 :]
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        pos += 2 + length
        if marker == 0xDA:  # start of scan: entropy-coded data runs to the next real marker
            while pos + 1 < n:
                if data[pos] == 0xFF and data[pos + 1] != 0x00 and not 0xD0 <= data[pos + 1] <= 0xD7:
                    break
                pos += 1
    return b""


_TRAILERS: dict[str, Callable[[bytes], bytes]] = {
    "png": _png_trailer,
    "jpeg": _jpeg_trailer,
    "tiff": lambda data: b"",  # TIFF is offset-addressed: no defined end to check
}

_VALIDATORS: dict[str, Callable[[bytes], None]] = {
    "pdf": _validate_pdf,
    "docx": _validate_docx,
    "odt": _validate_odt,
    "doc": _validate_doc,
    "rtf": _validate_rtf,
    "txt": _validate_text,
    "jpeg": lambda data: _validate_image(data, "jpeg", "JPEG"),
    "png": lambda data: _validate_image(data, "png", "PNG"),
    "tiff": lambda data: _validate_image(data, "tiff", "TIFF"),
}
