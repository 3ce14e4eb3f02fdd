"""Files of the kinds practices really send, made on the spot (issue 18): a phone photo with
GPS EXIF, a scanned letter, a PDF of text too big to fit, a PDF with an author, a PDF/A, a filled
form, a fax TIFF, a CMYK JPEG, a PNG with text chunks; PDFs of CMYK, JPEG 2000 and soft-masked
pictures; and a PDF of an exact size.

Pictures are noise over a gradient with a mark in one corner: JPEG cannot squeeze noise much, so
sizes are near what real photos and scans give, and the mark shows which way up a picture is.
"""

from __future__ import annotations

import io
import random
from typing import Any

#: GPS position written into the phone photo's EXIF (the test looks for it afterwards).
GPS = {1: "N", 2: (51.0, 30.0, 12.5), 3: "W", 4: (0.0, 7.0, 39.0)}
DEVICE = ("PhoneCo", "Model X", "SERIAL-0123456789")
AUTHOR = "Dr Alice Example"


def _noise(size: tuple[int, int], seed: int, grain: int = 2) -> Any:
    """Grey noise at `grain`-pixel blocks: photo-like detail that compresses about as badly."""
    from PIL import Image

    rnd = random.Random(seed)
    small = (max(1, size[0] // grain), max(1, size[1] // grain))
    return Image.frombytes("L", small, rnd.randbytes(small[0] * small[1])).resize(size)


def photo(size: tuple[int, int] = (4032, 3024), seed: int = 7, grain: int = 2) -> Any:
    """An RGB picture, red in its top-left quarter (the mark that says which way is up); a larger
    `grain` makes it smoother (a scan of a page rather than a photo)."""
    from PIL import Image, ImageDraw

    noise = _noise(size, seed, grain)
    picture = Image.merge(
        "RGB",
        (noise, noise.transpose(Image.Transpose.FLIP_LEFT_RIGHT), noise.transpose(Image.Transpose.FLIP_TOP_BOTTOM)),
    )
    ImageDraw.Draw(picture).rectangle((0, 0, size[0] // 4, size[1] // 4), fill=(255, 0, 0))
    return picture


def phone_jpeg(*, orientation: int = 6, quality: int = 80) -> bytes:
    """A 12-megapixel phone photo of about 6 MB, stored sideways with EXIF orientation 6 (turn
    90° clockwise to view), GPS position, maker, model and serial number, and a comment."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F], exif[0x0110] = DEVICE[0], DEVICE[1]
    exif.get_ifd(0x8769)[0xA431] = DEVICE[2]  # BodySerialNumber
    gps = exif.get_ifd(0x8825)
    for tag, value in GPS.items():
        gps[tag] = value
    out = io.BytesIO()
    photo().save(out, "JPEG", quality=quality, exif=exif, comment=b"Taken at 12 Example Road")
    return out.getvalue()


def cmyk_jpeg() -> bytes:
    """A CMYK JPEG as print workflows write it (Adobe marker), with EXIF."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0131] = "Print Studio 5"  # Software
    out = io.BytesIO()
    photo((800, 600)).convert("CMYK").save(out, "JPEG", quality=85, exif=exif)
    return out.getvalue()


def png_with_text() -> bytes:
    """A screenshot-like PNG carrying text chunks (author, XMP) and a time stamp."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", AUTHOR)
    info.add_itxt("XML:com.adobe.xmp", f"<x:xmpmeta><dc:creator>{AUTHOR}</dc:creator></x:xmpmeta>")
    out = io.BytesIO()
    photo((640, 480)).save(out, "PNG", pnginfo=info, dpi=(96, 96))
    return out.getvalue()


def fax_tiff(pages: int = 3) -> bytes:
    """A fax: black-and-white Group 4 pages at 204 x 196 dpi, with the fax software's tags."""
    from PIL import Image, ImageDraw, TiffImagePlugin

    frames = []
    for number in range(pages):
        page = Image.new("1", (1728, 2200), 1)
        ImageDraw.Draw(page).rectangle((100, 100 + 40 * number, 900, 160 + 40 * number), fill=0)
        frames.append(page)
    tags = TiffImagePlugin.ImageFileDirectory_v2()
    tags[305] = "FaxServer 9"  # Software
    tags[306] = "2026:03:01 09:30:00"  # DateTime
    tags[270] = "From 01632 960000"  # ImageDescription
    out = io.BytesIO()
    frames[0].save(
        out, "TIFF", compression="group4", save_all=True, append_images=frames[1:], tiffinfo=tags, dpi=(204, 196)
    )
    return out.getvalue()


# -- PDF -------------------------------------------------------------------------------------


def _font(pdf: Any) -> Any:
    import pikepdf

    return pdf.make_indirect(
        pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica)
    )


def _saved(pdf: Any, **options: Any) -> bytes:
    out = io.BytesIO()
    pdf.save(out, **options)
    return out.getvalue()


def scanned_pdf(pages: int = 5, quality: int = 55, text: str = "Discharge letter page") -> bytes:
    """About 5 MB: A4 pages, each a 300 dpi greyscale scan (JPEG) with an invisible text layer
    (text render mode 3), as a scanner with OCR writes them."""
    import pikepdf
    from PIL import ImageDraw

    pdf = pikepdf.new()
    font = _font(pdf)
    for number in range(1, pages + 1):
        scan = _noise((2480, 3508), seed=number, grain=3).point(lambda v: 190 + v // 4)
        ImageDraw.Draw(scan).text((250, 300), f"{text} {number}", fill=0)
        jpeg = io.BytesIO()
        scan.save(jpeg, "JPEG", quality=quality)
        page = pdf.add_blank_page(page_size=(595, 842))
        image = pdf.make_stream(
            jpeg.getvalue(),
            Type=pikepdf.Name.XObject,
            Subtype=pikepdf.Name.Image,
            Width=2480,
            Height=3508,
            ColorSpace=pikepdf.Name.DeviceGray,
            BitsPerComponent=8,
            Filter=pikepdf.Name.DCTDecode,
        )
        page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Scan=image), Font=pikepdf.Dictionary(F1=font))
        page.Contents = pdf.make_stream(
            f"q 595 0 0 842 0 0 cm /Scan Do Q BT 3 Tr /F1 12 Tf 72 760 Td ({text} {number}) Tj ET".encode()
        )
    return _saved(pdf)


#: The CMYK colour (0-255 a component) of the patch in the top-left quarter of `cmyk_pdf`'s picture.
CMYK_MARK = (20, 200, 160, 40)
#: What `cmyk_pdf` stores: JPEG as Adobe's applications write it (complemented samples, Adobe
#: marker) with /Decode [1 0 1 0 1 0 1 0]; JPEG of the colour's own samples with no /Decode;
#: Flate samples in DeviceCMYK; Flate samples in an ICC-based CMYK space.
CMYK_STORAGES = ("adobe-jpeg", "jpeg", "flate", "icc")


def cmyk_picture(size: tuple[int, int], seed: int = 3) -> Any:
    """A CMYK picture: a photo's noise, with `CMYK_MARK` in its top-left quarter."""
    from PIL import ImageDraw

    picture = photo(size, seed=seed).convert("CMYK")
    ImageDraw.Draw(picture).rectangle((0, 0, size[0] // 4, size[1] // 4), fill=CMYK_MARK)
    return picture


def _picture_pdf(
    stream: Any, pdf: Any, text: str, *, page_size: tuple[int, int] = (595, 842), visible_text: bool = True
) -> bytes:
    """One page drawing `stream` (an image XObject of `pdf`) over the whole page, then `text`."""
    import pikepdf

    page = pdf.add_blank_page(page_size=page_size)
    page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im=stream), Font=pikepdf.Dictionary(F1=_font(pdf)))
    mode = 0 if visible_text else 3
    page.Contents = pdf.make_stream(
        f"q {page_size[0]} 0 0 {page_size[1]} 0 0 cm /Im Do Q BT {mode} Tr /F1 12 Tf 72 760 Td ({text}) Tj ET".encode()
    )
    return _saved(pdf)


def cmyk_pdf(storage: str = "adobe-jpeg", size: tuple[int, int] = (1600, 2200), quality: int = 92) -> bytes:
    """A print export or colour scan of 6 MB (JPEG) to 11 MB (Flate): one A4 page, a CMYK picture
    (`cmyk_picture`) stored the way `storage` says (one of `CMYK_STORAGES`), and a line of text."""
    import zlib

    import pikepdf
    from PIL import ImageChops

    picture = cmyk_picture(size)
    pdf = pikepdf.new()
    space: Any = pikepdf.Name.DeviceCMYK
    extra: dict[str, Any] = {}
    if storage in ("adobe-jpeg", "jpeg"):
        out = io.BytesIO()
        # Pillow writes CMYK as Adobe does (complements); the complement of the complement is the
        # colour's own samples.
        (picture if storage == "adobe-jpeg" else ImageChops.invert(picture)).save(out, "JPEG", quality=quality)
        data, codec = out.getvalue(), pikepdf.Name.DCTDecode
        if storage == "adobe-jpeg":
            extra["Decode"] = pikepdf.Array([1, 0] * 4)
    elif storage in ("flate", "icc"):
        data, codec = zlib.compress(picture.tobytes(), 6), pikepdf.Name.FlateDecode
        if storage == "icc":
            # Fitting keeps the colour space as it is, so a stand-in profile does (none is at hand).
            profile = pdf.make_stream(b"\x00" * 128, N=4, Alternate=pikepdf.Name.DeviceCMYK)
            space = pikepdf.Array([pikepdf.Name.ICCBased, profile])
    else:
        raise ValueError(storage)
    image = pdf.make_stream(b"")
    image.write(data, filter=codec)
    for key, value in dict(
        Type=pikepdf.Name.XObject,
        Subtype=pikepdf.Name.Image,
        Width=size[0],
        Height=size[1],
        ColorSpace=space,
        BitsPerComponent=8,
        **extra,
    ).items():
        image.stream_dict[f"/{key}"] = value
    return _picture_pdf(image, pdf, f"Colour scan ({storage})")


def jpx_pdf(size: tuple[int, int] = (1600, 1200), *, colour_space: bool = True, smask_in_data: int = 0) -> bytes:
    """About 4.5 MB: one A4 page with a lossless JPEG 2000 colour photo (`photo`, red in its
    top-left quarter), with /ColorSpace /DeviceRGB or none (the codestream's own), and a line of
    text; `smask_in_data` sets /SMaskInData."""
    import pikepdf

    out = io.BytesIO()
    photo(size, seed=9).save(out, "JPEG2000")
    pdf = pikepdf.new()
    image = pdf.make_stream(b"")
    image.write(out.getvalue(), filter=pikepdf.Name.JPXDecode)
    d = image.stream_dict
    d.Type, d.Subtype, d.Width, d.Height = pikepdf.Name.XObject, pikepdf.Name.Image, size[0], size[1]
    if colour_space:
        d.ColorSpace, d.BitsPerComponent = pikepdf.Name.DeviceRGB, 8
    if smask_in_data:
        d.SMaskInData = smask_in_data
    return _picture_pdf(image, pdf, "Scanned referral (JPEG 2000)")


def soft_mask(size: tuple[int, int]) -> Any:
    """A soft mask: opaque (255) in its left half, 64 in its right half."""
    from PIL import Image, ImageDraw

    mask = Image.new("L", size, 255)
    ImageDraw.Draw(mask).rectangle((size[0] // 2, 0, size[0], size[1]), fill=64)
    return mask


def soft_masked_pdf(
    size: tuple[int, int] = (2400, 1800), mask_size: tuple[int, int] | None = None, *, matte: bool = False
) -> bytes:
    """About 4 MB: one A4 page with a JPEG colour photo (red in its top-left quarter) under a soft
    mask (`soft_mask`, Flate, `mask_size` or the photo's), with /Matte if asked, and a line of text."""
    import zlib

    import pikepdf

    out = io.BytesIO()
    photo(size, seed=13).save(out, "JPEG", quality=95)
    mask_size = mask_size or size
    pdf = pikepdf.new()
    mask = pdf.make_stream(b"")
    mask.write(zlib.compress(soft_mask(mask_size).tobytes(), 9), filter=pikepdf.Name.FlateDecode)
    md = mask.stream_dict
    md.Type, md.Subtype, md.Width, md.Height = pikepdf.Name.XObject, pikepdf.Name.Image, mask_size[0], mask_size[1]
    md.ColorSpace, md.BitsPerComponent = pikepdf.Name.DeviceGray, 8
    if matte:
        md.Matte = pikepdf.Array([1, 1, 1])
    image = pdf.make_stream(b"")
    image.write(out.getvalue(), filter=pikepdf.Name.DCTDecode)
    d = image.stream_dict
    d.Type, d.Subtype, d.Width, d.Height = pikepdf.Name.XObject, pikepdf.Name.Image, size[0], size[1]
    d.ColorSpace, d.BitsPerComponent, d.SMask = pikepdf.Name.DeviceRGB, 8, mask
    return _picture_pdf(image, pdf, "Photo of a rash")


def lettering_pdf(lines: int = 4000) -> bytes:
    """A PDF that cannot be made to fit: about 4 MB of text that compresses no further (random
    bytes, shown a kilobyte a line), with no picture to make smaller."""
    import pikepdf

    rnd = random.Random(11)
    shown = []
    for _ in range(lines):
        raw = rnd.randbytes(1024)
        escaped = raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)").replace(b"\r", b"\\r")
        shown.append(b"(" + escaped + b") Tj T*")
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(595, 842))
    page.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=_font(pdf)))
    page.Contents = pdf.make_stream(b"BT /F1 1 Tf 1 TL 0 842 Td\n" + b"\n".join(shown) + b"\nET")
    return _saved(pdf)


