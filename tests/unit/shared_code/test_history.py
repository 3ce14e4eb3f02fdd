"""The practice's history on the in-memory table: newest first, paged by a signed cursor, `since`,
`limit` bounds, one patient's messages only and never another organisation's."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from shared_code import clock, lifecycle
from shared_code.attachments import Attachment, _to_entity
from shared_code.auth import Principal
from shared_code.errors import Unprocessable
from shared_code.history import (
    HistoryQuery,
    index_message,
    list_history,
    nhs_hash,
    parse_history_query,
)
from shared_code.message_model import Message, message_to_entity
from shared_code.message_store import transition
from shared_code.settings import load_settings
from shared_code.storage import ATTACHMENTS, HISTORY, MESSAGES
from shared_code.tables import MemoryTables
from shared_code.templates import create_template
from tests.support.messages import message_record

SETTINGS = load_settings({"DOB_HASH_KEY": "ab" * 16, "SESSION_KEY": "c2Vzc2lvbi1rZXktZm9yLXRlc3RzLW9ubHk="})
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
NHS = "9434765919"
OTHER_NHS = "4010232137"
ORG, OTHER_ORG = "A12345", "B99999"


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: T0 + timedelta(days=1))


@pytest.fixture
def tables() -> MemoryTables:
    return MemoryTables()


def _send(tables: MemoryTables, *, org: str = ORG, nhs: str | None = NHS, at: datetime = T0, **changes: Any) -> Message:
    """A message as message_create stores it: its index rows first, then its row."""
    message = message_record(at=at, org=org, nhs_hash=nhs_hash(SETTINGS, org, nhs) if nhs else None, **changes)
    index_message(tables, message)  # type: ignore[arg-type]
    tables.table(MESSAGES).insert(message_to_entity(message))
    return message


def _page(tables: MemoryTables, **params: str) -> dict[str, Any]:
    return list_history(tables, SETTINGS, params.pop("org", ORG), parse_history_query(params))  # type: ignore[arg-type]


def _ids(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["items"]]


def test_the_hash_is_keyed_per_organisation_and_never_the_number() -> None:
    hashed = nhs_hash(SETTINGS, ORG, NHS)
    assert NHS not in hashed and len(hashed) == 64
    assert nhs_hash(SETTINGS, ORG, "943 476 5919") == hashed  # as practices type it
    assert nhs_hash(SETTINGS, OTHER_ORG, NHS) != hashed
    other_key = load_settings({"DOB_HASH_KEY": "cd" * 16, "SESSION_KEY": "c2Vzc2lvbi1rZXktZm9yLXRlc3RzLW9ubHk="})
    assert nhs_hash(other_key, ORG, NHS) != hashed


def test_no_row_holds_the_number(tables: MemoryTables) -> None:
    _send(tables)
    for name in (HISTORY, MESSAGES):
        for row in tables.table(name).query():
            assert all(NHS not in str(v) for v in row.values())


def test_a_patients_messages_newest_first_in_pages(tables: MemoryTables) -> None:
    sent = [_send(tables, at=T0 + timedelta(minutes=i)) for i in range(5)]
    _send(tables, nhs=OTHER_NHS, at=T0 + timedelta(minutes=2, seconds=30))
    newest_first = [m.id for m in reversed(sent)]

    first = _page(tables, nhsNumber=NHS, limit="2")
    assert _ids(first) == newest_first[:2] and first["cursor"]
    second = _page(tables, nhsNumber=NHS, limit="2", cursor=first["cursor"])
    assert _ids(second) == newest_first[2:4] and second["cursor"]
    last = _page(tables, nhsNumber=NHS, limit="2", cursor=second["cursor"])
    assert _ids(last) == newest_first[4:] and last["cursor"] is None
    # Exactly a page's worth left: the page before says there is no more.
    assert _page(tables, nhsNumber=NHS, limit="5")["cursor"] is None


def test_messages_created_in_the_same_millisecond_are_all_listed_once(tables: MemoryTables) -> None:
    same = [_send(tables) for _ in range(3)]
    seen: list[str] = []
    cursor = None
    while True:
        page = _page(tables, nhsNumber=NHS, limit="1", **({"cursor": cursor} if cursor else {}))
        seen += _ids(page)
        cursor = page["cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(m.id for m in same)


def test_another_organisation_never_sees_them(tables: MemoryTables) -> None:
    mine = _send(tables)
    theirs = _send(tables, org=OTHER_ORG)  # the same patient, at another practice
    assert _ids(_page(tables, nhsNumber=NHS)) == [mine.id]
    assert _ids(_page(tables)) == [mine.id]
    assert _ids(_page(tables, org=OTHER_ORG, nhsNumber=NHS)) == [theirs.id]
    assert _ids(_page(tables, org="C00000", nhsNumber=NHS)) == []


def test_a_cursor_from_another_organisation_or_query_is_refused(tables: MemoryTables) -> None:
    for i in range(3):
        _send(tables, at=T0 + timedelta(minutes=i))
        _send(tables, org=OTHER_ORG, at=T0 + timedelta(minutes=i))
    cursor = _page(tables, nhsNumber=NHS, limit="1")["cursor"]
    for params in (
        {"org": OTHER_ORG, "nhsNumber": NHS},
        {"nhsNumber": OTHER_NHS},
        {},
        {"nhsNumber": NHS, "since": "2026-11-30T00:00:00Z"},
    ):
        with pytest.raises(Unprocessable) as refused:
            _page(tables, cursor=cursor, **params)
        assert [e.field for e in refused.value.errors] == ["cursor"]


@pytest.mark.parametrize(
    "change",
    [lambda c: c[:-1] + ("A" if c[-1] != "A" else "B"), lambda c: "x" + c, lambda c: "garbage", lambda c: "é" + c],
    ids=["signature", "payload", "garbage", "not ascii"],
)
def test_an_altered_cursor_is_refused(tables: MemoryTables, change: Any) -> None:
    for i in range(2):
        _send(tables, at=T0 + timedelta(minutes=i))
    cursor = _page(tables, limit="1")["cursor"]
    assert _page(tables, limit="1", cursor=cursor)["items"]
    with pytest.raises(Unprocessable) as refused:
        _page(tables, limit="1", cursor=change(cursor))
    assert [e.field for e in refused.value.errors] == ["cursor"]


def test_limit_is_1_to_100_default_20(tables: MemoryTables) -> None:
    for i in range(21):
        _send(tables, at=T0 + timedelta(seconds=i))
    assert len(_page(tables)["items"]) == 20
    assert len(_page(tables, limit="1")["items"]) == 1
    assert len(_page(tables, limit="100")["items"]) == 21
    for bad in ("0", "101", "-1", "1.5", "", "ten", "１"):
        with pytest.raises(Unprocessable) as refused:
            parse_history_query({"limit": bad})
        assert [e.field for e in refused.value.errors] == ["limit"]


def test_bad_nhs_number_and_since_are_named() -> None:
    with pytest.raises(Unprocessable) as refused:
        parse_history_query({"nhsNumber": "9434765918", "since": "yesterday"})
    assert [e.field for e in refused.value.errors] == ["nhsNumber", "since"]
    with pytest.raises(Unprocessable):
        parse_history_query({"since": "2026-11-30T09:00:00"})  # no zone: which 09:00?
    assert parse_history_query({"since": "2026-11-30T10:00:00+01:00"}) == HistoryQuery(None, T0, 20, None)


def test_since_includes_its_own_millisecond_and_nothing_before(tables: MemoryTables) -> None:
    before = _send(tables, at=T0 - timedelta(milliseconds=1))
    at = _send(tables, at=T0)
    after = _send(tables, nhs=OTHER_NHS, at=T0 + timedelta(hours=1))
    assert _ids(_page(tables, since="2026-11-30T09:00:00Z")) == [after.id, at.id]
    assert _ids(_page(tables, since="2026-11-30T09:00:00Z", nhsNumber=NHS)) == [at.id]
    assert _ids(_page(tables, since="2026-11-30T08:59:59.999Z")) == [after.id, at.id, before.id]
    first = _page(tables, since="2026-11-30T08:00:00Z", limit="2")
    assert _ids(first) == [after.id, at.id]
    assert _ids(_page(tables, since="2026-11-30T08:00:00Z", limit="2", cursor=first["cursor"])) == [before.id]


def test_an_index_row_without_its_message_is_skipped(tables: MemoryTables) -> None:
    # A run that died after the index row and before the message row; the key's next run made
    # the message under the same id at another time.
    kept = _send(tables, at=T0 + timedelta(minutes=1))
    index_message(tables, replace(kept, created_at=T0))  # type: ignore[arg-type]
    index_message(tables, message_record(at=T0, nhs_hash=kept.nhs_hash))  # type: ignore[arg-type]
    assert _ids(_page(tables, nhsNumber=NHS)) == [kept.id]


def test_an_item_has_its_template_documents_and_receipts(tables: MemoryTables) -> None:
    template = create_template(tables, SETTINGS, Principal(ORG, "gp1", "Riverside"), {"name": "Fit note", "body": "Hi"})  # type: ignore[arg-type]
    attachment = Attachment(
        id=str(uuid.uuid4()),
        org=ORG,
        filename="fit-note.pdf",
        content_type="application/pdf",
        kind="pdf",
        size=10,
        sha256="0" * 64,
        status="clean",
        created_at=T0,
        created_by="gp1",
    )
    tables.table(ATTACHMENTS).insert(_to_entity(attachment))
    message = _send(tables, attachment_ids=(attachment.id,), template_id=template.id, template_version=1)
    plain = _send(tables, at=T0 - timedelta(hours=1))
    # Two right dates and two downloads: the first of each is what the history shows.
    for minutes in (5, 50):
        at = T0 + timedelta(minutes=minutes)
        transition(tables, ORG, message.id, lambda m, at=at: lifecycle.dob_checked(m, True, 5, at))  # type: ignore[arg-type]
    transition(tables, ORG, message.id, lambda m: replace(m, first_downloaded_at=T0 + timedelta(minutes=6)))  # type: ignore[arg-type]

    item, older = _page(tables, nhsNumber=NHS)["items"]
    assert item == {
        "id": message.id,
        "status": "queued",
        "createdAt": "2026-11-30T09:00:00.000Z",
        "templateId": template.id,
        "templateName": "Fit note",
        "attachments": [{"id": attachment.id, "filename": "fit-note.pdf"}],
        "dobVerifiedAt": "2026-11-30T09:05:00.000Z",
        "firstDownloadedAt": "2026-11-30T09:06:00.000Z",
    }
    assert older["id"] == plain.id
    assert older["templateId"] is None and older["templateName"] is None
    assert older["dobVerifiedAt"] is None and older["firstDownloadedAt"] is None
    assert older["attachments"][0]["filename"] is None  # its record is gone


def test_a_message_without_an_nhs_hash_is_in_the_organisations_list_only(tables: MemoryTables) -> None:
    message = _send(tables, nhs=None)
    assert _ids(_page(tables)) == [message.id]
    assert _ids(_page(tables, nhsNumber=NHS)) == []
