"""ZIP-based documents (DOCX, ODT): the corpus samples, sniffing by parts, Word fields, which
finding is reported first, and the archive limits, each exactly at the limit and one over it."""

from __future__ import annotations

import functools
import io
import zipfile

import pytest

from shared_code.filetypes import (
    MAX_ZIP_ENTRIES,
    MAX_ZIP_RATIO,
    MAX_ZIP_TOTAL_BYTES,
    TYPES,
    ZIP_RATIO_MIN_BYTES,
    check_zip_limits,
    sniff,
    validate,
)
from tests.support import corpus
from tests.support.filetype_checks import bad_cases, check_bad_sample, check_good_sample, good_names, rejected


@pytest.mark.parametrize("name", good_names("containers"))
def test_good_sample_is_sniffed_and_passes(name: str) -> None:
    check_good_sample(name)


@pytest.mark.parametrize("case", bad_cases("containers"), ids=lambda c: c.name)
def test_bad_sample_is_rejected_with_its_reason(case: corpus.Case) -> None:
    check_bad_sample(case)


@pytest.mark.parametrize("kind", ["docx", "odt"])
def test_sniff_sees_zip_documents_by_their_parts(kind: str) -> None:
    data = corpus.docx_good() if kind == "docx" else corpus.odt_good()
    assert sniff(data) == TYPES[kind]


def test_docx_field_result_text_is_not_an_instruction() -> None:
    # "DDE" in the visible result of a PAGE field is just text.
    body = (
        '<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText> PAGE </w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>DDEAUTO</w:t></w:r>'
        '<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>'
    )
    validate(corpus.docx(body), TYPES["docx"])


def test_docx_nested_field_with_dde_inside_is_found() -> None:
    body = (
        '<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText>IF 1 = 1 </w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText>DDEAUTO cmd</w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="end"/></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>'
    )
    assert rejected(corpus.docx(body), "docx").rule == "dde"


def test_docx_macros_win_over_the_ole_file_that_holds_them() -> None:
    assert rejected(corpus.docx_macros(), "docx").rule == "macros"


# --------------------------------------------------------------------------- limits, exactly


