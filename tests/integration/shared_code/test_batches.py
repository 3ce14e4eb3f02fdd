"""Batches against real Azurite: create (errors, preview, duplicates), errors.csv, another organisation's
404, send with chunks made by the worker (again after a kill: no second message), cancel mid-way,
paging, and batch messages held back while a single send is waiting."""

from __future__ import annotations

import csv
import io
import json
import uuid
from dataclasses import replace

import pytest

from shared_code import lifecycle
from shared_code.batch_send import cancel_batch, dispatch_batch_message, make_chunk_messages, send_batch
from shared_code.batch_store import ROWS_PER_CHUNK, get_batch, row_message_id
from shared_code.batches import batch_view, create_batch, errors_csv, messages_page
from shared_code.dispatch_queue import DispatchRequest
from shared_code.errors import Conflict, NotFound, Unprocessable
from shared_code.message_store import find_message, transition
from shared_code.storage import BATCH_DISPATCH, BATCH_ROWS, DISPATCH
from tests.support.nhs_numbers import nhs_number
from tests.support.records import clean_attachment, principal

BOUNDARY = "batchboundary"


def _form(csv_bytes: bytes, **fields: str | list[str]) -> tuple[str, bytes]:
    parts = []
    for name, value in fields.items():
        for one in value if isinstance(value, list) else [value]:
            parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{one}\r\n'.encode())
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="cohort.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n".encode()
        + csv_bytes
        + b"\r\n"
    )
    return f"multipart/form-data; boundary={BOUNDARY}", b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def _rows(count: int, start: int = 0) -> str:
    lines = ["NHS Number,Date of Birth,Mobile,Name,Clinic"]
    for i in range(start, start + count):
        lines.append(f"{nhs_number(1000 + i)},31/01/1970,07700900{i % 1000:03d},Patient {i},flu")
    return "\r\n".join(lines) + "\r\n"


def _create(storage, settings, csv_text: str, org: str = "A12345", **fields):
    document = clean_attachment(storage, settings, org)
    content_type, body = _form(
        csv_text.encode(),
        body=fields.pop("body", "Dear ((first name)), your ((clinic)) clinic letter."),
        attachmentIds=document.id,
        **fields,
    )
    return create_batch(storage, settings, principal(org), content_type, body)


def _drain(storage, queue_name: str, batch_id: str | None = None) -> list[dict]:
    """Every entry on a queue (for this batch), removed."""
    queue = storage.queue(queue_name)
    found = []
    while True:
        messages = list(queue.receive_messages(max_messages=32, visibility_timeout=30))
        if not messages:
            return found
        for message in messages:
            body = message.content
            doc = json.loads(body if isinstance(body, str) else body.decode())
            if batch_id is None or doc.get("batch") == batch_id or batch_id in str(doc.get("id", "")):
                found.append(doc)
                queue.delete_message(message)


def _work(storage, settings, batch_id: str) -> None:
    for entry in _drain(storage, BATCH_ROWS, batch_id):
        make_chunk_messages(storage, settings, entry["org"], entry["batch"], entry["chunk"])


def test_create_counts_rows_lists_errors_and_previews_and_sends_nothing(storage, settings) -> None:
    good = _rows(3)
    bad = f"1234567890,31/01/1970,07700900999,Bad Check,flu\r\n{nhs_number(1000)},31/01/1970,07700900000,Again,flu\r\n"
    answer = _create(storage, settings, good + bad)
    assert {k: answer[k] for k in ("status", "rows", "valid", "invalid", "duplicates")} == {
        "status": "ready",
        "rows": 5,
        "valid": 3,
        "invalid": 1,
        "duplicates": 1,
    }
    assert answer["errors"] == [{"row": 5, "column": "NHS Number", "message": "Enter a valid 10-digit NHS number"}]
    assert [p["row"] for p in answer["preview"]] == [2, 3, 4]
    assert answer["preview"][0]["body"].startswith("Dear Patient, your flu clinic letter.\n")
    assert not _drain(storage, BATCH_ROWS, answer["id"])
    assert find_message(storage, "A12345", row_message_id(answer["id"], 2)) is None
    view = batch_view(storage, "A12345", answer["id"])
    assert view["status"] == "ready" and view["counters"]["total"] == 3 and view["counters"]["queued"] == 3


def test_a_file_with_no_good_row_is_invalid_and_cannot_be_sent(storage, settings) -> None:
    answer = _create(storage, settings, "NHS Number,DOB,Mobile,Clinic\r\n1234567890,31/01/1970,07700900123,flu\r\n")
    assert answer["status"] == "invalid" and answer["valid"] == 0
    with pytest.raises(Conflict):
        send_batch(storage, "A12345", answer["id"])


