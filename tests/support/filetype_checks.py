"""Helpers for the filetypes tests: the expected words for a rule, a rejection, and the corpus
cut by format family (one test module per family in tests/unit/shared_code/filetypes/)."""

from __future__ import annotations

import pytest

from shared_code.filetypes import DAMAGED, ENCRYPTED, REASONS, TYPES, ContentRejected, sniff, validate
from tests.support import corpus

#: Format family (a module in shared_code/filetypes/) -> the kinds it validates.
FAMILIES: dict[str, frozenset[str]] = {
    "pdf": frozenset({"pdf"}),
    "containers": frozenset({"docx", "odt"}),
    "legacy_office": frozenset({"doc"}),
    "rtf": frozenset({"rtf"}),
    "text": frozenset({"txt"}),
    "images": frozenset({"jpeg", "png", "tiff"}),
}

# Each kind in exactly one family, so cutting the corpus by family drops no sample.
assert sorted(k for kinds in FAMILIES.values() for k in kinds) == sorted(TYPES)


def expected_reason(rule: str) -> str:
    """The words `validate` must give for `rule`."""
    if rule in REASONS:
        return REASONS[rule]
    if rule.endswith("_damaged"):
        return DAMAGED
    if rule.endswith("_encrypted"):
        return ENCRYPTED
    raise AssertionError(f"no reason for {rule}")


def rejected(data: bytes, kind: str) -> ContentRejected:
    """The `ContentRejected` that validating `data` as `kind` must raise."""
    with pytest.raises(ContentRejected) as info:
        validate(data, TYPES[kind])
    return info.value


def good_names(family: str) -> list[str]:
    """Names of the good corpus samples of `family`'s kinds, sorted."""
    return sorted(name for name, (kind, _) in corpus.GOOD.items() if kind in FAMILIES[family])


def bad_cases(family: str) -> list[corpus.Case]:
    """The bad corpus cases of `family`'s kinds, in corpus order."""
    return [case for case in corpus.BAD if case.kind in FAMILIES[family]]


def check_good_sample(name: str) -> None:
    """A good sample is sniffed as its kind and passes validation."""
    kind, build = corpus.GOOD[name]
    data = build()
    assert sniff(data).kind == kind
    validate(data, TYPES[kind])


def check_bad_sample(case: corpus.Case) -> None:
    """A bad sample is rejected with its rule and that rule's words."""
    error = rejected(case.build(), case.kind)
    assert error.rule == case.rule
    assert error.reason == expected_reason(case.rule)
    assert str(error) == error.reason
