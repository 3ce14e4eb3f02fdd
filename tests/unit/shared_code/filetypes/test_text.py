"""Plain text: the corpus samples, the charset named at sniffing, and bytes that are not text."""

from __future__ import annotations

import pytest

from shared_code.errors import UnsupportedType
from shared_code.filetypes import sniff
from tests.support import corpus
from tests.support.filetype_checks import bad_cases, check_bad_sample, check_good_sample, good_names


@pytest.mark.parametrize("name", good_names("text"))
def test_good_sample_is_sniffed_and_passes(name: str) -> None:
    check_good_sample(name)


@pytest.mark.parametrize("case", bad_cases("text"), ids=lambda c: c.name)
def test_bad_sample_is_rejected_with_its_reason(case: corpus.Case) -> None:
    check_bad_sample(case)


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