def text_pdf(text: str = "Fit note for Jo", *, author: str | None = None, title: str | None = None) -> bytes:
    """One page of text, with document information (Author, Creator, Producer) and XMP when asked."""
    import pikepdf

    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(595, 842))
    page.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=_font(pdf)))
    page.Contents = pdf.make_stream(f"BT /F1 24 Tf 72 760 Td ({text}) Tj ET".encode())
    if author:
        pdf.docinfo["/Author"] = author
        pdf.docinfo["/Creator"] = "Clinical System 7"
        pdf.docinfo["/Title"] = title or "Letter"
        with pdf.open_metadata(set_pikepdf_as_editor=False) as meta:
            meta["dc:creator"] = [author]
    return _saved(pdf)


def pdfa() -> bytes:
    """A PDF/A-2b as archiving exports write it: XMP saying so (with the author), an output intent
    and document information."""
    import pikepdf

    pdf = pikepdf.open(io.BytesIO(text_pdf("Archived letter")))
    pdf.docinfo["/Author"] = AUTHOR
    pdf.docinfo["/Producer"] = "Archiver 2"
    with pdf.open_metadata(set_pikepdf_as_editor=False) as meta:
        meta["pdfaid:part"] = "2"
        meta["pdfaid:conformance"] = "B"
        meta["dc:creator"] = [AUTHOR]
    profile = pdf.make_stream(b"\x00" * 128, N=3)
    pdf.Root.OutputIntents = pikepdf.Array(
        [
            pikepdf.Dictionary(
                Type=pikepdf.Name.OutputIntent,
                S=pikepdf.Name.GTS_PDFA1,
                OutputConditionIdentifier=pikepdf.String("sRGB"),
                DestOutputProfile=profile,
            )
        ]
    )
    return _saved(pdf)


