"""Deep validation across every family: empty files, type mismatches, and fuzzing (random bytes
never pass; mutated good files raise only `ContentRejected`)."""

from __future__ import annotations

import functools
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared_code.errors import UnsupportedType
from shared_code.filetypes import REASONS, TYPES, ContentRejected, sniff, validate
from tests.support import corpus
from tests.support.filetype_checks import expected_reason, rejected


def test_empty_is_rejected() -> None:
    assert rejected(b"", "pdf").rule == "empty"


def test_a_file_that_is_not_its_recorded_type_is_rejected() -> None:
    error = rejected(corpus.pdf_good(), "docx")
    assert (error.rule, error.reason) == ("type_mismatch", REASONS["type_mismatch"])


def test_an_unrecognisable_file_keeps_the_sniff_words() -> None:
    error = rejected(b"MZ" + bytes(100), "pdf")
    assert error.rule == "not_allowed"
    assert error.reason == "is a program (an executable), not a document"


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
