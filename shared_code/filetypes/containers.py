"""ZIP-based documents: Word (DOCX, Office Open XML) and OpenDocument text (ODT).

What both share: the ZIP structure and archive-bomb checks and streaming XML parsing. Then what
each rejects: macros, ActiveX, DDE and remote-content fields, embedded objects, external content,
unsafe links, nested archives, encryption and damage. Which ZIP files count as DOCX or ODT at all
(and which are refused as spreadsheets, presentations or plain archives) is decided here too.
"""

from __future__ import annotations

import io
import posixpath
import re
import struct
import zipfile
from collections.abc import Iterator
from typing import Any

from shared_code.filetypes.active_content import Fields, raise_first, unsafe_link
from shared_code.filetypes.common import (
    DOCX,
    MAX_XML_DEPTH,
    MAX_XML_ELEMENTS,
    MAX_ZIP_ENTRIES,
    MAX_ZIP_RATIO,
    MAX_ZIP_TOTAL_BYTES,
    ODT,
    ODT_MIMETYPE,
    OLE_MAGIC,
    ZIP_RATIO_MIN_BYTES,
    FileType,
    Refusal,
    damaged,
    encrypted,
)

# --------------------------------------------------------------------------- identifying (sniff)


def identify_zip(data: bytes) -> FileType:
    """DOCX or ODT for a ZIP upload, or a `Refusal` saying what other kind of ZIP it is.

    The caller (sniffing) checks for polyglots afterwards, as for every other family.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            names = {i.filename for i in infos}
            kind = _zip_kind(zf, infos, names)
    except Refusal:
        raise
    except Exception:  # noqa: BLE001 - any parser failure means "not a readable document"
        raise Refusal("not_allowed", "is damaged, or is a compressed archive rather than a document") from None
    return kind


def _zip_kind(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], names: set[str]) -> FileType:
    if infos and infos[0].filename == "mimetype":
        if infos[0].file_size > 200:
            raise Refusal("not_allowed", "is an unrecognised compressed file")
        mimetype = zf.read(infos[0]).strip()
        if mimetype == ODT_MIMETYPE:
            return ODT
        if mimetype.startswith(b"application/vnd.oasis.opendocument."):
            raise Refusal(
                "not_allowed",
                "is an OpenDocument file that is not a text document (for example a spreadsheet or presentation)",
            )
    if "[Content_Types].xml" in names:
        if any(n.startswith("word/") for n in names):
            return DOCX
        if any(n.startswith("xl/") for n in names):
            raise Refusal("not_allowed", "is an Excel spreadsheet, not a document")
        if any(n.startswith("ppt/") for n in names):
            raise Refusal("not_allowed", "is a PowerPoint presentation, not a document")
    raise Refusal("not_allowed", "is a compressed archive (ZIP), not a document")


def is_zip(data: bytes) -> bool:
    """True when a ZIP reader would find at least one real entry in `data`."""
    if b"PK\x05\x06" not in data[-(0xFFFF + 22) :]:
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except Exception:  # noqa: BLE001 - not a readable ZIP directory, so not a ZIP
        return False
    # A stray end-of-directory signature inside compressed data is not an archive; a real one
    # points at a local file header.
    return any(data[i.header_offset : i.header_offset + 4] == b"PK\x03\x04" for i in infos)


# --------------------------------------------------------------------------- the ZIP structure


_STORED_OR_DEFLATED = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_ARCHIVE_MAGIC = (
    b"PK\x03\x04",
    b"\x1f\x8b",
    b"7z\xbc\xaf\x27\x1c",
    b"Rar!\x1a\x07",
    b"BZh",
    b"\xfd7zXZ\x00",
)


def check_zip_limits(infos: list[zipfile.ZipInfo]) -> None:
    """Refuse archive bombs from the directory alone (entry count, total size, ratio)."""
    if len(infos) > MAX_ZIP_ENTRIES:
        raise Refusal("zip_entries")
    if sum(i.file_size for i in infos) > MAX_ZIP_TOTAL_BYTES:
        raise Refusal("zip_size")
    for info in infos:
        if info.file_size > ZIP_RATIO_MIN_BYTES and (info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1)):
            raise Refusal("zip_ratio")


def _eocd_ends_file(data: bytes) -> bool:
    pos = data.rfind(b"PK\x05\x06")
    if pos < 0 or pos + 22 > len(data):
        return False
    (comment_len,) = struct.unpack_from("<H", data, pos + 20)
    return pos + 22 + comment_len == len(data)


def _open_container(data: bytes, kind: str, findings: set[str]) -> zipfile.ZipFile:
    """Open a DOCX/ODT ZIP after its structural and bomb checks, reading every entry once.

    Adds "zip_nested" (an archive inside) and "embedded_object" (an OLE file inside) to
    `findings`: the caller reports the most telling finding (macros before objects).
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError):
        raise damaged(kind) from None
    infos = zf.infolist()
    if not infos:
        raise damaged(kind)
    check_zip_limits(infos)
    if min(i.header_offset for i in infos) != 0 or not _eocd_ends_file(data):
        raise Refusal("trailing_data")  # data before the first entry or after the directory
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        folded = name.casefold()
        if folded in seen or name.startswith(("/", "\\")) or "\\" in name or "\x00" in name or ".." in name.split("/"):
            raise damaged(kind)  # duplicate or escaping names: readers would disagree
        seen.add(folded)
        if info.flag_bits & 0x1:
            raise encrypted(kind)
        if info.compress_type not in _STORED_OR_DEFLATED:
            raise damaged(kind)
    # zipfile never expands an entry past its declared size (the checksum fails instead), so
    # the directory checks above bound everything read here.
    for info in infos:
        if info.is_dir():
            continue
        with zf.open(info) as stream:  # reading to the end checks the CRC
            first = stream.read(8)
            if first.startswith(_ARCHIVE_MAGIC):
                findings.add("zip_nested")
            elif first.startswith(OLE_MAGIC):
                findings.add("embedded_object")
            while stream.read(1 << 16):
                pass
    return zf


