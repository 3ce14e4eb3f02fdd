"""The scheduled re-scan against real Azurite and clamd: a signature learnt after a document was
kept withdraws it from its template and from every unexpired message that carries a copy."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from shared_code import clock
from shared_code.attachments import find_attachment, save_attachment
from shared_code.message_create import create_message
from shared_code.message_links import revoke_message
from shared_code.message_request import parse_new_message
from shared_code.message_store import get_message, transition
from shared_code.message_views import message_events
from shared_code.portal import list_documents
from shared_code.storage import DOCUMENTS, QUARANTINE, TEMPLATE_DOCUMENTS
from shared_code.template_rescan import CHANGED, MISSING, WITHDRAWN, rescan_document, run_template_rescan
from shared_code.template_store import find_template, find_version
from shared_code.templates import apply_template, create_template
from tests.support.clamd import ClamdProcess, add_signature, clamd_fixture
from tests.support.records import DOB, clean_attachment, mark_sent, principal
from tests.support.stack import sample_pdf

clamd = clamd_fixture("module")
GP1 = principal()


@pytest.fixture
def scan_settings(settings, clamd: ClamdProcess):
    return replace(settings, scanner="clamav", clamd_address=clamd.address, clamd_startup_wait_seconds=0)


def _text(marker: str) -> bytes:
    return f"Fasting before your operation.\nReference {marker}\n".encode()


def _template(storage, settings, datas: list[bytes]):
    uploads = [clean_attachment(storage, settings, data=data) for data in datas]
    for upload in uploads:
        assert upload.status == "clean"
    payload = {
        "name": "Pre-op",
        "body": "Dear ((first name)), please read these.",
        "attachmentIds": [u.id for u in uploads],
    }
    return create_template(storage, settings, GP1, payload)


def _send(storage, settings, template_id: str):
    payload = {
        "patient": {"nhsNumber": "9434765919", "dateOfBirth": DOB, "mobile": "07700900123", "name": "Jo Bloggs"},
        "templateId": template_id,
    }
    request = apply_template(storage, settings, GP1, parse_new_message(payload, settings))
    return mark_sent(storage, create_message(storage, settings, GP1, request))


def _exists(storage, container: str, name: str) -> bool:
    return storage.container(container).get_blob_client(name).exists()


def test_a_document_found_infected_is_withdrawn_everywhere_it_is_live(storage, scan_settings, clamd) -> None:
    marker = f"ENCLOSE-RESCAN-{uuid.uuid4().hex}"
    bad_data, good_data = _text(marker), sample_pdf("Kept")
    template = _template(storage, scan_settings, [bad_data, good_data])
    bad, good = template.documents
    live = _send(storage, scan_settings, template.id)
    revoked = _send(storage, scan_settings, template.id)
    revoke_message(storage, "A12345", revoked.id)
    expired = _send(storage, scan_settings, template.id)
    transition(storage, "A12345", expired.id, lambda m: replace(m, link_expires_at=clock.now() - timedelta(seconds=1)))

    # Clean by every signature it was checked with: nothing changes.
    # (Counts cover every template in this Azurite, so the checks are on this test's own.)
    first = run_template_rescan(storage, scan_settings)
    assert first.scanned >= 2
    assert find_template(storage, "A12345", template.id).version == 1
    assert find_attachment(storage, "A12345", bad.id).scanned_at is not None

    signature = add_signature(clamd, f"Enclose.Test.Rescan{uuid.uuid4().hex[:8]}", marker.encode())
    report = run_template_rescan(storage, scan_settings)
    assert report.withdrawn >= 1

    record = find_attachment(storage, "A12345", bad.id)
    assert record.status == "rejected" and signature in record.reason and record.scan_signature == signature
    assert not _exists(storage, TEMPLATE_DOCUMENTS, f"A12345/{bad.id}")
    assert _exists(storage, QUARANTINE, f"A12345/{bad.id}")

    now = find_template(storage, "A12345", template.id)
    assert now.version == 2 and [d.id for d in now.documents] == [good.id]
    assert [(w.document_id, w.filename) for w in now.withdrawn] == [(bad.id, bad.filename)]
    assert signature in now.withdrawn[0].reason
    assert now.to_api()["withdrawnAttachments"][0]["id"] == bad.id
    # Version 1 can no longer be sent; the current one can, without the document.
    assert [d.id for d in find_version(storage, now, 1).documents] == [bad.id, good.id]

    # The live message: its copy gone, the portal lists only the other, and the practice is told.
    message = get_message(storage, "A12345", live.id)
    assert not _exists(storage, DOCUMENTS, message.document_blob(bad.id))
    assert _exists(storage, DOCUMENTS, message.document_blob(good.id))
    assert [d.id for d in list_documents(storage, message)] == [good.id]
    withdrawals = [e for e in message_events(storage, message) if e.type == "document_withdrawn"]
    assert [e.attachment_id for e in withdrawals] == [bad.id]
    # A revoked or expired link is not touched (its copies are gone or going with the purge).
    for other in (revoked, expired):
        types = [e.type for e in message_events(storage, get_message(storage, "A12345", other.id))]
        assert "document_withdrawn" not in types

    # The next run finds nothing more to do, and the kept document stays clean.
    run_template_rescan(storage, scan_settings)
    assert find_template(storage, "A12345", template.id).version == 2
    assert find_attachment(storage, "A12345", good.id).status == "clean"


def test_a_withdrawal_cut_short_is_finished_by_the_next_run(storage, scan_settings) -> None:
    template = _template(storage, scan_settings, [_text("x")])
    document = template.documents[0]
    message = _send(storage, scan_settings, template.id)
    # What a run that died after its first step leaves: the record rejected, everything else as it was.
    record = find_attachment(storage, "A12345", document.id)
    save_attachment(storage, replace(record, status="rejected", reason="This file contains a virus or malware (X)."))
    run_template_rescan(storage, scan_settings)
    assert find_template(storage, "A12345", template.id).documents == ()
    assert not _exists(storage, DOCUMENTS, get_message(storage, "A12345", message.id).document_blob(document.id))


def test_a_document_changed_or_gone_from_storage_is_withdrawn(storage, scan_settings) -> None:
    template = _template(storage, scan_settings, [_text("a"), _text("b")])
    changed, gone = template.documents
    storage.container(TEMPLATE_DOCUMENTS).get_blob_client(f"A12345/{changed.id}").upload_blob(
        b"something else", overwrite=True
    )
    storage.delete_blob(TEMPLATE_DOCUMENTS, f"A12345/{gone.id}")
    run_template_rescan(storage, scan_settings)
    assert find_template(storage, "A12345", template.id).documents == ()
    assert find_attachment(storage, "A12345", changed.id).reason == CHANGED
    assert find_attachment(storage, "A12345", gone.id).reason == MISSING


def test_no_verdict_changes_nothing(storage, scan_settings) -> None:
    template = _template(storage, scan_settings, [_text("y")])
    down = replace(scan_settings, clamd_address="tcp://127.0.0.1:9", clamd_timeout_seconds=1)
    report = run_template_rescan(storage, down)
    assert report.withdrawn == 0 and report.left >= 1
    assert find_template(storage, "A12345", template.id).version == 1
    assert find_attachment(storage, "A12345", template.documents[0].id).status == "clean"


def test_a_run_out_of_time_leaves_the_rest_for_the_next(storage, scan_settings) -> None:
    _template(storage, scan_settings, [_text("z")])
    report = run_template_rescan(storage, scan_settings, budget_seconds=0)
    assert report.scanned == 0 and report.left >= 1


def test_with_defender_a_fresh_copy_is_scanned_and_its_recorded_result_counts(storage, settings) -> None:
    """Defender for Storage scans blobs as they are written: the re-scan writes a copy to rescans/ and
    waits for the result Defender's event brings (stored as record_scan_result stores it). Here a
    thread plays Defender: it reports the copy malicious as soon as it appears."""
    import threading
    from datetime import timedelta as delta

    from azure.core.exceptions import ResourceNotFoundError

    from shared_code.scan_verdicts import store_scan_result
    from shared_code.storage import RESCANS

    defender = replace(settings, scanner="defender", defender_verdict_timeout_seconds=30)
    template = _template(storage, defender, [_text("defender")])
    document = template.documents[0]
    rescans = storage.container(RESCANS)
    done = threading.Event()

    def play_defender() -> None:
        while not done.is_set():
            for blob in rescans.list_blobs(name_starts_with=f"A12345/{document.id}/"):
                try:
                    props = rescans.get_blob_client(blob.name).get_blob_properties()
                except ResourceNotFoundError:
                    continue  # scanned and deleted already
                finished = (props.last_modified + delta(seconds=1)).isoformat().replace("+00:00", "Z")
                store_scan_result(
                    storage,
                    {
                        "blobUri": f"{storage.blob_service.url.rstrip('/')}/{RESCANS}/{blob.name}",
                        "eTag": props.etag.strip('"'),
                        "scanFinishedTimeUtc": finished,
                        "scanResultType": "Malicious",
                        "scanResultDetails": {"malwareNamesFound": ["Test/Defender.Rescan"]},
                    },
                )
                done.set()
            done.wait(0.1)

    player = threading.Thread(target=play_defender, daemon=True)
    player.start()
    try:
        # This document alone: other tests' documents would each wait for a Defender that never comes.
        record = find_attachment(storage, "A12345", document.id)
        assert rescan_document(storage, defender, template, document, record) == WITHDRAWN
    finally:
        done.set()
        player.join(timeout=10)
    record = find_attachment(storage, "A12345", document.id)
    assert record.status == "rejected" and record.scan_engine == "defender"
    assert record.scan_signature == "Test/Defender.Rescan"
    assert find_template(storage, "A12345", template.id).documents == ()
    # The copy Defender scanned is gone again.
    assert list(rescans.list_blobs(name_starts_with=f"A12345/{document.id}/")) == []
