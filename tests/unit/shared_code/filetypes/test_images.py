"""Pictures (JPEG, PNG, TIFF): the corpus samples, padding after the end, and the pixel and
frame limits, each exactly at the limit and one over it."""

from __future__ import annotations

import pytest

from shared_code.filetypes import MAX_IMAGE_PIXELS, TYPES, images, validate
from tests.support import corpus
from tests.support.filetype_checks import bad_cases, check_bad_sample, check_good_sample, good_names, rejected


@pytest.mark.parametrize("name", good_names("images"))
def test_good_sample_is_sniffed_and_passes(name: str) -> None:
    check_good_sample(name)


@pytest.mark.parametrize("case", bad_cases("images"), ids=lambda c: c.name)
def test_bad_sample_is_rejected_with_its_reason(case: corpus.Case) -> None:
    check_bad_sample(case)


@pytest.mark.parametrize("tail", [b"\x00" * 16, b"\xff\xff", b"\r\n"])
def test_image_padding_after_the_end_is_allowed(tail: bytes) -> None:
    validate(corpus.jpeg_good() + tail, TYPES["jpeg"])
    validate(corpus.png_good() + tail, TYPES["png"])


def test_image_of_exactly_the_pixel_limit_passes_and_one_more_pixel_is_rejected() -> None:
    validate(corpus.png_of_pixels(10_000, 5_000), TYPES["png"])  # 50,000,000: decoded in full
    assert MAX_IMAGE_PIXELS + 1 == 42_123 * 1_187
    assert rejected(corpus.png_header_claims(42_123, 1_187), "png").rule == "image_too_large"


def test_pixel_limit_is_checked_before_decoding() -> None:
    # At the limit the header alone is not refused; the missing pixel data then is.
    assert rejected(corpus.png_header_claims(10_000, 5_000), "png").rule == "png_damaged"


def test_total_pixels_over_all_pages_are_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    # The images module reads the limit from its own namespace, so that is where it is lowered.
    monkeypatch.setattr(images, "MAX_IMAGE_TOTAL_PIXELS", 3 * 8 * 8)
    validate(corpus.tiff_pages(3), TYPES["tiff"])
    assert rejected(corpus.tiff_pages(4), "tiff").rule == "image_too_large"


def test_pillow_decompression_bomb_error_is_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    # Pillow's own guard (warning above MAX_IMAGE_PIXELS, error above twice that) also counts.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    assert rejected(corpus.png_of_pixels(20, 20), "png").rule == "image_too_large"
    assert rejected(corpus.png_of_pixels(10, 11), "png").rule == "image_too_large"
