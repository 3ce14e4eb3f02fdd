"""Pictures (JPEG, PNG, TIFF): decoded in full by Pillow; rejected when damaged, too large (pixels
per frame, frames, pixels over all frames) or followed by hidden data after the picture's end."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from typing import Any

from shared_code.filetypes.common import (
    MAX_IMAGE_FRAMES,
    MAX_IMAGE_PIXELS,
    MAX_IMAGE_TOTAL_PIXELS,
    Refusal,
    damaged,
)


def validate_image(data: bytes, kind: str, pil_format: str) -> None:
    """Raise a `Refusal` for a picture of `kind` (Pillow format `pil_format`) that is damaged, too large or padded."""
    import warnings

    from PIL import Image

    def opened() -> Any:
        return Image.open(io.BytesIO(data), formats=[pil_format])

    with warnings.catch_warnings():
        # Pillow warns, then carries on, on corrupt tags or EXIF: here that counts as damage.
        warnings.simplefilter("error")
        try:
            with opened() as im:
                frames = getattr(im, "n_frames", 1)
                if frames > MAX_IMAGE_FRAMES:
                    raise Refusal("image_frames")
                _check_pixels(im.size)
                im.verify()  # checksums and structure; the image must be reopened after it
            total = 0
            with opened() as im:
                for index in range(frames):
                    im.seek(index)
                    _check_pixels(im.size)
                    total += im.size[0] * im.size[1]
                    if total > MAX_IMAGE_TOTAL_PIXELS:
                        raise Refusal("image_too_large")
                    im.load()  # decodes every pixel: catches truncated or corrupt data
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise Refusal("image_too_large") from None
        except Refusal:
            raise
        except Exception:  # noqa: BLE001
            raise damaged(kind) from None
    trailer = _TRAILERS[kind](data)
    if (
        trailer
        and trailer.strip(b"\x00\xff\r\n\t ")
        and not (
            kind == "jpeg" and trailer.startswith(b"\xff\xd8\xff")  # MPF: more pictures follow
        )
    ):
        raise Refusal("image_trailing_data")


def _check_pixels(size: tuple[int, int]) -> None:
    width, height = size
    if width * height > MAX_IMAGE_PIXELS:
        raise Refusal("image_too_large")


def _png_trailer(data: bytes) -> bytes:
    """Whatever follows the IEND chunk."""
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        chunk_type = data[pos + 4 : pos + 8]
        pos += 12 + length
        if chunk_type == b"IEND":
            return data[pos:]
    return b""


def _jpeg_trailer(data: bytes) -> bytes:
    """Whatever follows the end-of-image marker of the first picture."""
    pos = 2
    n = len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return b""  # not at a marker: Pillow has judged the structure already
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1  # fill byte
            continue
        if marker == 0xD9:
            return data[pos + 2 :]
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        pos += 2 + length
        if marker == 0xDA:  # start of scan: entropy-coded data runs to the next real marker
            while pos + 1 < n:
                if data[pos] == 0xFF and data[pos + 1] != 0x00 and not 0xD0 <= data[pos + 1] <= 0xD7:
                    break
                pos += 1
    return b""


_TRAILERS: dict[str, Callable[[bytes], bytes]] = {
    "png": _png_trailer,
    "jpeg": _jpeg_trailer,
    "tiff": lambda data: b"",  # TIFF is offset-addressed: no defined end to check
}
