"""The patient's history and the record entry against real Azurite: messages made through the real
rules are listed newest first by the keyed NHS-number hash, paged with the service's own key
comparisons, never across organisations, and no row holds the NHS number."""

from __future__ import annotations

import uuid

import pytest

from shared_code.errors import Unprocessable
from shared_code.history import list_history, parse_history_query
from shared_code.message_store import get_message
from shared_code.message_views import message_view
from shared_code.storage import HISTORY, MESSAGES
from shared_code.tables import eq
from tests.support.records import clean_attachment, mark_sent, new_message

NHS = "9434765919"
OTHER_NHS = "4010232137"


def _org() -> str:
    # A fresh organisation per test: the Azurite session is shared.
    return "T" + uuid.uuid4().hex[:5].upper()


def _patient(nhs: str) -> dict[str, str]:
    return {"nhsNumber": nhs, "dateOfBirth": "1970-01-31", "mobile": "07700900123"}


def _all_pages(storage, settings, org: str, **params: str) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        query = parse_history_query({**params, **({"cursor": cursor} if cursor else {})})
        page = list_history(storage, settings, org, query)
        pages.append([item["id"] for item in page["items"]])
        cursor = page["cursor"]
        if cursor is None:
            return pages


def test_a_patients_messages_page_newest_first_and_stay_in_their_organisation(storage, settings) -> None:
    org, other = _org(), _org()
    attachment = clean_attachment(storage, settings, org).id
    mine = [new_message(storage, settings, org, [attachment], patient=_patient(NHS)) for _ in range(5)]
    new_message(storage, settings, org, [attachment], patient=_patient(OTHER_NHS))
    theirs = new_message(storage, settings, other, patient=_patient(NHS))

    pages = _all_pages(storage, settings, org, nhsNumber=NHS, limit="2")
    assert [len(p) for p in pages] == [2, 2, 1]
    # Newest first; messages made in the same millisecond by id.
    newest_first = sorted(mine, key=lambda m: (-int(m.created_at.timestamp() * 1000), m.id))
    assert sum(pages, []) == [m.id for m in newest_first]
    assert _all_pages(storage, settings, other, nhsNumber=NHS) == [[theirs.id]]
    assert len(sum(_all_pages(storage, settings, org), [])) == 6

    for name in (MESSAGES, HISTORY):
        rows = list(storage.table(name).query(eq("PartitionKey", org))) + [
            r for r in storage.table(name).query() if str(r["PartitionKey"]).startswith(f"{org}|")
        ]
        assert rows
        assert not [r for r in rows if any(NHS in str(v) for v in r.values())]


def test_a_cursor_for_another_organisation_is_refused(storage, settings) -> None:
    org, other = _org(), _org()
    for _ in range(2):
        new_message(storage, settings, org, patient=_patient(NHS))
        new_message(storage, settings, other, patient=_patient(NHS))
    cursor = list_history(storage, settings, org, parse_history_query({"limit": "1"}))["cursor"]
    assert cursor
    with pytest.raises(Unprocessable):
        list_history(storage, settings, other, parse_history_query({"limit": "1", "cursor": cursor}))


def test_the_record_entry_follows_the_message(storage, settings) -> None:
    org = _org()
    message = new_message(storage, settings, org)
    text = message_view(storage, get_message(storage, org, message.id))["recordEntry"]["text"]
    assert text.startswith("Text message with 1 document (letter.pdf) to mobile ending 0123 prepared by gp1 on ")
    assert text.endswith(", not sent yet.")
    sent = mark_sent(storage, get_message(storage, org, message.id))
    entry = message_view(storage, sent)["recordEntry"]
    assert entry["snomed"]["code"] == "711408005"
    assert " sent by gp1 to mobile ending 0123 on " in entry["text"]
    assert "07700900123" not in entry["text"] and "1970" not in entry["text"]