class XmlBudget:
    """The XML work one document may cost: elements in all its parts together (`MAX_XML_ELEMENTS`)."""

    def __init__(self) -> None:
        self.elements = 0


def _iter_xml(zf: zipfile.ZipFile, name: str, budget: XmlBudget) -> Iterator[tuple[str, Any]]:
    """(local tag name, element) for each element of an XML part, at its end, DTDs forbidden.

    Each element is dropped from the tree once seen, so memory follows the nesting depth, which
    is capped at `MAX_XML_DEPTH`; the element count of the document is capped too. Over either
    cap the file is "too_complex" (millions of nested elements fit in a small, padded part).
    """
    for start, tag, elem in _iter_xml_events(zf, name, budget):
        if not start:
            yield tag, elem


def _iter_xml_events(zf: zipfile.ZipFile, name: str, budget: XmlBudget) -> Iterator[tuple[bool, str, Any]]:
    """(True at its start or False at its end, local tag name, element), under `_iter_xml`'s bounds.

    At its start an element has its attributes but not yet its text or children.
    """
    from defusedxml.ElementTree import iterparse

    open_elements: list[Any] = []
    with zf.open(name) as stream:
        for event, elem in iterparse(stream, events=("start", "end"), forbid_dtd=True):
            if event == "start":
                if len(open_elements) >= MAX_XML_DEPTH:
                    raise Refusal("too_complex")
                budget.elements += 1
                if budget.elements > MAX_XML_ELEMENTS:
                    raise Refusal("too_complex")
                open_elements.append(elem)
                yield True, _local(elem.tag), elem
                continue
            open_elements.pop()
            yield False, _local(elem.tag), elem
            elem.clear()
            if open_elements:
                open_elements[-1].remove(elem)


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def _attr(elem: Any, local_name: str) -> str | None:
    for key, value in elem.attrib.items():
        if _local(key) == local_name:
            return value
    return None


# --------------------------------------------------------------------------- DOCX


_OOXML_MAIN_TYPES = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml",
}
_REL_EMBEDDED = ("/oleobject", "/package", "/afchunk")
_REL_ACTIVEX = ("/control", "/activexcontrolbinary")
_REL_MACROS = ("/vbaproject", "/wordvbadata", "/vbaprojectsignature")


