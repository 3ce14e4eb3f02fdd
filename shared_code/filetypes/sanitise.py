"""Taking out what a patient must not get and cannot see (issue 18, "nothing hidden").

* Pictures: EXIF, XMP and IPTC (GPS position, device, serial number, times), comments, text
  chunks, thumbnails and the extra pictures phones append (MPF) are removed. The orientation a
  camera records is applied to the pixels first, so the picture still shows the right way up.
  Colour profiles and resolution stay.
* PDF: the document information dictionary (Author, Creator, Producer, dates), every XMP
  metadata stream, application data (`/PieceInfo`) and anything left from earlier versions of
  the file (incremental updates, objects nothing refers to) are removed by writing the file
  anew with qpdf. A PDF/A keeps a minimal XMP packet that says only which PDF/A it is.

Only what needs removing is removed: a file with nothing hidden is returned unchanged, byte for
byte (`needs_cleaning` is False), and a cleaned file is clean (`clean` is idempotent). JPEG and
PNG metadata is removed without decoding the picture; it is re-encoded only to turn it upright.
The scan refuses stored bytes of these kinds that still need cleaning (`not_prepared`), so
nothing reaches a patient unless it went through here.

Like `validate`, these functions parse uploaded bytes: they run only in the isolation worker
(`isolation.prepare_isolated`), under its memory, CPU and wall-time ceilings, and only on files
`validate` has passed (and, for a file they rewrote, passes again).
"""

from __future__ import annotations

import io
import re
import struct
from typing import Any

from shared_code.filetypes.common import PNG_MAGIC

#: The kinds this module cleans; other kinds carry no metadata it removes (DOCX, ODT, DOC and
#: RTF with comments, tracked changes or hidden text are refused by `validate` instead).
CLEANED_KINDS = frozenset({"jpeg", "png", "tiff", "pdf"})

ORIENTATION = 0x0112  # EXIF and TIFF tag 274

# -- JPEG ------------------------------------------------------------------------------------

# The application segments a JPEG may keep, by marker and the identifier their data starts with:
# JFIF (density), ICC_PROFILE (colour) and Adobe (the colour transform CMYK pictures need).
# Everything else (APP1 EXIF and XMP, APP13 IPTC, APP2 MPF and FlashPix, comments...) goes.
_JPEG_KEEP = ((0xE0, b"JFIF\x00"), (0xE2, b"ICC_PROFILE\x00"), (0xEE, b"Adobe"))


def _jpeg_segments(data: bytes) -> tuple[list[tuple[int, int, int]], int]:
    """The picture's segments as (marker, start, end), SOI and EOI excluded, and where its EOI ends.

    A start-of-scan segment runs to the end of its entropy-coded data. ValueError when the
    structure is broken (validation has already refused such files; this is a guard).
    """
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG")
    segments: list[tuple[int, int, int]] = []
    pos, n = 2, len(data)
    while pos + 2 <= n:
        if data[pos] != 0xFF:
            raise ValueError("no marker where one belongs")
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1  # fill byte
            continue
        if marker == 0xD9:
            return segments, pos + 2
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            segments.append((marker, pos, pos + 2))
            pos += 2
            continue
        if pos + 4 > n:
            break
        (length,) = struct.unpack_from(">H", data, pos + 2)
        end = pos + 2 + length
        if length < 2 or end > n:
            break
        if marker == 0xDA:
            end = _scan_end(data, end)
        segments.append((marker, pos, end))
        pos = end
    raise ValueError("the picture has no end marker")


def _scan_end(data: bytes, pos: int) -> int:
    """Where a scan's entropy-coded data starting at `pos` ends: at the next 0xFF that is not
    a stuffed zero or a restart marker (or at the end of the data)."""
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            return len(data)
        following = data[pos + 1]
        if following != 0x00 and not 0xD0 <= following <= 0xD7:
            return pos
        pos += 2


# A JFIF header without a thumbnail: marker, length 16, "JFIF\0", version, units, densities, 0 x 0.
_JFIF_BARE_LENGTH = 16


