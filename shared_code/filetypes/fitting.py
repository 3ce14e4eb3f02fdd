"""Making a picture or a PDF fit the size limit (issue 18), so the receptionist does not have to.

* Pictures (JPEG, PNG, TIFF) are turned upright, scaled down until their longest side is at most
  `MAX_SIDE` pixels (readable on a phone and when printed) and written again in the same format
  (a TIFF's grey or colour pages JPEG-compressed, as scanners do; black-and-white ones Group 4);
  if that is still too big, smaller sizes and lower qualities are tried in turn.
* PDFs keep their text, drawings and structure untouched: only their embedded pictures change.
  Each one larger than a page needs at `DPI_STEPS`' resolution is scaled down and re-encoded as
  JPEG, within a share of the room left by everything else in the file (a picture that needs
  less gives the rest to those after it). Black-and-white (fax) pictures, masks, and pictures
  in forms of colour or decoding that JPEG cannot hold are left as they are.

A file that cannot be brought under the limit raises `CannotFit`. Work is bounded like
validation's: pictures over `MAX_IMAGE_PIXELS` are not decoded, nor more than
`MAX_IMAGE_TOTAL_PIXELS` in all, compressed picture data is measured before it is decoded, and
the whole runs in the isolation worker under its memory, CPU and wall-time ceilings.
"""

from __future__ import annotations

import io
import math
import zlib
from typing import Any

from shared_code.filetypes.common import MAX_IMAGE_PIXELS, MAX_IMAGE_TOTAL_PIXELS, Refusal
from shared_code.filetypes.sanitise import (
    ORIENTATION,
    bare,
    encode_tiff,
    save_pdf,
    tiff_orientation_after_load,
    upright,
)

#: The longest side a fitted picture has at most, in pixels (a phone screen is 1,000-3,000 tall).
MAX_SIDE = 2000
#: Longest sides tried in turn for a picture, and the JPEG quality at each.
PICTURE_STEPS = ((2000, 85), (2000, 75), (1600, 70), (1280, 65), (1024, 60), (800, 55))
#: A PDF picture's resolution (dots per inch of the largest page) and JPEG quality, tried in turn.
DPI_STEPS = ((200, 80), (150, 70), (120, 60), (96, 50), (72, 40))
#: Pictures in a PDF smaller than this are not worth re-encoding.
MIN_PDF_IMAGE_BYTES = 16 * 1024
#: Room kept for what re-encoding a PDF changes besides the pictures (their dictionaries, the
#: cross-reference table): a fraction of the limit and a little per picture.
PDF_SLACK_FRACTION = 0.02
PDF_SLACK_PER_IMAGE = 256


class CannotFit(Exception):
    """The file is still over the limit after everything that may be done to it was done."""


def fit(data: bytes, kind: str, limit: int) -> bytes:
    """`data` (validated and cleaned) made at most `limit` bytes; `CannotFit` when it cannot be."""
    if kind == "pdf":
        return _fit_pdf(data, limit)
    if kind in ("jpeg", "png", "tiff"):
        return _fit_picture(data, kind, limit)
    raise CannotFit


# -- pictures ----------------------------------------------------------------------------------

_PIL_FORMATS = {"jpeg": "JPEG", "png": "PNG", "tiff": "TIFF"}


def _fit_picture(data: bytes, kind: str, limit: int) -> bytes:
    from PIL import Image

    with Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[kind]]) as im:
        frames = getattr(im, "n_frames", 1)
        if kind == "png" and frames > 1:
            raise CannotFit  # an animated PNG: every frame would have to be redrawn
        dpi = im.info.get("dpi")
        icc = im.info.get("icc_profile")
        original_side = max(im.size)
        pages = []
        total = 0
        for index in range(frames):
            im.seek(index)
            total += im.size[0] * im.size[1]
            if total > MAX_IMAGE_TOTAL_PIXELS:
                raise Refusal("too_complex")
            pages.append(_scaled_frame(im, kind, MAX_SIDE))
    steps = PICTURE_STEPS if kind != "png" else tuple(dict.fromkeys((side, 0) for side, _ in PICTURE_STEPS))
    for side, quality in steps:
        resized = [_shrink(page, side) for page in pages]
        scale = max(resized[0].size) / original_side
        encoded = _encode(resized, kind, quality, _scaled_dpi(dpi, scale), icc)
        if len(encoded) <= limit:
            return encoded
    raise CannotFit


