"""Defender's scan results recorded and read back against Azurite: the event as Microsoft
documents it goes in through `store_scan_result` (what the record_scan_result function does),
and the Defender scanner reads it back through `StoredVerdicts`, comparing it with the blob as
Azurite really stores it (its ETag, Last-Modified and Content-MD5)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from shared_code.attachments import CLEAN, scan_upload, upload_attachment
from shared_code.scan_verdicts import StoredVerdicts, forget_scan_results, store_scan_result
from shared_code.scanning import COULD_NOT_BE_SCANNED, DefenderScanner, ScanError
from shared_code.storage import DOCUMENTS, SCAN_VERDICTS, UPLOADS
from tests.support.records import principal
from tests.support.stack import sample_pdf

BYTES = b"%PDF-1.7 a letter to a patient"


@pytest.fixture
def upload(storage) -> tuple[str, Any]:
    """A fresh blob in uploads: its name and its properties as Azurite stores it."""
    name = f"A12345/{uuid.uuid4()}"
    client = storage.container(UPLOADS).get_blob_client(name)
    client.upload_blob(BYTES)
    return name, client.get_blob_properties()


def event(storage, name: str, props: Any, **change: Any) -> dict[str, Any]:
    """Defender's scan-result event data for this blob, as Microsoft documents it."""
    account = storage.blob_service.account_name
    data = {
        "correlationId": str(uuid.uuid4()),
        "blobUri": f"{storage.blob_service.url.rstrip('/')}/{UPLOADS}/{name}",
        "eTag": props.etag.strip('"'),
        "scanFinishedTimeUtc": (props.last_modified + timedelta(seconds=1)).isoformat().replace("+00:00", "Z"),
        "scanResultType": "No threats found",
        "scanResultDetails": {"malwareNamesFound": [], "sha256": "AA11"},
    }
    assert account in data["blobUri"]
    data.update(change)
    return data


def scanner(storage) -> DefenderScanner:
    # No waiting: each read either finds the verdict or the scan fails at once.
    return DefenderScanner(StoredVerdicts(storage), timeout=0.0)


def test_a_recorded_clean_result_is_the_verdict_for_that_blob(storage, upload) -> None:
    name, props = upload
    assert store_scan_result(storage, event(storage, name, props)) == "recorded: clean"
    verdict = scanner(storage).scan(BYTES, blob_name=name)
    assert verdict.clean and verdict.engine == "defender"
    assert verdict.scanned_at == props.last_modified + timedelta(seconds=1)


def test_a_recorded_malicious_result_rejects_it_naming_the_malware(storage, upload) -> None:
    name, props = upload
    malicious = event(
        storage,
        name,
        props,
        scanResultType="Malicious",
        scanResultDetails={"malwareNamesFound": ["DOS/EICAR_Test_File"]},
    )
    assert store_scan_result(storage, malicious) == "recorded: rejected"
    verdict = scanner(storage).scan(BYTES, blob_name=name)
    assert (verdict.clean, verdict.signature) == (False, "DOS/EICAR_Test_File")
    assert verdict.reason == "contains a virus or malware (DOS/EICAR_Test_File)"


def test_not_scanned_is_final(storage, upload) -> None:
    name, props = upload
    store_scan_result(storage, event(storage, name, props, scanResultType="Not Scanned"))
    verdict = scanner(storage).scan(BYTES, blob_name=name)
    assert (verdict.clean, verdict.reason) == (False, COULD_NOT_BE_SCANNED)


def test_no_result_yet_is_no_verdict(storage, upload) -> None:
    name, _ = upload
    with pytest.raises(ScanError, match="no verdict from Defender"):
        scanner(storage).scan(BYTES, blob_name=name)


def test_a_result_older_than_the_last_write_does_not_count(storage, upload) -> None:
    name, props = upload
    stale = (props.last_modified - timedelta(microseconds=1)).isoformat()
    store_scan_result(storage, event(storage, name, props, scanFinishedTimeUtc=stale))
    with pytest.raises(ScanError, match="no verdict from Defender"):
        scanner(storage).scan(BYTES, blob_name=name)
    # Scanned within the second of the write (Last-Modified is to the second): it counts.
    store_scan_result(storage, event(storage, name, props, scanFinishedTimeUtc=props.last_modified.isoformat()))
    assert scanner(storage).scan(BYTES, blob_name=name).clean


