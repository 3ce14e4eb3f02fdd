"""Type by content (sniff) and deep validation (validate), on samples built in memory."""

from __future__ import annotations

import functools
import io
import re
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared_code import filetypes
from shared_code.errors import UnsupportedType
from shared_code.filetypes import (
    DAMAGED,
    ENCRYPTED,
    MAX_IMAGE_PIXELS,
    MAX_ZIP_ENTRIES,
    MAX_ZIP_RATIO,
    MAX_ZIP_TOTAL_BYTES,
    REASONS,
    TYPES,
    ZIP_RATIO_MIN_BYTES,
    ContentRejected,
    check_zip_limits,
    sniff,
    unsafe_link,
    validate,
)
from tests.support import corpus


def expected_reason(rule: str) -> str:
    if rule in REASONS:
        return REASONS[rule]
    if rule.endswith("_damaged"):
        return DAMAGED
    if rule.endswith("_encrypted"):
        return ENCRYPTED
    raise AssertionError(f"no reason for {rule}")


def rejected(data: bytes, kind: str) -> ContentRejected:
    with pytest.raises(ContentRejected) as info:
        validate(data, TYPES[kind])
    return info.value


# --------------------------------------------------------------------------- the corpus


@pytest.mark.parametrize("name", sorted(corpus.GOOD))
def test_good_sample_is_sniffed_and_passes(name: str) -> None:
    kind, build = corpus.GOOD[name]
    data = build()
    assert sniff(data).kind == kind
    validate(data, TYPES[kind])


@pytest.mark.parametrize("case", corpus.BAD, ids=lambda c: c.name)
def test_bad_sample_is_rejected_with_its_reason(case: corpus.Case) -> None:
    error = rejected(case.build(), case.kind)
    assert error.rule == case.rule
    assert error.reason == expected_reason(case.rule)
    assert str(error) == error.reason


@pytest.mark.parametrize("name", sorted(corpus.NOT_ALLOWED))
def test_not_allowed_upload_is_a_415_in_plain_words(name: str) -> None:
    build, words = corpus.NOT_ALLOWED[name]
    with pytest.raises(UnsupportedType) as info:
        sniff(build())
    assert info.value.status == 415
    assert info.value.detail.startswith("This file ")
    assert words in info.value.detail
    assert "Allowed types: PDF" in info.value.detail


def test_every_reason_is_plain_words() -> None:
    for rule, reason in REASONS.items():
        assert reason == reason.strip() and reason[0].islower(), rule
        assert not reason.endswith("."), rule


# --------------------------------------------------------------------------- sniff


def test_sniff_ignores_the_declared_name() -> None:
    assert sniff(corpus.pdf_good(), "letter.exe").kind == "pdf"
    with pytest.raises(UnsupportedType):
        sniff(b"MZ" + bytes(100), "letter.pdf")


@pytest.mark.parametrize(
    ("build", "mime"),
    [
        (corpus.txt_good, "text/plain; charset=utf-8"),
        (lambda: b"\xef\xbb\xbfwith a BOM", "text/plain; charset=utf-8"),
        (corpus.txt_cp1252, "text/plain; charset=windows-1252"),
        (corpus.txt_utf16, "text/plain; charset=utf-16"),
    ],
)
def test_text_is_named_with_its_charset(build, mime: str) -> None:
    file_type = sniff(build())
    assert (file_type.kind, file_type.mime, file_type.extension) == ("txt", mime, "txt")


@pytest.mark.parametrize(
    "data",
    [
        b"text with a NUL \x00 byte",
        b"\x81\x8d\x8f undefined in windows-1252 and not UTF-8",
        b"\xff\xfe\x00\xd8",  # UTF-16 with a lone surrogate
    ],
)
def test_unreadable_text_is_not_allowed(data: bytes) -> None:
    with pytest.raises(UnsupportedType, match="not one of the allowed types"):
        sniff(data)


@pytest.mark.parametrize("kind", ["docx", "odt"])
def test_sniff_sees_zip_documents_by_their_parts(kind: str) -> None:
    data = corpus.docx_good() if kind == "docx" else corpus.odt_good()
    assert sniff(data) == TYPES[kind]


# --------------------------------------------------------------------------- validate


def test_empty_is_rejected() -> None:
    assert rejected(b"", "pdf").rule == "empty"


def test_a_file_that_is_not_its_recorded_type_is_rejected() -> None:
    error = rejected(corpus.pdf_good(), "docx")
    assert (error.rule, error.reason) == ("type_mismatch", REASONS["type_mismatch"])


def test_an_unrecognisable_file_keeps_the_sniff_words() -> None:
    error = rejected(b"MZ" + bytes(100), "pdf")
    assert error.rule == "not_allowed"
    assert error.reason == "is a program (an executable), not a document"


@pytest.mark.parametrize("tail", [b"", b"\n", b"\r\n", b"\x00\x00", b"  \n"])
def test_pdf_may_end_with_whitespace_after_eof(tail: bytes) -> None:
    validate(corpus.pdf_good() + tail, TYPES["pdf"])


@pytest.mark.parametrize("tail", [b"x", b"\n%", b"\x01"])
def test_pdf_with_anything_else_after_eof_is_rejected(tail: bytes) -> None:
    assert rejected(corpus.pdf_good() + tail, "pdf").rule == "trailing_data"


def test_pdf_javascript_wins_over_the_automatic_action_that_runs_it() -> None:
    # /OpenAction runs the script: the report names the script, the more telling reason.
    assert rejected(corpus.pdf_javascript_open_action(), "pdf").rule == "pdf_javascript"


@pytest.mark.parametrize("tail", [b"\x00" * 16, b"\xff\xff", b"\r\n"])
def test_image_padding_after_the_end_is_allowed(tail: bytes) -> None:
    validate(corpus.jpeg_good() + tail, TYPES["jpeg"])
    validate(corpus.png_good() + tail, TYPES["png"])


