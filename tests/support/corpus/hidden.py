"""Documents with something the patient must not get (issue 18): comments, tracked changes and
hidden text in DOCX, ODT, DOC and RTF; sticky notes and hidden layers in PDF. And their harmless
look-alikes, which must pass: a hidden paragraph mark, an empty comments part, a hidden style
nobody uses or a run shows again, index entries (hidden by Word itself), a visible text box
comment, layers all shown."""

from __future__ import annotations

import struct

from tests.support.cfb import build_cfb
from tests.support.corpus.containers import PARAGRAPH, REL, W_NS, docx, odt
from tests.support.corpus.legacy_office import _fib
from tests.support.corpus.pdf import pdf_with
from tests.support.corpus.rtf import rtf

# -- DOCX ------------------------------------------------------------------------------------

COMMENTS_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.comments+xml"


def _comments_part(body: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?><w:comments xmlns:w="{W_NS}">{body}</w:comments>'.encode()


def docx_comment() -> bytes:
    """A letter with one comment, as Word stores it: a range, a reference and comments.xml."""
    body = (
        '<w:p><w:commentRangeStart w:id="0"/><w:r><w:t>Your results are normal.</w:t></w:r>'
        '<w:commentRangeEnd w:id="0"/><w:r><w:commentReference w:id="0"/></w:r></w:p>'
    )
    comment = '<w:comment w:id="0" w:author="Dr A"><w:p><w:r><w:t>Check with Dr B first</w:t></w:r></w:p></w:comment>'
    return docx(
        body,
        doc_rels=[("rId9", REL + "comments", "comments.xml", False)],
        extra_parts={"word/comments.xml": _comments_part(comment)},
        overrides={"word/comments.xml": COMMENTS_TYPE},
    )


def docx_empty_comments_part() -> bytes:
    """Good: a comments part with no comment left in it (Word keeps one after they are deleted)."""
    return docx(
        doc_rels=[("rId9", REL + "comments", "comments.xml", False)],
        extra_parts={"word/comments.xml": _comments_part("")},
        overrides={"word/comments.xml": COMMENTS_TYPE},
    )


def docx_tracked_insertion() -> bytes:
    return docx(
        '<w:p><w:r><w:t>Your results are normal. </w:t></w:r><w:ins w:id="1" w:author="Dr A">'
        "<w:r><w:t>Repeat the test in a year.</w:t></w:r></w:ins></w:p>"
    )


def docx_tracked_deletion() -> bytes:
    return docx(
        '<w:p><w:r><w:t>Your results are normal.</w:t></w:r><w:del w:id="2" w:author="Dr A">'
        "<w:r><w:delText> Query cancer.</w:delText></w:r></w:del></w:p>"
    )


def docx_hidden_text() -> bytes:
    return docx(
        "<w:p><w:r><w:t>Your results are normal.</w:t></w:r>"
        "<w:r><w:rPr><w:vanish/></w:rPr><w:t> Not for the patient.</w:t></w:r></w:p>"
    )


def docx_hidden_paragraph_mark() -> bytes:
    """Good: only a paragraph mark is hidden (Word does this to join paragraphs): no text is."""
    return docx(
        "<w:p><w:pPr><w:rPr><w:vanish/></w:rPr></w:pPr><w:r><w:t>Your results</w:t></w:r></w:p><w:p><w:r>"
        '<w:rPr><w:vanish w:val="0"/></w:rPr><w:t> are normal.</w:t></w:r></w:p>'
    )


STYLES_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"
_SECRET = '<w:style w:type="character" w:styleId="Secret"><w:name w:val="Secret"/><w:rPr><w:vanish/></w:rPr></w:style>'


def _docx_styled(body: str, styles: str) -> bytes:
    """A DOCX whose styles part (named by the document's relationships) holds `styles`."""
    return docx(
        body,
        doc_rels=[("rId8", REL + "styles", "styles.xml", False)],
        extra_parts={"word/styles.xml": f'<w:styles xmlns:w="{W_NS}">{styles}</w:styles>'.encode()},
        overrides={"word/styles.xml": STYLES_TYPE},
    )


def docx_hidden_style_unused() -> bytes:
    """Good: a style that would hide text, which no text uses."""
    return _docx_styled(PARAGRAPH, _SECRET)


def docx_hidden_by_character_style() -> bytes:
    """Text hidden through its run's character style, with nothing hidden on the run itself."""
    return _docx_styled(
        '<w:p><w:r><w:t>Your results are normal.</w:t></w:r><w:r><w:rPr><w:rStyle w:val="Secret"/></w:rPr>'
        "<w:t> Not for the patient.</w:t></w:r></w:p>",
        _SECRET,
    )


def docx_hidden_by_paragraph_style() -> bytes:
    """A paragraph whose style hides its runs."""
    return _docx_styled(
        PARAGRAPH + '<w:p><w:pPr><w:pStyle w:val="Notes"/></w:pPr><w:r><w:t>Not for the patient.</w:t></w:r></w:p>',
        '<w:style w:type="paragraph" w:styleId="Notes"><w:name w:val="Notes"/><w:rPr><w:vanish/></w:rPr></w:style>',
    )


def docx_hidden_by_based_on_style() -> bytes:
    """A character style that hides text because the style it is based on does, two links up."""
    return _docx_styled(
        '<w:p><w:r><w:t>Your results are normal.</w:t></w:r><w:r><w:rPr><w:rStyle w:val="Aside"/></w:rPr>'
        "<w:t> Not for the patient.</w:t></w:r></w:p>",
        '<w:style w:type="character" w:styleId="Aside"><w:basedOn w:val="Note"/><w:rPr><w:i/></w:rPr></w:style>'
        '<w:style w:type="character" w:styleId="Note"><w:basedOn w:val="Secret"/></w:style>' + _SECRET,
    )


def docx_hidden_by_document_defaults() -> bytes:
    """Every run hidden by the document defaults; one paragraph shown again by its own formatting."""
    return _docx_styled(
        '<w:p><w:r><w:rPr><w:vanish w:val="0"/></w:rPr><w:t>Your results are normal.</w:t></w:r></w:p>'
        "<w:p><w:r><w:t>Not for the patient.</w:t></w:r></w:p>",
        "<w:docDefaults><w:rPrDefault><w:rPr><w:vanish/></w:rPr></w:rPrDefault></w:docDefaults>",
    )


def docx_hidden_style_overridden() -> bytes:
    """Good: a run in a hiding style whose own formatting shows it (direct formatting wins)."""
    return _docx_styled(
        '<w:p><w:r><w:rPr><w:rStyle w:val="Secret"/><w:vanish w:val="0"/></w:rPr>'
        "<w:t>Your results are normal.</w:t></w:r></w:p>",
        _SECRET,
    )


_HIDDEN_RUN = "<w:r><w:rPr><w:vanish/></w:rPr>{}</w:r>"


def _index_entry(entry: str) -> str:
    """An index entry (XE) as Word marks one: every run of the field hidden, the entry's words
    in a run of text inside the instruction."""
    return "".join(
        _HIDDEN_RUN.format(inner)
        for inner in (
            '<w:fldChar w:fldCharType="begin"/>',
            '<w:instrText xml:space="preserve"> XE "</w:instrText>',
            f"<w:t>{entry}</w:t>",
            '<w:instrText xml:space="preserve">" </w:instrText>',
            '<w:fldChar w:fldCharType="end"/>',
        )
    )


def docx_index_entry() -> bytes:
    """Good: a letter with an index entry and a table-of-contents entry, both hidden by Word."""
    return docx(
        "<w:p><w:r><w:t>Your diabetes results are normal.</w:t></w:r>"
        + _index_entry("Diabetes")
        + '<w:fldSimple w:instr=" TC &quot;Results&quot; \\l 1 ">'
        + _HIDDEN_RUN.format("<w:t>Results</w:t>")
        + "</w:fldSimple></w:p>"
    )


def docx_index_entry_and_hidden_text() -> bytes:
    """An index entry, which is fine, and hidden text after it in the same paragraph, which is not."""
    return docx(
        "<w:p><w:r><w:t>Your diabetes results are normal.</w:t></w:r>"
        + _index_entry("Diabetes")
        + _HIDDEN_RUN.format("<w:t> Not for the patient.</w:t>")
        + "</w:p>"
    )


# -- ODT -------------------------------------------------------------------------------------


DC = 'xmlns:dc="http://purl.org/dc/elements/1.1/"'


def odt_comment() -> bytes:
    return odt(
        f"<text:p>Your results are normal.<office:annotation><dc:creator {DC}>Dr A</dc:creator>"
        "<text:p>Check with Dr B first</text:p></office:annotation></text:p>"
    )


def odt_tracked_change() -> bytes:
    return odt(
        '<text:tracked-changes><text:changed-region text:id="ct1"><text:insertion><office:change-info>'
        f"<dc:creator {DC}>Dr A</dc:creator></office:change-info></text:insertion></text:changed-region>"
        '</text:tracked-changes><text:p>Normal. <text:change-start text:change-id="ct1"/>Repeat.'
        '<text:change-end text:change-id="ct1"/></text:p>'
    )


def odt_hidden_section() -> bytes:
    return odt(
        '<text:section text:name="Notes" text:display="none"><text:p>Not for the patient.</text:p></text:section>'
    )


def odt_hidden_style() -> bytes:
    """Text in a style of content.xml's that is set not to display, as LibreOffice saves "Hidden"."""
    style_ns = 'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0"'
    return odt(
        '<text:p>Normal.<text:span text:style-name="T1"> Not for the patient.</text:span></text:p>',
        before_body=f'<office:automatic-styles><style:style {style_ns} style:name="T1" style:family="text">'
        '<style:text-properties text:display="none"/></style:style></office:automatic-styles>',
    )


def odt_hidden_text_field() -> bytes:
    return odt(
        '<text:p>Normal.<text:hidden-text text:condition="ooow:1" text:string-value="Not for the patient" '
        'text:is-hidden="true">Not for the patient</text:hidden-text></text:p>'
    )


# -- DOC -------------------------------------------------------------------------------------

# [MS-DOC] FIB: FibBase, then 14 words, 22 longs and 93 fc/lcb pairs (Word 97).
_CSW, _CSLW, _CB_FC_LCB = 14, 22, 93
_LONGS_AT = 32 + 2 + 2 * _CSW + 2
_PAIRS_AT = _LONGS_AT + 4 * _CSLW + 2


def _doc_fib(*, longs: dict[int, int] | None = None, pairs: dict[int, tuple[int, int]] | None = None) -> bytearray:
    fib = bytearray(_fib().ljust(1024, b"\x00"))
    struct.pack_into("<H", fib, 32, _CSW)
    struct.pack_into("<H", fib, _LONGS_AT - 2, _CSLW)
    struct.pack_into("<H", fib, _PAIRS_AT - 2, _CB_FC_LCB)
    for index, value in (longs or {}).items():
        struct.pack_into("<i", fib, _LONGS_AT + 4 * index, value)
    for index, (fc, lcb) in (pairs or {}).items():
        struct.pack_into("<II", fib, _PAIRS_AT + 8 * index, fc, lcb)
    return fib


def _doc(word: bytes, table: bytes = b"\x00" * 64) -> bytes:
    return build_cfb({"WordDocument": word, "1Table": table, "\x05SummaryInformation": b"\xfe\xff" + b"\x00" * 46})


def doc_comment() -> bytes:
    """A DOC whose comments subdocument has text (FibRgLw97.ccpAtn)."""
    return _doc(bytes(_doc_fib(longs={7: 24})) + b"Your results are normal.")


def doc_tracked_change() -> bytes:
    """A DOC that lists revision authors (SttbfRMark), as Word writes it with tracked changes."""
    return _doc(bytes(_doc_fib(pairs={51: (0, 32)})) + b"Your results are normal.")


def _doc_with_run(grpprl: bytes, run_bytes: int) -> bytes:
    """A DOC with one character run formatted by `grpprl`, `run_bytes` long, on an FKP page."""
    text = b"Your results are normal. Not for the patient."
    start = 1024
    page = bytearray(512)
    page[511] = 1  # one run
    struct.pack_into("<II", page, 0, start, start + run_bytes)
    chpx_at = 256
    page[8] = chpx_at // 2  # rgb[0]: where the run's properties are, in words
    page[chpx_at] = len(grpprl)
    page[chpx_at + 1 : chpx_at + 1 + len(grpprl)] = grpprl
    table = bytearray(64)
    struct.pack_into("<III", table, 0, start, start + len(text), 3)  # PlcBteChpx: FCs and page 3
    word = bytes(_doc_fib(pairs={12: (0, 12)})).ljust(start, b"\x00") + text.ljust(512, b"\x00") + bytes(page)
    return _doc(word, bytes(table))


def doc_hidden_text() -> bytes:
    return _doc_with_run(struct.pack("<HB", 0x083C, 1), 21)


def doc_tracked_insertion_run() -> bytes:
    return _doc_with_run(struct.pack("<HB", 0x0801, 1), 21)


def doc_hidden_paragraph_mark() -> bytes:
    """Good: the one hidden run is a single paragraph mark."""
    return _doc_with_run(struct.pack("<HB", 0x083C, 1), 1)


# A DOC as Word lays it out: the text in one piece of the piece table (Clx), its character runs
# on a ChpxFkp page, its paragraphs (and their styles) on a PapxFkp page, and a style sheet.
VANISH_ON, VANISH_OFF = struct.pack("<HB", 0x083C, 1), struct.pack("<HB", 0x083C, 0)
_TEXT_AT = 1024  # where the text starts in WordDocument, after the FIB


def doc_style(stk: int, base: int = 0x0FFF, chpx: bytes = b"", name: str = "Style") -> bytes:
    """One STD ([MS-DOC] 2.9.260): StdfBase, the name, and the UPXs of a paragraph (stk 1) or
    character (stk 2) style, with `chpx` as its character properties."""
    stdf = struct.pack("<HHHHH", 0x0FFE, stk | base << 4, (2 if stk == 1 else 1) | base << 4, 0, 0)
    encoded = name.encode("utf-16-le")
    upxs = [struct.pack("<H", 0), chpx] if stk == 1 else [chpx]  # a paragraph style's UPX.PAPX is its istd
    body = stdf + struct.pack("<H", len(name)) + encoded + b"\x00\x00"
    for upx in upxs:
        body += struct.pack("<H", len(upx)) + upx + b"\x00" * (len(upx) & 1)
    return body


def _stsh(styles: dict[int, bytes]) -> bytes:
    """A style sheet ([MS-DOC] 2.9.271) with `styles` at their istd, empty slots between."""
    count = max(styles, default=-1) + 1
    stshi = struct.pack("<9H", count, 10, 1, 0x5B, 15, 0, 0, 0, 0)  # Stshif, cbSTDBaseInFile 10 (Word 97)
    slots = b"".join(struct.pack("<H", len(styles.get(i, b""))) + styles.get(i, b"") for i in range(count))
    return struct.pack("<H", len(stshi)) + stshi + slots


def _fkp(entries: list[tuple[int, int, bytes]], entry_size: int, prop_prefix: int) -> bytes:
    """An FKP page of runs (start, end, properties): the FCs, the offset byte of each entry (and,
    for paragraphs, 12 bytes of height), then the properties, each at a word boundary."""
    page = bytearray(512)
    page[511] = len(entries)
    struct.pack_into(f"<{len(entries) + 1}I", page, 0, *[e[0] for e in entries], entries[-1][1])
    free = 500
    placed: dict[bytes, int] = {}  # equal properties are stored once, as Word does
    for index, (_, _, props) in enumerate(entries):
        if props not in placed:
            free = placed[props] = (free - len(props) - prop_prefix) & ~1
        page[4 * (len(entries) + 1) + entry_size * index] = placed[props] // 2
        free = placed[props]
        if prop_prefix == 1:  # ChpxFkp: cb, grpprl
            page[free] = len(props)
        else:  # PapxFkp: a zero cb, then cb' words of istd and grpprl
            page[free + 1] = len(props) // 2
        page[free + prop_prefix : free + prop_prefix + len(props)] = props
    return bytes(page)


def doc_built(
    runs: list[tuple[str, bytes]],
    *,
    styles: dict[int, bytes] | None = None,
    paragraph_style: int = 0,
    compressed: bool = False,
    pieces: list[tuple[int, int, int]] | None = None,
    run_limits: list[int] | None = None,
) -> bytes:
    """A DOC whose text is `runs`' text, each run formatted by its grpprl, in one paragraph of
    style `paragraph_style`, stored 8-bit (`compressed`) or UTF-16; `pieces` replaces the piece
    table by (first CP, CP after the last, fc) entries as given, and `run_limits` the character
    runs by their limits, in characters, as given (each with the last run's grpprl)."""
    text = "".join(t for t, _ in runs)
    width = 1 if compressed else 2
    data = text.encode("cp1252" if compressed else "utf-16-le")
    chpx, fc = [], _TEXT_AT
    for part, grpprl in runs:
        chpx.append((fc, fc + width * len(part), grpprl))
        fc += width * len(part)
    if run_limits is not None:
        at = [_TEXT_AT + width * limit for limit in run_limits]
        chpx = [(start, end, runs[-1][1]) for start, end in zip(at, at[1:], strict=False)]
    text_pages = (len(data) + 511) // 512
    chpx_pn = _TEXT_AT // 512 + text_pages
    word = bytearray(_TEXT_AT + 512 * text_pages)
    word[_TEXT_AT : _TEXT_AT + len(data)] = data
    word += _fkp(chpx, 1, 1) + _fkp([(_TEXT_AT, fc, struct.pack("<H", paragraph_style))], 13, 2)
    if pieces is None:
        pieces = [(0, len(text), _TEXT_AT * 2 | 0x40000000 if compressed else _TEXT_AT)]
    plc = struct.pack(f"<{len(pieces) + 1}I", *[p[0] for p in pieces], pieces[-1][1])
    plc += b"".join(struct.pack("<HIH", 0, p[2], 0) for p in pieces)
    clx = b"\x02" + struct.pack("<I", len(plc)) + plc
    bte_chpx = struct.pack("<III", _TEXT_AT, fc, chpx_pn)
    bte_papx = struct.pack("<III", _TEXT_AT, fc, chpx_pn + 1)
    stsh = _stsh(styles or {})
    table, at = b"", {}
    for index, part in ((33, clx), (12, bte_chpx), (13, bte_papx), (1, stsh)):
        at[index] = (len(table), len(part))
        table += part
    fib = _doc_fib(pairs=at)
    word[: len(fib)] = fib
    return _doc(bytes(word), table)


def _xe(entry: str) -> tuple[str, bytes]:
    """An index entry as Word marks one: the whole field, begin to end, formatted hidden."""
    return f'\x13 XE "{entry}" \x15', VANISH_ON


def doc_index_entry() -> bytes:
    """Good: a letter with an index entry and a table-of-contents entry, both hidden by Word."""
    return doc_built(
        [("Your diabetes results are normal.", b""), _xe("Diabetes"), ('\x13 tc "Results" \\l 1 \x15', VANISH_ON)]
        + [("\r", VANISH_ON)]
    )


def doc_index_entry_and_hidden_text() -> bytes:
    """An index entry, which is fine, and hidden text after it in the same paragraph, which is not."""
    return doc_built(
        [("Your diabetes results are normal.", b""), _xe("Diabetes"), (" Not for the patient.", VANISH_ON)]
    )


SECRET = 15  # istd of the hiding character style the samples use


def _secret_styles() -> dict[int, bytes]:
    return {
        0: doc_style(1, name="Normal"),
        10: doc_style(2, name="Default Paragraph Font"),
        SECRET: doc_style(2, chpx=VANISH_ON, name="Secret"),
    }


def in_style(istd: int, own: bytes = b"") -> bytes:
    return struct.pack("<HH", 0x4A30, istd) + own  # sprmCIstd, then the run's own properties


def doc_hidden_by_character_style() -> bytes:
    """Text hidden through its run's character style, with nothing hidden on the run itself."""
    return doc_built(
        [("Your results are normal.", b""), (" Not for the patient.", in_style(SECRET)), ("\r", b"")],
        styles=_secret_styles(),
    )


def doc_hidden_style_overridden() -> bytes:
    """Good: a run in a hiding character style whose own formatting shows it again."""
    return doc_built([("Your results are normal.", in_style(SECRET, VANISH_OFF)), ("\r", b"")], styles=_secret_styles())


def doc_hidden_by_paragraph_style() -> bytes:
    """A paragraph whose style hides its text (its runs name no style of their own)."""
    styles = {**_secret_styles(), 16: doc_style(1, chpx=VANISH_ON, name="Notes")}
    return doc_built([("Not for the patient.", b""), ("\r", b"")], styles=styles, paragraph_style=16)


def doc_hidden_by_based_on_style() -> bytes:
    """A character style that hides text because the style it is based on does, two links up."""
    styles = {**_secret_styles(), 16: doc_style(2, base=SECRET, name="Note"), 17: doc_style(2, base=16, name="Aside")}
    return doc_built([("Your results are normal.", b""), (" Not for the patient.", in_style(17))], styles=styles)


# -- RTF -------------------------------------------------------------------------------------


def rtf_comment() -> bytes:
    return rtf(
        b"Your results are normal.{\\*\\atnid DA}{\\*\\atnauthor Dr A}\\chatn"
        b"{\\*\\annotation{\\*\\atnref 1}Check with Dr B first}\\par"
    )


def rtf_tracked_change() -> bytes:
    return rtf(b"Your results are normal. {\\revised\\revauth1 Repeat the test in a year.}\\par")


def rtf_hidden_text() -> bytes:
    return rtf(b"Your results are normal.{\\v  Not for the patient.}\\par")


def rtf_hidden_style_unused() -> bytes:
    """Good: a stylesheet entry that hides text, a \\v turned off, and hidden text only in a
    field instruction (Word hides none of it from the reader)."""
    return rtf(
        b"{\\stylesheet{\\s1\\v Secret;}}Your results{\\v\\v0  are} normal."
        b'{\\field{\\*\\fldinst{\\v HYPERLINK "https://www.nhs.uk/"}}{\\fldrslt{NHS}}}\\par'
    )


def rtf_index_entry() -> bytes:
    """Good: index and table-of-contents entries, hidden as Word writes them, as a field and as
    RTF's own entry groups."""
    return rtf(
        b"Your diabetes results are normal."
        b'{\\field{\\*\\fldinst{\\v XE "Diabetes"}}{\\fldrslt }}{\\xe{\\v Results}}{\\tc{\\v Results}}\\par'
    )


def rtf_index_entry_and_hidden_text() -> bytes:
    """An index entry, and hidden text right after its group, which is not the entry's."""
    return rtf(b"Your diabetes results are normal.{\\xe{\\v Diabetes}}{\\v  Not for the patient.}\\par")


# -- PDF -------------------------------------------------------------------------------------


def pdf_sticky_note() -> bytes:
    return pdf_with(
        page_extra=b"/Annots [6 0 R] ",
        extra_objects=[b"<< /Type /Annot /Subtype /Text /Rect [72 700 92 720] /Contents (Check with Dr B) >>"],
    )


def pdf_free_text_annotation() -> bytes:
    """Good: a comment typed onto the page, visible to everyone (not a note behind an icon)."""
    return pdf_with(
        page_extra=b"/Annots [6 0 R] ",
        extra_objects=[
            b"<< /Type /Annot /Subtype /FreeText /Rect [72 700 300 720] /Contents (Seen) /DA (/Helv 12 Tf) >>"
        ],
    )


def pdf_hidden_layer() -> bytes:
    return pdf_with(
        catalog_extra=b"/OCProperties << /OCGs [6 0 R 7 0 R] /D << /ON [6 0 R] /OFF [7 0 R] >> >> ",
        extra_objects=[b"<< /Type /OCG /Name (Letter) >>", b"<< /Type /OCG /Name (Notes) >>"],
    )


def pdf_layers_off_by_default() -> bytes:
    """Every layer hidden unless listed as on: one is not."""
    return pdf_with(
        catalog_extra=b"/OCProperties << /OCGs [6 0 R 7 0 R] /D << /BaseState /OFF /ON [6 0 R] >> >> ",
        extra_objects=[b"<< /Type /OCG /Name (Letter) >>", b"<< /Type /OCG /Name (Notes) >>"],
    )


def pdf_layers_all_shown() -> bytes:
    """Good: layers, every one shown."""
    return pdf_with(
        catalog_extra=b"/OCProperties << /OCGs [6 0 R 7 0 R] /D << /BaseState /OFF /ON [6 0 R 7 0 R] /OFF [] >> >> ",
        extra_objects=[b"<< /Type /OCG /Name (Letter) >>", b"<< /Type /OCG /Name (Logo) >>"],
    )
