"""RTF: the corpus samples, padding after the document, and fields that are not DDE."""

from __future__ import annotations

import pytest

from shared_code.filetypes import TYPES, validate
from tests.support import corpus
from tests.support.filetype_checks import bad_cases, check_bad_sample, check_good_sample, good_names


@pytest.mark.parametrize("name", good_names("rtf"))
def test_good_sample_is_sniffed_and_passes(name: str) -> None:
    check_good_sample(name)


@pytest.mark.parametrize("case", bad_cases("rtf"), ids=lambda c: c.name)
def test_bad_sample_is_rejected_with_its_reason(case: corpus.Case) -> None:
    check_bad_sample(case)


def test_rtf_padding_after_the_last_brace_is_allowed() -> None:
    validate(corpus.rtf_good() + b"\x00\r\n", TYPES["rtf"])


def test_rtf_hyperlink_field_is_not_dde() -> None:
    validate(corpus.rtf(b'{\\field{\\*\\fldinst HYPERLINK "https://www.nhs.uk/"}{\\fldrslt x}}'), TYPES["rtf"])
