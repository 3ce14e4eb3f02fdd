"""Good documents from a real producer: LibreOffice (Debian's headless Writer) saves one
hand-written letter as DOCX, ODT, DOC, PDF, RTF and text, in a single `soffice` run.

`soffice --convert-to` takes one target format per run (and each run costs about a second),
so a tiny LibreOffice Basic macro, placed in a throw-away user profile, loads the letter once
and stores it in every format. Images come from Pillow (LibreOffice's Writer cannot export
them without a GUI build).
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import signal
import subprocess
from pathlib import Path

#: output file name -> (LibreOffice filter, filter options)
FORMATS: dict[str, tuple[str, str]] = {
    "sample.docx": ("MS Word 2007 XML", ""),
    "sample.odt": ("writer8", ""),
    "sample.rtf": ("Rich Text Format", ""),
    "sample.txt": ("Text (encoded)", "UTF8,CRLF"),
    "sample.pdf": ("writer_pdf_Export", ""),
    # Last: after saving a letter with a comment as Word 97, LibreOffice has been seen to crash
    # on the next save of the same document.
    "sample.doc": ("MS Word 97", ""),
}
KINDS = {"sample.docx": "docx", "sample.odt": "odt", "sample.doc": "doc", "sample.pdf": "pdf",
         "sample.rtf": "rtf", "sample.txt": "txt"}  # fmt: skip


def soffice_binary() -> str | None:
    """Path of LibreOffice's soffice, or None when it is not installed."""
    return shutil.which("soffice") or next((p for p in ("/usr/bin/soffice",) if Path(p).is_file()), None)


def _png() -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (120, 40), "white")
    ImageDraw.Draw(img).rectangle((5, 5, 115, 35), outline="navy", width=3)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


#: What a clinician may leave in a letter that the patient must not get (issue 18): each is
#: (automatic styles, body XML) added to the letter.
COMMENT = ("", "<text:p>Please book a review.<office:annotation><dc:creator>Dr A</dc:creator>"
           "<dc:date>2026-03-01T10:00:00</dc:date><text:p>Check with Dr B before sending</text:p>"
           "</office:annotation></text:p>")  # fmt: skip
TRACKED_CHANGE = (
    "",
    '<text:tracked-changes text:track-changes="false"><text:changed-region xml:id="ct1" text:id="ct1">'
    "<text:insertion><office:change-info><dc:creator>Dr A</dc:creator><dc:date>2026-03-01T10:00:00</dc:date>"
    "</office:change-info></text:insertion></text:changed-region></text:tracked-changes>"
    '<text:p>Please book a review. <text:change-start text:change-id="ct1"/>Repeat the test in a year.'
    '<text:change-end text:change-id="ct1"/></text:p>',
)
HIDDEN_TEXT = (
    '<style:style style:name="THidden" style:family="text"><style:text-properties text:display="none"/></style:style>',
    '<text:p>Please book a review.<text:span text:style-name="THidden"> Not for the patient: query dementia.'
    "</text:span></text:p>",
)


