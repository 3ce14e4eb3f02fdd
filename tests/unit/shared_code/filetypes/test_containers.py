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