def _scaled_frame(im: Any, kind: str, side: int) -> Any:
    """The current frame upright, no longer than `side` on its longest edge, in a mode its
    format can write; a JPEG is decoded straight at a reduced scale (its DCT allows it)."""
    width, height = im.size
    scale = min(1.0, side / max(width, height))
    if kind == "jpeg" and scale < 1.0:
        im.draft(im.mode, (math.ceil(width * scale), math.ceil(height * scale)))
    orientation = tiff_orientation_after_load(im) if kind == "tiff" else im.getexif().get(ORIENTATION, 1)
    frame = _shrink(upright(im, orientation), side)
    writable = {"jpeg": ("L", "RGB", "CMYK"), "png": ("1", "L", "LA", "P", "RGB", "RGBA", "I;16")}.get(
        kind, ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK")
    )
    if frame.mode not in writable:
        frame = frame.convert("RGBA" if "A" in frame.mode else "RGB")
    return frame


def _shrink(frame: Any, side: int) -> Any:
    """`frame` scaled so its longest side is at most `side` (never enlarged); a black-and-white
    page is scaled in grey and thresholded back, so its strokes stay solid."""
    from PIL import Image

    width, height = frame.size
    if max(width, height) <= side:
        return frame
    scale = side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if frame.mode == "1":
        grey = frame.convert("L").resize(size, Image.Resampling.LANCZOS)
        return grey.point(lambda v: 255 if v >= 128 else 0).convert("1", dither=Image.Dither.NONE)
    if frame.mode == "P":
        frame = frame.convert("RGBA" if "transparency" in frame.info else "RGB")
    return frame.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _scaled_dpi(dpi: Any, scale: float) -> tuple[float, float] | None:
    """The density that keeps a scaled picture's printed size (None when it had none)."""
    if not dpi or not all(isinstance(v, (int, float)) and v > 0 for v in dpi):
        return None
    return (round(dpi[0] * scale, 2), round(dpi[1] * scale, 2))


def _encode(pages: list[Any], kind: str, quality: int, dpi: Any, icc: bytes | None) -> bytes:
    """Pages written in `kind` with no metadata but density and colour profile."""
    if kind == "tiff":
        return encode_tiff(pages, dpi=dpi, icc_profile=icc, quality=quality)
    options: dict[str, Any] = {}
    if dpi:
        options["dpi"] = dpi
    if icc:
        options["icc_profile"] = icc
    out = io.BytesIO()
    if kind == "jpeg":
        bare(pages[0]).save(out, "JPEG", quality=quality, optimize=True, **options)
    else:
        bare(pages[0]).save(out, "PNG", optimize=True, **options)
    return out.getvalue()


# -- PDF ---------------------------------------------------------------------------------------


class _Budget:
    """Pixels decoded so far, against `MAX_IMAGE_TOTAL_PIXELS`."""

    def __init__(self) -> None:
        self.pixels = 0

    def spend(self, pixels: int) -> None:
        self.pixels += pixels
        if self.pixels > MAX_IMAGE_TOTAL_PIXELS:
            raise Refusal("too_complex")