def letter_fodt(extra: tuple[str, str] = ("", "")) -> str:
    """A flat-XML ODF letter: heading, text, a web link, a table, a picture and a page field;
    `extra` adds (automatic styles, body XML) such as `COMMENT`."""
    styles, more = extra
    picture = base64.b64encode(_png()).decode()
    ns = (
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
        'xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" '
        'xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0" '
        'xmlns:xlink="http://www.w3.org/1999/xlink" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"'
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<office:document {ns} office:version="1.3" office:mimetype="application/vnd.oasis.opendocument.text">
<office:master-styles><style:master-page style:name="Standard" style:page-layout-name="pm1">
<style:footer><text:p>Page <text:page-number text:select-page="current">1</text:page-number></text:p></style:footer>
</style:master-page></office:master-styles>
<office:automatic-styles><style:page-layout style:name="pm1"/>{styles}</office:automatic-styles>
<office:body><office:text>{more}
<text:h text:outline-level="1">Blood test results</text:h>
<text:p>Dear patient, your results are normal. Café £5 – résumé.</text:p>
<text:p>More about this test on <text:a xlink:type="simple"
 xlink:href="https://www.nhs.uk/">the NHS website</text:a>.</text:p>
<table:table table:name="Results"><table:table-column table:number-columns-repeated="2"/>
<table:table-row><table:table-cell><text:p>Test</text:p></table:table-cell>
<table:table-cell><text:p>Result</text:p></table:table-cell></table:table-row>
<table:table-row><table:table-cell><text:p>HbA1c</text:p></table:table-cell>
<table:table-cell><text:p>40 mmol/mol</text:p></table:table-cell></table:table-row>
</table:table>
<text:p><draw:frame draw:name="Logo" text:anchor-type="as-char" svg:width="3cm" svg:height="1cm">
<draw:image><office:binary-data>{picture}</office:binary-data></draw:image></draw:frame></text:p>
</office:text></office:body></office:document>
"""


_LIBRARY = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE library:library PUBLIC "-//OpenOffice.org//DTD OfficeDocument 1.0//EN" "library.dtd">
<library:library xmlns:library="http://openoffice.org/2000/library" library:name="Standard"
 library:readonly="false" library:passwordprotected="false">
 <library:element library:name="Module1"/>
 <library:element library:name="EncloseSamples"/>
</library:library>
"""


def _module(names: list[str] | None = None) -> str:
    wanted = FORMATS if names is None else {name: FORMATS[name] for name in names}
    saves = "\n".join(
        f'  SaveAs(doc, outDir &amp; "/{name}", "{flt}", "{opts}")'.replace('"', "&quot;")
        for name, (flt, opts) in wanted.items()
    )
    body = f"""Sub ConvertAll(src As String, outDir As String)
  On Error Goto Failed
  Dim args(0) As New com.sun.star.beans.PropertyValue
  args(0).Name = &quot;Hidden&quot;
  args(0).Value = True
  doc = StarDesktop.loadComponentFromURL(ConvertToURL(src), &quot;_blank&quot;, 0, args())
{saves}
  doc.close(True)
Failed:
  If Err &lt;&gt; 0 Then
    n = FreeFile
    Open outDir &amp; &quot;/errors.txt&quot; For Output As #n
    Print #n, Error$ &amp; &quot; (line &quot; &amp; Erl &amp; &quot;)&quot;
    Close #n
  End If
  StarDesktop.terminate()
End Sub

Sub SaveAs(doc As Object, path As String, filter As String, options As String)
  Dim props(1) As New com.sun.star.beans.PropertyValue
  props(0).Name = &quot;FilterName&quot;
  props(0).Value = filter
  props(1).Name = &quot;FilterOptions&quot;
  props(1).Value = options
  doc.storeToURL(ConvertToURL(path), props())
End Sub
"""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE script:module PUBLIC "-//OpenOffice.org//DTD OfficeDocument 1.0//EN" "module.dtd">\n'
        '<script:module xmlns:script="http://openoffice.org/2000/script" script:name="EncloseSamples" '
        f'script:language="StarBasic">{body}</script:module>\n'
    )


def _run(args: list[str], timeout: float) -> None:
    # A new session, so a hung soffice.bin (a child of the soffice script) is killed with it.
    with subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True) as proc:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise RuntimeError(f"LibreOffice did not finish within {timeout:g} s") from None


def make_samples(workdir: Path, timeout: float = 120.0, *, extra: tuple[str, str] = ("", "")) -> dict[str, bytes]:
    """Run LibreOffice once; returns kind -> bytes for docx, odt, doc, pdf, rtf and txt (of the
    letter with `extra` added, see `letter_fodt`)."""
    soffice = soffice_binary()
    if soffice is None:
        raise RuntimeError("LibreOffice (soffice) is not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    profile = workdir / "profile"
    out = workdir / "out"
    out.mkdir(exist_ok=True)
    source = workdir / "letter.fodt"
    source.write_text(letter_fodt(extra), encoding="utf-8")
    env_arg = f"-env:UserInstallation={profile.as_uri()}"
    # First start lays out the profile (and would overwrite a macro library written before it).
    _run([soffice, "--headless", "--norestore", "--terminate_after_init", env_arg], timeout)
    basic = profile / "user" / "basic" / "Standard"
    (basic / "script.xlb").write_text(_LIBRARY, encoding="utf-8")
    macro = f'macro:///Standard.EncloseSamples.ConvertAll("{source}","{out}")'
    missing = list(FORMATS)
    # LibreOffice has been seen to crash after a few saves of a letter with a comment; each pass
    # loads the letter afresh and saves only what is still missing, while passes make progress.
    for _ in range(len(FORMATS)):
        (basic / "EncloseSamples.xba").write_text(_module(missing), encoding="utf-8")
        _run([soffice, "--headless", "--invisible", "--norestore", env_arg, macro], timeout)
        errors = out / "errors.txt"
        if errors.exists():
            raise RuntimeError(f"LibreOffice could not save the samples: {errors.read_text(errors='replace')}")
        still = [name for name in FORMATS if not (out / name).is_file()]
        if not still or len(still) == len(missing):
            missing = still
            break
        missing = still
    if missing:
        raise RuntimeError(f"LibreOffice did not write {', '.join(missing)}")
    return {KINDS[name]: (out / name).read_bytes() for name in FORMATS}
