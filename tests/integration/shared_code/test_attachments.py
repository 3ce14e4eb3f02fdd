"""The scan of an upload against real Azurite and clamd: verdicts, idempotency, failing closed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared_code.attachments import (
    CLEAN,
    MAX_SCAN_ATTEMPTS,
    REJECTED,
    delete_attachment,
    find_attachment,
    save_attachment,
    scan_upload,
    upload_attachment,
)
from shared_code.crypto import sha256_hex
from shared_code.filetypes import REASONS
from shared_code.scanning import ScanError
from shared_code.storage import DOCUMENTS, QUARANTINE, UPLOADS
from tests.support import corpus
from tests.support.corpus import fitting as fitting_samples
from tests.support.records import principal
from tests.support.stack import sample_pdf


@pytest.fixture
def scan_settings(settings, clamd_address):
    return replace(settings, scanner="clamav", clamd_address=clamd_address)


def _exists(storage, container: str, name: str) -> bool:
    return storage.container(container).get_blob_client(name).exists()


def _upload(storage, settings, data: bytes, name: str = "letter.pdf"):
    attachment = upload_attachment(storage, settings, principal(), name, data)
    stored = storage.container(UPLOADS).get_blob_client(attachment.blob_name).download_blob().readall()
    return attachment, stored


def test_clean_file_moves_to_documents_with_its_verdict(storage, scan_settings) -> None:
    attachment, data = _upload(storage, scan_settings, sample_pdf("Letter"))
    decided = scan_upload(storage, scan_settings, attachment.blob_name, data)
    assert decided.status == CLEAN and decided.scan_engine == "clamav" and decided.scanned_at
    assert _exists(storage, DOCUMENTS, attachment.blob_name)
    assert not _exists(storage, UPLOADS, attachment.blob_name)
    assert not _exists(storage, QUARANTINE, attachment.blob_name)
    served = storage.container(DOCUMENTS).get_blob_client(attachment.blob_name).download_blob().readall()
    assert served == data


def test_running_the_trigger_twice_gives_the_same_outcome(storage, scan_settings) -> None:
    attachment, data = _upload(storage, scan_settings, sample_pdf("Letter"))
    first = scan_upload(storage, scan_settings, attachment.blob_name, data)
    second = scan_upload(storage, scan_settings, attachment.blob_name, data)
    # The second run finds the verdict already made and leaves it (times are stored to the millisecond).
    assert second.status == first.status == CLEAN
    assert abs((second.scanned_at - first.scanned_at).total_seconds()) < 0.001
    names = [b.name for b in storage.container(DOCUMENTS).list_blobs(name_starts_with=attachment.blob_name)]
    assert names == [attachment.blob_name]


def test_malware_goes_to_quarantine_with_the_signature(storage, scan_settings) -> None:
    attachment, data = _upload(storage, scan_settings, corpus.pdf_with_marker())
    decided = scan_upload(storage, scan_settings, attachment.blob_name, data)
    assert decided.status == REJECTED
    assert decided.scan_signature.startswith("Enclose.Test.Marker")
    assert decided.reason.startswith("This file contains a virus or malware")
    assert _exists(storage, QUARANTINE, attachment.blob_name)
    assert not _exists(storage, DOCUMENTS, attachment.blob_name)


def test_active_content_is_rejected_by_the_validator_before_the_scanner(storage, scan_settings) -> None:
    attachment, data = _upload(storage, scan_settings, corpus.pdf_javascript_names())
    decided = scan_upload(storage, scan_settings, attachment.blob_name, data)
    assert decided.status == REJECTED and decided.scan_engine == "enclose-validator"
    assert decided.scan_signature == "pdf_javascript"


def test_a_scanner_that_is_down_fails_closed_after_the_last_attempt(storage, scan_settings) -> None:
    # Each attempt first waits (1 s here) for a clamd that might be starting; it never comes.
    down = replace(
        scan_settings, clamd_address="tcp://127.0.0.1:9", clamd_timeout_seconds=1, clamd_startup_wait_seconds=1
    )
    attachment, data = _upload(storage, down, sample_pdf("Letter"))
    for attempt in range(1, MAX_SCAN_ATTEMPTS):
        with pytest.raises(ScanError):
            scan_upload(storage, down, attachment.blob_name, data)
        current = find_attachment(storage, attachment.org, attachment.id)
        assert current.status == "scanning" and current.scan_attempts == attempt
        assert not _exists(storage, DOCUMENTS, attachment.blob_name)
    decided = scan_upload(storage, down, attachment.blob_name, data)
    assert decided.status == REJECTED and "could not be checked for viruses" in decided.reason
    assert not _exists(storage, DOCUMENTS, attachment.blob_name)


def test_bytes_that_differ_from_the_upload_are_rejected(storage, scan_settings) -> None:
    attachment, data = _upload(storage, scan_settings, sample_pdf("Letter"))
    decided = scan_upload(storage, scan_settings, attachment.blob_name, data + b"\n")
    assert decided.status == REJECTED and decided.scan_signature == "sha256-mismatch"


def test_a_deleted_attachment_is_never_placed(storage, scan_settings) -> None:
    attachment, data = _upload(storage, scan_settings, sample_pdf("Letter"))
    delete_attachment(storage, attachment.org, attachment.id)
    assert scan_upload(storage, scan_settings, attachment.blob_name, data) is None
    assert not _exists(storage, DOCUMENTS, attachment.blob_name)
    assert not _exists(storage, UPLOADS, attachment.blob_name)


# -- prepared at upload (issue 18) ---------------------------------------------------------------


def test_what_is_stored_scanned_and_served_is_the_prepared_file(storage, scan_settings) -> None:
    sent = fitting_samples.text_pdf("Fit note", author=fitting_samples.AUTHOR)
    attachment, stored = _upload(storage, scan_settings, sent)
    assert fitting_samples.AUTHOR.encode() not in stored
    assert (attachment.size, attachment.sha256) == (len(stored), sha256_hex(stored))
    assert (attachment.original_size, attachment.original_sha256) == (len(sent), sha256_hex(sent))
    assert attachment.cleaned and not attachment.reduced
    api = attachment.to_api()
    assert (api["metadataRemoved"], api["reduced"], api["originalSize"]) == (True, False, len(sent))
    decided = scan_upload(storage, scan_settings, attachment.blob_name, stored)
    assert decided.status == CLEAN
    served = storage.container(DOCUMENTS).get_blob_client(attachment.blob_name).download_blob().readall()
    assert served == stored
    assert find_attachment(storage, attachment.org, attachment.id).original_sha256 == sha256_hex(sent)


def _stored_instead(storage, settings, data: bytes):
    """An upload row whose stored bytes are `data`, as if they had skipped preparation."""
    attachment, _ = _upload(storage, settings, sample_pdf("Letter"))
    attachment = save_attachment(storage, replace(attachment, size=len(data), sha256=sha256_hex(data)))
    storage.container(UPLOADS).upload_blob(attachment.blob_name, data, overwrite=True)
    return attachment


def test_bytes_that_did_not_go_through_preparation_are_never_served(storage, scan_settings) -> None:
    data = fitting_samples.text_pdf("Fit note", author=fitting_samples.AUTHOR)
    attachment = _stored_instead(storage, scan_settings, data)
    decided = scan_upload(storage, scan_settings, attachment.blob_name, data)
    assert decided.status == REJECTED and decided.scan_signature == "not_prepared"
    assert decided.reason == f"This file {REASONS['not_prepared']}."
    assert not _exists(storage, DOCUMENTS, attachment.blob_name)


def test_stored_bytes_over_the_limit_are_never_served(storage, scan_settings) -> None:
    data = fitting_samples.pdf_of_size(scan_settings.max_attachment_bytes + 1)  # valid, nothing hidden
    attachment = _stored_instead(storage, scan_settings, data)
    decided = scan_upload(storage, scan_settings, attachment.blob_name, data)
    assert decided.status == REJECTED and decided.scan_signature == "too_large"
    assert decided.reason == "This file is larger than the 3 MB limit."


def test_an_upload_the_preparation_refused_is_rejected_by_the_scan_for_its_reason(storage, scan_settings) -> None:
    limit = scan_settings.max_attachment_bytes
    sent = corpus.pdf_javascript_names() + b"\n%" + b"0" * limit + b"\n%%EOF\n"
    attachment, stored = _upload(storage, scan_settings, sent)
    assert stored == sent and attachment.size == len(sent) > limit  # stored as it came
    decided = scan_upload(storage, scan_settings, attachment.blob_name, stored)
    assert decided.status == REJECTED and decided.scan_signature == "pdf_javascript"


def test_an_upload_storage_refuses_is_a_503_and_leaves_no_record(storage, settings) -> None:
    """The row is written, then the blob is refused (here: an account Azurite does not have, which it
    answers at once, where a closed port would take the SDK's minute of retries): the row goes
    again, and the caller is told to try again."""
    import re

    from shared_code.errors import ServiceUnavailable
    from shared_code.storage import Storage

    connection = re.sub(r"(BlobEndpoint=http://[^/;]+)/[^;]+", r"\1/nosuchaccount", settings.storage_connection_string)
    assert connection != settings.storage_connection_string
    no_blobs = Storage(replace(settings, storage_connection_string=connection))
    before = {row["RowKey"] for row in storage.table("attachments").query()}
    with pytest.raises(ServiceUnavailable, match="could not be stored"):
        upload_attachment(no_blobs, settings, principal(), "letter.pdf", corpus.pdf_good())
    assert {row["RowKey"] for row in storage.table("attachments").query()} - before == set()
