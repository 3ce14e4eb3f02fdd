"""Resource bombs: small files that decode into huge work (issue 13, section 1).

Each is well under the upload limit and otherwise harmless; checking one naively takes gigabytes
of memory or minutes of CPU. Every one must be rejected as "too complex to check safely".
"""

from __future__ import annotations

import base64
import random
import zlib

from tests.support.corpus.containers import docx, odt
from tests.support.corpus.pdf import _pdf_objects, _stream, raw_pdf

#: `q Q ` is the smallest pair of content-stream operators (save and restore the graphics state).
_PAIR = b"q Q "


def _flate(data: bytes) -> bytes:
    return zlib.compress(data, 9)


def pdf_operator_bomb(pairs: int = 6_000_000) -> bytes:
    """The measured one: a ~23 kB PDF whose one Flate content stream is `q Q` repeated 6 million times."""
    objects = _pdf_objects()
    objects[3] = _stream(_flate(_PAIR * pairs), b"/Filter /FlateDecode ")
    return raw_pdf(objects)


def pdf_many_streams(streams: int = 400, pairs_each: int = 50_000) -> bytes:
    """Many small Flate content streams on one page: each is modest, together ~80 MB and 40 million operators."""
    objects = _pdf_objects()
    first = len(objects) + 1
    refs = b" ".join(b"%d 0 R" % (first + i) for i in range(streams))
    objects[2] = objects[2].replace(b"/Contents 4 0 R", b"/Contents [" + refs + b"]")
    body = _stream(_flate(_PAIR * pairs_each), b"/Filter /FlateDecode ")
    return raw_pdf(objects + [body] * streams)


def pdf_inflated_stream(megabytes: int = 100) -> bytes:
    """One content stream that inflates to 100 MB (blank space: no operators at all)."""
    objects = _pdf_objects()
    objects[3] = _stream(_flate(b" " * (megabytes * 1024 * 1024)), b"/Filter /FlateDecode ")
    return raw_pdf(objects)


def pdf_deep_nesting(depth: int = 400) -> bytes:
    """An array nested `depth` levels deep in the page dictionary (each level one more `[`)."""
    return raw_pdf(_pdf_objects(page_extra=b"/Deep " + b"[" * depth + b"]" * depth + b" "))


def pdf_huge_page_count(pages: int = 20_000) -> bytes:
    """20,000 blank pages in ~1.4 MB: each page is one tiny object inheriting its size from the tree."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = b" ".join(b"%d 0 R" % (3 + i) for i in range(pages))
    objects.append(b"<< /Type /Pages /MediaBox [0 0 595 842] /Kids [" + kids + b"] /Count %d >>" % pages)
    objects += [b"<< /Type /Page /Parent 2 0 R >>"] * pages
    return raw_pdf(objects)


def pdf_shared_page_tree(fanout: int = 20, levels: int = 5) -> bytes:
    """A page tree whose nodes list the same child `fanout` times: 20**5 = 3.2 million pages from ~30 objects.

    qpdf refuses such a tree as a loop, so this one is damaged rather than too complex.
    """
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    # Object 2 is the root node; each level's node lists the next level's node `fanout` times.
    for level in range(levels):
        number = 2 + level
        count = fanout ** (levels - level)
        parent = b"" if level == 0 else b"/Parent %d 0 R " % (number - 1)
        kids = b" ".join([b"%d 0 R" % (number + 1)] * fanout)
        objects.append(b"<< /Type /Pages " + parent + b"/Kids [" + kids + b"] /Count %d >>" % count)
    page = 2 + levels
    objects.append(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] /Contents %d 0 R >>" % (page - 1, page + 1))
    objects.append(_stream(b"BT ET"))
    return raw_pdf(objects)


def _incompressible_comment(size: int) -> str:
    """An XML comment of `size` random base64 characters: it keeps the entry's compression ratio low."""
    noise = base64.b64encode(random.Random(13).randbytes(size * 3 // 4)).decode()
    return f"<!-- {noise} -->"


def docx_deep_xml(depth: int = 2_500_000) -> bytes:
    """word/document.xml nesting 2.5 million elements, padded so its ratio passes the zip-bomb check."""
    nested = "<x>" * depth + "</x>" * depth
    # ~17 MB of XML needs ~175 kB of compressed data to stay under 100:1; random base64 gives that.
    return docx(_incompressible_comment(260_000) + nested)


def docx_many_elements(count: int = 1_200_000) -> bytes:
    """word/document.xml with 1.2 million flat empty elements (no depth), padded past the ratio check."""
    return docx(_incompressible_comment(80_000) + "<x/>" * count)


def odt_deep_xml(depth: int = 1_000_000) -> bytes:
    """content.xml nesting a million elements, padded past the ratio check."""
    nested = "<x>" * depth + "</x>" * depth
    return odt(_incompressible_comment(110_000) + nested)