def _fit_pdf(data: bytes, limit: int) -> bytes:
    import pikepdf

    with pikepdf.open(io.BytesIO(data)) as pdf:
        longest_page = max((_page_longest_side(page) for page in pdf.pages), default=842.0)
        images = [(obj, len(obj.read_raw_bytes())) for obj in _pdf_images(pdf)]
        images = [(obj, size) for obj, size in images if size >= MIN_PDF_IMAGE_BYTES and _recodable(obj)]
        if not images:
            raise CannotFit
        others = len(data) - sum(size for _, size in images)
        room = limit * (1 - PDF_SLACK_FRACTION) - others - PDF_SLACK_PER_IMAGE * len(images)
        if room <= 0:
            raise CannotFit
        weights = [int(obj.Width) * int(obj.Height) for obj, _ in images]
        budget = _Budget()
        remaining_weight = sum(weights)
        for (obj, size), weight in zip(images, weights, strict=True):
            share = room * weight / remaining_weight if remaining_weight else room
            written = _recode_pdf_image(pdf, obj, size, share, longest_page, budget)
            room -= written
            remaining_weight -= weight
        out = save_pdf(pdf)
    if len(out) > limit:
        raise CannotFit
    return out


def _page_longest_side(page: Any) -> float:
    box = [float(v) for v in page.mediabox]
    return max(abs(box[2] - box[0]), abs(box[3] - box[1]), 1.0)


def _pdf_images(pdf: Any) -> list[Any]:
    """Each image XObject the pages draw (in their forms too, to a depth of 10), once."""
    import pikepdf

    found: dict[tuple[int, int], Any] = {}
    visited: set[tuple[int, int]] = set()
    stack: list[tuple[Any, int]] = [(page.obj.get("/Resources"), 0) for page in pdf.pages]
    while stack:
        resources, depth = stack.pop()
        if not isinstance(resources, pikepdf.Dictionary) or depth > 10:
            continue
        xobjects = resources.get("/XObject")
        if not isinstance(xobjects, pikepdf.Dictionary):
            continue
        for xobject in xobjects.values():
            if not isinstance(xobject, pikepdf.Stream) or not xobject.is_indirect:
                continue
            key = xobject.objgen
            if key in visited:
                continue
            visited.add(key)
            subtype = xobject.stream_dict.get("/Subtype")
            if subtype == pikepdf.Name.Image:
                found[key] = xobject
            elif subtype == pikepdf.Name.Form:
                stack.append((xobject.stream_dict.get("/Resources"), depth + 1))
    return list(found.values())


_PLAIN_FILTERS = {"/FlateDecode", "/LZWDecode", "/RunLengthDecode", "/ASCIIHexDecode", "/ASCII85Decode"}


def _filters(obj: Any) -> list[str]:
    import pikepdf

    value = obj.stream_dict.get("/Filter")
    if value is None:
        return []
    return [str(f) for f in value] if isinstance(value, pikepdf.Array) else [str(value)]


def _recodable(obj: Any) -> bool:
    """Whether a picture can be re-encoded as JPEG and look the same: 8-bit grey, colour or
    indexed samples, no mask or decode tricks, compressed in a way we can read."""
    import pikepdf

    d = obj.stream_dict
    if d.get("/ImageMask") or "/Decode" in d or isinstance(d.get("/Mask"), pikepdf.Array) or "/SMaskInData" in d:
        return False
    width, height, bits = d.get("/Width"), d.get("/Height"), d.get("/BitsPerComponent")
    if not all(isinstance(v, int) and v > 0 for v in (width, height, bits)) or bits != 8:
        return False  # black and white (fax), 16-bit, or malformed: left as it is
    if width * height > MAX_IMAGE_PIXELS:
        return False
    filters = _filters(obj)
    if filters == ["/DCTDecode"]:
        return _colour_space_components(d.get("/ColorSpace")) in (1, 3)
    if all(f in _PLAIN_FILTERS for f in filters):
        return _colour_space_components(d.get("/ColorSpace")) in (1, 3) or _indexed(d.get("/ColorSpace"))
    return False  # JBIG2, JPEG 2000, CCITT: left as they are


def _colour_space_components(space: Any) -> int | None:
    """1 or 3 for grey or colour (device or ICC), else None (CMYK, separations, patterns...)."""
    import pikepdf

    if space in (pikepdf.Name.DeviceGray, pikepdf.Name.CalGray):
        return 1
    if space in (pikepdf.Name.DeviceRGB, pikepdf.Name.CalRGB):
        return 3
    if isinstance(space, pikepdf.Array) and len(space) >= 2:
        family = space[0]
        if family in (pikepdf.Name.CalGray,):
            return 1
        if family in (pikepdf.Name.CalRGB,):
            return 3
        if family == pikepdf.Name.ICCBased and isinstance(space[1], pikepdf.Stream):
            n = space[1].stream_dict.get("/N")
            return n if n in (1, 3) else None
    return None