def _info(file_size: int, compress_size: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("x")
    info.file_size, info.compress_size = file_size, compress_size
    return info


def _limit_rule(infos: list[zipfile.ZipInfo]) -> str | None:
    try:
        check_zip_limits(infos)
    except Exception as exc:  # the internal refusal carries the rule
        return exc.rule  # type: ignore[attr-defined]
    return None


def test_zip_ratio_limit_exactly() -> None:
    big = (ZIP_RATIO_MIN_BYTES // MAX_ZIP_RATIO + 1) * MAX_ZIP_RATIO  # over the floor, a multiple of 100
    assert _limit_rule([_info(big, big // MAX_ZIP_RATIO)]) is None  # exactly 100:1
    assert _limit_rule([_info(big + 1, big // MAX_ZIP_RATIO)]) == "zip_ratio"  # just over
    assert _limit_rule([_info(ZIP_RATIO_MIN_BYTES, 1)]) is None  # at the floor: not judged


def test_zip_entry_and_total_limits_exactly() -> None:
    assert _limit_rule([_info(1, 1)] * MAX_ZIP_ENTRIES) is None
    assert _limit_rule([_info(1, 1)] * (MAX_ZIP_ENTRIES + 1)) == "zip_entries"
    half = MAX_ZIP_TOTAL_BYTES // 2
    assert _limit_rule([_info(half, half), _info(half, half)]) is None
    assert _limit_rule([_info(half, half), _info(half + 1, half + 1)]) == "zip_size"


@functools.cache
def _docx_of_total(total: int) -> bytes:
    base = corpus.docx()
    with zipfile.ZipFile(io.BytesIO(base)) as zf:
        used = sum(i.file_size for i in zf.infolist())
    remaining = total - used
    extra, n = {}, 0
    while remaining > 0:
        size = min(ZIP_RATIO_MIN_BYTES, remaining)
        extra[f"word/media/pad{n}.bin"] = bytes(size)
        remaining -= size
        n += 1
    return corpus.docx(extra_parts=extra)


def test_docx_expanding_to_exactly_the_total_limit_passes_and_one_byte_more_is_rejected() -> None:
    validate(_docx_of_total(MAX_ZIP_TOTAL_BYTES), TYPES["docx"])
    assert rejected(_docx_of_total(MAX_ZIP_TOTAL_BYTES + 1), "docx").rule == "zip_size"


def test_zip_directory_that_understates_sizes_is_still_bounded() -> None:
    # A lying directory: the entry claims 10 bytes but holds far more. Reading stops at the
    # claim and the checksum then fails, so nothing past the claim is ever expanded.
    data = bytearray(corpus.docx(extra_parts={"word/media/x.bin": bytes(5 * 1024 * 1024)}))
    name = b"word/media/x.bin"
    for signature, size_offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = 0
        while (pos := data.find(signature, pos)) >= 0:
            header_len = 30 if signature == b"PK\x03\x04" else 46
            if data[pos + header_len : pos + header_len + len(name)] == name:
                data[pos + size_offset : pos + size_offset + 4] = (10).to_bytes(4, "little")
            pos += 4
    assert rejected(bytes(data), "docx").rule == "docx_damaged"


# --------------------------------------------------------------------------- hidden text through styles and fields

_STYLES_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"
_RUN = '<w:r><w:rPr><w:rStyle w:val="{}"/></w:rPr><w:t>Not for the patient.</w:t></w:r>'


def _styled(body: str, styles: str, target: str = "styles.xml") -> bytes:
    return corpus.docx(
        body,
        doc_rels=[("rId8", corpus.REL + "styles", target, False)],
        extra_parts={"word/styles.xml": f'<w:styles xmlns:w="{corpus.W_NS}">{styles}</w:styles>'.encode()},
        overrides={"word/styles.xml": _STYLES_TYPE},
    )


def _char_style(style_id: str, inner: str) -> str:
    return f'<w:style w:type="character" w:styleId="{style_id}">{inner}</w:style>'


def _chain(links: int) -> str:
    """Character styles S0 based on S1 ... based on S`links`, the last one hiding text."""
    styles = [_char_style(f"S{i}", f'<w:basedOn w:val="S{i + 1}"/>') for i in range(links)]
    return "".join(styles) + _char_style(f"S{links}", "<w:rPr><w:vanish/></w:rPr>")


def test_docx_style_chain_is_followed_to_its_limit_and_one_link_more_is_too_complex() -> None:
    from shared_code.filetypes.containers import _MAX_STYLE_CHAIN

    body = "<w:p>" + _RUN.format("S0") + "</w:p>"
    assert rejected(_styled(body, _chain(_MAX_STYLE_CHAIN)), "docx").rule == "hidden_text"
    assert rejected(_styled(body, _chain(_MAX_STYLE_CHAIN + 1)), "docx").rule == "too_complex"


def test_docx_style_loop_ends_the_chain() -> None:
    loop = _char_style("A", '<w:basedOn w:val="B"/>') + _char_style("B", '<w:basedOn w:val="A"/>')
    validate(_styled("<w:p>" + _RUN.format("A") + "</w:p>", loop), TYPES["docx"])
    hiding_loop = loop.replace('<w:basedOn w:val="A"/>', '<w:basedOn w:val="A"/><w:rPr><w:vanish/></w:rPr>')
    assert rejected(_styled("<w:p>" + _RUN.format("A") + "</w:p>", hiding_loop), "docx").rule == "hidden_text"


def test_docx_derived_style_that_turns_vanish_off_shows_its_text() -> None:
    styles = _char_style("Shown", '<w:basedOn w:val="Secret"/><w:rPr><w:vanish w:val="0"/></w:rPr>') + _char_style(
        "Secret", "<w:rPr><w:vanish/></w:rPr>"
    )
    validate(_styled("<w:p>" + _RUN.format("Shown") + "</w:p>", styles), TYPES["docx"])


def test_docx_default_paragraph_style_hides_paragraphs_without_a_style_or_with_an_unknown_one() -> None:
    normal = '<w:style w:type="paragraph" w:default="1" w:styleId="Normal"><w:rPr><w:vanish/></w:rPr></w:style>'
    assert rejected(_styled(corpus.PARAGRAPH, normal), "docx").rule == "hidden_text"
    unknown = '<w:p><w:pPr><w:pStyle w:val="Nowhere"/></w:pPr><w:r><w:t>Not for the patient.</w:t></w:r></w:p>'
    assert rejected(_styled(unknown, normal), "docx").rule == "hidden_text"
    # The same style, not the default: nothing uses it.
    validate(_styled(corpus.PARAGRAPH, normal.replace(' w:default="1"', "")), TYPES["docx"])


def test_docx_hiding_paragraph_and_character_styles_turn_each_other_over() -> None:
    # vanish is a toggle property (ECMA-376 17.7.3): set at both style levels, the text shows.
    styles = '<w:style w:type="paragraph" w:styleId="Notes"><w:rPr><w:vanish/></w:rPr></w:style>' + _char_style(
        "Secret", "<w:rPr><w:vanish/></w:rPr>"
    )
    body = '<w:p><w:pPr><w:pStyle w:val="Notes"/></w:pPr>' + _RUN.format("Secret") + "</w:p>"
    validate(_styled(body, styles), TYPES["docx"])


def test_docx_paragraph_mark_and_earlier_revision_properties_do_not_hide_the_run() -> None:
    styles = _char_style("Secret", "<w:rPr><w:vanish/></w:rPr>")
    body = (
        '<w:p><w:pPr><w:rPr><w:rStyle w:val="Secret"/><w:vanish/></w:rPr></w:pPr><w:r><w:rPr><w:b/>'
        '<w:rPrChange w:id="1" w:author="Dr A"><w:rPr><w:rStyle w:val="Secret"/><w:vanish/></w:rPr></w:rPrChange>'
        "</w:rPr><w:t>Your results are normal.</w:t></w:r></w:p>"
    )
    validate(_styled(body, styles), TYPES["docx"])


def test_docx_styles_part_is_found_through_an_absolute_target() -> None:
    body = "<w:p>" + _RUN.format("Secret") + "</w:p>"
    styles = _char_style("Secret", "<w:rPr><w:vanish/></w:rPr>")
    assert rejected(_styled(body, styles, target="/word/styles.xml"), "docx").rule == "hidden_text"


def test_docx_styles_part_no_relationship_names_is_not_applied() -> None:
    # Word reads styles only through the document's relationship; a stray part styles nothing.
    body = "<w:p>" + _RUN.format("Secret") + "</w:p>"
    styles = f'<w:styles xmlns:w="{corpus.W_NS}">{_char_style("Secret", "<w:rPr><w:vanish/></w:rPr>")}</w:styles>'
    validate(corpus.docx(body, extra_parts={"word/styles.xml": styles.encode()}), TYPES["docx"])


_HIDDEN = "<w:r><w:rPr><w:vanish/></w:rPr>{}</w:r>"


def _field(instruction: str, code_text: str = "", result: str = "") -> str:
    parts = ['<w:fldChar w:fldCharType="begin"/>', f'<w:instrText xml:space="preserve">{instruction}</w:instrText>']
    if code_text:
        parts.append(f"<w:t>{code_text}</w:t>")
    if result:
        parts += ['<w:fldChar w:fldCharType="separate"/>', f"<w:t>{result}</w:t>"]
    parts.append('<w:fldChar w:fldCharType="end"/>')
    return "".join(_HIDDEN.format(p) for p in parts)


@pytest.mark.parametrize("instruction", [' XE "', ' tc "', " XE", '  TC "Results" \\l 1 '])
def test_docx_hidden_text_in_an_index_or_contents_entry_instruction_is_not_hidden_text(instruction: str) -> None:
    validate(corpus.docx("<w:p>" + _field(instruction, code_text="Diabetes") + "</w:p>"), TYPES["docx"])


@pytest.mark.parametrize("instruction", [' IF 1 = 1 "', " XEROX ", ' QUOTE "', " "])
def test_docx_hidden_text_in_another_fields_instruction_is_hidden_text(instruction: str) -> None:
    assert rejected(corpus.docx("<w:p>" + _field(instruction, code_text="Secret") + "</w:p>"), "docx").rule == (
        "hidden_text"
    )


def test_docx_hidden_result_of_an_entry_field_is_hidden_text() -> None:
    body = "<w:p>" + _field(' XE "Diabetes" ', result="Not for the patient.") + "</w:p>"
    assert rejected(corpus.docx(body), "docx").rule == "hidden_text"


def test_docx_hidden_text_in_a_field_nested_in_an_entry_instruction_is_the_entrys() -> None:
    inner = _field(' QUOTE "', code_text="Diabetes")
    body = (
        "<w:p>"
        + _HIDDEN.format('<w:fldChar w:fldCharType="begin"/>')
        + _HIDDEN.format('<w:instrText xml:space="preserve"> XE "</w:instrText>')
        + inner
        + _HIDDEN.format('<w:fldChar w:fldCharType="end"/>')
        + "</w:p>"
    )
    validate(corpus.docx(body), TYPES["docx"])


def test_docx_simple_field_holds_hidden_text_only_for_an_entry() -> None:
    def simple(instruction: str) -> bytes:
        run = _HIDDEN.format("<w:t>Diabetes</w:t>")
        return corpus.docx(f'<w:p><w:fldSimple w:instr="{instruction}">{run}</w:fldSimple></w:p>')

    validate(simple(" XE &quot;Diabetes&quot; "), TYPES["docx"])
    assert rejected(simple(" PAGE "), "docx").rule == "hidden_text"


def test_docx_entry_field_left_open_still_excuses_only_its_instruction() -> None:
    open_entry = _HIDDEN.format('<w:fldChar w:fldCharType="begin"/>') + _HIDDEN.format(
        '<w:instrText xml:space="preserve"> XE "Diabetes" </w:instrText>'
    )
    validate(corpus.docx("<w:p>" + open_entry + _HIDDEN.format("<w:t>x</w:t>") + "</w:p>"), TYPES["docx"])
    open_other = open_entry.replace(" XE ", " IF ")
    assert rejected(corpus.docx("<w:p>" + open_other + _HIDDEN.format("<w:t>x</w:t>") + "</w:p>"), "docx").rule == (
        "hidden_text"
    )
