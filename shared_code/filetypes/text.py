"""Plain text (TXT): which encodings are accepted and which characters are refused."""

from __future__ import annotations

import codecs
import re

from shared_code.filetypes.common import Refusal

_TEXT_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_TEXT_CHUNK = 64 * 1024


def decode_text(data: bytes) -> tuple[str, str]:
    """(the first characters, charset) for text in an encoding we can name, free of control
    characters: UTF-8 (with or without a BOM), UTF-16 with a BOM (Notepad's "Unicode") or
    Windows-1252 (legacy Windows text). Raises `Refusal` "text_encoding" or "text_control".

    Decodes in chunks, so a large upload is never held twice in memory as text.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        attempts = [("utf-16", "utf-16")]
    elif b"\x00" in data:
        raise Refusal("text_encoding")  # NUL without a UTF-16 BOM: binary, not text
    else:
        attempts = [("utf-8", "utf-8-sig"), ("windows-1252", "cp1252")]
    for charset, codec in attempts:
        decoder = codecs.getincrementaldecoder(codec)("strict")
        head = ""
        try:
            for start in range(0, len(data), _TEXT_CHUNK):
                text = decoder.decode(data[start : start + _TEXT_CHUNK], final=start + _TEXT_CHUNK >= len(data))
                if _TEXT_CONTROL.search(text):
                    raise Refusal("text_control")
                if len(head) < 1024:
                    head += text[: 1024 - len(head)]
            if not data:
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return head, charset
    raise Refusal("text_encoding")


def validate_text(data: bytes) -> None:
    """Refuse text that `decode_text` refuses."""
    decode_text(data)  # sniffing has done this too; repeated so validate stands on its own