def _indexed(space: Any) -> bool:
    import pikepdf

    return (
        isinstance(space, pikepdf.Array)
        and len(space) == 4
        and space[0] in (pikepdf.Name.Indexed, pikepdf.Name.I)
        and _colour_space_components(space[1]) in (1, 3)
    )


def _decoded(obj: Any, budget: _Budget) -> Any:
    """The picture as a Pillow image in L or RGB, or None when it is not worth the risk."""
    import pikepdf
    from PIL import Image

    d = obj.stream_dict
    width, height = int(d.Width), int(d.Height)
    budget.spend(width * height)
    if _filters(obj) == ["/DCTDecode"]:
        im = Image.open(io.BytesIO(obj.read_raw_bytes()), formats=["JPEG"])
        if im.size[0] * im.size[1] > MAX_IMAGE_PIXELS or im.mode not in ("L", "RGB"):
            return None
        return im
    components = 1 if _indexed(d.get("/ColorSpace")) else (_colour_space_components(d.get("/ColorSpace")) or 3)
    if _filters(obj) in (["/FlateDecode"], ["/Fl"]) and not _inflates_within(
        obj.read_raw_bytes(), width * height * components + height + 1024
    ):
        return None  # decodes to more than its size says: a bomb, or damage
    image = pikepdf.PdfImage(obj).as_pil_image()
    if image.mode == "P":
        image = image.convert("RGB")
    return image if image.mode in ("L", "RGB") else None


def _inflates_within(raw: bytes, most: int) -> bool:
    """Whether Flate data inflates to at most `most` bytes, inflated in chunks and not kept."""
    inflater = zlib.decompressobj()
    produced = 0
    pending = raw
    while pending and not inflater.eof:
        try:
            produced += len(inflater.decompress(pending, 1 << 20))
        except zlib.error:
            return False
        pending = inflater.unconsumed_tail
        if produced > most:
            return False
    return True


def _recode_pdf_image(pdf: Any, obj: Any, size: int, share: float, longest_page: float, budget: _Budget) -> int:
    """Re-encode one picture within `share` bytes if it can, at the first of `DPI_STEPS` that fits
    (else the last); returns the bytes it takes now. It is kept as it was unless that is smaller."""
    import pikepdf

    image = _decoded(obj, budget)
    if image is None:
        return size
    best: tuple[bytes, tuple[int, int]] | None = None
    for dpi, quality in DPI_STEPS:
        side = math.ceil(longest_page / 72 * dpi)
        if max(image.size) > side:  # a JPEG decodes straight at a reduced scale (once, before it loads)
            scale = side / max(image.size)
            image.draft(image.mode, (math.ceil(image.size[0] * scale), math.ceil(image.size[1] * scale)))
        scaled = _shrink(image.convert("L" if image.mode == "L" else "RGB"), side)
        out = io.BytesIO()
        scaled.save(out, "JPEG", quality=quality, optimize=True)
        best = (out.getvalue(), scaled.size)
        if len(best[0]) <= share:
            break
    assert best is not None
    encoded, (width, height) = best
    if len(encoded) >= size:
        return size
    d = obj.stream_dict
    grey = image.mode == "L"
    keep_space = _colour_space_components(d.get("/ColorSpace")) == (1 if grey else 3)
    obj.write(encoded, filter=pikepdf.Name.DCTDecode)
    d.Width, d.Height, d.BitsPerComponent = width, height, 8
    if not keep_space:
        d.ColorSpace = pikepdf.Name.DeviceGray if grey else pikepdf.Name.DeviceRGB
    for key in ("/DecodeParms", "/Decode"):
        if key in d:
            del d[key]
    return len(encoded)
