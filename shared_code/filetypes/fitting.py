"""Making a picture or a PDF fit the size limit (issue 18), so the receptionist does not have to.

* Pictures (JPEG, PNG, TIFF) are turned upright, scaled down until their longest side is at most
  `MAX_SIDE` pixels (readable on a phone and when printed) and written again in the same format
  (a TIFF's grey or colour pages JPEG-compressed, as scanners do; black-and-white ones Group 4;
  an animated PNG's every frame, with its timing); if that is still too big, smaller sizes and
  lower qualities are tried in turn.
* PDFs keep their text, drawings and structure untouched: only their embedded pictures change.
  Each one larger than a page needs at `DPI_STEPS`' resolution is scaled down and re-encoded as
  JPEG, within a share of the room left by everything else in the file (a picture that needs
  less gives the rest to those after it). That covers 8-bit grey, colour and indexed pictures,
  and also:

  - CMYK (DeviceCMYK or ICC-based, JPEG or Flate), written again as CMYK JPEG in its own colour
    space, so a viewer converts it to screen colours as before. Adobe's applications store
    complemented samples in their JPEGs and say so with /Decode [1 0 1 0 1 0 1 0], since a PDF
    viewer takes a JPEG's samples as decoded, then /Decode. Pillow reads and writes CMYK JPEGs
    the Adobe way, so a picture is read by what its /Decode says (none, or Adobe's) and written
    with Adobe's; a JPEG whose /ColorTransform may contradict its own markers is left as it is;
  - JPEG 2000 in grey or colour, when Pillow was built with OpenJPEG (`PIL.features`; without it
    such pictures are left as they are), unless /SMaskInData says its alpha is the picture's mask;
  - a picture under an 8-bit grey soft mask: the mask is scaled to the picture's new size
    (Flate, lossless) when it is larger, or when a /Matte ties the two sizes; a smaller one,
    covering the same square, stays aligned as it is.

  Left as they are: black-and-white pictures (fax, CCITT, JBIG2: already small), stencil masks,
  colour-key masks, 16-bit pictures, other /Decode arrays, colour spaces JPEG cannot hold
  (separations, Lab...), soft masks that are not 8-bit grey, and inline images (a few kB inside
  a content stream, which stays as it is).

A file that cannot be brought under the limit raises `CannotFit`. Work is bounded like
validation's: pictures over `MAX_IMAGE_PIXELS` are not decoded, nor more than
`MAX_IMAGE_TOTAL_PIXELS` in all (soft masks counted), compressed picture data is measured before
it is decoded (a Flate picture or mask that inflates past its stated size is not decoded), and
the whole runs in the isolation worker under its memory, CPU and wall-time ceilings.
"""

from __future__ import annotations

import io
import math
import zlib
from dataclasses import dataclass
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
        # An animated PNG: each frame is read whole (Pillow composes it on the canvas), so it is
        # written again as whole frames, each shown for as long as before.
        animation = _Animation([], im.info.get("loop", 0)) if kind == "png" and frames > 1 else None
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
            if animation is not None:
                animation.durations.append(im.info.get("duration", 0))
            pages.append(_scaled_frame(im, kind, MAX_SIDE))
    steps = PICTURE_STEPS if kind != "png" else tuple(dict.fromkeys((side, 0) for side, _ in PICTURE_STEPS))
    for side, quality in steps:
        resized = [_shrink(page, side) for page in pages]
        scale = max(resized[0].size) / original_side
        encoded = _encode(resized, kind, quality, _scaled_dpi(dpi, scale), icc, animation)
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


@dataclass(frozen=True)
class _Animation:
    """An animated PNG's timing: each frame's duration (ms) and how many times it plays (0: for ever)."""

    durations: list[Any]
    loop: int


def _encode(
    pages: list[Any], kind: str, quality: int, dpi: Any, icc: bytes | None, animation: _Animation | None = None
) -> bytes:
    """Pages written in `kind` with no metadata but density and colour profile (and an animated
    PNG's timing)."""
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
    elif animation is not None:
        # Whole frames, each replacing the last (APNG dispose "none", blend "source").
        bare(pages[0]).save(
            out,
            "PNG",
            save_all=True,
            append_images=[bare(page) for page in pages[1:]],
            duration=animation.durations,
            loop=animation.loop,
            disposal=0,
            blend=0,
            **options,
        )
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
        # Measured compressed, before anything is decoded; a picture's soft mask counts with it.
        images = [(obj, _stored_size(obj)) for obj in _pdf_images(pdf) if _recodable(obj)]
        images = [(obj, size) for obj, size in images if size >= MIN_PDF_IMAGE_BYTES]
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


