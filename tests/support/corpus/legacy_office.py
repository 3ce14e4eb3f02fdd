"""OLE compound-file samples: DOC, good and bad, and other Office files sniffing refuses."""

from __future__ import annotations

import struct

from tests.support.cfb import build_cfb


def _fib(flags: int = 0x0200) -> bytes:
    """The start of a Word 97 FIB: magic, version, and the flags word at 0x0A."""
    return struct.pack("<HH6sH", 0xA5EC, 0x00C1, b"\x00" * 6, flags).ljust(0x200, b"\x00")


def doc(text: bytes = b"Dear patient, your results are normal.", *, flags: int = 0x0200,
        extra: dict[str, bytes] | None = None) -> bytes:  # fmt: skip
    """A DOC-shaped compound file: WordDocument (FIB + text), the table stream and more."""
    streams = {
        "WordDocument": _fib(flags) + text,
        "1Table" if flags & 0x0200 else "0Table": b"\x00" * 64,
        "\x05SummaryInformation": b"\xfe\xff" + b"\x00" * 46,
    }
    streams.update(extra or {})
    return build_cfb(streams)


def doc_macros() -> bytes:
    return doc(extra={"Macros/VBA/dir": b"x", "Macros/VBA/ThisDocument": b"x", "Macros/PROJECT": b"x"})


def doc_embedded_object() -> bytes:
    return doc(extra={"ObjectPool/_1234567/\x01Ole10Native": b"payload", "ObjectPool/_1234567/\x01CompObj": b"x"})


def doc_encrypted() -> bytes:
    return doc(flags=0x0200 | 0x0100)


def doc_dde() -> bytes:
    return doc(b'Dear patient \x13 DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc" \x14x\x15')


def doc_dde_utf16() -> bytes:
    return doc("Dear patient \x13 DDE cmd \x14x\x15".encode("utf-16-le"))


def doc_missing_table() -> bytes:
    return build_cfb({"WordDocument": _fib() + b"text"})


def doc_truncated() -> bytes:
    data = doc()
    return data[: len(data) - 2048]


def ole_spreadsheet() -> bytes:
    return build_cfb({"Workbook": b"x"})


def ole_encrypted_ooxml() -> bytes:
    """How Office stores a password-protected DOCX: an OLE file holding the encrypted package."""
    return build_cfb({"EncryptionInfo": b"x", "EncryptedPackage": b"x"})
