"""The sweep for attachments stuck in `scanning`, against real Azurite and clamd."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from shared_code import clock
from shared_code.attachments import (
    CLEAN,
    MAX_SCAN_ATTEMPTS,
    REJECTED,
    SCANNING,
    find_attachment,
    save_attachment,
    upload_attachment,
)
from shared_code.lifecycle import AWAITING_SCAN, QUEUED
from shared_code.message_store import get_message
from shared_code.scan_sweep import STUCK_SCAN_AFTER, recheck_stuck_scans
from shared_code.storage import DOCUMENTS, UPLOADS
from tests.support import corpus
from tests.support.records import new_message, principal
from tests.support.stack import sample_pdf


@pytest.fixture
def scan_settings(settings, clamd_address):
    return replace(settings, scanner="clamav", clamd_address=clamd_address)


def _stuck_upload(storage, settings, data: bytes, *, age: timedelta = STUCK_SCAN_AFTER + timedelta(seconds=5)):
    """An upload whose check was lost: still `scanning`, made `age` ago, its bytes in `uploads`."""
    attachment = upload_attachment(storage, settings, principal(), "letter.pdf", data)
    return save_attachment(storage, replace(attachment, created_at=clock.now() - age))


def _now(storage, attachment):
    return find_attachment(storage, attachment.org, attachment.id)


def test_a_stuck_clean_file_is_checked_again_and_released(storage, scan_settings) -> None:
    stuck = _stuck_upload(storage, scan_settings, sample_pdf("Letter"))
    recheck_stuck_scans(storage, scan_settings)
    decided = _now(storage, stuck)
    assert decided.status == CLEAN and decided.scan_engine == "clamav"
    assert storage.container(DOCUMENTS).get_blob_client(stuck.blob_name).exists()


def test_a_stuck_infected_file_is_rejected_by_the_same_rules(storage, scan_settings) -> None:
    stuck = _stuck_upload(storage, scan_settings, corpus.pdf_with_marker())
    recheck_stuck_scans(storage, scan_settings)
    assert _now(storage, stuck).status == REJECTED


def test_a_file_still_within_the_time_a_live_check_may_take_is_left_alone(storage, scan_settings) -> None:
    recent = _stuck_upload(storage, scan_settings, sample_pdf("Letter"), age=STUCK_SCAN_AFTER - timedelta(minutes=1))
    recheck_stuck_scans(storage, scan_settings)
    assert _now(storage, recent).status == SCANNING


def test_a_stuck_file_whose_upload_is_gone_is_rejected_as_not_checked(storage, scan_settings) -> None:
    stuck = _stuck_upload(storage, scan_settings, sample_pdf("Letter"))
    storage.delete_blob(UPLOADS, stuck.blob_name)
    report = recheck_stuck_scans(storage, scan_settings)
    decided = _now(storage, stuck)
    assert decided.status == REJECTED and "could not be checked for viruses" in decided.reason
    assert decided.scan_signature == "upload-missing" and report.rejected_missing >= 1
    assert not storage.container(DOCUMENTS).get_blob_client(stuck.blob_name).exists()


def test_with_the_scanner_down_each_sweep_counts_an_attempt_until_the_file_is_rejected(storage, scan_settings) -> None:
    down = replace(
        scan_settings, clamd_address="tcp://127.0.0.1:9", clamd_timeout_seconds=1, clamd_startup_wait_seconds=1
    )
    stuck = _stuck_upload(storage, down, sample_pdf("Letter"))
    for attempt in range(1, MAX_SCAN_ATTEMPTS):
        recheck_stuck_scans(storage, down)
        current = _now(storage, stuck)
        assert current.status == SCANNING and current.scan_attempts == attempt
    recheck_stuck_scans(storage, down)
    assert _now(storage, stuck).status == REJECTED


def test_a_sweep_out_of_time_leaves_the_rest_for_the_next_run(storage, scan_settings) -> None:
    stuck = _stuck_upload(storage, scan_settings, sample_pdf("Letter"))
    report = recheck_stuck_scans(storage, scan_settings, budget_seconds=-1)
    assert report.left_for_next_run >= 1 and _now(storage, stuck).status == SCANNING


def test_a_message_waiting_on_a_stuck_file_moves_on_once_the_sweep_decides(storage, scan_settings) -> None:
    stuck = _stuck_upload(storage, scan_settings, sample_pdf("Letter"))
    message = new_message(storage, scan_settings, attachment_ids=[stuck.id])
    assert message.state == AWAITING_SCAN
    recheck_stuck_scans(storage, scan_settings)
    assert get_message(storage, message.org, message.id).state == QUEUED
