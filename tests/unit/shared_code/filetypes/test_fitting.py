"""Made to fit (issue 18): pictures scaled to a phone-readable size and re-encoded in their own
format; PDFs' pictures recompressed and downsampled with text and drawings untouched (CMYK ones
with their colours, JPEG 2000 ones, soft-masked ones with their masks alike); and the files that
cannot be made to fit, or are not worth the risk of decoding, left alone."""

from __future__ import annotations

import io
import zlib
from typing import Any

import pikepdf
import pytest
from PIL import Image, ImageChops, ImageCms, ImageStat

from shared_code.filetypes import MAX_IMAGE_PIXELS, TYPES, fitting, validate
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


def _animated_png(size: tuple[int, int], durations: list[int], loop: int, grain: int = 40) -> bytes:
    frames = [samples.photo(size, seed=n, grain=grain) for n in range(len(durations))]
    buf = io.BytesIO()
    frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:], duration=durations, loop=loop)
    return buf.getvalue()


def test_an_animated_png_fits_with_every_frame_and_its_timing() -> None:
    durations = [120, 800]
    data = _animated_png((2400, 1800), durations, loop=3)
    assert len(data) > LIMIT
    out = fitted(data, "png")
    with Image.open(io.BytesIO(data)) as before, Image.open(io.BytesIO(out)) as after:
        assert after.n_frames == before.n_frames == 2
        assert after.info.get("loop") == 3
        for index, duration in enumerate(durations):
            before.seek(index)
            after.seek(index)
            assert max(after.size) <= MAX_SIDE and after.size[0] * 3 == after.size[1] * 4  # upright, 4:3
            assert after.info["duration"] == duration
            # The same picture, smaller: the red mark at the top left, and the frame's own noise.
            assert after.convert("RGB").getpixel((10, 10)) == (255, 0, 0)
            shrunk = before.convert("RGB").resize(after.size)
            assert ImageStat.Stat(ImageChops.difference(shrunk, after.convert("RGB"))).mean[0] < 20


def test_an_animated_png_that_cannot_get_small_enough_cannot_fit() -> None:
    with pytest.raises(CannotFit):
        fit(_animated_png((300, 200), [100, 100, 100], loop=0, grain=2), "png", 1000)


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


#: Room for the 40 kB pictures below once re-encoded (a few kB), not as they are.
ROOM_IF_RECODED = 30_000


def test_a_plain_picture_of_the_same_size_is_re_encoded_to_fit() -> None:
    # The counterpart of the test below: without its trick, such a picture fits `ROOM_IF_RECODED`.
    pdf = _pdf_with_image(b"/Width 200 /Height 200 /ColorSpace /DeviceGray /BitsPerComponent 8 ", bytes(40_000))
    assert len(fit(pdf, "pdf", ROOM_IF_RECODED)) <= ROOM_IF_RECODED


@pytest.mark.parametrize(
    "dictionary",
    [
        b"/Width 400 /Height 400 /ColorSpace /DeviceGray /BitsPerComponent 1 ",  # black and white (fax)
        b"/Width 400 /Height 400 /ImageMask true /BitsPerComponent 1 ",
        b"/Width 200 /Height 200 /ColorSpace /DeviceGray /BitsPerComponent 8 /Decode [1 0] ",
        b"/Width 100 /Height 100 /ColorSpace /DeviceCMYK /BitsPerComponent 8 /Decode [0 1 0 1 0 1 1 0] ",
        b"/Width 100 /Height 100 /ColorSpace /DeviceGray /BitsPerComponent 16 ",
        b"/Width 200 /Height 200 /ColorSpace /DeviceGray /BitsPerComponent 8 /Mask [0 10] ",  # colour key
        b"/Width 200 /Height 200 /BitsPerComponent 8 /Filter /JPXDecode /SMaskInData 1 ",  # its own alpha
        b"/Width 400 /Height 400 /ColorSpace /DeviceGray /BitsPerComponent 1 /Filter /CCITTFaxDecode ",
    ],
    ids=["bilevel", "mask", "decode-array", "cmyk-decode-array", "16-bit", "colour-key", "jpx-alpha", "ccitt"],
)
def test_pictures_jpeg_cannot_hold_faithfully_are_left_as_they_are(dictionary: bytes) -> None:
    pdf = _pdf_with_image(dictionary, bytes(range(256)) * 160)
    with pytest.raises(CannotFit):
        fit(pdf, "pdf", ROOM_IF_RECODED)