def _stored_size(obj: Any) -> int:
    """The compressed bytes of a picture and of its soft mask."""
    mask = obj.stream_dict.get("/SMask")
    return len(obj.read_raw_bytes()) + (len(mask.read_raw_bytes()) if mask is not None else 0)


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
#: The /Decode array that inverts CMYK samples, as Adobe's applications write it for their JPEGs.
_CMYK_INVERTED = (1.0, 0.0) * 4


def _filters(obj: Any) -> list[str]:
    import pikepdf

    value = obj.stream_dict.get("/Filter")
    if value is None:
        return []
    return [str(f) for f in value] if isinstance(value, pikepdf.Array) else [str(value)]


def _jpx_decodable() -> bool:
    """Whether this Pillow was built with OpenJPEG; without it JPEG 2000 pictures are left alone."""
    from PIL import features

    return bool(features.check("jpg_2000"))


def _recodable(obj: Any) -> bool:
    """Whether a picture can be re-encoded as JPEG and look the same: 8-bit grey, colour, CMYK or
    indexed samples (or JPEG 2000 in grey or colour), no colour-key mask or decode tricks but
    Adobe's inverted CMYK, a soft mask we can scale with it, compressed in a way we can read."""
    import pikepdf

    d = obj.stream_dict
    if d.get("/ImageMask") or isinstance(d.get("/Mask"), pikepdf.Array) or d.get("/SMaskInData", 0) != 0:
        return False  # a stencil, a colour key, or JPEG 2000's own alpha: not ours to re-encode
    width, height = d.get("/Width"), d.get("/Height")
    if not all(isinstance(v, int) and v > 0 for v in (width, height)) or width * height > MAX_IMAGE_PIXELS:
        return False
    space = d.get("/ColorSpace")
    filters = _filters(obj)
    if filters == ["/JPXDecode"]:
        # /Decode and /BitsPerComponent do not apply to JPEG 2000: the codestream says.
        fits = _jpx_decodable() and (space is None or _colour_space_components(space) in (1, 3))
        return fits and _mask_recodable(d)
    if d.get("/BitsPerComponent") != 8:
        return False  # black and white (fax), 16-bit, or malformed: left as it is
    components = _colour_space_components(space)
    if "/Decode" in d and not _plain_decode(d.get("/Decode"), components):
        return False
    if filters == ["/DCTDecode"]:
        parameters = d.get("/DecodeParms")
        if isinstance(parameters, pikepdf.Dictionary) and "/ColorTransform" in parameters:
            return False  # may contradict the JPEG's own markers, which Pillow follows
        return components in (1, 3, 4) and _mask_recodable(d)
    if all(f in _PLAIN_FILTERS for f in filters):
        return (components in (1, 3, 4) or _indexed(space)) and _mask_recodable(d)
    return False  # JBIG2, CCITT (bilevel) or a chain of codecs: left as they are


def _plain_decode(decode: Any, components: int | None) -> bool:
    """Whether a /Decode array is the default one, or Adobe's inverted CMYK."""
    import pikepdf

    if not isinstance(decode, pikepdf.Array) or components is None:
        return False
    try:
        values = tuple(float(v) for v in decode)
    except (TypeError, ValueError):
        return False
    return values == (0.0, 1.0) * components or (components == 4 and values == _CMYK_INVERTED)


def _cmyk_inverted(d: Any) -> bool:
    import pikepdf

    decode = d.get("/Decode")
    return isinstance(decode, pikepdf.Array) and tuple(float(v) for v in decode) == _CMYK_INVERTED


def _mask_recodable(d: Any) -> bool:
    """Whether a picture's soft mask (if it has one) is 8-bit grey we can read and scale with it."""
    import pikepdf

    mask = d.get("/SMask")
    if mask is None:
        return True
    if not isinstance(mask, pikepdf.Stream):
        return False
    md = mask.stream_dict
    width, height, bits = md.get("/Width"), md.get("/Height"), md.get("/BitsPerComponent")
    if not all(isinstance(v, int) and v > 0 for v in (width, height)) or bits != 8:
        return False
    if width * height > MAX_IMAGE_PIXELS or "/Decode" in md:
        return False
    if md.get("/ColorSpace", pikepdf.Name.DeviceGray) != pikepdf.Name.DeviceGray:
        return False
    filters = _filters(mask)
    return filters == ["/DCTDecode"] or all(f in _PLAIN_FILTERS for f in filters)


def _colour_space_components(space: Any) -> int | None:
    """1, 3 or 4 for grey, colour or CMYK (device or ICC), else None (separations, Lab, patterns...)."""
    import pikepdf

    if space in (pikepdf.Name.DeviceGray, pikepdf.Name.CalGray):
        return 1
    if space in (pikepdf.Name.DeviceRGB, pikepdf.Name.CalRGB):
        return 3
    if space == pikepdf.Name.DeviceCMYK:
        return 4
    if isinstance(space, pikepdf.Array) and len(space) >= 2:
        family = space[0]
        if family in (pikepdf.Name.CalGray,):
            return 1
        if family in (pikepdf.Name.CalRGB,):
            return 3
        if family == pikepdf.Name.ICCBased and isinstance(space[1], pikepdf.Stream):
            n = space[1].stream_dict.get("/N")
            return n if n in (1, 3, 4) else None
    return None


