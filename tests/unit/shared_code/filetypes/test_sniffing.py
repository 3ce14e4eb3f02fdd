"""Identifying uploads by content: refused types in plain words, the declared name ignored, and
random bytes only ever identified as an allowed type or refused."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared_code.errors import UnsupportedType
from shared_code.filetypes import TYPES, sniff
from tests.support import corpus

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", sorted(corpus.NOT_ALLOWED))
def test_not_allowed_upload_is_a_415_in_plain_words(name: str) -> None:
    build, words = corpus.NOT_ALLOWED[name]
    with pytest.raises(UnsupportedType) as info:
        sniff(build())
    assert info.value.status == 415
    assert info.value.detail.startswith("This file ")
    assert words in info.value.detail
    assert "Allowed types: PDF" in info.value.detail


def test_sniff_ignores_the_declared_name() -> None:
    assert sniff(corpus.pdf_good(), "letter.exe").kind == "pdf"
    with pytest.raises(UnsupportedType):
        sniff(b"MZ" + bytes(100), "letter.pdf")


@FUZZ
@given(data=st.binary(max_size=4096))
def test_fuzz_sniff_only_identifies_or_refuses(data: bytes) -> None:
    try:
        file_type = sniff(data)
    except UnsupportedType:
        return
    assert file_type.kind in TYPES
