"""RTF: rejected for embedded objects, hidden binary data, DDE and remote-content fields, a remote
template, control bytes or an unbalanced structure. Field instructions are judged after decoding
RTF's escapes, as Word reads them."""

from __future__ import annotations

import re

from shared_code.filetypes.active_content import Fields, raise_first
from shared_code.filetypes.common import Refusal, damaged

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
_RTF_COMMENT_WORDS = {b"annotation", b"atnid", b"atnauthor", b"atrfstart", b"atnref", b"chatn"}
# Revision marks: text inserted or deleted with changes tracked (a 0 parameter turns one off).
_RTF_REVISION_WORDS = {b"revised", b"deleted"}
# Groups whose text is not the document's (tables, properties, pictures, field instructions,
# index and table-of-contents entries: Word hides these itself, the index is built from them).
_RTF_NOT_TEXT = {
    b"fonttbl", b"colortbl", b"stylesheet", b"info", b"listtable", b"listoverridetable", b"revtbl",
    b"rsidtbl", b"generator", b"pict", b"object", b"datastore", b"themedata", b"colorschememapping",
    b"latentstyles", b"xmlnstbl", b"fldinst", b"filetbl", b"pgdsctbl", b"mmathPr", b"userprops",
    b"xe", b"tc",
}  # fmt: skip


def validate_rtf(data: bytes) -> None:
    """Raise a `Refusal` for an RTF with objects, binary data, DDE or remote fields, or a broken structure."""
    body = data.rstrip(b"\x00\t\r\n ")  # some writers pad the end
    if not body.startswith(b"{\\rtf") or not body.endswith(b"}"):
        raise damaged("rtf")
    depth = 0
    fields = Fields()
    fldinst_depths: list[int] = []  # depth of each open \fldinst group
    findings: set[str] = set()
    skip = 0  # characters still to drop after a \uN (its plain-text fallback)
    uc = 1
    pos = 0
    # Per open group: (text hidden by \v, not document text). A group starts as its parent is.
    groups: list[tuple[bool, bool]] = []
    hidden = not_text = False
    group_start = False  # the next control word is the group's first: it may name a destination
    for match in _RTF_TOKEN.finditer(body):
        if match.start() != pos:
            raise damaged("rtf")
        pos = match.end()
        token = match.group(0)
        word, param, hex_char = match.group(1), match.group(2), match.group(3)
        starts_group, group_start = group_start, False
        if token == b"{":
            depth += 1
            groups.append((hidden, not_text))
            group_start = True
        elif token == b"}":
            if fldinst_depths and fldinst_depths[-1] == depth:
                fldinst_depths.pop()
                fields.end()
            depth -= 1
            if depth < 0 or (depth == 0 and pos != len(body)):
                raise damaged("rtf")  # unbalanced, or content after the document's group
            hidden, not_text = groups.pop()
        elif token == b"\\*":
            not_text = True  # an optional destination: never the document's visible text
        elif word is not None:
            word = word.lower()
            if starts_group and word in _RTF_NOT_TEXT:
                not_text = True
            if word in _RTF_COMMENT_WORDS:
                findings.add("comments")
            elif word in _RTF_REVISION_WORDS and param != b"0":
                findings.add("tracked_changes")
            elif word == b"v":
                hidden = param != b"0"
            elif word == b"plain":
                hidden = False
            if word in _RTF_OBJECT_WORDS:
                findings.add("embedded_object")
            elif word == b"bin":
                raise Refusal("rtf_binary")  # raw bytes follow: hides content from parsers
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
        if hidden and not not_text and _is_text(token, word, hex_char):
            findings.add("hidden_text")  # a character of the document's text, hidden by \v
        if word is not None or token in (b"{", b"}"):
            continue
        if fldinst_depths:
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
        raise damaged("rtf")  # checked after \bin, whose raw bytes would also land here
    findings |= fields.findings
    raise_first(findings)


def _is_text(token: bytes, word: bytes | None, hex_char: bytes | None) -> bool:
    """Whether a token is a visible character of text: plain text, an escaped byte or a \\uN."""
    if hex_char is not None or word == b"u":
        return True
    return word is None and not token.startswith((b"\\", b"{", b"}")) and bool(token.strip())