# -- PDF pictures in CMYK, JPEG 2000, under a soft mask ----------------------------------------

CORNER = (0.125, 0.125)  # inside the mark in a picture's top-left quarter


def _same_document(before: bytes, after: bytes) -> None:
    """Same pages, page sizes, text and drawing: only pictures changed."""
    assert shown_text(after) == shown_text(before) != [[]]
    with pikepdf.open(io.BytesIO(before)) as old, pikepdf.open(io.BytesIO(after)) as new:
        assert len(new.pages) == len(old.pages)
        for old_page, new_page in zip(old.pages, new.pages, strict=True):
            assert list(new_page.mediabox) == list(old_page.mediabox)
            assert new_page.Contents.read_bytes() == old_page.Contents.read_bytes()


def _as_viewed(image: pikepdf.Stream) -> Image.Image:
    """A CMYK picture as a PDF viewer reads it (the PDF specification, pdf.js): a JPEG's samples as
    its codec decodes them, or the stored samples, then /Decode. Pillow hands back the complements
    of a CMYK JPEG's samples (Adobe's convention for JPEG files), so they are complemented again."""
    d = image.stream_dict
    if d.Filter == "/DCTDecode":
        samples = ImageChops.invert(Image.open(io.BytesIO(image.read_raw_bytes())))
    else:
        samples = Image.frombytes("CMYK", (int(d.Width), int(d.Height)), image.read_bytes())
    assert samples.mode == "CMYK"
    decode = [float(v) for v in d.get("/Decode", [0, 1] * 4)]
    if decode == [1, 0] * 4:
        return ImageChops.invert(samples)
    assert decode == [0, 1] * 4
    return samples


def _at(image: Image.Image, where: tuple[float, float]) -> Any:
    return image.getpixel((int(image.width * where[0]), int(image.height * where[1])))


def _near(seen: Any, expected: Any, tolerance: float) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(seen, expected, strict=True))


@pytest.mark.parametrize("storage", samples.CMYK_STORAGES)
def test_a_cmyk_pdf_fits_in_cmyk_with_its_colours(storage: str) -> None:
    data = samples.cmyk_pdf(storage)
    assert len(data) > LIMIT
    out = fitted(data, "pdf")
    _same_document(data, out)
    with pikepdf.open(io.BytesIO(data)) as before, pikepdf.open(io.BytesIO(out)) as after:
        old, new = before.pages[0].Resources.XObject.Im, after.pages[0].Resources.XObject.Im
        assert new.Filter == "/DCTDecode" and int(new.Width) < int(old.Width)
        if storage == "icc":
            assert new.ColorSpace[0] == "/ICCBased" and new.ColorSpace[1].N == 4
        else:
            assert new.ColorSpace == "/DeviceCMYK"
        viewed_before, viewed_after = _as_viewed(old), _as_viewed(new)
        assert _near(_at(viewed_before, CORNER), samples.CMYK_MARK, 4)  # the reading is right...
        assert _near(_at(viewed_after, CORNER), samples.CMYK_MARK, 8)  # ...and the colour kept
        # Over the whole picture too (noise and mark): not inverted, not shifted.
        mean_before, mean_after = ImageStat.Stat(viewed_before).mean, ImageStat.Stat(viewed_after).mean
        assert _near(mean_after, mean_before, 3)
        if storage != "icc":  # pikepdf reads what fitting wrote the same way (not the stand-in profile)
            assert _near(_at(pikepdf.PdfImage(new).as_pil_image(), CORNER), samples.CMYK_MARK, 8)


@pytest.mark.parametrize(
    ("key", "value"),
    [("/Decode", pikepdf.Array([0, 1, 0, 1, 0, 1, 1, 0])), ("/DecodeParms", pikepdf.Dictionary(ColorTransform=1))],
    ids=["one-channel-inverted", "colour-transform"],
)
def test_a_cmyk_jpeg_read_in_doubt_is_left_as_it_is(key: str, value: Any) -> None:
    with pikepdf.open(io.BytesIO(samples.cmyk_pdf("adobe-jpeg"))) as pdf:
        pdf.pages[0].Resources.XObject.Im[key] = value
        buf = io.BytesIO()
        pdf.save(buf)
    with pytest.raises(CannotFit):  # re-encoded, it would fit (the test above)
        fit(buf.getvalue(), "pdf", LIMIT)