def _jpeg_kept(data: bytes, marker: int, start: int, end: int) -> bool:
    if marker == 0xFE or 0xE0 <= marker <= 0xEF:
        body = data[start + 4 : start + 4 + 12]
        if marker == 0xE0 and body.startswith(b"JFIF\x00"):
            # A JFIF thumbnail is a second picture, which may show what the first was cropped from.
            return end - start == 2 + _JFIF_BARE_LENGTH
        return any(marker == m and body.startswith(ident) for m, ident in _JPEG_KEEP)
    return True  # tables, frame and scan headers, scans: the picture itself


def _jpeg_needs_cleaning(data: bytes) -> bool:
    segments, end = _jpeg_segments(data)
    return end != len(data) or not all(_jpeg_kept(data, m, s, e) for m, s, e in segments)


def _jpeg_stripped(data: bytes) -> bytes:
    segments, _ = _jpeg_segments(data)
    kept = []
    for marker, start, end in segments:
        if _jpeg_kept(data, marker, start, end):
            kept.append(data[start:end])
        elif marker == 0xE0 and data[start + 4 : start + 9] == b"JFIF\x00" and end - start >= 2 + 14:
            # The JFIF header itself (version, units, density) stays; its thumbnail goes.
            kept.append(b"\xff\xe0" + struct.pack(">H", _JFIF_BARE_LENGTH) + data[start + 4 : start + 16] + b"\x00\x00")
    return b"\xff\xd8" + b"".join(kept) + b"\xff\xd9"


# -- PNG -------------------------------------------------------------------------------------

# Chunks a PNG may keep: the picture, its palette and transparency, colour (gamma, chromaticity,
# sRGB, ICC, cICP), significant bits, density, background, histogram and animation. Text
# (tEXt, zTXt, iTXt: where XMP lives), eXIf, tIME and private chunks go.
_PNG_KEEP = frozenset(
    {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"cICP", b"sBIT", b"pHYs"}
    | {b"bKGD", b"hIST", b"acTL", b"fcTL", b"fdAT"}
)


def _png_chunks(data: bytes) -> tuple[list[tuple[bytes, int, int]], int]:
    """(type, start, end) of each chunk, and where IEND ends; ValueError when broken."""
    if not data.startswith(PNG_MAGIC):
        raise ValueError("not a PNG")
    chunks: list[tuple[bytes, int, int]] = []
    pos = len(PNG_MAGIC)
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            break
        chunks.append((kind, pos, end))
        pos = end
        if kind == b"IEND":
            return chunks, pos
    raise ValueError("the picture has no end chunk")


def _png_needs_cleaning(data: bytes) -> bool:
    chunks, end = _png_chunks(data)
    return end != len(data) or any(kind not in _PNG_KEEP for kind, _, _ in chunks)


def _png_stripped(data: bytes) -> bytes:
    chunks, _ = _png_chunks(data)
    return PNG_MAGIC + b"".join(data[s:e] for kind, s, e in chunks if kind in _PNG_KEEP)


# -- TIFF ------------------------------------------------------------------------------------

# Tags that describe the picture itself (TIFF 6.0 baseline and extensions, plus the ICC profile):
# a TIFF whose directories have any other tag (ImageDescription, Make, Model, Software, DateTime,
# Artist, HostComputer, Copyright, XMP 700, IPTC 33723, Photoshop 34377, the EXIF and GPS
# directories 34665 and 34853...) is written anew with these alone.
_TIFF_KEEP = frozenset(
    {254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 274, 277, 278, 279, 280, 281, 282, 283, 284}
    | {290, 291, 292, 293, 296, 297, 301, 317, 318, 319, 320, 321, 322, 323, 324, 325, 326, 327, 328}
    | {332, 338, 339, 340, 341, 347, 529, 530, 531, 532, 34675}
)


