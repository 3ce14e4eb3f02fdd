"""Legacy Office (OLE compound files): Word 97-2003 (DOC) is the one allowed; other OLE files
(Excel, PowerPoint, Outlook, password-protected Office documents) are named and refused. A DOC
is rejected for macros, embedded objects, encryption, DDE fields or damage, and for comments,
tracked changes or hidden text (which the patient must not get)."""

from __future__ import annotations

import io
import re
import struct
import sys

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
_FCLCB_STSHF = 1  # FibRgFcLcb97.fcStshf: the style sheet
_FCLCB_PLCF_BTE_CHPX = 12  # FibRgFcLcb97.fcPlcfBteChpx: where character formatting runs are listed
_FCLCB_PLCF_BTE_PAPX = 13  # FibRgFcLcb97.fcPlcfBtePapx: where paragraph formatting (and style) runs are listed
_FCLCB_CLX = 33  # FibRgFcLcb97.fcClx: the piece table, where the document's text is
_FCLCB_STTBF_RMARK = 51  # FibRgFcLcb97.fcSttbfRMark: revision authors (only with revisions)
# [MS-DOC] 2.6.1 character sprms whose one-byte toggle marks a run.
_SPRM_RUN_FLAGS = {
    0x0800: "tracked_changes",  # sprmCFRMarkDel
    0x0801: "tracked_changes",  # sprmCFRMarkIns
}
_SPRM_VANISH = 0x083C  # sprmCFVanish: hidden text, a toggle
_SPRM_ISTD = 0x4A30  # sprmCIstd: the run's character style
_TOGGLE_ON = {0x01, 0x81}  # on; or the opposite of the style's (which is off)
_SPRA_OPERAND_BYTES = {0: 1, 1: 1, 2: 2, 3: 4, 4: 2, 5: 2, 7: 3}  # spra 6: a length byte first
_ISTD_NORMAL = 0  # the paragraph style of text no paragraph run names
_ISTD_DEFAULT_CHARACTER = 10  # "Default Paragraph Font": the character style of a run that names none
_ISTD_NIL = 0x0FFF  # istdBase of a style based on no other
_MAX_PIECES = 65_536  # pieces of text; a fast-saved letter has a few hundred
_MAX_STYLE_CHAIN = 32  # istdBase links followed from one style; Word's own chains are a few long
_MAX_FIELD_DEPTH = 64  # fields inside fields; Word allows about 20
_ENTRY_LOOKAHEAD = 256  # characters of an instruction looked at for its keyword
#: Index and table-of-contents entries: Word formats these fields hidden itself, and their
#: instruction is what the index is built from, not text the reader misses.
_INDEX_ENTRY = re.compile(r"\s*(?:XE|TC)\b", re.IGNORECASE)
_FIELD_MARK = re.compile(r"[\x13\x14\x15]")
#: A character the reader would see: not a space, paragraph or cell mark, field mark or other control.
_SHOWN_CHARACTER = re.compile(r"[^\s\x00-\x1f\x7f]")


