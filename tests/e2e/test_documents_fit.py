"""Documents that fit and are safe to share (issue 18), through the local stack: uploaded over
HTTP, prepared, scanned by ClamAV, texted, and fetched by the patient's phone from the portal.

Each file is made on the spot (tests/support/corpus/fitting.py): a 6 MB phone photo with GPS EXIF
and an orientation, a 5 MB scanned letter with a text layer, a PDF of text that cannot fit, a PDF
with an author, Word documents with a comment and with a tracked change, and the ordinary
documents practices send, which must still come out clean.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pikepdf
import pytest
import requests
from PIL import Image

from shared_code.filetypes import REASONS, TYPES
from shared_code.settings import Settings
from tests.support import corpus
from tests.support.components import missing
from tests.support.corpus import fitting as samples
from tests.support.libreoffice import make_samples, soffice_binary
from tests.support.patient import document, signed_in
from tests.support.pdf_reading import page_boxes, shown_text
from tests.support.stack import RunningStack

LIMIT = Settings().max_attachment_bytes  # 3 MiB, the contract's default
UPLOAD_LIMIT = Settings().max_upload_bytes  # 20 MiB
REVISIONS = "This file has comments or tracked changes: accept or remove them and save it again."


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def uploaded(stack: RunningStack, data: bytes, filename: str) -> dict:
    """Upload (202 expected) and wait for the verdict; the final answer, with the 202's as `accepted`."""
    answer = stack.upload(data, filename, content_type="application/octet-stream")
    assert answer.status_code == 202, answer.text
    final = stack.wait_attachment(answer.json()["id"], timeout=120)
    return {**final, "accepted": answer.json()}


def served(stack: RunningStack, data: bytes, filename: str) -> tuple[dict, bytes]:
    """Upload, send to a patient, and fetch it from the portal: (the attachment, the bytes the phone gets)."""
    _, link, _ = stack.send_clean(data, filename, content_type="application/octet-stream")
    session, token = signed_in(link)
    documents = session.get(f"{stack.base_url}/p/{token}/documents", timeout=10).text
    assert f"/p/{token}/documents/" in documents, documents
    attachment_id = documents.split(f"/p/{token}/documents/", 1)[1].split('"', 1)[0].split("/", 1)[0]
    attachment = stack.wait_attachment(attachment_id)
    return attachment, document(stack, session, token, attachment_id).content


# -- fit to the limit ----------------------------------------------------------------------------


def test_a_6_mb_phone_photo_arrives_under_3_mib_without_its_location_and_the_right_way_up(stack: RunningStack) -> None:
    data = samples.phone_jpeg()
    assert 6_000_000 < len(data) <= UPLOAD_LIMIT
    accepted = stack.upload(data, "IMG_2041.JPG", content_type="image/jpeg").json()
    assert accepted["reduced"] is True and accepted["metadataRemoved"] is True
    assert (accepted["originalSize"], accepted["originalSha256"]) == (len(data), sha256(data))
    assert accepted["size"] < LIMIT

    attachment, got = served(stack, data, "IMG_2041.JPG")
    assert attachment["status"] == "clean"
    assert len(got) == attachment["size"] < LIMIT and sha256(got) == attachment["sha256"]
    for secret in (b"Exif", b"PhoneCo", b"SERIAL-0123456789", b"Example Road", b"http://ns.adobe.com/xap"):
        assert secret not in got
    picture = Image.open(io.BytesIO(got))
    assert dict(picture.getexif()) == {}
    # Upright: the photo was stored sideways (orientation 6); its red top-left mark is now top right.
    assert picture.size == (1500, 2000)
    assert picture.getpixel((picture.width - 10, 10))[0] > 200


def test_a_5_mb_scanned_letter_fits_with_the_same_pages_and_text(stack: RunningStack) -> None:
    data = samples.scanned_pdf()
    assert len(data) > 5_000_000
    attachment, got = served(stack, data, "Discharge letter.pdf")
    assert attachment["status"] == "clean" and attachment["reduced"] is True
    assert len(got) <= LIMIT
    assert page_boxes(got) == page_boxes(data) and len(page_boxes(got)) == 5
    assert shown_text(got) == shown_text(data)


def test_a_pdf_that_cannot_fit_is_a_413_that_says_why(stack: RunningStack) -> None:
    answer = stack.upload(samples.lettering_pdf(), "Notes.pdf")
    assert answer.status_code == 413
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["type"] == "https://enclose.nhs.example/problems/too-large"
    assert problem["detail"].startswith("This PDF is still larger than the 3 MB limit after its pictures were made")
    assert "Split it" in problem["detail"]


def test_exactly_the_limit_is_stored_untouched_and_one_byte_more_is_fitted(stack: RunningStack) -> None:
    at, over = samples.pdf_of_size(LIMIT), samples.pdf_of_size(LIMIT + 1)
    assert (len(at), len(over)) == (LIMIT, LIMIT + 1)
    untouched = uploaded(stack, at, "at.pdf")
    assert untouched["status"] == "clean"
    assert (untouched["size"], untouched["sha256"], untouched["reduced"]) == (LIMIT, sha256(at), False)
    fitted = uploaded(stack, over, "over.pdf")
    assert fitted["status"] == "clean" and fitted["reduced"] is True
    assert fitted["size"] < LIMIT and fitted["originalSize"] == LIMIT + 1


def test_the_upload_limit_is_accepted_and_one_byte_more_is_a_413(stack: RunningStack) -> None:
    at = samples.pdf_of_size(UPLOAD_LIMIT)
    assert len(at) == UPLOAD_LIMIT
    accepted = stack.upload(at, "big scan.pdf")
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["reduced"] is True and accepted.json()["size"] <= LIMIT
    over = stack.upload(samples.pdf_of_size(UPLOAD_LIMIT + 1), "bigger scan.pdf")
    assert over.status_code == 413
    assert over.json()["detail"] == "The document is larger than the 20 MB limit."