def _tiff_needs_cleaning(data: bytes) -> bool:
    from PIL import Image

    with Image.open(io.BytesIO(data), formats=["TIFF"]) as im:
        for index in range(getattr(im, "n_frames", 1)):
            im.seek(index)
            tags = im.tag_v2
            if set(tags.keys()) - _TIFF_KEEP or tags.get(ORIENTATION, 1) != 1:
                return True
    return False


def _tiff_rewritten(data: bytes) -> bytes:
    """Every page upright, written with the picture's own tags only (lossless compression)."""
    from PIL import Image

    pages: list[Any] = []
    with Image.open(io.BytesIO(data), formats=["TIFF"]) as im:
        dpi = im.info.get("dpi")
        icc = im.info.get("icc_profile")
        for index in range(getattr(im, "n_frames", 1)):
            im.seek(index)
            pages.append(upright(im, tiff_orientation_after_load(im)))
    return encode_tiff(pages, dpi=dpi, icc_profile=icc)


def tiff_orientation_after_load(im: Any) -> int:
    """The orientation still to apply to a TIFF frame once loaded: Pillow (10 and later) applies
    the tag itself as it loads a frame, and then drops it; an older one leaves both to us."""
    im.load()
    value = im.tag_v2.get(ORIENTATION, 1)
    return value if isinstance(value, int) else 1


def encode_tiff(
    pages: list[Any], *, dpi: Any = None, icc_profile: bytes | None = None, quality: int | None = None
) -> bytes:
    """Pages as one TIFF: Group 4 when every page is black and white (as a fax), else Deflate
    (lossless) or, given a `quality`, JPEG (as scanners write grey and colour pages to save room)."""
    bilevel = all(p.mode == "1" for p in pages)
    options: dict[str, Any] = {"compression": "group4" if bilevel else "tiff_adobe_deflate"}
    if quality is not None and not bilevel:
        options = {"compression": "jpeg", "quality": quality}
        grey = ("1", "L", "LA")
        pages = [p if p.mode in ("L", "RGB") else p.convert("L" if p.mode in grey else "RGB") for p in pages]
    if dpi:
        options["dpi"] = dpi
    if icc_profile and not bilevel:
        options["icc_profile"] = icc_profile
    out = io.BytesIO()
    first = bare(pages[0])
    first.save(out, "TIFF", save_all=len(pages) > 1, append_images=[bare(p) for p in pages[1:]], **options)
    return out.getvalue()


# -- pictures: orientation and re-encoding -----------------------------------------------------

_TRANSPOSE = {2: (0,), 3: (3,), 4: (1,), 5: (5,), 6: (4,), 7: (6,), 8: (2,)}  # Image.Transpose values


def upright(im: Any, orientation: Any) -> Any:
    """A copy of the current frame with an EXIF/TIFF orientation (1-8) applied to its pixels."""
    from PIL import Image

    frame = im.copy()
    steps = _TRANSPOSE.get(orientation if isinstance(orientation, int) else 1, ())
    for step in steps:
        frame = frame.transpose(Image.Transpose(step))
    return frame


def bare(im: Any) -> Any:
    """The same pixels with no metadata attached: Pillow's writers copy some of `info` (a JPEG
    comment, a TIFF's XMP and IPTC...) into what they write unless it is gone."""
    clean = im.copy()
    clean.info = {}
    return clean


