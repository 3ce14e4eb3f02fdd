"""Made to fit (issue 18): pictures scaled to a phone-readable size and re-encoded in their own
format; PDFs' pictures recompressed and downsampled with text and drawings untouched; and the
files that cannot be made to fit, or are not worth the risk of decoding, left alone."""

from __future__ import annotations

import io
import zlib

import pikepdf
import pytest
from PIL import Image, ImageCms

from shared_code.filetypes import MAX_IMAGE_PIXELS, TYPES, validate
from shared_code.filetypes.fitting import MAX_SIDE, CannotFit, fit
from shared_code.filetypes.sanitise import clean, needs_cleaning
from tests.support.corpus import fitting as samples
from tests.support.corpus.pdf import _stream, raw_pdf
from tests.support.pdf_reading import shown_text

LIMIT = 3 * 1024 * 1024


def fitted(data: bytes, kind: str, limit: int = LIMIT) -> bytes:
    """`fit` of the cleaned file, checked to be within the limit, clean and valid."""
    out = fit(clean(data, kind), kind, limit)
    assert len(out) <= limit
    assert not needs_cleaning(out, kind)
    validate(out, TYPES[kind])
    return out


# -- pictures ----------------------------------------------------------------------------------


def test_a_6_mb_phone_photo_fits_upright_at_2000_pixels() -> None:
    data = samples.phone_jpeg()
    assert len(data) > 6_000_000
    im = Image.open(io.BytesIO(fitted(data, "jpeg")))
    assert im.format == "JPEG"
    assert im.size == (1500, MAX_SIDE)  # 4032 x 3024 sideways, upright and scaled
    assert im.getpixel((im.width - 10, 10))[0] > 200  # the red mark: the top right, the right way up


def test_a_picture_keeps_its_printed_size() -> None:
    buf = io.BytesIO()
    samples.photo((4000, 3000)).save(buf, "PNG", dpi=(300, 300))
    im = Image.open(io.BytesIO(fitted(buf.getvalue(), "png")))
    assert max(im.size) <= MAX_SIDE
    assert im.info["dpi"][0] == pytest.approx(300 * max(im.size) / 4000, abs=0.5)


def test_a_photo_png_is_scaled_until_it_fits_and_stays_a_png() -> None:
    buf = io.BytesIO()
    samples.photo((3000, 2000)).save(buf, "PNG")
    assert len(buf.getvalue()) > LIMIT
    out = fitted(buf.getvalue(), "png")
    assert out.startswith(b"\x89PNG")
    assert max(Image.open(io.BytesIO(out)).size) <= MAX_SIDE


def test_a_multi_page_tiff_keeps_every_page() -> None:
    pages = [samples.photo((4000, 3000), seed=n, grain=50) for n in range(2)]
    buf = io.BytesIO()
    pages[0].save(buf, "TIFF", save_all=True, append_images=pages[1:])
    assert len(buf.getvalue()) > LIMIT
    out = fitted(buf.getvalue(), "tiff")
    im = Image.open(io.BytesIO(out))
    assert im.n_frames == 2 and im.size == (MAX_SIDE, 1500)


def test_a_picture_that_cannot_get_small_enough_cannot_fit() -> None:
    with pytest.raises(CannotFit):
        fit(samples.phone_jpeg(orientation=1), "jpeg", 20_000)


def test_an_animated_png_is_not_redrawn() -> None:
    frames = [samples.photo((300, 200), seed=n) for n in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:])
    with pytest.raises(CannotFit):
        fit(buf.getvalue(), "png", 1000)


# -- PDF -------------------------------------------------------------------------------------


def test_a_5_mb_scan_fits_with_the_same_pages_sizes_and_text() -> None:
    data = samples.scanned_pdf()
    assert len(data) > 5_000_000
    out = fitted(data, "pdf")
    with pikepdf.open(io.BytesIO(data)) as before, pikepdf.open(io.BytesIO(out)) as after:
        assert len(after.pages) == len(before.pages) == 5
        assert [list(p.mediabox) for p in after.pages] == [list(p.mediabox) for p in before.pages]
        assert shown_text(out) == shown_text(data) != [[]] * 5
        for old, new in zip(before.pages, after.pages, strict=True):
            assert new.Contents.read_bytes() == old.Contents.read_bytes()  # text and drawing untouched
            assert new.Resources.Font.F1.BaseFont == "/Helvetica"
            scan = new.Resources.XObject.Scan
            assert scan.Filter == "/DCTDecode" and scan.ColorSpace == "/DeviceGray"
            # At most 200 dpi of an A4 page's longest side (842 pt = 11.7 in).
            assert max(int(scan.Width), int(scan.Height)) <= 2339
            assert Image.open(io.BytesIO(scan.read_raw_bytes())).size == (int(scan.Width), int(scan.Height))


