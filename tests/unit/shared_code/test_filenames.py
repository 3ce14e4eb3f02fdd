"""Safe file names and RFC 6266 Content-Disposition values."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared_code.filenames import MAX_NAME_BYTES, MAX_NAME_CHARS, content_disposition, safe_filename
from shared_code.filetypes import EXTENSIONS, TYPES

PDF, JPEG, TIFF, TXT = TYPES["pdf"], TYPES["jpeg"], TYPES["tiff"], TYPES["txt"]


@pytest.mark.parametrize(
    ("name", "file_type", "expected"),
    [
        (None, PDF, "document.pdf"),
        ("", PDF, "document.pdf"),
        ("   ", PDF, "document.pdf"),
        ("...", PDF, "document.pdf"),
        (".pdf", PDF, "document.pdf"),
        ("letter.pdf", PDF, "letter.pdf"),
        ("Letter.PDF", PDF, "Letter.pdf"),
        ("C:\\Users\\gp1\\Desktop\\letter.pdf", PDF, "letter.pdf"),
        ("../../etc/passwd", PDF, "passwd.pdf"),
        ("/var/tmp/results.pdf", PDF, "results.pdf"),
        # the extension follows the real type
        ("report.exe", PDF, "report.pdf"),
        ("scan.docx", JPEG, "scan.jpg"),
        ("photo.JPEG", JPEG, "photo.jpeg"),
        ("fax.tif", TIFF, "fax.tif"),
        ("notes", TXT, "notes.txt"),
        ("minutes.2024", PDF, "minutes.2024.pdf"),
        ("Mr. Smith", PDF, "Mr. Smith.pdf"),
        ("file.", PDF, "file.pdf"),
        # control characters, CR/LF, quotes and what Windows forbids
        ("a\r\nb.pdf", PDF, "ab.pdf"),
        ("tab\there.pdf", PDF, "tabhere.pdf"),
        ("nul\x00byte.pdf", PDF, "nulbyte.pdf"),
        ('"quoted".pdf', PDF, "_quoted_.pdf"),
        ("a:b|c?d*e<f>.pdf", PDF, "a_b_c_d_e_f_.pdf"),
        ("it's fine.pdf", PDF, "it's fine.pdf"),
        # invisible characters that disguise a name ("right-to-left override")
        ("invoice\u202efdp.exe", PDF, "invoicefdp.pdf"),
        ("zero\u200bwidth.pdf", PDF, "zerowidth.pdf"),
        # Windows reserved device names, with or without extensions, in any case
        ("CON", PDF, "_CON.pdf"),
        ("con.pdf", PDF, "_con.pdf"),
        ("nul.txt", TXT, "_nul.txt"),
        ("COM1.report.pdf", PDF, "_COM1.report.pdf"),
        ("lpt9.pdf", PDF, "_lpt9.pdf"),
        ("CONSOLE.pdf", PDF, "CONSOLE.pdf"),
        ("COM10.pdf", PDF, "COM10.pdf"),
        # trailing dots and spaces (Windows drops them), leading dots (hidden files)
        ("report . . .pdf", PDF, "report.pdf"),
        (".bashrc", TXT, "bashrc.txt"),
        ("  spaced   out  .pdf", PDF, "spaced out.pdf"),
        # non-ASCII is kept, in NFC
        ("Résumé.pdf", PDF, "Résumé.pdf"),
        ("Re\u0301sume\u0301.pdf", PDF, "Résumé.pdf"),
        ("検査結果.pdf", PDF, "検査結果.pdf"),
    ],
)
def test_safe_filename(name: str | None, file_type, expected: str) -> None:
    assert safe_filename(name, file_type) == expected


def test_long_name_is_cut_to_exactly_the_limit_keeping_the_extension() -> None:
    at_limit = "a" * (MAX_NAME_CHARS - 4) + ".pdf"
    assert safe_filename(at_limit, PDF) == at_limit
    one_over = "a" * (MAX_NAME_CHARS - 3) + ".pdf"
    assert safe_filename(one_over, PDF) == at_limit
    assert safe_filename("b" * 10_000 + ".exe", PDF) == "b" * (MAX_NAME_CHARS - 4) + ".pdf"


def test_long_non_ascii_name_fits_in_255_utf8_bytes() -> None:
    result = safe_filename("検" * 200 + ".pdf", PDF)
    assert result.endswith(".pdf")
    assert len(result.encode()) <= MAX_NAME_BYTES
    assert len((result[:-4] + "検" + ".pdf").encode()) > MAX_NAME_BYTES  # not cut more than needed


def test_cut_does_not_leave_a_trailing_dot_or_space() -> None:
    name = "a" * (MAX_NAME_CHARS - 6) + " .xyz.pdf"
    result = safe_filename(name, PDF)
    assert not result[:-4].endswith((" ", "."))


_FORBIDDEN = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
_RESERVED = re.compile(r"^(CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9])$", re.I)


@settings(max_examples=200, deadline=None)
@given(name=st.one_of(st.none(), st.text(max_size=400)), kind=st.sampled_from(sorted(TYPES)))
def test_fuzz_safe_filename_is_always_safe(name: str | None, kind: str) -> None:
    file_type = TYPES[kind]
    result = safe_filename(name, file_type)
    stem, _, ext = result.rpartition(".")
    assert stem and ext in EXTENSIONS[kind]
    assert len(result) <= MAX_NAME_CHARS and len(result.encode()) <= MAX_NAME_BYTES
    assert not _FORBIDDEN.search(result)
    assert not any(unicodedata.category(c) in ("Cc", "Cf") for c in result)
    assert not _RESERVED.match(stem.split(".")[0])
    assert result == result.strip() and not result.startswith(".")
    assert not stem.endswith((" ", "."))
    assert safe_filename(result, file_type) == result  # already safe names are left alone


def test_content_disposition_ascii() -> None:
    assert content_disposition("letter.pdf") == 'attachment; filename="letter.pdf"'


def test_content_disposition_inline_for_the_phone_to_show_it() -> None:
    assert content_disposition("letter.pdf", inline=True) == 'inline; filename="letter.pdf"'
    assert content_disposition("Résumé.pdf", inline=True).startswith('inline; filename="Resume.pdf"; filename*=')


def test_content_disposition_non_ascii_has_fallback_and_utf8() -> None:
    value = content_disposition("Résumé 検査.pdf")
    assert value == (
        "attachment; filename=\"Resume __.pdf\"; filename*=UTF-8''R%C3%A9sum%C3%A9%20%E6%A4%9C%E6%9F%BB.pdf"
    )


def test_content_disposition_escapes_what_would_break_the_header() -> None:
    value = content_disposition('a"b\\c\r\nSet-Cookie: x=1.pdf')
    assert "\r" not in value and "\n" not in value
    fallback = re.search(r'filename="([^"]*)"', value)
    assert fallback is not None and fallback.group(1) == "a_b_cSet-Cookie: x=1.pdf"
    assert value.endswith("filename*=UTF-8''a%22b%5CcSet-Cookie%3A%20x%3D1.pdf")


@settings(max_examples=200, deadline=None)
@given(name=st.text(min_size=1, max_size=200))
def test_fuzz_content_disposition_is_one_ascii_header_value(name: str) -> None:
    value = content_disposition(name)
    assert value.isascii()
    assert not any(c in value for c in "\r\n\x00")
    match = re.fullmatch(
        r'attachment; filename="([\x20-\x7e]*)"(?:; filename\*=UTF-8\'\'([A-Za-z0-9!#$&+\-.^_`|~%]*))?', value
    )
    assert match, value
    fallback, encoded = match.groups()
    assert '"' not in fallback and "\\" not in fallback
    shown = unquote(encoded, encoding="utf-8", errors="strict") if encoded is not None else fallback
    assert shown == "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf") and c != "\ufffd")
