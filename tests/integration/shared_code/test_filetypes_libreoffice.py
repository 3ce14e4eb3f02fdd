"""Real documents from LibreOffice pass validation (and the scan's check once prepared); the same
documents with active content added, or saved with a comment, a tracked change or hidden text,
are rejected with the right reason; and mutations of them never crash a validator."""

from __future__ import annotations

import io
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared_code.errors import UnsupportedType
from shared_code.filetypes import REASONS, TYPES, ContentRejected, sniff, validate
from shared_code.filetypes.preparation import check_prepared, prepare
from tests.support import corpus
from tests.support.cfb import build_cfb
from tests.support.components import missing
from tests.support.libreoffice import COMMENT, HIDDEN_TEXT, TRACKED_CHANGE, make_samples, soffice_binary

pytestmark = pytest.mark.slow

REAL_KINDS = ["docx", "odt", "doc", "pdf", "rtf", "txt"]


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """One LibreOffice run for the session: a letter saved in every document format."""
    if soffice_binary() is None:
        missing("LibreOffice", "install the Debian package libreoffice-writer-nogui (make test does, as root)")
    return make_samples(tmp_path_factory.mktemp("libreoffice"))


@pytest.mark.parametrize("kind", REAL_KINDS)
def test_libreoffice_document_is_sniffed_and_passes(samples: dict[str, bytes], kind: str) -> None:
    data = samples[kind]
    assert sniff(data, f"letter.{kind}").kind == kind
    validate(data, TYPES[kind])


def _rewrite_zip(data: bytes, change: dict[str, bytes]) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        entries = {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}
    entries.update(change)
    return corpus.zip_bytes(entries, stored={"mimetype"})