def test_a_bad_batch_field_refuses_the_request(storage, settings) -> None:
    with pytest.raises(Unprocessable) as caught:
        _create(storage, settings, _rows(1), body="See https://evil.example/x")
    assert [e.field for e in caught.value.errors] == ["body"]
    for spread in ("10081", "²", "-1"):
        with pytest.raises(Unprocessable) as caught:
            _create(storage, settings, _rows(1), spreadMinutes=spread)
        assert [e.field for e in caught.value.errors] == ["spreadMinutes"]
    assert _create(storage, settings, _rows(1), spreadMinutes="10080")["status"] == "ready"


def test_errors_csv_has_the_refused_rows_with_a_reason_and_formulas_escaped(storage, settings) -> None:
    rows = (
        "NHS Number,DOB,Mobile,Name,Clinic\r\n"
        '=HYPERLINK("http://x"),31/01/1970,07700900123,@SUM(A1),"+1, ""quoted""\r\nline"\r\n'
        f"{nhs_number(2000)},31/13/1970,07700900123,-Jo,flu\r\n"
        f"{nhs_number(2001)},31/01/1970,07700900123,Sam,flu\r\n"
    )
    answer = _create(storage, settings, rows)
    data = errors_csv(storage, settings, "A12345", answer["id"])
    assert data.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert table[0] == ["NHS Number", "DOB", "Mobile", "Name", "Clinic", "Reason"]
    assert table[1][:5] == [
        '\'=HYPERLINK("http://x")',
        "31/01/1970",
        "07700900123",
        "'@SUM(A1)",
        '\'+1, "quoted"\r\nline',
    ]
    assert "NHS number" in table[1][5]
    assert table[2][3] == "'-Jo" and "real date" in table[2][5]
    assert len(table) == 3


def test_another_organisations_batch_is_not_found(storage, settings) -> None:
    answer = _create(storage, settings, _rows(1))
    for call in (
        lambda: batch_view(storage, "B99999", answer["id"]),
        lambda: send_batch(storage, "B99999", answer["id"]),
        lambda: cancel_batch(storage, "B99999", answer["id"]),
        lambda: messages_page(storage, "B99999", answer["id"], {}),
        lambda: errors_csv(storage, settings, "B99999", answer["id"]),
        lambda: batch_view(storage, "A12345", "not-a-uuid"),
        lambda: batch_view(storage, "A12345", str(uuid.uuid4())),
    ):
        with pytest.raises(NotFound):
            call()


def test_send_makes_one_message_per_row_even_when_repeated_or_redone_after_a_kill(storage, settings) -> None:
    count = ROWS_PER_CHUNK + 5
    answer = _create(storage, settings, _rows(count))
    batch_id = answer["id"]
    assert send_batch(storage, "A12345", batch_id)["status"] == "sending"
    entries = _drain(storage, BATCH_ROWS, batch_id)
    assert [e["chunk"] for e in entries] == [0, 1]
    # A worker killed part-way through the first chunk: some of its messages are made.
    first = entries[0]
    make_chunk_messages(storage, settings, "A12345", batch_id, first["chunk"])
    made = {row: find_message(storage, "A12345", row_message_id(batch_id, row)) for row in range(2, 2 + count)}
    # The chunk is redelivered, and the practice presses send again: neither makes a second message.
    send_batch(storage, "A12345", batch_id)
    _work(storage, settings, batch_id)
    make_chunk_messages(storage, settings, "A12345", batch_id, first["chunk"])
    for row in range(2, 2 + count):
        message = find_message(storage, "A12345", row_message_id(batch_id, row))
        assert message is not None and message.state == lifecycle.QUEUED
        if made[row] is not None:
            assert message.token_hash == made[row].token_hash  # the very message made first
    dispatch_entries = _drain(storage, BATCH_DISPATCH)
    ids = {e["id"] for e in dispatch_entries}
    assert ids == {row_message_id(batch_id, row) for row in range(2, 2 + count)}
    assert all(e["queue"] == BATCH_DISPATCH for e in dispatch_entries)
    view = batch_view(storage, "A12345", batch_id)
    assert view["status"] == "sending" and view["counters"]["queued"] == count


