"""Legacy Office (OLE compound files): Word 97-2003 (DOC) is the one allowed; other OLE files
(Excel, PowerPoint, Outlook, password-protected Office documents) are named and refused. A DOC
is rejected for macros, embedded objects, encryption, DDE fields or damage, and for comments,
tracked changes or hidden text (which the patient must not get)."""

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
    """Raise a `Refusal` for a DOC with macros, embedded objects, encryption, DDE fields or damage,
    or with comments, tracked changes or hidden text."""
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
    for rule in ("comments", "tracked_changes", "hidden_text"):
        if rule in _doc_revisions(word, streams[table]):
            raise Refusal(rule)


# [MS-DOC] 2.5.1-2.5.6: the FIB is FibBase (32 bytes), then counted arrays of 16-bit words,
# 32-bit longs (FibRgLw97) and fc/lcb pairs (FibRgFcLcb97).
_FIB_BASE = 32
_LW_CCP_ATN = 7  # FibRgLw97.ccpAtn: characters in the comments' subdocument
_FCLCB_PLCF_BTE_CHPX = 12  # FibRgFcLcb97.fcPlcfBteChpx: where character formatting runs are listed
_FCLCB_STTBF_RMARK = 51  # FibRgFcLcb97.fcSttbfRMark: revision authors (only with revisions)
# [MS-DOC] 2.6.1 character sprms whose one-byte toggle marks a run.
_SPRM_RUN_FLAGS = {
    0x0800: "tracked_changes",  # sprmCFRMarkDel
    0x0801: "tracked_changes",  # sprmCFRMarkIns
    0x083C: "hidden_text",  # sprmCFVanish
}
_TOGGLE_ON = {0x01, 0x81}  # on; or the opposite of the style's (which is off)
_SPRA_OPERAND_BYTES = {0: 1, 1: 1, 2: 2, 3: 4, 4: 2, 5: 2, 7: 3}  # spra 6: a length byte first


def _doc_revisions(word: bytes, table: bytes) -> set[str]:
    """Comments, tracked changes and hidden text of a DOC, from its FIB and character runs.

    A structure that points outside its stream is skipped rather than trusted: the file has
    passed the checks that matter for safety, and Word itself would not show such runs.
    """
    findings: set[str] = set()
    try:
        pos = _FIB_BASE
        (csw,) = struct.unpack_from("<H", word, pos)
        pos += 2 + 2 * csw
        (cslw,) = struct.unpack_from("<H", word, pos)
        longs = struct.unpack_from(f"<{cslw}i", word, pos + 2)
        pos += 2 + 4 * cslw
        (pairs,) = struct.unpack_from("<H", word, pos)
        pos += 2
    except struct.error:
        return findings
    if len(longs) > _LW_CCP_ATN and longs[_LW_CCP_ATN] > 0:
        findings.add("comments")

    def pair(index: int) -> tuple[int, int]:
        if index >= pairs or pos + 8 * index + 8 > len(word):
            return 0, 0
        return struct.unpack_from("<II", word, pos + 8 * index)

    if pair(_FCLCB_STTBF_RMARK)[1] > 0:
        findings.add("tracked_changes")
    fc, lcb = pair(_FCLCB_PLCF_BTE_CHPX)
    if lcb >= 12 and (lcb - 4) % 8 == 0 and fc + lcb <= len(table):
        count = (lcb - 4) // 8
        for pn in struct.unpack_from(f"<{count}I", table, fc + 4 * (count + 1)):
            start = (pn & 0x3FFFFF) * 512
            if start + 512 <= len(word):
                findings |= _chpx_page_flags(word[start : start + 512])
    return findings


def _chpx_page_flags(page: bytes) -> set[str]:
    """What the character runs of one ChpxFkp page ([MS-DOC] 2.9.33) mark: revisions, hidden text.

    A run of one character (a paragraph mark, one or two bytes) is not counted as hidden text.
    """
    found: set[str] = set()
    runs = page[511]
    if 4 * (runs + 1) + runs > 511:
        return found
    limits = struct.unpack_from(f"<{runs + 1}I", page, 0)
    for index in range(runs):
        offset = page[4 * (runs + 1) + index] * 2
        if not offset or offset >= 511:
            continue
        grpprl = page[offset + 1 : offset + 1 + page[offset]]
        at = 0
        while at + 2 <= len(grpprl):
            (sprm,) = struct.unpack_from("<H", grpprl, at)
            at += 2
            size = _SPRA_OPERAND_BYTES.get(sprm >> 13)
            if size is None:
                if at >= len(grpprl):
                    break
                size = grpprl[at] + 1
            rule = _SPRM_RUN_FLAGS.get(sprm)
            on = rule is not None and size == 1 and at < len(grpprl) and grpprl[at] in _TOGGLE_ON
            if on and (rule != "hidden_text" or limits[index + 1] - limits[index] > 2):
                found.add(rule)
            at += size
    return found