@pytest.mark.parametrize("colour_space", [True, False], ids=["device-rgb", "codestream-colour"])
def test_a_jpeg_2000_pdf_fits_as_jpeg_with_its_colours(colour_space: bool) -> None:
    data = samples.jpx_pdf(colour_space=colour_space)
    assert len(data) > LIMIT
    out = fitted(data, "pdf")
    _same_document(data, out)
    with pikepdf.open(io.BytesIO(data)) as before, pikepdf.open(io.BytesIO(out)) as after:
        old, new = before.pages[0].Resources.XObject.Im, after.pages[0].Resources.XObject.Im
        assert new.Filter == "/DCTDecode" and new.ColorSpace == "/DeviceRGB" and new.BitsPerComponent == 8
        assert (int(new.Width), int(new.Height)) == (1600, 1200)  # 1,600 px is under 200 dpi of A4
        assert "/Decode" not in new and "/SMaskInData" not in new
        original = Image.open(io.BytesIO(old.read_raw_bytes()))
        picture = pikepdf.PdfImage(new).as_pil_image()
        assert _near(_at(picture, CORNER), (255, 0, 0), 8)
        assert _near(ImageStat.Stat(picture).mean, ImageStat.Stat(original).mean, 3)


def test_jpeg_2000_is_left_as_it_is_when_pillow_cannot_read_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # A Pillow built without OpenJPEG: the picture is not decoded, so this PDF cannot fit.
    monkeypatch.setattr(fitting, "_jpx_decodable", lambda: False)
    with pytest.raises(CannotFit):
        fit(samples.jpx_pdf(), "pdf", LIMIT)


def test_jpeg_2000_with_its_own_alpha_is_left_as_it_is() -> None:
    with pytest.raises(CannotFit):  # without /SMaskInData it fits (above)
        fit(samples.jpx_pdf(smask_in_data=1), "pdf", LIMIT)


@pytest.mark.parametrize("matte", [False, True], ids=["plain", "matte"])
def test_a_soft_masked_picture_fits_with_its_mask_scaled_alike(matte: bool) -> None:
    data = samples.soft_masked_pdf(matte=matte)
    assert len(data) > LIMIT
    out = fitted(data, "pdf")
    _same_document(data, out)
    with pikepdf.open(io.BytesIO(out)) as after:
        image = after.pages[0].Resources.XObject.Im
        mask = image.SMask
        assert int(image.Width) < 2400 and image.Filter == "/DCTDecode"
        assert (int(mask.Width), int(mask.Height)) == (int(image.Width), int(image.Height))
        assert mask.Filter == "/FlateDecode" and mask.ColorSpace == "/DeviceGray" and mask.BitsPerComponent == 8
        assert ("/Matte" in mask) is matte
        alpha = pikepdf.PdfImage(mask).as_pil_image()
        assert _at(alpha, (0.25, 0.5)) == 255 and abs(_at(alpha, (0.75, 0.5)) - 64) <= 1
        assert _near(_at(Image.open(io.BytesIO(image.read_raw_bytes())), CORNER), (255, 0, 0), 8)


def test_a_soft_mask_smaller_than_its_picture_is_kept_as_it_is() -> None:
    data = samples.soft_masked_pdf(mask_size=(600, 450))
    out = fitted(data, "pdf")
    with pikepdf.open(io.BytesIO(data)) as before, pikepdf.open(io.BytesIO(out)) as after:
        old, new = before.pages[0].Resources.XObject.Im.SMask, after.pages[0].Resources.XObject.Im.SMask
        assert (int(new.Width), int(new.Height)) == (600, 450)
        assert new.read_raw_bytes() == old.read_raw_bytes()


@pytest.mark.parametrize("trouble", ["over-the-pixel-limit", "inflates-past-its-size", "one-bit"])
def test_a_picture_whose_soft_mask_is_not_worth_the_risk_is_left_as_it_is(trouble: str) -> None:
    with pikepdf.open(io.BytesIO(samples.soft_masked_pdf())) as pdf:
        mask = pdf.pages[0].Resources.XObject.Im.SMask
        if trouble == "over-the-pixel-limit":
            mask.Width = mask.Height = int(MAX_IMAGE_PIXELS**0.5) + 1
        elif trouble == "inflates-past-its-size":
            mask.write(zlib.compress(b"\xff" * 50_000_000, 9), filter=pikepdf.Name.FlateDecode)
        else:
            mask.BitsPerComponent = 1
        buf = io.BytesIO()
        pdf.save(buf)
    with pytest.raises(CannotFit):  # with its mask as it was, it fits (above)
        fit(buf.getvalue(), "pdf", LIMIT)
