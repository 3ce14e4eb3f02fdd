"""PDF: the corpus samples, what may follow %%EOF, and which finding is reported first."""

from __future__ import annotations

import pytest

from shared_code.filetypes import TYPES, validate
from tests.support import corpus
from tests.support.filetype_checks import bad_cases, check_bad_sample, check_good_sample, good_names, rejected


@pytest.mark.parametrize("name", good_names("pdf"))
def test_good_sample_is_sniffed_and_passes(name: str) -> None:
    check_good_sample(name)


@pytest.mark.parametrize("case", bad_cases("pdf"), ids=lambda c: c.name)
def test_bad_sample_is_rejected_with_its_reason(case: corpus.Case) -> None:
    check_bad_sample(case)


@pytest.mark.parametrize("tail", [b"", b"\n", b"\r\n", b"\x00\x00", b"  \n"])
def test_pdf_may_end_with_whitespace_after_eof(tail: bytes) -> None:
    validate(corpus.pdf_good() + tail, TYPES["pdf"])


@pytest.mark.parametrize("tail", [b"x", b"\n%", b"\x01"])
def test_pdf_with_anything_else_after_eof_is_rejected(tail: bytes) -> None:
    assert rejected(corpus.pdf_good() + tail, "pdf").rule == "trailing_data"


def test_pdf_javascript_wins_over_the_automatic_action_that_runs_it() -> None:
    # /OpenAction runs the script: the report names the script, the more telling reason.
    assert rejected(corpus.pdf_javascript_open_action(), "pdf").rule == "pdf_javascript"
