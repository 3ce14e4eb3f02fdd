"""PDF samples: a good one written by hand, and every way a PDF can be bad."""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable

from tests.support.corpus.common import MALWARE_MARKER, zip_bytes


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