def test_a_pdf_of_text_cannot_fit() -> None:
    with pytest.raises(CannotFit):
        fit(samples.lettering_pdf(), "pdf", LIMIT)


def test_a_pdf_one_byte_over_the_limit_fits() -> None:
    data = samples.pdf_of_size(LIMIT + 1)
    assert len(data) == LIMIT + 1
    assert len(fitted(data, "pdf")) < LIMIT


def test_a_colour_picture_in_a_pdf_keeps_its_icc_colour_space() -> None:
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(595, 842))
    icc = pdf.make_stream(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(), N=3)
    picture = samples.photo((1800, 1400))
    image = pdf.make_stream(
        zlib.compress(picture.tobytes()),
        Type=pikepdf.Name.XObject,
        Subtype=pikepdf.Name.Image,
        Width=1800,
        Height=1400,
        ColorSpace=pikepdf.Array([pikepdf.Name.ICCBased, icc]),
        BitsPerComponent=8,
        Filter=pikepdf.Name.FlateDecode,
    )
    page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im=image))
    page.Contents = pdf.make_stream(b"q 595 0 0 460 0 0 cm /Im Do Q")
    buf = io.BytesIO()
    pdf.save(buf)
    out = fitted(buf.getvalue(), "pdf", len(buf.getvalue()) // 2)
    with pikepdf.open(io.BytesIO(out)) as after:
        image = after.pages[0].Resources.XObject.Im
        assert image.Filter == "/DCTDecode"
        assert image.ColorSpace[0] == "/ICCBased"


def _pdf_with_image(dictionary: bytes, data: bytes) -> bytes:
    content = b"q 595 0 0 842 0 0 cm /Im Do Q"
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
            b"/Resources << /XObject << /Im 5 0 R >> >> >>",
            _stream(content),
            _stream(data, b"/Type /XObject /Subtype /Image " + dictionary),
        ]
    )


def test_a_picture_that_inflates_past_its_stated_size_is_not_decoded() -> None:
    # 100 x 100 grey is 10,000 bytes; the data inflates to 50 MB.
    data = zlib.compress(b"\x80" * 50_000_000, 9)
    pdf = _pdf_with_image(
        b"/Width 100 /Height 100 /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode ", data
    )
    with pytest.raises(CannotFit):
        fit(pdf, "pdf", 1000)


def test_a_picture_over_the_pixel_limit_is_not_decoded() -> None:
    side = int(MAX_IMAGE_PIXELS**0.5) + 1
    data = zlib.compress(b"\x80" * 1000, 9)  # far too short for its size: never read
    pdf = _pdf_with_image(
        b"/Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode " % (side, side),
        data + b"\x00" * 20_000,
    )
    with pytest.raises(CannotFit):
        fit(pdf, "pdf", 1000)


def test_a_picture_that_cannot_be_decoded_is_left_as_it_is() -> None:
    # Its colour space names an ICC profile (object 6) the file does not have.
    pdf = _pdf_with_image(
        b"/Width 400 /Height 400 /ColorSpace [/ICCBased 6 0 R] /BitsPerComponent 8 /Filter /FlateDecode ",
        zlib.compress(bytes(range(256)) * 625),
    )
    with pytest.raises(CannotFit):
        fit(pdf, "pdf", 1000)


@pytest.mark.parametrize(
    "dictionary",
    [
        b"/Width 400 /Height 400 /ColorSpace /DeviceGray /BitsPerComponent 1 ",  # black and white (fax)
        b"/Width 400 /Height 400 /ImageMask true /BitsPerComponent 1 ",
        b"/Width 200 /Height 200 /ColorSpace /DeviceGray /BitsPerComponent 8 /Decode [1 0] ",
        b"/Width 100 /Height 100 /ColorSpace /DeviceCMYK /BitsPerComponent 8 ",
    ],
    ids=["bilevel", "mask", "decode-array", "cmyk"],
)
def test_pictures_jpeg_cannot_hold_faithfully_are_left_as_they_are(dictionary: bytes) -> None:
    pdf = _pdf_with_image(dictionary, bytes(range(256)) * 160)
    with pytest.raises(CannotFit):
        fit(pdf, "pdf", 1000)