def _doc_revisions(word: bytes, table: bytes) -> set[str]:
    """Comments, tracked changes and hidden text of a DOC, from its FIB, text, styles and runs.

    Hidden text is text the reader would see that a run's own sprmCFVanish, or its character
    and paragraph styles, hide; a hidden paragraph mark alone, and index and table-of-contents
    entry fields (which Word hides itself), do not count. A structure that points outside its
    stream is skipped rather than trusted: the file has passed the checks that matter for
    safety, and Word itself would not show such runs. Without a piece table that fits, the text
    is not known, and any hidden run longer than a paragraph mark counts.
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

    def in_table(index: int) -> tuple[int, int]:
        fc, lcb = pair(index)
        return (fc, lcb) if fc + lcb <= len(table) else (0, 0)

    if pair(_FCLCB_STTBF_RMARK)[1] > 0:
        findings.add("tracked_changes")
    budget = _Budget(len(word))
    text = _DocText.read(word, table, *in_table(_FCLCB_CLX), budget)
    styles = _DocStyles.read(table, *in_table(_FCLCB_STSHF))
    paragraphs = _Spans(_papx_runs(_fkp_pages(word, table, *in_table(_FCLCB_PLCF_BTE_PAPX))), budget)
    covered = []
    for page in _fkp_pages(word, table, *in_table(_FCLCB_PLCF_BTE_CHPX)):
        for start, end, grpprl in _chpx_runs(page):
            budget.spend(1)
            covered.append((start, end))
            flags, vanish, istd = _run_properties(grpprl)
            findings |= flags
            if "hidden_text" not in findings and _run_hidden(start, end, vanish, istd, styles, paragraphs, text):
                findings.add("hidden_text")
    if "hidden_text" not in findings and styles.any_hidden:
        # Text no character run lists has the default character properties: its paragraph's style decides.
        everything = text.ranges() if text is not None else paragraphs.ranges()
        for start, end in _uncovered(everything, covered, budget):
            if _run_hidden(start, end, None, _ISTD_DEFAULT_CHARACTER, styles, paragraphs, text):
                findings.add("hidden_text")
                break
    return findings


def _uncovered(
    everything: list[tuple[int, int]], covered: list[tuple[int, int]], budget: _Budget
) -> list[tuple[int, int]]:
    """The parts of the sorted ranges `everything` that no range of `covered` overlaps."""
    found = []
    ranges = sorted(covered)
    index = 0
    reach = 0  # the end of the covered ranges that start before the current position
    for start, end in everything:
        at = start
        while at < end:
            budget.spend(1)
            while index < len(ranges) and ranges[index][0] <= at:
                reach = max(reach, ranges[index][1])
                index += 1
            if reach > at:
                at = min(reach, end)
                continue
            gap_end = min(end, ranges[index][0]) if index < len(ranges) else end
            found.append((at, gap_end))
            at = gap_end
    return found


class _Budget:
    """Work allowed for one document's hidden-text check, in steps: a multiple of its size, far
    above what real documents need; beyond it the document is too complex."""

    def __init__(self, size: int) -> None:
        self.left = 8 * size + 1_000_000

    def spend(self, steps: int) -> None:
        """Take `steps`; refuse the document once the budget is gone."""
        self.left -= steps
        if self.left < 0:
            raise Refusal("too_complex")


def _fkp_pages(word: bytes, table: bytes, fc: int, lcb: int) -> list[bytes]:
    """The distinct 512-byte FKP pages a PlcBteChpx or PlcBtePapx ([MS-DOC] 2.8.6, 2.8.7) lists."""
    if lcb < 12 or (lcb - 4) % 8:
        return []
    count = (lcb - 4) // 8
    numbers = {pn & 0x3FFFFF for pn in struct.unpack_from(f"<{count}I", table, fc + 4 * (count + 1))}
    return [word[pn * 512 : pn * 512 + 512] for pn in sorted(numbers) if pn * 512 + 512 <= len(word)]


def _chpx_runs(page: bytes) -> list[tuple[int, int, bytes]]:
    """The character runs of one ChpxFkp page ([MS-DOC] 2.9.33): stream offsets and properties."""
    runs = page[511]
    if 4 * (runs + 1) + runs > 511:
        return []
    limits = struct.unpack_from(f"<{runs + 1}I", page, 0)
    found = []
    for index in range(runs):
        offset = page[4 * (runs + 1) + index] * 2
        grpprl = page[offset + 1 : offset + 1 + page[offset]] if 0 < offset < 511 else b""
        found.append((limits[index], limits[index + 1], grpprl))
    return found


def _papx_runs(pages: list[bytes]) -> list[tuple[int, int, int]]:
    """The paragraphs of PapxFkp pages ([MS-DOC] 2.9.175): stream offsets and paragraph style."""
    found = []
    for page in pages:
        count = page[511]
        if 4 * (count + 1) + 13 * count > 511:
            continue
        limits = struct.unpack_from(f"<{count + 1}I", page, 0)
        for index in range(count):
            at = page[4 * (count + 1) + 13 * index] * 2  # BxPap.bOffset, in words
            istd = _ISTD_NORMAL
            if at:
                at += 1 if page[at] else 2  # PapxInFkp: cb, or a zero cb and then cb'
                if at + 2 <= 511:
                    (istd,) = struct.unpack_from("<H", page, at)
            found.append((limits[index], limits[index + 1], istd))
    return found


def _sprms(grpprl: bytes) -> list[tuple[int, bytes]]:
    """The sprms of a grpprl ([MS-DOC] 2.6) with their operands; a cut-off last one is dropped."""
    found = []
    at = 0
    while at + 2 <= len(grpprl):
        (sprm,) = struct.unpack_from("<H", grpprl, at)
        at += 2
        size = _SPRA_OPERAND_BYTES.get(sprm >> 13)
        if size is None:
            if at >= len(grpprl):
                break
            size = grpprl[at] + 1
        if at + size > len(grpprl):
            break
        found.append((sprm, grpprl[at : at + size]))
        at += size
    return found


def _run_properties(grpprl: bytes) -> tuple[set[str], int | None, int]:
    """A run's revision marks, its own sprmCFVanish operand (None without one) and its character style."""
    flags: set[str] = set()
    vanish = None
    istd = _ISTD_DEFAULT_CHARACTER
    for sprm, operand in _sprms(grpprl):
        rule = _SPRM_RUN_FLAGS.get(sprm)
        if rule is not None and len(operand) == 1 and operand[0] in _TOGGLE_ON:
            flags.add(rule)
        elif sprm == _SPRM_VANISH and len(operand) == 1:
            vanish = operand[0]  # the last one is the one Word applies
        elif sprm == _SPRM_ISTD and len(operand) == 2:
            (istd,) = struct.unpack("<H", operand)
    return flags, vanish, istd


