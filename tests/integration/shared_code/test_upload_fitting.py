"""What an upload is stored as, through the real isolation worker: 413s with plain reasons, the
prepared bytes, and a refused file stored as it came for the scan to refuse."""

from __future__ import annotations

import pytest

from shared_code.errors import TooLarge
from shared_code.filetypes import TYPES
from shared_code.settings import Settings
from shared_code.upload_fitting import megabytes, prepare_upload
from tests.support import corpus
from tests.support.corpus import fitting as samples

SETTINGS = Settings()
LIMIT = SETTINGS.max_attachment_bytes


def test_limits_are_said_in_megabytes() -> None:
    assert megabytes(3 * 1024 * 1024) == "3 MB"
    assert megabytes(20 * 1024 * 1024) == "20 MB"
    assert megabytes(3 * 1024 * 1024 + 512 * 1024) == "3.5 MB"


def test_a_word_document_over_the_limit_is_a_413_that_suggests_a_pdf() -> None:
    letter = corpus.rtf(b"x" * LIMIT)
    with pytest.raises(TooLarge) as refused:
        prepare_upload(letter, TYPES["rtf"], SETTINGS)
    assert refused.value.status == 413
    assert refused.value.detail == (
        "The document is larger than the 3 MB limit. Save it as a PDF and upload that instead: "
        "PDFs and pictures are made smaller automatically."
    )
    assert prepare_upload(letter[: LIMIT - 1] + b"}", TYPES["rtf"], SETTINGS).data == letter[: LIMIT - 1] + b"}"


def test_a_pdf_that_cannot_fit_is_a_413_that_says_why() -> None:
    with pytest.raises(TooLarge) as refused:
        prepare_upload(samples.lettering_pdf(), TYPES["pdf"], SETTINGS)
    assert refused.value.detail.startswith("This PDF is still larger than the 3 MB limit after its pictures")


def test_a_picture_that_cannot_fit_says_so_in_its_own_words() -> None:
    from dataclasses import replace

    tiny = replace(SETTINGS, max_attachment_bytes=20_000)
    with pytest.raises(TooLarge) as refused:
        prepare_upload(samples.phone_jpeg(), TYPES["jpeg"], tiny)
    assert refused.value.detail.startswith("This picture is still larger than the")


def test_a_phone_photo_is_stored_cleaned_and_reduced() -> None:
    data = samples.phone_jpeg()
    stored = prepare_upload(data, TYPES["jpeg"], SETTINGS)
    assert stored.cleaned and stored.reduced
    assert len(stored.data) <= LIMIT and b"Exif" not in stored.data


def test_a_file_validation_refuses_is_stored_as_it_came() -> None:
    data = corpus.pdf_javascript_names() + b"\n%" + b"0" * LIMIT + b"\n%%EOF\n"
    stored = prepare_upload(data, TYPES["pdf"], SETTINGS)
    assert stored.data is data and not stored.cleaned and not stored.reduced