def test_rtf_padding_after_the_last_brace_is_allowed() -> None:
    validate(corpus.rtf_good() + b"\x00\r\n", TYPES["rtf"])


def test_rtf_hyperlink_field_is_not_dde() -> None:
    validate(corpus.rtf(b'{\\field{\\*\\fldinst HYPERLINK "https://www.nhs.uk/"}{\\fldrslt x}}'), TYPES["rtf"])


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


def test_image_of_exactly_the_pixel_limit_passes_and_one_more_pixel_is_rejected() -> None:
    validate(corpus.png_of_pixels(10_000, 5_000), TYPES["png"])  # 50,000,000: decoded in full
    assert MAX_IMAGE_PIXELS + 1 == 42_123 * 1_187
    assert rejected(corpus.png_header_claims(42_123, 1_187), "png").rule == "image_too_large"


def test_pixel_limit_is_checked_before_decoding() -> None:
    # At the limit the header alone is not refused; the missing pixel data then is.
    assert rejected(corpus.png_header_claims(10_000, 5_000), "png").rule == "png_damaged"


def test_total_pixels_over_all_pages_are_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filetypes, "MAX_IMAGE_TOTAL_PIXELS", 3 * 8 * 8)
    validate(corpus.tiff_pages(3), TYPES["tiff"])
    assert rejected(corpus.tiff_pages(4), "tiff").rule == "image_too_large"


def test_pillow_decompression_bomb_error_is_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    # Pillow's own guard (warning above MAX_IMAGE_PIXELS, error above twice that) also counts.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    assert rejected(corpus.png_of_pixels(20, 20), "png").rule == "image_too_large"
    assert rejected(corpus.png_of_pixels(10, 11), "png").rule == "image_too_large"


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


# --------------------------------------------------------------------------- links


@pytest.mark.parametrize(
    ("target", "unsafe"),
    [
        ("https://www.nhs.uk/", False),
        ("mailto:surgery@example.nhs.uk", False),
        ("#section-2", False),
        ("javascript:alert(1)", True),
        (" JavaScript:alert(1)", True),
        ("file:///C:/Windows/System32/cmd.exe", True),
        ("\\\\attacker\\share\\x", True),
        ("//attacker/share", True),
        ("vnd.sun.star.script:Standard.Module1.Main", True),
        ("ms-msdt:/id PCWDiagnostic", True),
    ],
)
def test_unsafe_link(target: str, unsafe: bool) -> None:
    assert unsafe_link(target) is unsafe


# --------------------------------------------------------------------------- fuzzing

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KINDS = sorted(TYPES)
MAGIC = {
    "pdf": (b"%PDF-1.7\n", b"\n%%EOF\n"),
    "docx": (b"PK\x03\x04", b""),
    "odt": (b"PK\x03\x04", b""),
    "doc": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b""),
    "rtf": (b"{\\rtf1 ", b"}"),
    "txt": (b"", b""),
    "jpeg": (b"\xff\xd8\xff", b"\xff\xd9"),
    "png": (b"\x89PNG\r\n\x1a\n", b""),
    "tiff": (b"II*\x00", b""),
}
_TEXT_ALLOWED_CONTROLS = set("\t\n\r\f")


def _is_text(data: bytes) -> bool:
    """An independent oracle for what plain text may be."""
    for codec in ("utf-16",) if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ("utf-8-sig", "cp1252"):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        return "\x00" not in text and not any(
            (ord(c) < 0x20 and c not in _TEXT_ALLOWED_CONTROLS) or 0x7F <= ord(c) <= 0x9F for c in text
        )
    return False


@FUZZ
@given(data=st.binary(max_size=4096))
def test_fuzz_sniff_only_identifies_or_refuses(data: bytes) -> None:
    try:
        file_type = sniff(data)
    except UnsupportedType:
        return
    assert file_type.kind in TYPES


@FUZZ
@given(kind=st.sampled_from(KINDS), body=st.binary(max_size=2048))
def test_fuzz_random_bytes_never_pass(kind: str, body: bytes) -> None:
    head, tail = MAGIC[kind]
    data = head + body + tail
    try:
        validate(data, TYPES[kind])
    except ContentRejected as error:
        assert error.reason and error.rule
        return
    # Only text (and RTF, which is text) can be valid by chance, and then it must really be it.
    if kind == "rtf":
        assert not re.search(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", body), "random bytes passed as rtf"
    else:
        assert kind == "txt" and _is_text(data), f"random bytes passed as {kind}"


@functools.cache
def _seed(kind: str) -> bytes:
    return {
        "pdf": corpus.pdf_good,
        "docx": corpus.docx_good,
        "odt": corpus.odt_good,
        "doc": corpus.doc,
        "rtf": corpus.rtf_good,
        "txt": corpus.txt_good,
        "jpeg": corpus.jpeg_good,
        "png": corpus.png_good,
        "tiff": corpus.tiff_good,
    }[kind]()


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(KINDS))
    data = bytearray(_seed(kind))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "overwrite"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        else:
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[pos : pos + len(chunk)] = chunk
    return kind, bytes(data)


@FUZZ
@given(sample=mutated())
def test_fuzz_mutated_good_files_raise_only_content_rejected(sample: tuple[str, bytes]) -> None:
    kind, data = sample
    try:
        sniff(data)
    except UnsupportedType:
        pass
    try:
        validate(data, TYPES[kind])
    except ContentRejected as error:
        assert re.fullmatch(r"[a-z0-9_]+", error.rule)
        if error.rule != "not_allowed":  # "not_allowed" keeps the words sniff chose
            assert error.reason == expected_reason(error.rule)
