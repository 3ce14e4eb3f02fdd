"""Resource bombs through the real scan (Azurite, clamd): rejected as too complex to check safely,
at the first attempt, and without stalling reads of other attachments while they are checked."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from shared_code.attachments import CLEAN, REJECTED, find_attachment, get_attachment, scan_upload, upload_attachment
from shared_code.storage import DOCUMENTS, QUARANTINE, UPLOADS
from tests.support import corpus
from tests.support.records import principal
from tests.support.stack import sample_pdf

TOO_COMPLEX = "This file is too complex to check safely."


@pytest.fixture
def scan_settings(settings, clamd_address):
    return replace(settings, scanner="clamav", clamd_address=clamd_address)


def _upload(storage, settings, data: bytes, name: str):
    attachment = upload_attachment(storage, settings, principal(), name, data)
    stored = storage.container(UPLOADS).get_blob_client(attachment.blob_name).download_blob().readall()
    return attachment, stored


def _exists(storage, container: str, name: str) -> bool:
    return storage.container(container).get_blob_client(name).exists()


@pytest.mark.parametrize(
    ("build", "name"),
    [(corpus.pdf_operator_bomb, "letter.pdf"), (corpus.docx_deep_xml, "letter.docx")],
    ids=["pdf_operator_bomb", "docx_deep_xml"],
)
def test_bomb_is_rejected_as_too_complex_at_the_first_attempt(storage, scan_settings, build, name) -> None:
    attachment, data = _upload(storage, scan_settings, build(), name)
    decided = scan_upload(storage, scan_settings, attachment.blob_name, data)
    assert decided.status == REJECTED
    assert decided.reason == TOO_COMPLEX
    assert (decided.scan_engine, decided.scan_signature) == ("enclose-validator", "too_complex")
    assert decided.scan_attempts == 0  # a verdict on the file, not a scanner failure to retry
    stored = find_attachment(storage, attachment.org, attachment.id)
    assert (stored.status, stored.reason) == (REJECTED, TOO_COMPLEX)
    assert _exists(storage, QUARANTINE, attachment.blob_name)
    assert not _exists(storage, DOCUMENTS, attachment.blob_name)
    assert not _exists(storage, UPLOADS, attachment.blob_name)


def test_reads_keep_answering_while_bombs_are_checked(storage, scan_settings) -> None:
    other, other_data = _upload(storage, scan_settings, sample_pdf("Letter"), "letter.pdf")
    assert scan_upload(storage, scan_settings, other.blob_name, other_data).status == CLEAN
    bombs = [
        _upload(storage, scan_settings, corpus.pdf_operator_bomb(), "bomb.pdf"),
        _upload(storage, scan_settings, corpus.docx_deep_xml(), "bomb.docx"),
        _upload(storage, scan_settings, corpus.pdf_many_streams(), "many.pdf"),
    ]
    verdicts: dict[str, str | None] = {}

    def scan(attachment, data) -> None:
        decided = scan_upload(storage, scan_settings, attachment.blob_name, data)
        verdicts[attachment.id] = decided.reason

    threads = [threading.Thread(target=scan, args=bomb) for bomb in bombs]
    for thread in threads:
        thread.start()
    slowest = 0.0
    reads = 0
    while any(thread.is_alive() for thread in threads):
        started = time.monotonic()
        assert get_attachment(storage, other.org, other.id).status == CLEAN
        slowest = max(slowest, time.monotonic() - started)
        reads += 1
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    assert reads >= 3, "the checks ended before any read could overlap them"
    assert slowest < 1.0
    assert verdicts == {attachment.id: TOO_COMPLEX for attachment, _ in bombs}
