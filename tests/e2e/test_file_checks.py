"""Every sample of the generated corpus, uploaded through the HTTP API to its verdict."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from shared_code.errors import UnsupportedType
from shared_code.filetypes import DAMAGED, ENCRYPTED, REASONS, TYPES, sniff
from tests.support import corpus
from tests.support.stack import RunningStack


def _upload_all(stack: RunningStack, samples: dict[str, tuple[str, bytes]]) -> dict[str, dict]:
    """Upload every sample at once; returns each one's final API answer (or its 4xx problem)."""

    def one(item: tuple[str, tuple[str, bytes]]) -> tuple[str, dict]:
        name, (kind, data) = item
        answer = stack.upload(data, f"sample.{TYPES[kind].extension}", content_type="application/octet-stream")
        if answer.status_code != 202:
            return name, {"httpStatus": answer.status_code, **answer.json()}
        return name, stack.wait_attachment(answer.json()["id"], timeout=120)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(one, samples.items()))


@pytest.fixture(scope="module")
def bad_results(stack: RunningStack) -> dict[str, dict]:
    samples = {case.name: (case.kind, case.build()) for case in corpus.BAD}
    samples["malware_marker"] = ("pdf", corpus.pdf_with_marker())
    return _upload_all(stack, samples)


@pytest.mark.parametrize("case", corpus.BAD, ids=lambda c: c.name)
def test_bad_file_is_refused_or_rejected_with_its_reason(case: corpus.Case, bad_results: dict[str, dict]) -> None:
    result = bad_results[case.name]
    try:
        sniff(case.build())
    except UnsupportedType:
        # Refused at the door (415): never stored, never scanned.
        assert result["httpStatus"] == 415, result
        assert result["detail"].startswith("This file")
        return
    assert result["status"] == "rejected", result
    expected = {"_damaged": DAMAGED, "_encrypted": ENCRYPTED}.get(case.rule[case.rule.rfind("_") :]) or REASONS[
        case.rule
    ]
    assert result["reason"] == f"This file {expected}."


def test_malware_found_by_clamav_is_rejected(bad_results: dict[str, dict]) -> None:
    result = bad_results["malware_marker"]
    assert result["status"] == "rejected"
    assert result["reason"].startswith("This file contains a virus or malware (Enclose.Test.Marker")


def test_every_good_kind_is_clean(stack: RunningStack) -> None:
    samples = {name: (kind, build()) for name, (kind, build) in corpus.GOOD.items()}
    results = _upload_all(stack, samples)
    for name, result in results.items():
        assert result.get("status") == "clean", (name, result.get("status"), result.get("detail"), result.get("reason"))
        assert result["filename"].endswith("." + TYPES[samples[name][0]].extension)


@pytest.mark.parametrize("name", sorted(corpus.NOT_ALLOWED))
def test_not_allowed_type_is_415(stack: RunningStack, name: str) -> None:
    build, words = corpus.NOT_ALLOWED[name]
    answer = stack.upload(build(), "letter.pdf", content_type="application/pdf")
    assert answer.status_code == 415
    assert words in answer.json()["detail"]