def filled_form_pdf() -> bytes:
    """A form with a text field filled in (value and appearance), as a fit-note form is."""
    import pikepdf

    pdf = pikepdf.open(io.BytesIO(text_pdf("Statement of fitness for work")))
    page = pdf.pages[0]
    appearance = pdf.make_stream(
        b"/Tx BMC BT /F1 12 Tf 2 6 Td (Jo Bloggs) Tj ET EMC",
        Type=pikepdf.Name.XObject,
        Subtype=pikepdf.Name.Form,
        BBox=[0, 0, 200, 20],
        Resources=pikepdf.Dictionary(Font=page.Resources.Font),
    )
    field = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Annot,
            Subtype=pikepdf.Name.Widget,
            FT=pikepdf.Name.Tx,
            T=pikepdf.String("patient_name"),
            V=pikepdf.String("Jo Bloggs"),
            Rect=[72, 700, 272, 720],
            P=page.obj,
            AP=pikepdf.Dictionary(N=appearance),
        )
    )
    page.Annots = pdf.make_indirect(pikepdf.Array([field]))
    pdf.Root.AcroForm = pikepdf.Dictionary(Fields=pikepdf.Array([field]), DA=pikepdf.String("/Helv 12 Tf 0 g"))
    return _saved(pdf)


def pdf_of_size(size: int) -> bytes:
    """A valid PDF of exactly `size` bytes (at least about 200 kB), nothing hidden in it: one page
    with an uncompressed 8-bit grey picture of noise, and a comment after the header making up
    the last bytes."""
    import pikepdf

    def build(pixels: int, padding: int) -> bytes:
        width = 1000
        height = max(1, pixels // width)
        pdf = pikepdf.new()
        page = pdf.add_blank_page(page_size=(595, 842))
        image = pdf.make_stream(
            _noise((width, height), seed=5, grain=1).tobytes(),
            Type=pikepdf.Name.XObject,
            Subtype=pikepdf.Name.Image,
            Width=width,
            Height=height,
            ColorSpace=pikepdf.Name.DeviceGray,
            BitsPerComponent=8,
        )
        page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im=image))
        page.Contents = pdf.make_stream(b"q 595 0 0 842 0 0 cm /Im Do Q")
        data = _saved(pdf, compress_streams=False)
        if padding:
            # A comment line after the header's: viewers skip it, and the xref offsets are moved on.
            head = data.index(b"\n", data.index(b"\n") + 1) + 1
            data = _shift(data, head, b"%" + b"0" * (padding - 2) + b"\n")
        return data

    base = build((size - 10_000) // 1000 * 1000, 0)
    return build((size - 10_000) // 1000 * 1000, size - len(base))


def _shift(data: bytes, at: int, insert: bytes) -> bytes:
    """`insert` put at `at`, with every xref offset after it and startxref moved by its length."""
    import re

    shift = len(insert)
    out = data[:at] + insert + data[at:]
    xref = out.rindex(b"\nxref\n") + 1

    def moved(match: re.Match[bytes]) -> bytes:
        offset = int(match.group(1))
        return b"%010d" % (offset + shift if offset >= at else offset) + match.group(2)

    table_end = out.index(b"trailer", xref)
    table = re.sub(rb"(\d{10})( \d{5} n)", moved, out[xref:table_end])
    tail = out[table_end:]
    start = int(re.search(rb"startxref\s+(\d+)", tail).group(1))
    tail = re.sub(rb"startxref\s+\d+", b"startxref\n%d" % (start + shift), tail)
    return out[:xref] + table + tail
