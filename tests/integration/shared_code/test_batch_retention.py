"""Batches after sending, against real Azurite: `done` noticed by the timer with nobody reading the
batch, the sealed rows deleted once done or cancelled, and everything kept only a link's lifetime."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from shared_code import clock, lifecycle
from shared_code.batch_retention import delete_old_batch_rows, settle_finished_batches
from shared_code.batch_send import cancel_batch, send_batch
from shared_code.batch_store import CANCELLED, DONE, READY, SENDING, change_batch, get_batch, load_chunk, row_message_id
from shared_code.batches import errors_csv
from shared_code.errors import NotFound
from shared_code.message_store import transition
from shared_code.storage import BATCH_DISPATCH
from tests.integration.shared_code.test_batches import _create, _drain, _rows, _work

BAD_ROW = "1234567890,31/01/1970,07700900999,Bad Check,flu\r\n"


def _sent(storage, batch_id: str, rows: range) -> None:
    now = clock.now()
    for row in rows:
        message_id = row_message_id(batch_id, row)
        transition(storage, "A12345", message_id, lambda m: lifecycle.send_claimed(m, now))
        transition(storage, "A12345", message_id, lambda m: lifecycle.sent(m, f"acs-{m.id}", now))


def test_the_timer_marks_a_finished_batch_done_and_deletes_its_rows(storage, settings) -> None:
    batch_id = _create(storage, settings, _rows(2))["id"]
    send_batch(storage, "A12345", batch_id)
    _work(storage, settings, batch_id)
    _drain(storage, BATCH_DISPATCH)
    _sent(storage, batch_id, range(2, 3))
    settle_finished_batches(storage)
    assert get_batch(storage, "A12345", batch_id).status == SENDING  # one row still to send
    assert load_chunk(storage, settings, "A12345", batch_id, "r", 0) != []
    _sent(storage, batch_id, range(3, 4))
    assert settle_finished_batches(storage) >= 1
    batch = get_batch(storage, "A12345", batch_id)
    assert batch.status == DONE and batch.rows_deleted_at is not None
    assert load_chunk(storage, settings, "A12345", batch_id, "r", 0) == []


def test_a_cancelled_batch_loses_its_rows_to_text_at_once(storage, settings) -> None:
    batch_id = _create(storage, settings, _rows(2))["id"]
    send_batch(storage, "A12345", batch_id)
    _drain(storage, "batch-rows")
    cancel_batch(storage, "A12345", batch_id)
    assert load_chunk(storage, settings, "A12345", batch_id, "r", 0) == []
    assert get_batch(storage, "A12345", batch_id).rows_deleted_at is not None


def _age(storage, batch_id: str, days: int) -> None:
    change_batch(storage, "A12345", batch_id, lambda b: replace(b, created_at=clock.now() - timedelta(days=days)))


def test_after_a_link_s_lifetime_a_batch_never_sent_is_cancelled_and_its_rows_deleted(storage, settings) -> None:
    batch_id = _create(storage, settings, _rows(2) + BAD_ROW)["id"]
    assert errors_csv(storage, settings, "A12345", batch_id).count(b"\r\n") == 2
    _age(storage, batch_id, settings.link_ttl_days - 1)
    delete_old_batch_rows(storage, settings)
    assert get_batch(storage, "A12345", batch_id).status == READY  # not yet
    _age(storage, batch_id, settings.link_ttl_days + 1)
    assert delete_old_batch_rows(storage, settings) >= 1
    batch = get_batch(storage, "A12345", batch_id)
    assert batch.status == CANCELLED and batch.errors_deleted_at is not None
    assert load_chunk(storage, settings, "A12345", batch_id, "r", 0) == []
    assert load_chunk(storage, settings, "A12345", batch_id, "e", 0) == []
    with pytest.raises(NotFound, match="deleted"):
        errors_csv(storage, settings, "A12345", batch_id)


def test_a_batch_still_sending_keeps_its_rows_however_old(storage, settings) -> None:
    batch_id = _create(storage, settings, _rows(1))["id"]
    send_batch(storage, "A12345", batch_id)
    _drain(storage, "batch-rows")
    _age(storage, batch_id, settings.link_ttl_days + 1)
    delete_old_batch_rows(storage, settings)
    batch = get_batch(storage, "A12345", batch_id)
    assert batch.status == SENDING and batch.errors_deleted_at is None
    assert load_chunk(storage, settings, "A12345", batch_id, "r", 0) != []
