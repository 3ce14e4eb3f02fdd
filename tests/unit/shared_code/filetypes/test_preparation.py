"""What an upload becomes before it is stored (issue 18): untouched when nothing is hidden and it
fits, cleaned, fitted, or refused for the reason validation gives; and the scan's check that
stored bytes went through it. Limits exactly at the boundary and one byte over."""

from __future__ import annotations

import pytest

from shared_code.filetypes import REASONS, TYPES, ContentRejected, validate
from shared_code.filetypes.fitting import CannotFit
from shared_code.filetypes.preparation import FITTED_KINDS, check_prepared, prepare
from shared_code.filetypes.sanitise import needs_cleaning
from tests.support import corpus
from tests.support.corpus import fitting as samples

LIMIT = 3 * 1024 * 1024


def test_a_file_with_nothing_hidden_within_the_limit_is_stored_as_it_came() -> None:
    prepared = prepare(corpus.pdf_good(), TYPES["pdf"], LIMIT)
    assert (prepared.data, prepared.cleaned, prepared.reduced) == (None, False, False)


def test_exactly_at_the_limit_is_untouched_and_one_byte_over_is_fitted() -> None:
    at = samples.pdf_of_size(LIMIT)
    assert len(at) == LIMIT
    assert prepare(at, TYPES["pdf"], LIMIT).data is None
    over = samples.pdf_of_size(LIMIT + 1)
    prepared = prepare(over, TYPES["pdf"], LIMIT)
    assert prepared.reduced and not prepared.cleaned
    assert prepared.data is not None and len(prepared.data) <= LIMIT


def test_metadata_is_removed_from_a_file_within_the_limit() -> None:
    data = samples.text_pdf(author=samples.AUTHOR)
    prepared = prepare(data, TYPES["pdf"], LIMIT)
    assert prepared.cleaned and not prepared.reduced
    assert prepared.data is not None and samples.AUTHOR.encode() not in prepared.data


def test_a_phone_photo_is_cleaned_and_reduced() -> None:
    prepared = prepare(samples.phone_jpeg(), TYPES["jpeg"], LIMIT)
    assert prepared.cleaned and prepared.reduced
    assert prepared.data is not None and len(prepared.data) <= LIMIT
    check_prepared(prepared.data, TYPES["jpeg"])


def test_a_pdf_that_cannot_fit_says_so() -> None:
    with pytest.raises(CannotFit):
        prepare(samples.lettering_pdf(), TYPES["pdf"], LIMIT)


@pytest.mark.parametrize("kind", ["docx", "odt", "doc", "rtf", "txt"])
def test_other_kinds_are_never_changed_and_never_fitted(kind: str) -> None:
    assert kind not in FITTED_KINDS
    data = {k: build for k, build in corpus.GOOD.values()}[kind]()
    assert prepare(data, TYPES[kind], len(data)).data is None
    with pytest.raises(CannotFit):
        prepare(data, TYPES[kind], len(data) - 1)


@pytest.mark.parametrize(
    "case", [c for c in corpus.BAD if c.kind in FITTED_KINDS and c.rule != "too_complex"], ids=lambda c: c.name
)
def test_a_file_validation_refuses_is_refused_with_the_same_rule_not_rewritten(case: corpus.Case) -> None:
    data = case.build()
    try:
        validate(data, TYPES[case.kind])
    except ContentRejected as expected:
        # Over the limit, so preparation must look at it: it refuses it for validation's reason.
        with pytest.raises(ContentRejected) as refused:
            prepare(data, TYPES[case.kind], 10)
        assert refused.value.rule == expected.rule
    else:  # pragma: no cover - every bad case is refused
        raise AssertionError(f"{case.name} passed validation")


def test_the_scan_refuses_stored_bytes_that_still_have_metadata() -> None:
    data = samples.text_pdf(author=samples.AUTHOR)
    validate(data, TYPES["pdf"])  # a perfectly valid PDF...
    with pytest.raises(ContentRejected) as refused:
        check_prepared(data, TYPES["pdf"])  # ...that did not come through preparation
    assert refused.value.rule == "not_prepared"
    assert refused.value.reason == REASONS["not_prepared"]
    prepared = prepare(data, TYPES["pdf"], LIMIT).data
    assert prepared is not None and not needs_cleaning(prepared, "pdf")
    check_prepared(prepared, TYPES["pdf"])


def test_the_scan_check_validates_too() -> None:
    with pytest.raises(ContentRejected) as refused:
        check_prepared(corpus.pdf_javascript_names(), TYPES["pdf"])
    assert refused.value.rule == "pdf_javascript"
    check_prepared(corpus.docx_good(), TYPES["docx"])  # other kinds: validation alone