def _docx_with_remote_template(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        settings_xml = zf.read("word/settings.xml").decode()
    settings_xml = settings_xml.replace("</w:settings>", '<w:attachedTemplate r:id="rIdT"/></w:settings>').replace(
        "<w:settings ", f'<w:settings xmlns:r="{corpus.R_NS}" ', 1
    )
    rels = corpus._rels([("rIdT", corpus.REL + "attachedTemplate", "https://example.invalid/t.dotm", True)])
    return _rewrite_zip(data, {"word/settings.xml": settings_xml.encode(), "word/_rels/settings.xml.rels": rels})


def _docx_with_dde(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        document = zf.read("word/document.xml").decode()
    field = corpus._field([" DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe ", '"/k calc"'])
    return _rewrite_zip(data, {"word/document.xml": document.replace("<w:body>", "<w:body>" + field, 1).encode()})


def _doc_with(data: bytes, extra: dict[str, bytes]) -> bytes:
    import olefile

    with olefile.OleFileIO(io.BytesIO(data)) as ole:
        streams = {"/".join(p): ole.openstream(p).read() for p in ole.listdir(streams=True, storages=False)}
    return build_cfb({**streams, **extra})


def _pdf_with_open_action_js(data: bytes) -> bytes:
    import pikepdf

    with pikepdf.open(io.BytesIO(data)) as pdf:
        pdf.Root.OpenAction = pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert(1)"))
        out = io.BytesIO()
        pdf.save(out)
        return out.getvalue()


ALTERED = {
    "docx_remote_template": ("docx", _docx_with_remote_template, "external_content"),
    "docx_dde": ("docx", _docx_with_dde, "dde"),
    "docx_vba": ("docx", lambda d: _rewrite_zip(d, {"word/vbaProject.bin": build_cfb({"VBA/dir": b"x"})}), "macros"),
    "odt_basic": ("odt", lambda d: _rewrite_zip(d, {"Basic/Standard/Module1.xml": b"<m/>"}), "macros"),
    "odt_object": ("odt", lambda d: _rewrite_zip(d, {"Object 1/content.xml": b"<x/>"}), "embedded_object"),
    "doc_macros": ("doc", lambda d: _doc_with(d, {"Macros/VBA/dir": b"x"}), "macros"),
    "doc_object": ("doc", lambda d: _doc_with(d, {"ObjectPool/_1/\x01Ole10Native": b"x"}), "embedded_object"),
    "doc_repacked": ("doc", lambda d: _doc_with(d, {}), None),  # control: repacking alone is fine
    "pdf_javascript": ("pdf", _pdf_with_open_action_js, "pdf_javascript"),
    "pdf_truncated": ("pdf", lambda d: d[: len(d) * 2 // 3], "pdf_truncated"),
    "pdf_zip_appended": ("pdf", lambda d: d + corpus.zip_bytes({"a.js": b"x"}), "polyglot_zip"),
    "rtf_object": ("rtf", lambda d: d.rstrip()[:-1] + b"{\\object\\objemb{\\*\\objdata 0105}}}", "embedded_object"),
    "rtf_dde": ("rtf", lambda d: d.rstrip()[:-1] + b"{\\field{\\*\\fldinst DDEAUTO cmd}{\\fldrslt x}}}", "dde"),
    "txt_escape_codes": ("txt", lambda d: d + b"\x1b[2J", "text_control"),
}


@pytest.mark.parametrize("name", sorted(ALTERED))
def test_libreoffice_document_with_active_content_is_rejected(samples: dict[str, bytes], name: str) -> None:
    kind, alter, rule = ALTERED[name]
    data = alter(samples[kind])
    if rule is None:
        validate(data, TYPES[kind])
        return
    with pytest.raises(ContentRejected) as info:
        validate(data, TYPES[kind])
    assert info.value.rule == rule
    assert info.value.reason == REASONS[rule]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(REAL_KINDS), cuts=st.lists(st.tuples(st.floats(0, 1), st.binary(max_size=8)), max_size=4))
def test_fuzz_mutated_libreoffice_documents_raise_only_content_rejected(
    samples: dict[str, bytes], kind: str, cuts: list[tuple[float, bytes]]
) -> None:
    data = bytearray(samples[kind])
    for where, junk in cuts:
        pos = int(where * (len(data) - 1))
        data[pos : pos + max(len(junk), 1)] = junk
    try:
        sniff(bytes(data))
    except UnsupportedType:
        pass
    try:
        validate(bytes(data), TYPES[kind])
    except ContentRejected as error:
        assert error.reason


# -- what the patient must not get (issue 18), as LibreOffice saves it ----------------------------

HIDDEN = {"comment": (COMMENT, "comments"), "tracked_change": (TRACKED_CHANGE, "tracked_changes")}
HIDDEN["hidden_text"] = (HIDDEN_TEXT, "hidden_text")


@pytest.fixture(scope="session")
def letters_with_hidden_content(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    """The letter saved by LibreOffice with a comment, a tracked change and hidden text: one run each."""
    if soffice_binary() is None:
        missing("LibreOffice", "install the Debian package libreoffice-writer-nogui (make test does, as root)")
    return {name: make_samples(tmp_path_factory.mktemp(name), extra=extra) for name, (extra, _) in HIDDEN.items()}


@pytest.mark.parametrize("kind", ["docx", "odt", "doc", "rtf"])
@pytest.mark.parametrize("name", sorted(HIDDEN))
def test_a_libreoffice_letter_with_hidden_content_is_refused_saying_what_to_do(
    letters_with_hidden_content: dict[str, dict[str, bytes]], name: str, kind: str
) -> None:
    rule = HIDDEN[name][1]
    with pytest.raises(ContentRejected) as info:
        validate(letters_with_hidden_content[name][kind], TYPES[kind])
    assert (info.value.rule, info.value.reason) == (rule, REASONS[rule])


@pytest.mark.parametrize("name", sorted(HIDDEN))
def test_the_same_letter_exported_as_pdf_shows_only_the_page(
    letters_with_hidden_content: dict[str, dict[str, bytes]], name: str
) -> None:
    validate(letters_with_hidden_content[name]["pdf"], TYPES["pdf"])


def test_a_libreoffice_pdf_loses_its_producer_and_every_export_passes_the_scans_check(
    samples: dict[str, bytes],
) -> None:
    for kind, data in samples.items():
        prepared = prepare(data, TYPES[kind], len(data))
        stored = prepared.data or data
        check_prepared(stored, TYPES[kind])
        assert prepared.cleaned == (kind == "pdf"), kind
    assert b"LibreOffice" not in prepare(samples["pdf"], TYPES["pdf"], len(samples["pdf"])).data