def orientation_of(data: bytes, pil_format: str) -> int:
    """The orientation a picture's EXIF (JPEG, PNG eXIf) records: 1 (as stored) when none."""
    from PIL import Image

    with Image.open(io.BytesIO(data), formats=[pil_format]) as im:
        value = im.getexif().get(ORIENTATION, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _reencoded_upright(data: bytes, pil_format: str) -> bytes:
    """A JPEG or still PNG turned upright and written again without metadata: a JPEG with its
    own quantisation tables and subsampling, so its quality and size barely change."""
    from PIL import Image, JpegImagePlugin

    with Image.open(io.BytesIO(data), formats=[pil_format]) as im:
        frame = upright(im, orientation_of(data, pil_format))
        options: dict[str, Any] = {}
        if im.info.get("icc_profile"):
            options["icc_profile"] = im.info["icc_profile"]
        if im.info.get("dpi"):
            options["dpi"] = im.info["dpi"]
        if pil_format == "JPEG":
            options["qtables"] = im.quantization
            sampling = JpegImagePlugin.get_sampling(im)
            if sampling >= 0:
                options["subsampling"] = sampling
        elif "transparency" in im.info:
            options["transparency"] = im.info["transparency"]
    out = io.BytesIO()
    bare(frame).save(out, pil_format, **options)
    return out.getvalue()


# -- PDF -------------------------------------------------------------------------------------

# The only XMP a cleaned PDF keeps: which PDF/A it conforms to, so an archival copy stays one.
_PDFA_XMP = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">'
    "<pdfaid:part>{part}</pdfaid:part>{conformance}</rdf:Description></rdf:RDF></x:xmpmeta>"
    '<?xpacket end="r"?>'
)
_PDFA_CONFORMANCE = "<pdfaid:conformance>{}</pdfaid:conformance>"
# pdfaid:part as an element (<pdfaid:part ...>2</pdfaid:part>) or an attribute (pdfaid:part="2").
_PDFA_PART = re.compile(rb"pdfaid:part(?:\s[^>]*)?>\s*([1-4])\s*<|pdfaid:part\s*=\s*[\"']([1-4])[\"']")
_PDFA_LEVEL = re.compile(
    rb"pdfaid:conformance(?:\s[^>]*)?>\s*([ABUEFabuef])\s*<|pdfaid:conformance\s*=\s*[\"']([ABUEFabuef])[\"']"
)
_PDFA_CANONICAL = re.compile(
    re.escape(_PDFA_XMP.format(part="PARTNUMBER", conformance="LEVELELEMENT").encode())
    .replace(b"PARTNUMBER", b"[1-4]")
    .replace(b"LEVELELEMENT", b"(?:<pdfaid:conformance>[ABUEF]</pdfaid:conformance>)?")
)
#: Keys of any object that carry metadata or application data rather than the document.
_PDF_METADATA_KEYS = ("/Metadata", "/PieceInfo")


def _pdfa_xmp(xmp: bytes) -> bytes | None:
    """The minimal XMP for the PDF/A part and level `xmp` declares, or None if it declares none."""
    part = _PDFA_PART.search(xmp)
    if part is None:
        return None
    level = _PDFA_LEVEL.search(xmp)
    conformance = _PDFA_CONFORMANCE.format((level.group(1) or level.group(2)).decode().upper()) if level else ""
    return _PDFA_XMP.format(part=(part.group(1) or part.group(2)).decode(), conformance=conformance).encode()


def _pdf_needs_cleaning(pdf: Any) -> bool:
    """True when the PDF has document information, XMP beyond the PDF/A statement, application
    data, an earlier revision (incremental update, linearization) or objects nothing refers to."""
    import pikepdf

    content = (pikepdf.Dictionary, pikepdf.Array, pikepdf.Stream, pikepdf.String)
    trailer = pdf.trailer
    if "/Info" in trailer or "/Prev" in trailer or "/XRefStm" in trailer or pdf.is_linearized:
        return True
    root = pdf.Root
    stored = root.get("/Metadata")
    if stored is not None and not (
        isinstance(stored, pikepdf.Stream) and _PDFA_CANONICAL.fullmatch(stored.read_bytes())
    ):
        return True
    reachable = _pdf_reachable(pdf)
    for obj in pdf.objects:
        if isinstance(obj, pikepdf.Stream):
            entries = obj.stream_dict
        elif isinstance(obj, pikepdf.Dictionary):
            entries = obj
        else:
            entries = None
        if entries is not None:
            kind = entries.get("/Type")
            if kind in (pikepdf.Name.ObjStm, pikepdf.Name.XRef):
                continue  # the file's own structure, not content
            if obj.objgen != root.objgen and any(key in entries for key in _PDF_METADATA_KEYS):
                return True
            if obj.objgen == root.objgen and "/PieceInfo" in entries:
                return True
        if isinstance(obj, content) and obj.objgen not in reachable:
            return True  # left over from an earlier version, or hidden: nothing shows it
    return False