def _toggle(operand: int | None, style: bool) -> bool:
    """A toggle property ([MS-DOC] 2.6.1 sprmCFBold) over the value `style` gives it: 0 off, 1 on,
    0x80 the same, 0x81 the opposite; none, or an operand Word does not define, leaves it."""
    if operand in (0, 1):
        return bool(operand)
    return not style if operand == 0x81 else style


def _run_hidden(
    start: int,
    end: int,
    vanish: int | None,
    istd: int,
    styles: _DocStyles,
    paragraphs: _Spans,
    text: _DocText | None,
) -> bool:
    """Whether the run at stream offsets [start, end) hides text the reader would otherwise see.

    The run is hidden by its own sprmCFVanish, or, without one (or relative to the styles), by
    its character style and the style of each paragraph it is in. Without a readable piece table
    a run of more than one character (a paragraph mark) counts.
    """
    if vanish in (0, 1) or not styles.any_hidden:
        hidden_parts = [(start, end)] if _toggle(vanish, False) else []
    else:
        hidden_parts = [
            (a, b) for a, b, para in paragraphs.split(start, end) if _toggle(vanish, styles.hidden(para, istd))
        ]
    return any(text.shows(a, b) if text is not None else b - a > 2 for a, b in hidden_parts)


class _Spans:
    """Values over sorted, non-overlapping ranges of stream offsets (paragraphs and their styles);
    an overlapping range, which Word never writes, is cut to where the one before it ends."""

    def __init__(self, ranges: list[tuple[int, int, int]], budget: _Budget) -> None:
        self._budget = budget
        self._ranges: list[tuple[int, int, int]] = []
        for start, end, value in sorted(ranges):
            start = max(start, self._ranges[-1][1]) if self._ranges else start
            if start < end:
                self._ranges.append((start, end, value))
        self._starts = [r[0] for r in self._ranges]

    def ranges(self) -> list[tuple[int, int]]:
        """The ranges, in order, without their values."""
        return [(start, end) for start, end, _ in self._ranges]

    def split(self, start: int, end: int) -> list[tuple[int, int, int]]:
        """[start, end) cut at the ranges, each part with its range's value (Normal between ranges)."""
        import bisect

        parts = []
        index = max(bisect.bisect_right(self._starts, start) - 1, 0)
        at = start
        while at < end:
            self._budget.spend(1)
            if index >= len(self._ranges) or self._ranges[index][0] >= end:
                parts.append((at, end, _ISTD_NORMAL))
                break
            low, high, value = self._ranges[index]
            index += 1
            if high <= at:
                continue
            if low > at:
                parts.append((at, low, _ISTD_NORMAL))
                at = low
            parts.append((at, min(high, end), value))
            at = min(high, end)
        return parts


