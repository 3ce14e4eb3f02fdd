"""What a reader of a PDF sees, to compare a document before and after it was changed."""

from __future__ import annotations

import io


def shown_text(data: bytes) -> list[list[bytes]]:
    """Per page of a PDF, the strings its text operators show: the text a reader extracts."""
    import pikepdf

    pages = []
    with pikepdf.open(io.BytesIO(data)) as pdf:
        for page in pdf.pages:
            strings = []
            for operands, operator in pikepdf.parse_content_stream(page):
                if str(operator) in ("Tj", "'", '"'):
                    strings.append(bytes(operands[-1]))
                elif str(operator) == "TJ":
                    strings.extend(bytes(item) for item in operands[0] if isinstance(item, pikepdf.String))
            pages.append(strings)
    return pages


def page_boxes(data: bytes) -> list[list[float]]:
    """Each page's media box."""
    import pikepdf

    with pikepdf.open(io.BytesIO(data)) as pdf:
        return [[float(v) for v in page.mediabox] for page in pdf.pages]