def validate_docx(data: bytes) -> None:
    """Raise a `Refusal` for a DOCX with active, remote or embedded content, or one that is damaged."""
    findings: set[str] = set()
    zf = _open_container(data, "docx", findings)
    with zf:
        names = {i.filename for i in zf.infolist() if not i.is_dir()}
        if "[Content_Types].xml" not in names or "_rels/.rels" not in names:
            raise damaged("docx")
        defaults: dict[str, str] = {}
        overrides: dict[str, str] = {}
        budget = XmlBudget()
        for tag, elem in _iter_xml(zf, "[Content_Types].xml", budget):
            if tag == "Default":
                defaults[(_attr(elem, "Extension") or "").lower()] = _attr(elem, "ContentType") or ""
            elif tag == "Override":
                part = (_attr(elem, "PartName") or "").lstrip("/").casefold()
                overrides[part] = _attr(elem, "ContentType") or ""
        main_part: str | None = None
        styles_of: dict[str, str] = {}  # a part (folded) -> the styles part its relationships name (folded)
        xml_parts: list[str] = []
        for name in sorted(names):
            lower = name.casefold()
            content_type = overrides.get(lower) or defaults.get(lower.rsplit(".", 1)[-1], "")
            ct = content_type.lower()
            if "macroenabled" in ct or "vbaproject" in ct or "vbadata" in ct:
                findings.add("macros")
            if "activex" in ct:
                findings.add("activex")
            if "oleobject" in ct:
                findings.add("embedded_object")
            if lower.endswith(("vbaproject.bin", "vbadata.xml")):
                findings.add("macros")
            if lower.startswith("word/activex/"):
                findings.add("activex")
            if lower.startswith("word/embeddings/"):
                findings.add("embedded_object")
            if lower.endswith(".rels"):
                main_part = _docx_rels(zf, name, findings, budget, styles_of) or main_part
            elif lower.endswith(".xml") and name != "[Content_Types].xml":
                xml_parts.append(name)
        # Styles before text: whether a run is hidden can depend on them. A styles part is read
        # here and again below with the others, counted against the same budget both times.
        by_folded = {n.casefold(): n for n in names}
        styles: dict[str, _DocxStyles] = {}
        for folded in sorted(set(styles_of.values()) & by_folded.keys()):
            styles[folded] = _read_docx_styles(zf, by_folded[folded], budget)
        # Headers, footers, notes and comments name no styles of their own: they use the main document's.
        main_styles = styles.get(styles_of.get((main_part or "").casefold(), ""), _DocxStyles())
        fields = Fields()
        revisions = _DocxRevisions()
        for name in xml_parts:
            revisions.start_part(styles.get(styles_of.get(name.casefold(), ""), main_styles))
            for start, tag, elem in _iter_xml_events(zf, name, budget):
                if not start:
                    _docx_element(tag, elem, fields, findings)
                revisions.event(start, tag, elem)
            revisions.end_part()
        findings |= fields.findings | revisions.findings
        raise_first(findings)
        if main_part is None or main_part not in names:
            raise damaged("docx")
        main_type = overrides.get(main_part.casefold()) or defaults.get(main_part.rsplit(".", 1)[-1].lower(), "")
        if main_type.lower() not in _OOXML_MAIN_TYPES:
            raise damaged("docx")


def _docx_rels(
    zf: zipfile.ZipFile, name: str, findings: set[str], budget: XmlBudget, styles_of: dict[str, str]
) -> str | None:
    """Check one relationships part; returns the main document part if this is the root.

    Records in `styles_of` the styles part the described part uses, both names casefolded
    (part names in a package are case-insensitive).
    """
    main: str | None = None
    # "word/_rels/document.xml.rels" describes "word/document.xml": targets are relative to "word/".
    base = posixpath.dirname(posixpath.dirname(name))
    source = posixpath.join(base, posixpath.basename(name).removesuffix(".rels")).casefold()
    for tag, elem in _iter_xml(zf, name, budget):
        if tag != "Relationship":
            continue
        rel_type = (_attr(elem, "Type") or "").lower()
        target = _attr(elem, "Target") or ""
        external = (_attr(elem, "TargetMode") or "").lower() == "external"
        if rel_type.endswith(_REL_MACROS):
            findings.add("macros")
        elif rel_type.endswith(_REL_ACTIVEX):
            findings.add("activex")
        elif rel_type.endswith(_REL_EMBEDDED):
            findings.add("embedded_object")
        if external:
            if rel_type.endswith("/hyperlink"):
                if unsafe_link(target):
                    findings.add("unsafe_link")
            else:
                findings.add("external_content")
        elif name == "_rels/.rels" and rel_type.endswith("/officedocument"):
            main = posixpath.normpath(posixpath.join(base, target)).lstrip("/")
        elif rel_type.endswith("/styles"):
            styles_of.setdefault(source, posixpath.normpath(posixpath.join(base, target)).lstrip("/").casefold())
    return main