def _indexed(space: Any) -> bool:
    import pikepdf

    return (
        isinstance(space, pikepdf.Array)
        and len(space) == 4
        and space[0] in (pikepdf.Name.Indexed, pikepdf.Name.I)
        and _colour_space_components(space[1]) in (1, 3)
    )


_MODES = {1: "L", 3: "RGB", 4: "CMYK"}


class _Picture:
    """A decoded picture: `image` (a JPEG not loaded yet, so it can be decoded at a reduced
    scale), the `mode` it is written in (L, RGB or CMYK), whether its samples are the complement
    of the colour they stand for (`inverted`), and the ICC profile a JPEG 2000 carried (`icc`)."""

    def __init__(self, image: Any, mode: str, *, inverted: bool = False, icc: bytes | None = None) -> None:
        self.image, self.mode, self.inverted, self.icc = image, mode, inverted, icc


def _decoded(obj: Any, budget: _Budget) -> _Picture | None:
    """The picture in L, RGB or CMYK, or None when it is not worth the risk."""
    import pikepdf
    from PIL import Image

    d = obj.stream_dict
    width, height = int(d.Width), int(d.Height)
    budget.spend(width * height)
    filters = _filters(obj)
    components = _colour_space_components(d.get("/ColorSpace"))
    if filters == ["/JPXDecode"]:
        return _decoded_jpx(obj.read_raw_bytes(), (width, height), components)
    if filters == ["/DCTDecode"]:
        im = Image.open(io.BytesIO(obj.read_raw_bytes()), formats=["JPEG"])
        if im.size[0] * im.size[1] > MAX_IMAGE_PIXELS or im.mode not in ("L", "RGB", "CMYK"):
            return None
        if im.mode == "CMYK":
            if components != 4:
                return None
            # In a PDF the colour is the JPEG's samples as decoded, then /Decode (as pdf.js reads
            # them); Pillow hands back the complements of CMYK samples (Adobe's convention).
            return _Picture(im, "CMYK", inverted=not _cmyk_inverted(d))
        return _Picture(im, im.mode)
    if components == 4:
        return _decoded_cmyk_samples(obj, width, height)
    if filters == ["/FlateDecode"] and not _inflates_within(
        obj.read_raw_bytes(), width * height * (components or 1) + height + 1024
    ):
        return None  # decodes to more than its size says: a bomb, or damage
    image = pikepdf.PdfImage(obj).as_pil_image()
    if image.mode == "P":
        image = image.convert("RGB")
    return _Picture(image, image.mode) if image.mode in ("L", "RGB") else None


def _decoded_cmyk_samples(obj: Any, width: int, height: int) -> _Picture | None:
    """A CMYK picture stored as plain samples (Flate and the like), read as they are."""
    from PIL import Image

    expected = width * height * 4
    if _filters(obj) == ["/FlateDecode"] and not _inflates_within(obj.read_raw_bytes(), expected + height + 1024):
        return None
    samples = obj.read_bytes()
    if len(samples) < expected:
        return None  # damaged: too short for its size
    image = Image.frombytes("CMYK", (width, height), samples[:expected])
    return _Picture(image, "CMYK", inverted=_cmyk_inverted(obj.stream_dict))


def _decoded_jpx(raw: bytes, size: tuple[int, int], components: int | None) -> _Picture | None:
    """A JPEG 2000 picture in grey or colour the size its dictionary says; its alpha channel, if
    any, dropped (a PDF without /SMaskInData ignores it). None for anything else."""
    from PIL import Image

    try:
        im = Image.open(io.BytesIO(raw), formats=["JPEG2000"])
        if im.size != size:
            return None  # its dictionary's size, already bounded, is the one that counts
        im.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None  # a codestream OpenJPEG cannot read: left as it is
    colour = {"L": "L", "LA": "L", "RGB": "RGB", "RGBA": "RGB"}.get(im.mode)
    if colour is None or (components is not None and _MODES.get(components) != colour):
        return None
    image = im if im.mode == colour else im.convert(colour)
    icc = im.info.get("icc_profile") if components is None else None
    return _Picture(image, colour, icc=icc)


