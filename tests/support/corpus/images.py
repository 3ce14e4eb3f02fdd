"""Picture samples (JPEG, PNG, TIFF) made with Pillow, good and bad."""

from __future__ import annotations

import io
import struct
import zlib

from tests.support.corpus.common import zip_bytes


def _image(fmt: str, size: tuple[int, int] = (64, 48), mode: str = "RGB", **save: object) -> bytes:
    from PIL import Image

    img = Image.new(mode, size, "white" if mode != "1" else 1)
    out = io.BytesIO()
    img.save(out, fmt, **save)
    return out.getvalue()


def jpeg_good() -> bytes:
    return _image("JPEG", quality=80)


def png_good() -> bytes:
    return _image("PNG")


def tiff_good() -> bytes:
    """Good: a two-page fax-style TIFF, as a scanner writes."""
    from PIL import Image

    pages = [Image.new("1", (200, 100), 1), Image.new("1", (200, 100), 0)]
    out = io.BytesIO()
    pages[0].save(out, "TIFF", compression="group4", save_all=True, append_images=pages[1:])
    return out.getvalue()


def tiff_pages(count: int) -> bytes:
    from PIL import Image

    pages = [Image.new("1", (8, 8), 1) for _ in range(count)]
    out = io.BytesIO()
    pages[0].save(out, "TIFF", save_all=True, append_images=pages[1:])
    return out.getvalue()


def png_of_pixels(width: int, height: int) -> bytes:
    """A real, fully decodable black-and-white PNG of the given size (tiny when compressed)."""
    return _image("PNG", (width, height), mode="1", optimize=False)


def png_header_claims(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size, with almost no data: a decompression bomb shape."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def png_truncated() -> bytes:
    data = _image("PNG", (300, 300), mode="RGB")
    return data[: len(data) // 2]


def png_bad_crc() -> bytes:
    data = bytearray(png_good())
    pos = data.find(b"IDAT") + 6
    data[pos] ^= 0xFF
    return bytes(data)


def png_trailing() -> bytes:
    return png_good() + b"hidden payload after the picture"


def jpeg_truncated() -> bytes:
    from PIL import Image

    img = Image.effect_noise((256, 256), 64).convert("RGB")
    out = io.BytesIO()
    img.save(out, "JPEG")
    data = out.getvalue()
    return data[: len(data) // 2]


def jpeg_zip_polyglot() -> bytes:
    return jpeg_good() + zip_bytes({"payload.js": b"alert(1)"})


def jpeg_trailing() -> bytes:
    return jpeg_good() + b"<?php system($_GET['c']); ?>"


def jpeg_with_second_image() -> bytes:
    """Good: a second JPEG after the first, as phones store depth or HDR maps (MPF)."""
    return jpeg_good() + jpeg_good()


def jpeg_html_comment() -> bytes:
    """A JPEG comment segment that is a web page (old browsers sniffed these as HTML)."""
    data = jpeg_good()
    comment = b"<html><script>alert(1)</script></html>"
    segment = b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment
    return data[:2] + segment + data[2:]


def tiff_truncated() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.effect_noise((200, 200), 64).save(out, "TIFF")
    data = out.getvalue()
    return data[: len(data) // 2]


def tiff_pdf_polyglot() -> bytes:
    """A TIFF whose first kilobyte carries a PDF header (PDF readers look that far)."""
    return _tiff_with_prefix_payload(b"%PDF-1.7\n")


def _tiff_with_prefix_payload(payload: bytes) -> bytes:
    from PIL import Image, TiffImagePlugin

    info = TiffImagePlugin.ImageFileDirectory_v2()
    info[270] = payload.decode("latin-1") + "x" * 8  # ImageDescription, written near the start
    out = io.BytesIO()
    Image.new("1", (8, 8), 1).save(out, "TIFF", tiffinfo=info)
    return out.getvalue()
