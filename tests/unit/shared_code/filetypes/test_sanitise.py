"""Hidden metadata taken out (issue 18): pictures' EXIF, XMP, IPTC, comments and extra pictures,
orientation applied first; PDFs' document information, XMP and earlier revisions. A file with
nothing hidden is left byte for byte; a cleaned one needs no more cleaning and still validates."""

from __future__ import annotations

import io
import re
import struct

import pikepdf
import pytest
from PIL import Image, ImageOps, PngImagePlugin, TiffImagePlugin

from shared_code.filetypes import TYPES, validate
from shared_code.filetypes.sanitise import CLEANED_KINDS, clean, needs_cleaning
from tests.support import corpus
from tests.support.corpus import fitting as samples

RED = (255, 0, 0)


def opened(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def is_red(pixel: tuple[int, ...]) -> bool:
    return pixel[0] > 200 and pixel[1] < 60 and pixel[2] < 60


def cleaned(data: bytes, kind: str) -> bytes:
    """`clean`, checked to need no more cleaning, to be a fixed point and to validate."""
    out = clean(data, kind)
    assert not needs_cleaning(out, kind)
    assert clean(out, kind) == out
    validate(out, TYPES[kind])
    return out


def small_jpeg(**save: object) -> bytes:
    out = io.BytesIO()
    samples.photo((400, 300)).save(out, "JPEG", quality=90, **save)
    return out.getvalue()


# -- JPEG ------------------------------------------------------------------------------------


def test_a_phone_photo_loses_gps_device_and_serial_and_stays_the_right_way_up() -> None:
    data = samples.phone_jpeg()
    assert needs_cleaning(data, "jpeg")
    out = cleaned(data, "jpeg")
    im = opened(out)
    assert dict(im.getexif()) == {}
    assert "exif" not in im.info and "comment" not in im.info
    for secret in (b"Exif\x00\x00", b"PhoneCo", b"SERIAL-0123456789", b"Example Road"):
        assert secret not in out
    # Stored sideways (4032 x 3024, orientation 6): upright it is 3024 x 4032 with the red mark,
    # the picture's top-left corner, now at the top right.
    assert im.size == (3024, 4032)
    assert is_red(im.getpixel((im.width - 20, 20))) and not is_red(im.getpixel((20, 20)))


@pytest.mark.parametrize("orientation", range(2, 9))
def test_every_exif_orientation_is_applied_to_the_pixels(orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = small_jpeg(exif=exif)
    shown = ImageOps.exif_transpose(opened(data))  # what a viewer shows for the original
    got = opened(cleaned(data, "jpeg"))  # which has no tag left to apply
    assert got.size == shown.size
    assert _red_corner(got) == _red_corner(shown)


def _red_corner(im: Image.Image) -> tuple[int, int]:
    for x, y in ((10, 10), (im.width - 10, 10), (10, im.height - 10), (im.width - 10, im.height - 10)):
        if is_red(im.getpixel((x, y))):
            return x, y
    raise AssertionError("no red corner")


def test_metadata_without_orientation_is_removed_without_decoding_the_picture() -> None:
    exif = Image.Exif()
    exif[0x010F] = "PhoneCo"
    icc = b"\x00" * 16 + b"fake-profile-for-a-test"
    data = small_jpeg(exif=exif, comment=b"note", icc_profile=icc)
    out = cleaned(data, "jpeg")
    assert opened(out).tobytes() == opened(data).tobytes()  # the same compressed picture
    assert opened(out).info.get("icc_profile") == icc  # colour profiles may stay
    assert b"PhoneCo" not in out and b"note" not in out


def test_a_jfif_thumbnail_goes_but_the_jfif_header_stays() -> None:
    data = small_jpeg()
    assert data[6:11] == b"JFIF\x00"
    body = b"JFIF\x00" + data[11:18] + bytes([2, 2]) + bytes(RED * 4)
    with_thumbnail = data[:2] + b"\xff\xe0" + struct.pack(">H", len(body) + 2) + body + data[20:]
    assert needs_cleaning(with_thumbnail, "jpeg")
    out = cleaned(with_thumbnail, "jpeg")
    assert out == data


def test_pictures_appended_after_the_first_go() -> None:
    data = corpus.jpeg_with_second_image()
    out = cleaned(data, "jpeg")
    assert out == corpus.jpeg_good()


def test_a_cmyk_jpeg_stays_cmyk_with_its_adobe_marker() -> None:
    data = samples.cmyk_jpeg()
    out = cleaned(data, "jpeg")
    assert opened(out).mode == "CMYK"
    assert b"Adobe" in out and b"Print Studio" not in out
    assert opened(out).tobytes() == opened(data).tobytes()


# -- PNG and TIFF ----------------------------------------------------------------------------


def test_a_png_loses_its_text_chunks_and_keeps_pixels_and_density() -> None:
    data = samples.png_with_text()
    out = cleaned(data, "png")
    assert samples.AUTHOR.encode() not in out and b"xmpmeta" not in out
    assert opened(out).tobytes() == opened(data).tobytes()
    assert round(opened(out).info["dpi"][0]) == 96


def test_a_png_with_an_exif_orientation_is_turned_upright() -> None:
    exif = Image.Exif()
    exif[0x0112] = 8  # turn 90° anticlockwise to view
    buf = io.BytesIO()
    samples.photo((400, 300)).save(buf, "PNG", exif=exif, pnginfo=PngImagePlugin.PngInfo())
    out = cleaned(buf.getvalue(), "png")
    im = opened(out)
    assert im.size == (300, 400)
    assert is_red(im.getpixel((10, im.height - 10)))


def test_a_fax_tiff_keeps_its_pages_pixels_and_resolution_without_its_tags() -> None:
    data = samples.fax_tiff()
    out = cleaned(data, "tiff")
    before, after = Image.open(io.BytesIO(data)), Image.open(io.BytesIO(out))
    assert after.n_frames == before.n_frames == 3
    for page in range(3):
        before.seek(page)
        after.seek(page)
        assert after.tobytes() == before.tobytes()
        assert set(after.tag_v2) & {270, 305, 306} == set()
        assert after.tag_v2[259] == 4  # still Group 4
    assert after.info["dpi"] == (204.0, 196.0)
    assert b"FaxServer" not in out


def test_a_tiff_orientation_is_applied() -> None:
    tags = TiffImagePlugin.ImageFileDirectory_v2()
    tags[274] = 3  # upside down
    buf = io.BytesIO()
    samples.photo((400, 300)).save(buf, "TIFF", tiffinfo=tags)
    im = opened(cleaned(buf.getvalue(), "tiff"))
    assert is_red(im.getpixel((im.width - 10, im.height - 10)))


# -- PDF -------------------------------------------------------------------------------------


def test_a_pdf_loses_its_author_creator_and_xmp_and_keeps_its_page() -> None:
    data = samples.text_pdf("Fit note", author=samples.AUTHOR)
    assert needs_cleaning(data, "pdf")
    out = cleaned(data, "pdf")
    assert samples.AUTHOR.encode() not in out and b"Clinical System" not in out
    with pikepdf.open(io.BytesIO(out)) as pdf, pikepdf.open(io.BytesIO(data)) as original:
        assert "/Info" not in pdf.trailer and "/Metadata" not in pdf.Root
        assert len(pdf.pages) == 1
        assert pdf.pages[0].Contents.read_bytes() == original.pages[0].Contents.read_bytes()


def test_a_pdfa_keeps_only_the_statement_of_its_conformance() -> None:
    out = cleaned(samples.pdfa(), "pdf")
    assert samples.AUTHOR.encode() not in out
    with pikepdf.open(io.BytesIO(out)) as pdf:
        xmp = pdf.Root.Metadata.read_bytes()
        assert b"<pdfaid:part>2</pdfaid:part><pdfaid:conformance>B</pdfaid:conformance>" in xmp
        assert re.findall(rb"<(\w+:\w+)>", xmp) == [b"pdfaid:part", b"pdfaid:conformance"]
        assert "/OutputIntents" in pdf.Root  # the rest of what makes it PDF/A stays
        assert "/Filter" not in pdf.Root.Metadata.stream_dict  # PDF/A: metadata is not compressed


def test_an_earlier_revision_left_in_the_file_goes() -> None:
    data = corpus.pdf_good()
    start = int(re.search(rb"startxref\s+(\d+)", data).group(1))
    update = b"6 0 obj\n<< /Author (Dr Hidden) >>\nendobj\n"
    xref = len(data) + len(update)
    data += update + (
        b"xref\n0 1\n0000000000 65535 f \n6 1\n%010d 00000 n \ntrailer\n<< /Size 7 /Root 1 0 R /Prev %d >>\n"
        b"startxref\n%d\n%%%%EOF\n" % (len(data), start, xref)
    )
    assert needs_cleaning(data, "pdf")
    assert b"Dr Hidden" not in cleaned(data, "pdf")


def test_application_data_and_image_metadata_go() -> None:
    def edit(pdf: pikepdf.Pdf) -> None:
        pdf.Root.PieceInfo = pikepdf.Dictionary(App=pikepdf.Dictionary(Private=pikepdf.String("draft 3")))
        pdf.pages[0].obj.Metadata = pdf.make_stream(b"<x:xmpmeta>page</x:xmpmeta>")

    with pikepdf.open(io.BytesIO(corpus.pdf_good())) as pdf:
        edit(pdf)
        buf = io.BytesIO()
        pdf.save(buf)
    out = cleaned(buf.getvalue(), "pdf")
    assert b"draft 3" not in out and b"xmpmeta" not in out


# -- nothing to remove ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", sorted(name for name, (kind, _) in corpus.GOOD.items() if kind in CLEANED_KINDS and "second" not in name)
)
def test_a_file_with_nothing_hidden_is_left_byte_for_byte(name: str) -> None:
    kind, build = corpus.GOOD[name]
    data = build()
    assert not needs_cleaning(data, kind)
    assert clean(data, kind) is data


@pytest.mark.parametrize("kind", ["docx", "odt", "doc", "rtf", "txt"])
def test_other_kinds_are_not_cleaned_here(kind: str) -> None:
    build = {k: b for k, b in corpus.GOOD.values()}[kind]
    assert kind not in CLEANED_KINDS
    assert not needs_cleaning(build(), kind)