def _docx_element(tag: str, elem: Any, fields: Fields, findings: set[str]) -> None:
    if tag == "fldChar":
        kind = _attr(elem, "fldCharType")
        if kind == "begin":
            fields.begin()
        elif kind == "separate":
            fields.separate()
        elif kind == "end":
            fields.end()
    elif tag == "instrText":
        fields.text(elem.text or "")
    elif tag == "fldSimple":
        fields.judge(_attr(elem, "instr") or "")
    elif tag in ("OLEObject", "altChunk", "objectEmbed", "objectLink"):
        findings.add("embedded_object")
    elif tag == "control":
        findings.add("activex")


#: WordprocessingML's namespaces (transitional and strict): comments, revisions and hidden text
#: are judged only there, never by a local name alone.
_W_NAMESPACES = {
    "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    "http://purl.oclc.org/ooxml/wordprocessingml/main",
}
_DOCX_COMMENTS = {"comment", "commentReference", "commentRangeStart"}
# Insertions, deletions and moves not yet accepted (formatting changes hide nothing).
_DOCX_TRACKED = {"ins", "del", "moveFrom", "moveTo", "cellIns", "cellDel"}
_OFF = {"0", "false", "off"}
#: Index and table-of-contents entries: Word formats these fields hidden itself, and their
#: instruction is what the index is built from, not text the reader misses.
_INDEX_ENTRY = re.compile(r"^\s*(?:XE|TC)\b", re.IGNORECASE)
_MAX_STYLE_CHAIN = 32  # basedOn links followed from one style; Word's own chains are a few long


def _in_w(elem: Any) -> bool:
    return elem.tag[1:].partition("}")[0] in _W_NAMESPACES


def _on(elem: Any, attribute: str = "val") -> bool:
    """An on/off value, such as a `w:vanish` element's: on unless `attribute` says off."""
    return (_attr(elem, attribute) or "true").lower() not in _OFF


class _DocxStyles:
    """What one styles part says about hidden text: the styles' own `w:vanish`, their `w:basedOn`
    links, the default paragraph and character styles and the document defaults."""

    def __init__(self) -> None:
        self.default_vanish = False  # w:docDefaults/w:rPrDefault
        self.types: dict[str, str] = {}  # style id -> "paragraph", "character", ...
        self.vanish: dict[str, bool] = {}  # style id -> the w:vanish its own run properties set
        self.based_on: dict[str, str] = {}
        self.defaults: dict[str, str] = {}  # style type -> the id of its default style
        self._chains: dict[tuple[str | None, str], bool] = {}

    def hidden(self, paragraph_style: str | None, run_style: str | None) -> bool:
        """Whether a run without a `w:vanish` of its own is hidden by the styles it is in.

        `w:vanish` is a toggle property (ECMA-376 17.7.3): in a style chain the nearest style
        that sets it decides, then each level (document defaults, paragraph style, character
        style) turns the one before it over.
        """
        return self.default_vanish ^ self._chain(paragraph_style, "paragraph") ^ self._chain(run_style, "character")

    def _chain(self, style_id: str | None, kind: str) -> bool:
        key = (style_id, kind)
        if key not in self._chains:
            # A missing or unknown style is the type's default one, as Word applies it.
            current = style_id if style_id in self.types else self.defaults.get(kind)
            value = False
            seen: set[str] = set()
            while current is not None and current not in seen:  # a loop of links ends the chain
                if current in self.vanish:
                    value = self.vanish[current]
                    break
                seen.add(current)
                current = self.based_on.get(current)
                if current is not None and len(seen) > _MAX_STYLE_CHAIN:
                    raise Refusal("too_complex")  # no real document's styles are based on so many
            self._chains[key] = value
        return self._chains[key]