def _decoded_mask(mask: Any, budget: _Budget) -> Any:
    """A soft mask as an L image, or None when it is not worth the risk."""
    from PIL import Image

    d = mask.stream_dict
    width, height = int(d.Width), int(d.Height)
    budget.spend(width * height)
    if _filters(mask) == ["/DCTDecode"]:
        im = Image.open(io.BytesIO(mask.read_raw_bytes()), formats=["JPEG"])
        return im if im.size == (width, height) and im.mode == "L" else None
    most = width * height + height + 1024  # the samples, and a predictor's byte a row
    if _filters(mask) == ["/FlateDecode"] and not _inflates_within(mask.read_raw_bytes(), most):
        return None  # a bomb, or damage
    samples = mask.read_bytes()
    if len(samples) < width * height:
        return None
    return Image.frombytes("L", (width, height), samples[: width * height])


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
    """Re-encode one picture (and scale its soft mask with it) within `share` bytes if it can, at
    the first of `DPI_STEPS` that fits (else the last); returns the bytes they take now. They are
    kept as they were unless that is smaller."""
    import pikepdf
    from PIL import ImageChops

    picture = _decoded(obj, budget)
    if picture is None:
        return size
    d = obj.stream_dict
    old_mask = d.get("/SMask")
    mask = _decoded_mask(old_mask, budget) if old_mask is not None else None
    if old_mask is not None and mask is None:
        return size
    image = picture.image
    kept_mask_size = size - len(obj.read_raw_bytes())  # what the mask takes if it stays as it is
    best: tuple[bytes, tuple[int, int], bytes | None] | None = None
    for dpi, quality in DPI_STEPS:
        side = math.ceil(longest_page / 72 * dpi)
        if max(image.size) > side:  # a JPEG decodes straight at a reduced scale (once, before it loads)
            scale = side / max(image.size)
            image.draft(image.mode, (math.ceil(image.size[0] * scale), math.ceil(image.size[1] * scale)))
        scaled = _shrink(image if image.mode == picture.mode else image.convert(picture.mode), side)
        if picture.inverted:
            scaled = ImageChops.invert(scaled)  # scaling is linear: inverting after it is the same
        out = io.BytesIO()
        # Pillow writes CMYK as Adobe does (complemented samples): the /Decode below undoes that.
        scaled.save(out, "JPEG", quality=quality, optimize=True)
        new_mask = _flate_mask(mask, scaled.size) if _mask_follows(mask, scaled.size, old_mask) else None
        best = (out.getvalue(), scaled.size, new_mask)
        total = len(best[0]) + (len(new_mask) if new_mask is not None else kept_mask_size)
        if total <= share:
            break
    assert best is not None
    encoded, (width, height), new_mask = best
    if total >= size:
        return size
    grey = picture.mode == "L"
    keep_space = _colour_space_components(d.get("/ColorSpace")) == {"L": 1, "RGB": 3, "CMYK": 4}[picture.mode]
    obj.write(encoded, filter=pikepdf.Name.DCTDecode)
    d.Width, d.Height, d.BitsPerComponent = width, height, 8
    for key in ("/DecodeParms", "/Decode", "/SMaskInData"):
        if key in d:
            del d[key]
    if picture.mode == "CMYK":
        d.Decode = pikepdf.Array(list(_CMYK_INVERTED))  # its colour space, device or ICC, is kept
    elif picture.icc is not None:
        profile = pdf.make_stream(picture.icc, N=1 if grey else 3)
        d.ColorSpace = pikepdf.Array([pikepdf.Name.ICCBased, profile])
    elif not keep_space:
        d.ColorSpace = pikepdf.Name.DeviceGray if grey else pikepdf.Name.DeviceRGB
    if new_mask is not None:
        d.SMask = _mask_stream(pdf, new_mask, (width, height), old_mask.stream_dict.get("/Matte"))
    return total


def _mask_follows(mask: Any, size: tuple[int, int], old_mask: Any) -> bool:
    """Whether a soft mask is scaled to its picture's new `size`: when it is larger (a mask and
    its picture both cover the same square, whatever their sizes, so a smaller one stays aligned)
    or when a /Matte says the two are the same size."""
    if mask is None or mask.size == size:
        return False
    return "/Matte" in old_mask.stream_dict or mask.size[0] * mask.size[1] > size[0] * size[1]


def _flate_mask(mask: Any, size: tuple[int, int]) -> bytes:
    """The mask at `size`, Flate-compressed: lossless, so its edges stay clean."""
    from PIL import Image

    return zlib.compress(mask.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0).tobytes(), 9)


def _mask_stream(pdf: Any, compressed: bytes, size: tuple[int, int], matte: Any) -> Any:
    """A new soft-mask stream (the old one may be another picture's too) of 8-bit grey samples."""
    import pikepdf

    mask = pdf.make_stream(b"")
    mask.write(compressed, filter=pikepdf.Name.FlateDecode)
    md = mask.stream_dict
    md.Type, md.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
    md.Width, md.Height, md.BitsPerComponent = size[0], size[1], 8
    md.ColorSpace = pikepdf.Name.DeviceGray
    if matte is not None:
        md.Matte = matte
    return mask
