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
    for match in _RTF_TOKEN.finditer(body):
        if match.start() != pos:
            raise damaged("rtf")
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
                raise damaged("rtf")  # unbalanced, or content after the document's group
        elif word is not None:
            word = word.lower()
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
        raise damaged("rtf")  # checked after \bin, whose raw bytes would also land here
    findings |= fields.findings
    raise_first(findings)