class _DocText:
    """The document's text from the piece table ([MS-DOC] 2.9.38 Clx, 2.9.177 PlcPcd), with the
    fields that are index or table-of-contents entries (XE, TC) blanked out: Word hides those
    itself, begin to separator or end, and they are not what the reader misses."""

    def __init__(self, pieces: list[tuple[int, int, int, int]], shown: str, budget: _Budget) -> None:
        self._pieces = pieces  # (first byte, byte after the last, first CP, bytes a character)
        self._starts = [p[0] for p in pieces]
        self._shown = shown
        self._budget = budget

    @classmethod
    def read(cls, word: bytes, table: bytes, fc: int, lcb: int, budget: _Budget) -> _DocText | None:
        """The text of a DOC, or None when its piece table is missing or does not fit its streams."""
        clx = table[fc : fc + lcb]
        at = 0
        while at < len(clx) and clx[at] == 0x01:  # Pcr: a property modifier of pieces, skipped
            if at + 3 > len(clx):
                return None
            at += 3 + struct.unpack_from("<H", clx, at + 1)[0]
        if at + 5 > len(clx) or clx[at] != 0x02:
            return None
        (size,) = struct.unpack_from("<I", clx, at + 1)
        plc = clx[at + 5 : at + 5 + size]
        if len(plc) != size or size < 4 or (size - 4) % 12:
            return None
        count = (size - 4) // 12
        if count > _MAX_PIECES:
            raise Refusal("too_complex")
        cps = struct.unpack_from(f"<{count + 1}I", plc, 0)
        if cps[0] != 0:
            return None  # the text starts at CP 0
        pieces = []
        for index in range(count):
            (fc_compressed,) = struct.unpack_from("<I", plc, 4 * (count + 1) + 8 * index + 2)
            chars = cps[index + 1] - cps[index]
            width = 1 if fc_compressed & 0x40000000 else 2  # fCompressed: 8-bit text at fc / 2
            first = (fc_compressed & 0x3FFFFFFF) // (2 if width == 1 else 1)
            if chars < 0 or first + width * chars > len(word):
                return None
            pieces.append((first, first + width * chars, cps[index], width))
        in_order = sorted(pieces)
        if any(a[1] > b[0] for a, b in zip(in_order, in_order[1:], strict=False)):
            return None  # two pieces of one stretch of bytes: not text Word wrote
        # Pieces apart fit in the stream together, so the text is no longer than the stream.
        text = "".join(_decode(word[first:end], width) for first, end, _, width in pieces)
        budget.spend(len(text))
        pieces = in_order
        return cls(pieces, _blank_index_entries(text), budget)

    def ranges(self) -> list[tuple[int, int]]:
        """The stream offsets the text is at, in order."""
        return [(first, end) for first, end, _, _ in self._pieces]

    def shows(self, start: int, end: int) -> bool:
        """Whether stream offsets [start, end) hold text the reader would see if it were not hidden."""
        import bisect

        index = max(bisect.bisect_right(self._starts, start) - 1, 0)
        while index < len(self._pieces) and self._pieces[index][0] < end:
            first, last, cp, width = self._pieces[index]
            index += 1
            low, high = max(start, first), min(end, last)
            self._budget.spend(1)
            if low >= high:
                continue
            cp_low = cp + (low - first) // width
            cp_high = cp + (high - first + width - 1) // width
            self._budget.spend(cp_high - cp_low)
            if _SHOWN_CHARACTER.search(self._shown, cp_low, cp_high):
                return True
        return False


def _decode(data: bytes, width: int) -> str:
    """One piece's characters, one string character per CP."""
    if width == 1:
        return data.decode("cp1252", errors="replace")  # undefined bytes still take one place each
    import array

    units = array.array("H", data)
    if sys.byteorder == "big":
        units.byteswap()
    return "".join(map(chr, units))  # a surrogate pair stays two characters, as it is two CPs