def _read_docx_styles(zf: zipfile.ZipFile, name: str, budget: XmlBudget) -> _DocxStyles:
    """The hidden-text facts of a styles part (`w:styles`), under the same XML bounds as any part."""
    styles = _DocxStyles()
    path: list[str] = []
    current = ""
    for start, tag, elem in _iter_xml_events(zf, name, budget):
        if start:
            path.append(tag if _in_w(elem) else "")
            if path == ["styles", "style"]:
                current = _attr(elem, "styleId") or ""
                kind = _attr(elem, "type") or "paragraph"
                styles.types.setdefault(current, kind)
                if _attr(elem, "default") is not None and _on(elem, "default"):
                    styles.defaults.setdefault(kind, current)
            continue
        if path == ["styles", "style", "basedOn"]:
            styles.based_on.setdefault(current, _attr(elem, "val") or "")
        elif path == ["styles", "style", "rPr", "vanish"]:
            # Which of two styles with one id Word would use is not specified: the hiding one.
            styles.vanish[current] = styles.vanish.get(current) is True or _on(elem)
        elif path == ["styles", "docDefaults", "rPrDefault", "rPr", "vanish"]:
            styles.default_vanish = _on(elem)
        path.pop()
    return styles


class _Field:
    """A field open in a story: its instruction so far, whether its instruction is still being
    read, and whether hidden text was met in that instruction (judged once it is complete)."""

    def __init__(self, instruction: str = "", *, in_code: bool = True) -> None:
        self.instruction = instruction
        self.in_code = in_code
        self.hidden_text = False


class _DocxRevisions:
    """Comments, tracked changes and hidden text in the XML parts of a DOCX.

    Text (`w:t` of a run) is hidden by its run's own `w:vanish`, or, without one, by the styles
    of the run and its paragraph (`_DocxStyles`). Properties of a paragraph mark, of a style or
    of an earlier revision (`w:rPrChange`) are not a run's: a hidden paragraph mark alone hides
    nothing. Hidden text inside the instruction of an index or table-of-contents entry field
    (`XE`, `TC`) is that field's, which Word hides itself, and is not counted.
    """

    def __init__(self) -> None:
        self.findings: set[str] = set()
        self.start_part(_DocxStyles())

    def start_part(self, styles: _DocxStyles) -> None:
        """Begin a new XML part whose runs are judged with `styles`."""
        self._styles = styles
        self._path: list[str] = []  # local names of the open elements ("" outside WordprocessingML)
        self._paragraphs: list[str | None] = []  # the style of each open paragraph
        self._runs: list[list[Any]] = []  # each open run's [style, own w:vanish or None]
        self._fields: list[_Field] = []

    def end_part(self) -> None:
        """Judge what the part left open: a field never ended has no complete instruction."""
        while self._fields:
            self._settle(self._fields.pop())

    def event(self, start: bool, tag: str, elem: Any) -> None:
        """Take one element's start or end, in document order."""
        in_w = _in_w(elem)
        if start:
            self._path.append(tag if in_w else "")
            if not in_w:
                return
            if tag == "p":
                self._paragraphs.append(None)
            elif tag == "r":
                self._runs.append([None, None])
            elif tag == "fldSimple":
                instruction = _attr(elem, "instr") or ""
                # An entry field's content is not its result (it has none); another's content is.
                self._fields.append(_Field(instruction, in_code=bool(_INDEX_ENTRY.match(instruction))))
            return
        within = tuple(self._path[-3:-1])  # the grandparent and parent
        self._path.pop()
        if not in_w:
            return
        if tag in _DOCX_COMMENTS:
            self.findings.add("comments")
        elif tag in _DOCX_TRACKED:
            self.findings.add("tracked_changes")
        elif tag == "pStyle" and within == ("p", "pPr") and self._paragraphs:
            self._paragraphs[-1] = _attr(elem, "val")
        elif tag == "rStyle" and within == ("r", "rPr") and self._runs:
            self._runs[-1][0] = _attr(elem, "val")
        elif tag == "vanish" and within == ("r", "rPr") and self._runs:
            self._runs[-1][1] = _on(elem)
        elif tag == "t" and within[-1:] == ("r",):
            if (elem.text or "").strip() and self._run_hidden():
                self._hidden_text()
        elif tag == "instrText":
            if self._fields and self._fields[-1].in_code:
                self._fields[-1].instruction += elem.text or ""
        elif tag == "fldChar":
            self._field_char(_attr(elem, "fldCharType"))
        elif tag == "fldSimple" and self._fields:
            self._settle(self._fields.pop())
        elif tag == "p" and self._paragraphs:
            self._paragraphs.pop()
        elif tag == "r" and self._runs:
            self._runs.pop()

    def _run_hidden(self) -> bool:
        if not self._runs:
            return False
        style, own = self._runs[-1]
        if own is not None:
            return bool(own)  # direct formatting is absolute: it overrides every style
        return self._styles.hidden(self._paragraphs[-1] if self._paragraphs else None, style)

    def _field_char(self, kind: str | None) -> None:
        if kind == "begin":
            self._fields.append(_Field())
        elif kind == "separate" and self._fields:
            field = self._fields[-1]
            if field.in_code:
                field.in_code = False  # the result follows, which is shown
                self._settle(field)
        elif kind == "end" and self._fields:
            self._settle(self._fields.pop())

    def _hidden_text(self) -> None:
        """Hidden text: counted now, or, inside a field's instruction, once that is complete."""
        for field in reversed(self._fields):
            if field.in_code:
                field.hidden_text = True
                return
        self.findings.add("hidden_text")

    def _settle(self, field: _Field) -> None:
        if field.hidden_text and not _INDEX_ENTRY.match(field.instruction):
            field.hidden_text = False
            self._hidden_text()  # an enclosing instruction may still be an entry's
        field.hidden_text = False


