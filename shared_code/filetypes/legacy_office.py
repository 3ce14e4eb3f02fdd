"""Legacy Office (OLE compound files): Word 97-2003 (DOC) is the one allowed; other OLE files
(Excel, PowerPoint, Outlook, password-protected Office documents) are named and refused. A DOC
is rejected for macros, embedded objects, encryption, DDE fields or damage."""

from __future__ import annotations

import io
import re
import struct

from shared_code.filetypes.common import DOC, ENCRYPTED, FileType, Refusal, damaged, encrypted


def identify_ole(data: bytes) -> FileType:
    """DOC for an OLE upload that is a Word document, or a `Refusal` saying what it is instead."""
    import olefile

    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            streams = {"/".join(p).lower() for p in ole.listdir(streams=True, storages=True)}
    except Exception:  # noqa: BLE001
        raise Refusal("not_allowed", "is a damaged Microsoft Office file") from None
    if "worddocument" in streams:
        return DOC
    if "encryptedpackage" in streams or "encryptioninfo" in streams:
        raise Refusal("encrypted", ENCRYPTED)
    if "workbook" in streams or "book" in streams:
        raise Refusal("not_allowed", "is an Excel spreadsheet, not a document")
    if "powerpoint document" in streams:
        raise Refusal("not_allowed", "is a PowerPoint presentation, not a document")
    if any(s.startswith("__substg1.0_") for s in streams):
        raise Refusal("not_allowed", "is an Outlook message, not a document")
    raise Refusal("not_allowed", "is a Microsoft Office file that is not a Word document")


_DOC_DDE = (
    re.compile(rb"\x13[ \t]*DDE(?:AUTO)?\b", re.IGNORECASE),
    re.compile(rb"\x13\x00(?:[ \t]\x00)*D\x00D\x00E\x00", re.IGNORECASE),
)


def validate_doc(data: bytes) -> None:
    """Raise a `Refusal` for a DOC with macros, embedded objects, encryption, DDE fields or damage."""
    import olefile

    try:
        ole = olefile.OleFileIO(io.BytesIO(data), raise_defects=olefile.DEFECT_INCORRECT)
    except Exception:  # noqa: BLE001
        raise damaged("doc") from None
    with ole:
        paths = ole.listdir(streams=True, storages=True)
        lowered = [[part.lower() for part in p] for p in paths]
        if any(part in ("macros", "_vba_project_cur", "vba") for p in lowered for part in p):
            raise Refusal("macros")
        if any(p[0] == "objectpool" and len(p) > 1 for p in lowered):
            raise Refusal("embedded_object")
        streams: dict[str, bytes] = {}
        for path in ole.listdir(streams=True, storages=False):
            # Reading every stream to the end proves the sector chains are whole.
            streams["/".join(path)] = ole.openstream(path).read()
    word = streams.get("WordDocument", b"")
    if len(word) < 32 or word[:2] != b"\xec\xa5":
        raise damaged("doc")
    (flags,) = struct.unpack_from("<H", word, 0x0A)
    if flags & 0x0100 or flags & 0x8000:  # fEncrypted, fObfuscated
        raise encrypted("doc")
    table = "1Table" if flags & 0x0200 else "0Table"
    if table not in streams:
        raise damaged("doc")
    # Field codes live in the document text between 0x13 and 0x14; the text is stored as
    # 8-bit or UTF-16 pieces inside the WordDocument stream.
    if any(p.search(word) for p in _DOC_DDE):
        raise Refusal("dde")
