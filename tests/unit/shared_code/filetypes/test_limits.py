"""The work limits of `validate` (issue 13), each exactly at the limit and one over it: PDF
operators, decoded content bytes, pages, objects and nesting; XML depth and element count."""

from __future__ import annotations

import io
import re
import zipfile
import zlib

from defusedxml.ElementTree import iterparse

from shared_code.filetypes import TYPES, validate
from shared_code.filetypes.common import (
    MAX_PDF_DECODED_BYTES,
    MAX_PDF_NESTING,
    MAX_PDF_OBJECTS,
    MAX_PDF_OPERATORS,
    MAX_PDF_PAGES,
    MAX_XML_DEPTH,
    MAX_XML_ELEMENTS,
)
from tests.support import corpus
from tests.support.corpus.bombs import _incompressible_comment, pdf_huge_page_count
from tests.support.corpus.pdf import _pdf_objects, _stream, raw_pdf
from tests.support.filetype_checks import rejected

TOO_COMPLEX = "is too complex to check safely"


def _too_complex(data: bytes, kind: str) -> None:
    error = rejected(data, kind)
    assert (error.rule, error.reason) == ("too_complex", TOO_COMPLEX)


def _pdf_with_content(content: bytes) -> bytes:
    objects = _pdf_objects()
    objects[3] = _stream(zlib.compress(content, 9), b"/Filter /FlateDecode ")
    return raw_pdf(objects)


# -- PDF ------------------------------------------------------------------------------------------


def test_pdf_operators_at_the_limit_pass_and_one_more_is_too_complex() -> None:
    assert MAX_PDF_OPERATORS % 2 == 0
    validate(_pdf_with_content(b"q Q " * (MAX_PDF_OPERATORS // 2)), TYPES["pdf"])
    _too_complex(_pdf_with_content(b"q Q " * (MAX_PDF_OPERATORS // 2) + b"q"), "pdf")


def test_pdf_operators_are_counted_across_pages_and_streams() -> None:
    # Two pages sharing one stream of just over half the limit: each alone would pass.
    half = _stream(zlib.compress(b"q Q " * (MAX_PDF_OPERATORS // 4 + 1), 9), b"/Filter /FlateDecode ")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 /MediaBox [0 0 595 842] >>",
        b"<< /Type /Page /Parent 2 0 R /Contents 5 0 R >>",
        b"<< /Type /Page /Parent 2 0 R /Contents [5 0 R] >>",
        half,
    ]
    _too_complex(raw_pdf(objects), "pdf")


def test_pdf_decoded_content_at_the_limit_passes_and_one_byte_more_is_too_complex() -> None:
    validate(_pdf_with_content(b" " * MAX_PDF_DECODED_BYTES), TYPES["pdf"])
    _too_complex(_pdf_with_content(b" " * (MAX_PDF_DECODED_BYTES + 1)), "pdf")


def test_pdf_decoded_bytes_are_counted_for_unfiltered_and_other_filters_too() -> None:
    # Uncompressed streams cannot be big (the upload limit), but a filter chain can: ASCIIHex then Flate.
    packed = zlib.compress(b" " * (MAX_PDF_DECODED_BYTES + 1), 9).hex().encode() + b">"
    objects = _pdf_objects()
    objects[3] = _stream(packed, b"/Filter [/ASCIIHexDecode /FlateDecode] ")
    _too_complex(raw_pdf(objects), "pdf")


def test_pdf_pages_at_the_limit_pass_and_one_more_is_too_complex() -> None:
    validate(pdf_huge_page_count(MAX_PDF_PAGES), TYPES["pdf"])
    _too_complex(pdf_huge_page_count(MAX_PDF_PAGES + 1), "pdf")


def test_pdf_pages_are_counted_even_when_the_tree_understates_them() -> None:
    declared = b"/Count %d" % (MAX_PDF_PAGES + 1)
    data = pdf_huge_page_count(MAX_PDF_PAGES + 1).replace(declared, b"/Count 1".ljust(len(declared)))  # same offsets
    _too_complex(data, "pdf")


def test_pdf_declared_object_count_at_the_limit_passes_and_one_more_is_too_complex() -> None:
    good = corpus.pdf_good()
    validate(re.sub(rb"/Size \d+", b"/Size %d" % MAX_PDF_OBJECTS, good), TYPES["pdf"])
    _too_complex(re.sub(rb"/Size \d+", b"/Size %d" % (MAX_PDF_OBJECTS + 1), good), "pdf")


def test_pdf_nesting_at_the_limit_passes_and_one_level_more_is_too_complex() -> None:
    # The page dictionary is the first level; each `[` adds one.
    arrays = MAX_PDF_NESTING - 1
    validate(corpus.pdf_with(page_extra=b"/Deep " + b"[" * arrays + b"]" * arrays + b" "), TYPES["pdf"])
    arrays += 1
    _too_complex(corpus.pdf_with(page_extra=b"/Deep " + b"[" * arrays + b"]" * arrays + b" "), "pdf")


# -- DOCX and ODT -----------------------------------------------------------------------------------


def _elements(data: bytes) -> int:
    """Elements in every XML part of a package (what `validate` counts)."""
    total = 0
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in zf.namelist():
            if name.endswith((".xml", ".rels")):
                total += sum(1 for event, _ in iterparse(zf.open(name), events=("start",)))
    return total


def test_xml_depth_at_the_limit_passes_and_one_level_more_is_too_complex() -> None:
    # w:document and w:body are levels 1 and 2.
    nested = MAX_XML_DEPTH - 2
    validate(corpus.docx("<x>" * nested + "</x>" * nested), TYPES["docx"])
    nested += 1
    _too_complex(corpus.docx("<x>" * nested + "</x>" * nested), "docx")


def test_odt_depth_over_the_limit_is_too_complex() -> None:
    # office:document-content, office:body and office:text are levels 1 to 3.
    nested = MAX_XML_DEPTH - 3
    validate(corpus.odt("<x>" * nested + "</x>" * nested), TYPES["odt"])
    nested += 1
    _too_complex(corpus.odt("<x>" * nested + "</x>" * nested), "odt")


def test_xml_elements_at_the_limit_pass_and_one_more_is_too_complex() -> None:
    padding = _incompressible_comment(60_000)  # keeps the part under the zip-bomb ratio
    base = _elements(corpus.docx(padding))
    validate(corpus.docx(padding + "<x/>" * (MAX_XML_ELEMENTS - base)), TYPES["docx"])
    _too_complex(corpus.docx(padding + "<x/>" * (MAX_XML_ELEMENTS - base + 1)), "docx")


def test_xml_elements_are_counted_across_parts() -> None:
    # Half the limit and one more in the document and again in the styles: each alone would pass.
    padding = _incompressible_comment(40_000)
    half = padding + "<x/>" * (MAX_XML_ELEMENTS // 2 + 1)
    extra = f'<w:root xmlns:w="{corpus.W_NS}">{half}</w:root>'.encode()
    _too_complex(corpus.docx(half, extra_parts={"word/styles.xml": extra}), "docx")