def test_other_types_keep_the_3_mib_limit(stack: RunningStack) -> None:
    letter = corpus.rtf(b"Dear patient,\\par " + b"x" * LIMIT)
    assert LIMIT < len(letter) < UPLOAD_LIMIT
    answer = stack.upload(letter, "letter.rtf")
    assert answer.status_code == 413
    assert "Save it as a PDF" in answer.json()["detail"]


# -- nothing hidden reaches the patient ----------------------------------------------------------


def test_a_pdf_author_is_not_downloaded(stack: RunningStack) -> None:
    data = samples.text_pdf("Fit note for Jo", author=samples.AUTHOR)
    attachment, got = served(stack, data, "Fit note.pdf")
    assert attachment["metadataRemoved"] is True and attachment["reduced"] is False
    assert samples.AUTHOR.encode() not in got and b"Clinical System" not in got
    with pikepdf.open(io.BytesIO(got)) as pdf:
        assert "/Info" not in pdf.trailer and "/Metadata" not in pdf.Root
    assert shown_text(got) == shown_text(data)


@pytest.mark.parametrize(
    "build",
    [corpus.docx_comment, corpus.docx_tracked_insertion, corpus.docx_tracked_deletion],
    ids=lambda b: b.__name__,
)
def test_a_word_letter_with_a_comment_or_tracked_change_is_rejected_saying_what_to_do(
    stack: RunningStack, build: Callable[[], bytes]
) -> None:
    result = uploaded(stack, build(), "letter.docx")
    assert result["status"] == "rejected"
    assert result["reason"] == REVISIONS


# -- ordinary documents still come out clean -----------------------------------------------------


@pytest.fixture(scope="module")
def libreoffice_exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    if soffice_binary() is None:
        missing("LibreOffice", "install the Debian package libreoffice-writer-nogui (make test does, as root)")
    return make_samples(tmp_path_factory.mktemp("exports"))


ORDINARY: dict[str, tuple[str, Callable[[], bytes]]] = {
    "pdfa": ("pdf", samples.pdfa),
    "filled_form": ("pdf", samples.filled_form_pdf),
    "fax_tiff": ("tiff", samples.fax_tiff),
    "cmyk_jpeg": ("jpeg", samples.cmyk_jpeg),
    "png_with_text": ("png", samples.png_with_text),
}


def test_ordinary_documents_still_come_out_clean(stack: RunningStack, libreoffice_exports: dict[str, bytes]) -> None:
    files = {name: (kind, build()) for name, (kind, build) in ORDINARY.items()}
    files.update({f"libreoffice_{kind}": (kind, data) for kind, data in libreoffice_exports.items()})

    def one(item: tuple[str, tuple[str, bytes]]) -> tuple[str, dict]:
        name, (kind, data) = item
        return name, uploaded(stack, data, f"{name}.{TYPES[kind].extension}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(pool.map(one, files.items()))
    for name, result in results.items():
        assert result["status"] == "clean", (name, result)
        assert result["reduced"] is False, name
    # What carried metadata lost it; the rest were stored byte for byte.
    for name in ("pdfa", "fax_tiff", "cmyk_jpeg", "png_with_text", "libreoffice_pdf"):
        assert results[name]["metadataRemoved"] is True, name
    for name in ("filled_form", "libreoffice_docx", "libreoffice_odt", "libreoffice_doc", "libreoffice_rtf"):
        assert results[name]["metadataRemoved"] is False, name
        assert results[name]["sha256"] == sha256(files[name][1]), name


def test_the_kept_parts_of_ordinary_documents_survive(stack: RunningStack) -> None:
    _, pdfa = served(stack, samples.pdfa(), "archive.pdf")
    with pikepdf.open(io.BytesIO(pdfa)) as pdf:
        assert b"<pdfaid:part>2</pdfaid:part>" in pdf.Root.Metadata.read_bytes()
        assert samples.AUTHOR.encode() not in pdf.Root.Metadata.read_bytes()
    _, form = served(stack, samples.filled_form_pdf(), "fit note form.pdf")
    with pikepdf.open(io.BytesIO(form)) as pdf:
        assert str(pdf.Root.AcroForm.Fields[0].V) == "Jo Bloggs"
    _, fax = served(stack, samples.fax_tiff(), "fax.tif")
    assert Image.open(io.BytesIO(fax)).n_frames == 3 and b"FaxServer" not in fax
    _, cmyk = served(stack, samples.cmyk_jpeg(), "poster.jpg")
    assert Image.open(io.BytesIO(cmyk)).mode == "CMYK" and b"Print Studio" not in cmyk


def test_an_answer_for_an_unchanged_file_says_nothing_was_done(stack: RunningStack) -> None:
    data = corpus.docx_good()
    answer = stack.upload(data, "letter.docx").json()
    assert (answer["reduced"], answer["metadataRemoved"]) == (False, False)
    assert (
        (answer["originalSize"], answer["originalSha256"])
        == (answer["size"], answer["sha256"])
        == (
            len(data),
            sha256(data),
        )
    )
    assert requests.get(f"{stack.base_url}/api/v1/attachments/{answer['id']}", headers=stack.auth(), timeout=10).json()[
        "originalSha256"
    ] == sha256(data)


def test_the_reasons_are_the_validators_words() -> None:
    assert REVISIONS == f"This file {REASONS['comments']}." == f"This file {REASONS['tracked_changes']}."
