"""File names that are safe to store, to show and to put in a Content-Disposition header.

The name a practice uploads is kept for the patient's benefit, but cleaned: no folders, no
control or invisible characters, nothing Windows refuses, not too long, and always ending in
the extension of the file's real type (so a PDF called "letter.exe" is served as "letter.pdf").
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from shared_code.filetypes import EXTENSIONS, FileType

MAX_NAME_CHARS = 150
MAX_NAME_BYTES = 255  # most file systems' limit, in UTF-8 bytes
DEFAULT_STEM = "document"

# Windows refuses these as a name (before the first dot), in any case, with any extension.
_RESERVED = re.compile(r"^(?:CON|PRN|AUX|NUL|CONIN\$|CONOUT\$|(?:COM|LPT)[0-9¹²³])$", re.IGNORECASE)
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*]')
# Something that looks like an extension: short, letters and digits, at least one letter.
_EXTENSION_LIKE = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9]{1,5}$")


def _visible(text: str) -> str:
    """Drop control characters (Cc: CR, LF, NUL...) and invisible formatting (Cf: bidi overrides
    that make "txt.exe" look like "exe.txt", zero-width spaces), and the U+FFFD replacement."""
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf") and ch != "\ufffd")


def safe_filename(name: str | None, file_type: FileType) -> str:
    """A clean version of `name` that ends in an extension of `file_type`'s real type."""
    text = unicodedata.normalize("NFC", name or "")
    # Path parts: whatever a browser or tool sent, keep only the last component.
    text = re.split(r"[/\\]", text)[-1]
    text = _visible(text)
    text = _WINDOWS_FORBIDDEN.sub("_", text)
    # Windows drops trailing dots and spaces; leading dots are left for the stem (".pdf").
    text = re.sub(r"\s+", " ", text).rstrip(" .").lstrip(" ")

    stem, dot, ext = text.rpartition(".")
    allowed = EXTENSIONS.get(file_type.kind, frozenset({file_type.extension}))
    if dot and ext.lower() in allowed:
        extension = ext.lower()
    else:
        extension = file_type.extension
        if not (dot and _EXTENSION_LIKE.match(ext)):
            stem = text  # "minutes.2024" keeps its dot: ".2024" is not an extension
    stem = stem.strip(" .")
    if not stem:
        stem = DEFAULT_STEM
    if _RESERVED.match(stem.split(".", 1)[0].strip()):
        stem = "_" + stem

    suffix = "." + extension
    stem = stem[: MAX_NAME_CHARS - len(suffix)]
    while stem and (len(stem) + len(suffix) > MAX_NAME_CHARS or len((stem + suffix).encode("utf-8")) > MAX_NAME_BYTES):
        stem = stem[:-1]
    stem = stem.rstrip(" .") or DEFAULT_STEM
    return stem + suffix


def _ascii_fallback(filename: str) -> str:
    """The closest plain-ASCII name: accents dropped, anything else an underscore."""
    decomposed = unicodedata.normalize("NFKD", filename)
    out = []
    for ch in decomposed:
        if unicodedata.combining(ch):
            continue
        out.append(ch if 0x20 <= ord(ch) < 0x7F and ch not in '"\\' else "_")
    return "".join(out)


def content_disposition(filename: str, *, inline: bool = False) -> str:
    """An RFC 6266 header value, `attachment` (save the file) or `inline` (show it in the browser
    or the phone's own viewer): an ASCII `filename`, plus `filename*` (RFC 8187, UTF-8) when the
    name is not plain ASCII. Control characters never reach the header."""
    name = _visible(filename)
    fallback = _ascii_fallback(name)
    header = f'{"inline" if inline else "attachment"}; filename="{fallback}"'
    if fallback != name:
        # RFC 8187 attr-char: ALPHA / DIGIT / "!#$&+-.^_`|~"; everything else percent-encoded.
        header += "; filename*=UTF-8''" + quote(name, safe="!#$&+-.^_`|~")
    return header