def test_messages_are_paged_by_row(storage, settings) -> None:
    answer = _create(storage, settings, _rows(5))
    send_batch(storage, "A12345", answer["id"])
    _work(storage, settings, answer["id"])
    _drain(storage, BATCH_DISPATCH)
    first = messages_page(storage, "A12345", answer["id"], {"limit": "2"})
    assert [i["row"] for i in first["items"]] == [2, 3] and first["continuationToken"] == "3"
    second = messages_page(storage, "A12345", answer["id"], {"limit": "2", "continuationToken": "3"})
    assert [i["row"] for i in second["items"]] == [4, 5]
    last = messages_page(storage, "A12345", answer["id"], {"limit": "2", "continuationToken": "5"})
    assert [i["row"] for i in last["items"]] == [6] and last["continuationToken"] is None
    assert last["items"][0]["messageId"] == row_message_id(answer["id"], 6)
    exact = messages_page(storage, "A12345", answer["id"], {"limit": "5"})
    assert len(exact["items"]) == 5 and exact["continuationToken"] is None
    for bad in ({"limit": "0"}, {"limit": "101"}, {"limit": "²"}, {"continuationToken": "x"}):
        with pytest.raises(Unprocessable):
            messages_page(storage, "A12345", answer["id"], bad)
    with pytest.raises(Unprocessable):
        messages_page(storage, "A12345", answer["id"], {"continuationToken": "²"})


def test_cancel_mid_way_leaves_sent_messages_and_stops_the_rest(storage, settings) -> None:
    answer = _create(storage, settings, _rows(ROWS_PER_CHUNK + 3))
    batch_id = answer["id"]
    send_batch(storage, "A12345", batch_id)
    entries = _drain(storage, BATCH_ROWS, batch_id)
    make_chunk_messages(storage, settings, "A12345", batch_id, 0)  # the first chunk is made
    _drain(storage, BATCH_DISPATCH)
    sent_id = row_message_id(batch_id, 2)
    transition(storage, "A12345", sent_id, lambda m: lifecycle.send_claimed(m, m.created_at))
    transition(storage, "A12345", sent_id, lambda m: lifecycle.sent(m, "acs-1", m.created_at))
    view = cancel_batch(storage, "A12345", batch_id)
    assert view["status"] == "cancelled"
    # The second chunk's entry arrives after the cancel: it makes nothing.
    assert make_chunk_messages(storage, settings, "A12345", batch_id, entries[1]["chunk"]) == 0
    assert find_message(storage, "A12345", row_message_id(batch_id, 2 + ROWS_PER_CHUNK)) is None
    assert find_message(storage, "A12345", sent_id).revoked_at is None
    unsent = find_message(storage, "A12345", row_message_id(batch_id, 3))
    assert unsent.revoked_at is not None
    counts = batch_view(storage, "A12345", batch_id)["counters"]
    assert counts == {
        "total": ROWS_PER_CHUNK + 3,
        "queued": 0,
        "sent": 1,
        "delivered": 0,
        "failed": 0,
        "verified": 0,
        "downloaded": 0,
        "cancelled": ROWS_PER_CHUNK + 2,
    }
    with pytest.raises(Conflict):
        send_batch(storage, "A12345", batch_id)
    assert get_batch(storage, "A12345", batch_id).cancelled_at is not None


def test_counters_count_the_patients_who_verified_and_downloaded(storage, settings) -> None:
    from shared_code import clock

    answer = _create(storage, settings, _rows(3))
    batch_id = answer["id"]
    send_batch(storage, "A12345", batch_id)
    _work(storage, settings, batch_id)
    _drain(storage, BATCH_DISPATCH)  # sent by hand below
    now = clock.now()
    for row in (2, 3, 4):
        message_id = row_message_id(batch_id, row)
        transition(storage, "A12345", message_id, lambda m: lifecycle.send_claimed(m, now))
        transition(storage, "A12345", message_id, lambda m: lifecycle.sent(m, f"acs-{m.id}", now))
    transition(storage, "A12345", row_message_id(batch_id, 2), lambda m: replace(m, last_dob_verified_at=now))
    transition(
        storage,
        "A12345",
        row_message_id(batch_id, 3),
        lambda m: replace(m, last_dob_verified_at=now, first_downloaded_at=now),
    )
    counts = batch_view(storage, "A12345", batch_id)["counters"]
    assert (counts["sent"], counts["verified"], counts["downloaded"], counts["queued"]) == (3, 2, 1, 0)


def test_a_message_made_after_the_cancel_is_revoked_by_its_sender_not_sent(storage, settings) -> None:
    answer = _create(storage, settings, _rows(2))
    batch_id = answer["id"]
    send_batch(storage, "A12345", batch_id)
    [entry] = _drain(storage, BATCH_ROWS, batch_id)
    # The chunk's worker had read its rows and was making their messages when the cancel came, and
    # the cancel's look at the batch's messages found none of them made yet: the batch is cancelled,
    # the messages are not revoked.
    from shared_code.batch_store import change_batch

    make_chunk_messages(storage, settings, "A12345", batch_id, entry["chunk"])
    change_batch(storage, "A12345", batch_id, lambda b: replace(b, status="cancelled"))
    entries = _drain(storage, BATCH_DISPATCH)
    assert {e["batch"] for e in entries} == {batch_id}
    for queued in entries:
        body = json.dumps(queued).encode()
        assert dispatch_batch_message(storage, settings, body, dequeue_count=1) == "batch cancelled"
        message = find_message(storage, "A12345", queued["id"])
        assert message.revoked_at is not None and message.first_sent_at is None
    assert batch_view(storage, "A12345", batch_id)["counters"]["cancelled"] == 2


