"""PDF: what a PDF may not contain (JavaScript, launch actions, attached files, rich media, XFA
forms, data-sending form actions, unsafe links, automatic actions) and when it counts as damaged,
truncated, password-protected or padded with hidden data."""

from __future__ import annotations

import io
from typing import Any

from shared_code.filetypes.active_content import unsafe_link
from shared_code.filetypes.common import Refusal, damaged, encrypted

_PDF_PRIORITY = (
    "pdf_javascript",
    "pdf_launch",
    "pdf_embedded_file",
    "pdf_rich_media",
    "pdf_xfa",
    "pdf_data_action",
    "unsafe_link",
    "pdf_auto_action",
)
_PDF_MEDIA_SUBTYPES = {"/RichMedia", "/Movie", "/Sound", "/Screen", "/3D"}
_PDF_MEDIA_ACTIONS = {"/Rendition", "/Movie", "/Sound", "/RichMediaExecute", "/GoTo3DView"}


def validate_pdf(data: bytes) -> None:
    """Raise a `Refusal` for a PDF with active content, no pages, damage, a password or data after its end."""
    import pikepdf

    end = data.rstrip(b"\x00\t\n\r\f ")
    if not end.endswith(b"%%EOF"):
        raise Refusal("trailing_data" if b"%%EOF" in data[-4096:] else "pdf_truncated")
    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except pikepdf.PasswordError:
        raise encrypted("pdf") from None
    except pikepdf.PdfError:
        raise damaged("pdf") from None
    with pdf:
        # An owner-password-only PDF (permissions, no open password) opens for everyone;
        # qpdf has decrypted it, so its content is checked like any other.
        findings: set[str] = set()
        _pdf_scan_object(pdf.trailer, findings)
        for obj in pdf.objects:
            _pdf_scan_object(obj, findings)
        for rule in _PDF_PRIORITY:
            if rule in findings:
                raise Refusal(rule)
        if len(pdf.pages) == 0:
            raise Refusal("pdf_no_pages")
        for page in pdf.pages:
            # Decodes and tokenises every content stream: catches corrupt or truncated data.
            pikepdf.parse_content_stream(page)


def _pdf_scan_object(obj: Any, findings: set[str]) -> None:
    """Record dangerous features of `obj` and its direct (not indirect) children."""
    import pikepdf

    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, pikepdf.Stream):
            _pdf_check_dict(item.stream_dict, findings)
            children = list(item.stream_dict.values())
        elif isinstance(item, pikepdf.Dictionary):
            _pdf_check_dict(item, findings)
            children = list(item.values())
        elif isinstance(item, pikepdf.Array):
            children = list(item)
        else:
            continue
        # Indirect objects are visited on their own from pdf.objects; this avoids cycles.
        stack.extend(
            c
            for c in children
            if isinstance(c, (pikepdf.Dictionary, pikepdf.Array, pikepdf.Stream)) and not c.is_indirect
        )


def _pdf_name(d: Any, key: str) -> str | None:
    import pikepdf

    value = d.get(key)
    return str(value) if isinstance(value, pikepdf.Name) else None


def _pdf_check_dict(d: Any, findings: set[str]) -> None:
    import pikepdf

    keys = set(d.keys())
    action = _pdf_name(d, "/S")
    subtype = _pdf_name(d, "/Subtype")
    type_ = _pdf_name(d, "/Type")
    if "/JS" in keys or action == "/JavaScript" or "/JavaScript" in keys:
        findings.add("pdf_javascript")
    if action in ("/Launch", "/GoToR") or type_ == "/Launch":
        findings.add("pdf_launch")
    if (
        keys & {"/EmbeddedFiles", "/EF"}
        or type_ == "/EmbeddedFile"
        or subtype == "/FileAttachment"
        or action == "/GoToE"
    ):
        findings.add("pdf_embedded_file")
    if subtype in _PDF_MEDIA_SUBTYPES or action in _PDF_MEDIA_ACTIONS or "/RichMediaContent" in keys:
        findings.add("pdf_rich_media")
    if "/XFA" in keys:
        findings.add("pdf_xfa")
    if action in ("/SubmitForm", "/ImportData"):
        findings.add("pdf_data_action")
    if action == "/URI":
        uri = d.get("/URI")
        if isinstance(uri, pikepdf.String) and unsafe_link(bytes(uri).decode("latin-1")):
            findings.add("unsafe_link")
    if "/OpenAction" in keys and not _pdf_harmless_auto(d.get("/OpenAction")):
        findings.add("pdf_auto_action")
    if "/AA" in keys:
        triggers = d.get("/AA")
        if not isinstance(triggers, pikepdf.Dictionary) or not all(_pdf_harmless_auto(t) for t in triggers.values()):
            findings.add("pdf_auto_action")


def _pdf_harmless_auto(action: Any, depth: int = 0) -> bool:
    """An automatic action is harmless only when it just goes to a place in the document."""
    import pikepdf

    if depth > 50:
        return False
    if isinstance(action, (pikepdf.Array, pikepdf.Name, pikepdf.String)):
        return True  # an explicit or named destination
    if not isinstance(action, pikepdf.Dictionary):
        return False
    if _pdf_name(action, "/S") != "/GoTo":
        return False
    nxt = action.get("/Next")
    if nxt is None:
        return True
    chain = list(nxt) if isinstance(nxt, pikepdf.Array) else [nxt]
    return all(isinstance(a, pikepdf.Dictionary) and _pdf_harmless_auto(a, depth + 1) for a in chain)