# --------------------------------------------------------------------------- ODT


_ODF_EMBEDDED = {"object", "object-ole", "applet", "plugin"}
_ODF_DDE = {"dde-connection-decl", "dde-source", "dde-link", "dde-connection"}
_ODF_LINK_TAGS = {"a"}  # text:a and draw:a are hyperlinks: followed only when clicked


def validate_odt(data: bytes) -> None:
    """Raise a `Refusal` for an ODT with macros, DDE, remote or embedded content, encryption or damage."""
    findings: set[str] = set()
    zf = _open_container(data, "odt", findings)
    with zf:
        infos = zf.infolist()
        if infos[0].filename != "mimetype" or zf.read(infos[0]).strip() != ODT_MIMETYPE:
            raise damaged("odt")
        names = {i.filename for i in infos if not i.is_dir()}
        if "META-INF/manifest.xml" not in names or "content.xml" not in names:
            raise damaged("odt")
        budget = XmlBudget()
        for name in sorted(names):
            top = name.split("/", 1)[0]
            if top in ("Basic", "Scripts"):
                findings.add("macros")
            elif top.startswith("Object ") or top == "ObjectReplacements":
                findings.add("embedded_object")
            if name.endswith(".xml") or name.endswith(".rdf"):
                for tag, elem in _iter_xml(zf, name, budget):
                    _odt_element(tag, elem, findings)
                    _odt_revisions(name, tag, elem, findings)
        if "encrypted" in findings:
            raise encrypted("odt")
        raise_first(findings)


def _odt_element(tag: str, elem: Any, findings: set[str]) -> None:
    if tag == "encryption-data":
        findings.add("encrypted")
    elif tag in ("event-listener", "script"):
        findings.add("macros")
    elif tag in _ODF_EMBEDDED:
        findings.add("embedded_object")
    elif tag in _ODF_DDE:
        findings.add("dde")
    elif tag == "floating-frame":
        findings.add("external_content")
    href = _attr(elem, "href")
    if href is not None:
        if tag in _ODF_LINK_TAGS:
            if unsafe_link(href):
                findings.add("unsafe_link")
        elif not _odf_internal(href):
            findings.add("external_content")


def _odt_revisions(part: str, tag: str, elem: Any, findings: set[str]) -> None:
    """Comments (annotations), changes not yet accepted, and text set not to display."""
    if tag == "annotation":
        findings.add("comments")
    elif tag == "changed-region":  # accepting or rejecting a change removes its region
        findings.add("tracked_changes")
    elif tag in ("hidden-text", "hidden-paragraph") or (
        # A section set not to display; a style of content.xml's (the ones its text uses) likewise.
        _attr(elem, "display") == "none" and (tag == "section" or (tag == "text-properties" and part == "content.xml"))
    ):
        findings.add("hidden_text")


def _odf_internal(href: str) -> bool:
    """True for a reference to something inside the package (or in the document itself)."""
    h = href.strip()
    if h.startswith(("/", "\\", "../")) or h == "..":
        return False
    return re.match(r"[A-Za-z][A-Za-z0-9+.\-]*:", h) is None