def test_the_sweeper_puts_a_lost_batch_message_back_on_the_batch_queue(storage, settings, monkeypatch) -> None:
    from datetime import timedelta

    from shared_code import retention

    answer = _create(storage, settings, _rows(1))
    send_batch(storage, "A12345", answer["id"])
    _work(storage, settings, answer["id"])
    _drain(storage, BATCH_DISPATCH)  # the entry is lost
    monkeypatch.setattr(retention, "STUCK_AFTER", timedelta(seconds=-5))  # still long enough
    assert retention.requeue_stuck(storage, settings) >= 1
    message_id = row_message_id(answer["id"], 2)
    entries = [e for e in _drain(storage, BATCH_DISPATCH) if e["id"] == message_id]
    assert [e.get("batch") for e in entries] == [answer["id"]]
    assert [e for e in _drain(storage, DISPATCH) if e["id"] == message_id] == []


def test_rows_whose_document_went_before_they_were_made_are_failed_and_the_batch_can_be_done(storage, settings) -> None:
    from shared_code.attachments import delete_attachment

    answer = _create(storage, settings, _rows(3))
    batch_id = answer["id"]
    send_batch(storage, "A12345", batch_id)
    [entry] = _drain(storage, BATCH_ROWS, batch_id)
    delete_attachment(storage, "A12345", get_batch(storage, "A12345", batch_id).attachment_ids[0])
    for _ in range(2):  # the chunk made again (a redelivery) counts its rows once
        assert make_chunk_messages(storage, settings, "A12345", batch_id, entry["chunk"]) == 0
        view = batch_view(storage, "A12345", batch_id)
        assert (view["counters"]["failed"], view["counters"]["queued"]) == (3, 0)
    assert view["status"] == "done"


def test_a_batch_message_waits_while_a_single_send_is_queued(storage, settings) -> None:
    answer = _create(storage, settings, _rows(1))
    send_batch(storage, "A12345", answer["id"])
    _work(storage, settings, answer["id"])
    [entry] = [e for e in _drain(storage, BATCH_DISPATCH)]
    _drain(storage, DISPATCH)
    storage.queue(DISPATCH).send_message(DispatchRequest("A12345", str(uuid.uuid4())).to_bytes())
    body = json.dumps(entry).encode()
    assert dispatch_batch_message(storage, settings, body, dequeue_count=1) == "behind single sends"
    _drain(storage, DISPATCH)
    message = find_message(storage, "A12345", entry["id"])
    assert message.state == lifecycle.QUEUED and message.first_sent_at is None
    # Put back on its own queue (hidden for a moment), not counted as a try.
    queue = storage.queue(BATCH_DISPATCH)
    assert list(queue.peek_messages()) == []
    back = _wait_visible(queue)
    assert json.loads(back) == {**entry, "attempts": 0}


def _wait_visible(queue) -> str:
    import time

    for _ in range(100):
        seen = list(queue.receive_messages(max_messages=1))
        if seen:
            queue.delete_message(seen[0])
            content = seen[0].content
            return content if isinstance(content, str) else content.decode()
        time.sleep(0.1)
    raise AssertionError("the entry never came back")


def test_a_batch_whose_every_row_is_settled_is_done_once(storage, settings) -> None:
    answer = _create(storage, settings, _rows(2))
    batch_id = answer["id"]
    send_batch(storage, "A12345", batch_id)
    _work(storage, settings, batch_id)
    _drain(storage, BATCH_DISPATCH)
    first = row_message_id(batch_id, 2)
    transition(storage, "A12345", first, lambda m: lifecycle.send_claimed(m, m.created_at))
    transition(storage, "A12345", first, lambda m: lifecycle.sent(m, "acs-1", m.created_at))
    assert batch_view(storage, "A12345", batch_id)["status"] == "sending"  # one row still queued
    second = row_message_id(batch_id, 3)
    transition(storage, "A12345", second, lambda m: lifecycle.send_failed(m, "no", m.created_at))
    view = batch_view(storage, "A12345", batch_id)
    assert view["status"] == "done" and view["counters"]["failed"] == 1 and view["counters"]["sent"] == 1
    assert get_batch(storage, "A12345", batch_id).status == "done"
    with pytest.raises(Conflict):
        send_batch(storage, "A12345", batch_id)