def test_a_result_for_the_bytes_before_an_overwrite_does_not_count(storage, upload) -> None:
    name, props = upload
    store_scan_result(storage, event(storage, name, props, scanFinishedTimeUtc="2099-01-01T00:00:00Z"))
    client = storage.container(UPLOADS).get_blob_client(name)
    client.upload_blob(b"%PDF-1.7 something else", overwrite=True)
    new = client.get_blob_properties()
    assert new.etag != props.etag
    # The old result is later than the new write, yet it is about other bytes.
    with pytest.raises(ScanError, match="no verdict from Defender"):
        scanner(storage).scan(b"%PDF-1.7 something else", blob_name=name)
    store_scan_result(storage, event(storage, name, new, scanResultType="Malicious"))
    assert not scanner(storage).scan(b"%PDF-1.7 something else", blob_name=name).clean


def test_bytes_other_than_the_stored_blob_are_refused(storage, upload) -> None:
    name, props = upload
    store_scan_result(storage, event(storage, name, props))
    with pytest.raises(ScanError, match="changed after it was read"):
        scanner(storage).scan(b"not what is stored", blob_name=name)


def test_the_same_event_twice_is_one_row(storage, upload) -> None:
    name, props = upload
    data = event(storage, name, props)
    store_scan_result(storage, data)
    store_scan_result(storage, data)
    assert len(StoredVerdicts(storage).results(name)) == 1


@pytest.mark.parametrize(
    ("change", "outcome"),
    [
        ({"blobUri": "https://someoneelse.blob.core.windows.net/uploads/A12345/x"}, "ignored: another storage account"),
        ({"scanFinishedTimeUtc": None}, "ignored: not a usable scan result"),
    ],
)
def test_results_that_are_not_ours_or_incomplete_are_ignored(storage, upload, change, outcome) -> None:
    name, props = upload
    assert store_scan_result(storage, event(storage, name, props, **change)) == outcome
    assert StoredVerdicts(storage).results(name) == []


def test_a_container_defender_is_not_meant_to_scan_is_ignored(storage, upload) -> None:
    name, props = upload
    other = event(storage, name, props)
    other["blobUri"] = other["blobUri"].replace(f"/{UPLOADS}/", "/documents/")
    assert store_scan_result(storage, other) == "ignored: a container Defender is not meant to scan"


def test_forgetting_removes_only_that_blobs_results(storage, upload) -> None:
    name, props = upload
    store_scan_result(storage, event(storage, name, props))
    other = f"A12345/{uuid.uuid4()}"
    client = storage.container(UPLOADS).get_blob_client(other)
    client.upload_blob(BYTES)
    store_scan_result(storage, event(storage, other, client.get_blob_properties()))
    forget_scan_results(storage, name)
    assert StoredVerdicts(storage).results(name) == []
    assert len(StoredVerdicts(storage).results(other)) == 1
    assert storage.table(SCAN_VERDICTS).name == "scanverdicts"


def test_results_no_scan_claimed_go_after_a_day_and_fresh_ones_stay(storage, upload, monkeypatch) -> None:
    from shared_code import clock, scan_verdicts

    name, props = upload
    now = clock.now()
    monkeypatch.setattr(clock, "now", lambda: now - scan_verdicts.KEEP_UNCLAIMED - timedelta(minutes=1))
    store_scan_result(storage, event(storage, name, props))  # recorded a day and a minute ago
    fresh = f"A12345/{uuid.uuid4()}"
    client = storage.container(UPLOADS).get_blob_client(fresh)
    client.upload_blob(BYTES)
    fresh_props = client.get_blob_properties()
    monkeypatch.setattr(clock, "now", lambda: now - scan_verdicts.KEEP_UNCLAIMED + timedelta(minutes=1))
    store_scan_result(storage, event(storage, fresh, fresh_props))  # a minute short of a day
    monkeypatch.setattr(clock, "now", lambda: now)
    assert scan_verdicts.forget_unclaimed_scan_results(storage) >= 1
    assert StoredVerdicts(storage).results(name) == []
    assert len(StoredVerdicts(storage).results(fresh)) == 1


def test_an_upload_scanned_with_defender_takes_the_recorded_verdict_and_then_forgets_it(storage, settings) -> None:
    defender = replace(settings, scanner="defender", defender_verdict_timeout_seconds=0)
    data = sample_pdf("Letter")
    attachment = upload_attachment(storage, defender, principal(), "letter.pdf", data)
    props = storage.container(UPLOADS).get_blob_client(attachment.blob_name).get_blob_properties()
    with pytest.raises(ScanError):
        scan_upload(storage, defender, attachment.blob_name, data)  # no verdict yet: the trigger retries
    store_scan_result(storage, event(storage, attachment.blob_name, props))
    decided = scan_upload(storage, defender, attachment.blob_name, data)
    assert decided.status == CLEAN and decided.scan_engine == "defender"
    assert storage.container(DOCUMENTS).get_blob_client(attachment.blob_name).exists()
    assert StoredVerdicts(storage).results(attachment.blob_name) == []
