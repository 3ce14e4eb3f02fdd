"""PDF: what a PDF may not contain (JavaScript, launch actions, attached files, rich media, XFA
forms, data-sending form actions, unsafe links, automatic actions; and, not for the patient, sticky
notes and hidden layers) and when it counts as damaged, truncated, password-protected or padded
with hidden data.

A small PDF can decode into huge work (a 23 kB Flate stream of six million operators), so the
checks are bounded: objects, pages and nesting are counted before anything is expanded, content
streams are inflated in chunks against a byte budget, and operators are counted as they stream
past instead of being collected. Over any limit the file is "too_complex".
"""

from __future__ import annotations

import io
from typing import Any

from shared_code.filetypes.active_content import unsafe_link
from shared_code.filetypes.common import (
    MAX_PDF_DECODED_BYTES,
    MAX_PDF_NESTING,
    MAX_PDF_OBJECTS,
    MAX_PDF_OPERATORS,
    MAX_PDF_PAGES,
    Refusal,
    damaged,
    encrypted,
)

_PDF_PRIORITY = (
    "pdf_javascript",
    "pdf_launch",
    "pdf_embedded_file",
    "pdf_rich_media",
    "pdf_xfa",
    "pdf_data_action",
    "unsafe_link",
    "pdf_auto_action",
    # Hidden from the page but there for anyone who looks: asked for once the file is otherwise safe.
    "pdf_sticky_notes",
    "pdf_hidden_layers",
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
        size = pdf.trailer.get("/Size")
        if isinstance(size, int) and size > MAX_PDF_OBJECTS:
            raise Refusal("too_complex")
        _pdf_check_page_tree(pdf)
        objects = pdf.objects
        if len(objects) > MAX_PDF_OBJECTS:
            raise Refusal("too_complex")
        findings: set[str] = set()
        _pdf_scan_object(pdf.trailer, findings)
        for obj in objects:
            _pdf_scan_object(obj, findings)
        if _pdf_hidden_layers(pdf):
            findings.add("pdf_hidden_layers")
        for rule in _PDF_PRIORITY:
            if rule in findings:
                raise Refusal(rule)
        if len(pdf.pages) == 0:
            raise Refusal("pdf_no_pages")
        _pdf_check_contents(pdf)


def _pdf_check_page_tree(pdf: Any) -> None:
    """Refuse a page tree with more than `MAX_PDF_PAGES` pages, declared or found, before qpdf
    expands it (a node listing the same child many times multiplies pages at every level)."""
    import pikepdf

    root = pdf.Root.get("/Pages")
    if not isinstance(root, pikepdf.Dictionary):
        return  # no page tree: reported as "no pages" or damage later
    declared = root.get("/Count")
    if isinstance(declared, int) and declared > MAX_PDF_PAGES:
        raise Refusal("too_complex")
    seen: set[tuple[int, int]] = set()
    leaves = 0
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_indirect:
            if node.objgen in seen:
                continue  # a loop or a shared node: qpdf's own page walk judges it (as damage)
            seen.add(node.objgen)
        kids = node.get("/Kids")
        if isinstance(kids, pikepdf.Array):
            if len(kids) > MAX_PDF_PAGES:
                raise Refusal("too_complex")
            stack.extend(k for k in kids if isinstance(k, pikepdf.Dictionary))
        else:
            leaves += 1
        if leaves > MAX_PDF_PAGES or len(seen) > 2 * MAX_PDF_PAGES:
            raise Refusal("too_complex")


class _Budget:
    """What decoding this document's content streams has cost so far."""

    def __init__(self) -> None:
        self.decoded = 0


def _pdf_check_contents(pdf: Any) -> None:
    """Decode and tokenise every page's content: catches corrupt or truncated data, within limits.

    Each stream is first inflated in chunks and only counted (never kept), so the total decoded
    size is known before qpdf decodes it for real; then the operators are counted one by one as
    qpdf's tokenizer hands them over, stopping at `MAX_PDF_OPERATORS`.
    """
    import pikepdf

    budget = _Budget()
    for page in pdf.pages:
        contents = page.obj.get("/Contents")
        streams = list(contents) if isinstance(contents, pikepdf.Array) else [contents]
        for stream in streams:
            if isinstance(stream, pikepdf.Stream):
                _pdf_measure_stream(stream, budget)
    _pdf_count_operators(pdf)


def _pdf_measure_stream(stream: Any, budget: _Budget) -> None:
    """Add the decoded size of one content stream to `budget`; "too_complex" past the limit."""
    import zlib

    import pikepdf

    filters = stream.stream_dict.get("/Filter")
    names = [str(f) for f in filters] if isinstance(filters, pikepdf.Array) else [str(filters)]
    if filters is None:
        budget.decoded += len(stream.read_raw_bytes())
    elif names in (["/FlateDecode"], ["/Fl"]) and stream.stream_dict.get("/DecodeParms") is None:
        # The common case, streamed: never more than one chunk of the output in memory.
        inflater = zlib.decompressobj()
        pending = stream.read_raw_bytes()
        while not inflater.eof:
            try:
                chunk = inflater.decompress(pending, 1 << 20)
            except zlib.error:
                break  # corrupt data: qpdf's own decoding below judges it (it repairs some)
            pending = inflater.unconsumed_tail
            budget.decoded += len(chunk)
            if budget.decoded > MAX_PDF_DECODED_BYTES:
                raise Refusal("too_complex")
            if not chunk and not pending:
                break  # the data ends early: likewise left to qpdf
    else:
        # Rarer filter chains: qpdf decodes them (the worker's memory ceiling bounds this).
        budget.decoded += len(stream.read_bytes())
    if budget.decoded > MAX_PDF_DECODED_BYTES:
        raise Refusal("too_complex")


class _TooManyOperators(Exception):
    """Raised from inside qpdf's tokenizer callback to stop it."""


def _pdf_count_operators(pdf: Any) -> None:
    """Tokenise every page's content with qpdf, counting operators and keeping none of them
    (a Python object per operator is what took 3.5 GiB); "too_complex" past `MAX_PDF_OPERATORS`."""
    import pikepdf

    class Counter(pikepdf.StreamParser):
        def __init__(self) -> None:
            super().__init__()
            self.operators = 0

        def handle_object(self, obj: Any, offset: int, length: int) -> None:
            if isinstance(obj, pikepdf.Operator):
                self.operators += 1
                if self.operators > MAX_PDF_OPERATORS:
                    raise _TooManyOperators

        def handle_eof(self) -> None:
            return None

    counter = Counter()
    for page in pdf.pages:
        try:
            page.parse_contents(counter)
        except _TooManyOperators:
            raise Refusal("too_complex") from None


def _pdf_scan_object(obj: Any, findings: set[str]) -> None:
    """Record dangerous features of `obj` and its direct (not indirect) children.

    Direct objects nested more than `MAX_PDF_NESTING` deep are "too_complex".
    """
    import pikepdf

    stack = [(obj, 0)]
    while stack:
        item, depth = stack.pop()
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
        if depth >= MAX_PDF_NESTING:
            raise Refusal("too_complex")
        # Indirect objects are visited on their own from pdf.objects; this avoids cycles.
        stack.extend(
            (c, depth + 1)
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
    if subtype == "/Text" and "/Rect" in keys:
        findings.add("pdf_sticky_notes")  # a Text annotation: a note icon that opens a comment
    if "/OpenAction" in keys and not _pdf_harmless_auto(d.get("/OpenAction")):
        findings.add("pdf_auto_action")
    if "/AA" in keys:
        triggers = d.get("/AA")
        if not isinstance(triggers, pikepdf.Dictionary) or not all(_pdf_harmless_auto(t) for t in triggers.values()):
            findings.add("pdf_auto_action")


def _pdf_hidden_layers(pdf: Any) -> bool:
    """True when the default view hides an optional-content group (a layer): one listed in the
    default configuration's /OFF, or any not listed in /ON when its /BaseState is /OFF."""
    import pikepdf

    properties = pdf.Root.get("/OCProperties")
    if not isinstance(properties, pikepdf.Dictionary):
        return False
    default = properties.get("/D")
    if not isinstance(default, pikepdf.Dictionary):
        return False
    off = default.get("/OFF")
    if isinstance(off, pikepdf.Array) and len(off) > 0:
        return True
    if _pdf_name(default, "/BaseState") == "/OFF":
        groups = properties.get("/OCGs")
        on = default.get("/ON")
        shown = {g.objgen for g in on if isinstance(g, pikepdf.Dictionary)} if isinstance(on, pikepdf.Array) else set()
        everything = list(groups) if isinstance(groups, pikepdf.Array) else []
        return any(not isinstance(g, pikepdf.Dictionary) or g.objgen not in shown for g in everything)
    return False


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