def _blank_index_entries(text: str) -> str:
    """`text` (indexed by CP) with every index or table-of-contents entry field turned into
    spaces: its instruction from the begin mark, and what follows up to its end mark (an entry
    has no result; Word hides all of it).

    A field whose instruction never ends has no complete instruction and blanks nothing.
    """
    open_fields: list[list[int]] = []  # each open field's [begin mark's CP, 1 entry / 0 not / -1 instruction]
    entries: list[tuple[int, int]] = []
    for mark in _FIELD_MARK.finditer(text):
        at, kind = mark.start(), mark.group()
        if kind == "\x13":
            if len(open_fields) >= _MAX_FIELD_DEPTH:
                raise Refusal("too_complex")
            open_fields.append([at, -1])
            continue
        if not open_fields:
            continue
        field = open_fields[-1]
        if field[1] < 0:  # the instruction is complete: is it an entry's?
            field[1] = int(bool(_INDEX_ENTRY.match(text, field[0] + 1, min(at, field[0] + 1 + _ENTRY_LOOKAHEAD))))
        if field[1]:
            entries.append((field[0], at + 1))
        if kind == "\x15":
            open_fields.pop()
    parts = []
    done = 0
    for begin, end in sorted(entries):
        if end > done:
            parts += [text[done:begin] if begin > done else "", " " * (end - max(begin, done))]
            done = end
    parts.append(text[done:])
    return "".join(parts)


class _DocStyles:
    """Which styles of the style sheet ([MS-DOC] 2.9.271 STSH) hide text: each style's own
    sprmCFVanish in its character UPX, applied over the style it is based on (istdBase)."""

    def __init__(self, own: dict[int, int], based_on: dict[int, int]) -> None:
        self._own = own  # istd -> its sprmCFVanish operand
        self._based_on = based_on
        self._resolved: dict[int, bool] = {}
        self.any_hidden = bool(own) and any(self._vanish(istd) for istd in own)

    @classmethod
    def read(cls, table: bytes, fc: int, lcb: int) -> _DocStyles:
        """The styles' vanish properties; a style that does not fit its place is left out."""
        own: dict[int, int] = {}
        based_on: dict[int, int] = {}
        stsh = table[fc : fc + lcb]
        if len(stsh) < 6:
            return cls(own, based_on)
        cb_stshi, cstd, cb_base = struct.unpack_from("<HHH", stsh, 0)
        at = 2 + cb_stshi
        for istd in range(cstd):
            if at + 2 > len(stsh):
                break
            (cb_std,) = struct.unpack_from("<H", stsh, at)
            std = stsh[at + 2 : at + 2 + cb_std]
            at += 2 + cb_std
            if len(std) < max(cb_base, 10) + 2:
                continue  # an empty slot or a damaged style
            stk_base, cupx_next = struct.unpack_from("<HH", std, 2)
            stk, cupx = stk_base & 0x0F, cupx_next & 0x0F
            based_on[istd] = stk_base >> 4
            # [MS-DOC] 2.9.262 StkParaGRLPUPX / 2.9.263 StkCharGRLPUPX / 2.9.264 StkTableGRLPUPX: which UPX is the CHPX.
            chpx = {1: 1, 2: 0, 3: 2}.get(stk)
            (cch,) = struct.unpack_from("<H", std, cb_base)
            upx_at = cb_base + 2 + 2 * cch + 2  # after xstzName and its terminating zero
            for index in range(min(cupx, 3)):
                if upx_at + 2 > len(std):
                    break
                (cb_upx,) = struct.unpack_from("<H", std, upx_at)
                upx = std[upx_at + 2 : upx_at + 2 + cb_upx]
                upx_at += 2 + cb_upx + (cb_upx & 1)  # each UPX is padded to an even length
                if index == chpx:
                    for sprm, operand in _sprms(upx):
                        if sprm == _SPRM_VANISH and len(operand) == 1:
                            own[istd] = operand[0]
        return cls(own, based_on)

    def hidden(self, paragraph_style: int, character_style: int) -> bool:
        """Whether a run with no vanish of its own is hidden by its styles: the character style's
        toggle is applied over the paragraph style's, as Word applies toggles."""
        return self._vanish(paragraph_style) ^ self._vanish(character_style)

    def _vanish(self, istd: int) -> bool:
        if istd not in self._resolved:
            chain: list[int] = []
            current = istd
            while current != _ISTD_NIL and current in self._based_on and current not in chain:  # a loop ends it
                if len(chain) >= _MAX_STYLE_CHAIN:
                    raise Refusal("too_complex")  # no real document's styles are based on so many
                chain.append(current)
                current = self._based_on[current]
            value = False
            for link in reversed(chain):  # from the root style to this one
                value = _toggle(self._own.get(link), value)
            self._resolved[istd] = value
        return self._resolved[istd]