def _pdf_reachable(pdf: Any) -> set[tuple[int, int]]:
    """Every indirect object the trailer leads to (numbers excepted: pikepdf hands them over as
    Python numbers, and a number hides nothing)."""
    import pikepdf

    seen: set[tuple[int, int]] = set()
    stack: list[Any] = [pdf.trailer]
    while stack:
        item = stack.pop()
        if isinstance(item, pikepdf.Object) and item.is_indirect:
            if item.objgen in seen:
                continue
            seen.add(item.objgen)
        if isinstance(item, pikepdf.Stream):
            stack.extend(item.stream_dict.values())
        elif isinstance(item, pikepdf.Dictionary):
            stack.extend(item.values())
        elif isinstance(item, pikepdf.Array):
            stack.extend(item)
    return seen


def _pdf_clean(pdf: Any) -> None:
    """Remove document information, XMP (all but the PDF/A statement) and application data."""
    import pikepdf

    if "/Info" in pdf.trailer:
        del pdf.trailer["/Info"]
    root = pdf.Root
    pdfa: bytes | None = None
    stored = root.get("/Metadata")
    if isinstance(stored, pikepdf.Stream):
        try:
            pdfa = _pdfa_xmp(stored.read_bytes())
        except pikepdf.PdfError:
            pdfa = None
    for obj in pdf.objects:
        entries = obj.stream_dict if isinstance(obj, pikepdf.Stream) else obj
        if isinstance(entries, pikepdf.Dictionary):
            for key in _PDF_METADATA_KEYS:
                if key in entries:
                    del entries[key]
    for key in _PDF_METADATA_KEYS:
        if key in root:
            del root[key]
    if pdfa is not None:
        root.Metadata = pdf.make_stream(pdfa, Type=pikepdf.Name.Metadata, Subtype=pikepdf.Name.XML)


def save_pdf(pdf: Any) -> bytes:
    """Write a PDF anew: only what the trailer leads to, one revision, streams compressed, and
    no XMP rewritten behind our back (pikepdf would add a PDF version to it)."""
    out = io.BytesIO()
    pdf.save(out, fix_metadata_version=False, compress_streams=True)
    return out.getvalue()


# -- the two entry points ----------------------------------------------------------------------


def needs_cleaning(data: bytes, kind: str) -> bool:
    """Whether `clean` would change this file (it has something hidden to remove)."""
    if kind == "jpeg":
        return _jpeg_needs_cleaning(data) or orientation_of(data, "JPEG") != 1
    if kind == "png":
        return _png_needs_cleaning(data)
    if kind == "tiff":
        return _tiff_needs_cleaning(data)
    if kind == "pdf":
        import pikepdf

        with pikepdf.open(io.BytesIO(data)) as pdf:
            return _pdf_needs_cleaning(pdf)
    return False


def clean(data: bytes, kind: str) -> bytes:
    """The file without its hidden metadata (pictures upright); `data` itself when there is none."""
    if not needs_cleaning(data, kind):
        return data
    if kind == "jpeg":
        if orientation_of(data, "JPEG") != 1:
            return _reencoded_upright(data, "JPEG")
        return _jpeg_stripped(data)
    if kind == "png":
        if orientation_of(data, "PNG") != 1 and not _png_animated(data):
            return _reencoded_upright(data, "PNG")
        return _png_stripped(data)
    if kind == "tiff":
        return _tiff_rewritten(data)
    import pikepdf

    with pikepdf.open(io.BytesIO(data)) as pdf:
        _pdf_clean(pdf)
        return save_pdf(pdf)


def _png_animated(data: bytes) -> bool:
    chunks, _ = _png_chunks(data)
    return any(kind == b"acTL" for kind, _, _ in chunks)
