"""The table adapter's contract, checked against Azurite and the in-memory fake alike.

Every test runs twice: once through `AzureTable` on the session's Azurite, once on `MemoryTable`.
A behaviour the fake got kinder than the service would fail here on the Azure run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from shared_code.tables import AzureTable, MemoryTable, RowChanged, RowExists, Table, any_of, at_most, eq


@pytest.fixture(params=["azurite", "memory"])
def table(request: pytest.FixtureRequest) -> Table:
    if request.param == "memory":
        return MemoryTable("contract")
    storage = request.getfixturevalue("storage")
    client = storage.table_service.create_table_if_not_exists("contract")
    return AzureTable(client)


@pytest.fixture
def pk() -> str:
    return str(uuid.uuid4())


def test_a_missing_row_is_none(table: Table, pk: str) -> None:
    assert table.get(pk, "nothing") is None


def test_an_inserted_row_comes_back_with_its_etag_and_time(table: Table, pk: str) -> None:
    etag = table.insert({"PartitionKey": pk, "RowKey": "1", "kind": "opened", "count": 3})
    row = table.get(pk, "1")
    assert row is not None
    assert (row["kind"], row["count"], row["PartitionKey"], row["RowKey"]) == ("opened", 3, pk, "1")
    assert row.etag == etag and etag
    assert row.timestamp is not None
    assert "etag" not in row  # metadata stays beside the properties


def test_an_insert_asks_the_service_not_to_send_the_row_back(azurite, pk: str) -> None:
    """Azure only: the insert's answer is a 204 with no body (the Table service's documented
    `Prefer: return-no-content`), and its ETag is the one the adapter returns."""
    from azure.data.tables import TableServiceClient

    answers = []
    service = TableServiceClient.from_connection_string(
        azurite.connection_string, raw_response_hook=lambda r: answers.append(r.http_response)
    )
    client = service.create_table_if_not_exists("contract")
    etag = AzureTable(client).insert({"PartitionKey": pk, "RowKey": "1", "kind": "opened"})
    inserted = answers[-1]
    assert inserted.status_code == 204 and inserted.headers.get("Preference-Applied") == "return-no-content"
    assert not inserted.body()
    assert inserted.headers["ETag"] == etag


def test_inserting_a_taken_key_is_refused_and_keeps_the_first_row(table: Table, pk: str) -> None:
    table.insert({"PartitionKey": pk, "RowKey": "1", "kind": "first"})
    with pytest.raises(RowExists):
        table.insert({"PartitionKey": pk, "RowKey": "1", "kind": "second"})
    assert table.get(pk, "1")["kind"] == "first"


def test_a_conditional_replace_wins_once_against_the_version_it_read(table: Table, pk: str) -> None:
    first = table.insert({"PartitionKey": pk, "RowKey": "1", "count": 1})
    second = table.replace({"PartitionKey": pk, "RowKey": "1", "count": 2}, etag=first)
    assert second != first
    with pytest.raises(RowChanged):
        table.replace({"PartitionKey": pk, "RowKey": "1", "count": 99}, etag=first)
    assert table.get(pk, "1")["count"] == 2


def test_a_replace_drops_properties_it_does_not_carry(table: Table, pk: str) -> None:
    etag = table.insert({"PartitionKey": pk, "RowKey": "1", "mobile": "x", "count": 1})
    table.replace({"PartitionKey": pk, "RowKey": "1", "count": 2}, etag=etag)
    assert "mobile" not in table.get(pk, "1")


def test_a_conditional_replace_of_a_deleted_row_is_a_lost_race(table: Table, pk: str) -> None:
    etag = table.insert({"PartitionKey": pk, "RowKey": "1"})
    table.delete(pk, "1")
    with pytest.raises(RowChanged):
        table.replace({"PartitionKey": pk, "RowKey": "1", "count": 2}, etag=etag)
    assert table.get(pk, "1") is None


def test_an_unconditional_replace_creates_or_overwrites(table: Table, pk: str) -> None:
    table.replace({"PartitionKey": pk, "RowKey": "1", "count": 1}, etag=None)
    table.replace({"PartitionKey": pk, "RowKey": "1", "count": 2}, etag=None)
    assert table.get(pk, "1")["count"] == 2


def test_a_conditional_delete_of_another_version_is_refused(table: Table, pk: str) -> None:
    old = table.insert({"PartitionKey": pk, "RowKey": "1", "count": 1})
    table.replace({"PartitionKey": pk, "RowKey": "1", "count": 2}, etag=old)
    with pytest.raises(RowChanged):
        table.delete(pk, "1", etag=old)
    assert table.get(pk, "1") is not None


def test_deleting_a_missing_row_is_quiet_with_or_without_an_etag(table: Table, pk: str) -> None:
    etag = table.insert({"PartitionKey": pk, "RowKey": "1"})
    table.delete(pk, "1", etag=etag)
    assert table.get(pk, "1") is None
    table.delete(pk, "1")
    table.delete(pk, "1", etag=etag)


def _keys(rows) -> list[str]:
    return [row["RowKey"] for row in rows]


@pytest.fixture
def filled(table: Table, pk: str) -> Callable[[], None]:
    for n, (status, expires) in enumerate(
        [("queued", "2026-01-01T00:00:00Z"), ("sent", "2026-02-01T00:00:00Z"), ("failed", "2026-03-01T00:00:00Z")]
    ):
        table.insert({"PartitionKey": pk, "RowKey": f"r{n}", "status": status, "expires": expires, "n": n})
    table.insert({"PartitionKey": pk, "RowKey": "r9", "n": 9})  # no status, no expiry
    table.insert({"PartitionKey": pk + "-other", "RowKey": "r0", "status": "queued"})


def test_a_query_matches_every_condition_by_row_key(table: Table, pk: str, filled) -> None:
    assert _keys(table.query(eq("PartitionKey", pk))) == ["r0", "r1", "r2", "r9"]
    assert _keys(table.query(eq("PartitionKey", pk), any_of("status", ["queued", "failed"]))) == ["r0", "r2"]
    assert _keys(table.query(eq("PartitionKey", pk), at_most("expires", "2026-02-01T00:00:00Z"))) == ["r0", "r1"]
    assert _keys(table.query(eq("PartitionKey", pk), eq("status", "nothing"))) == []


def test_a_query_with_select_returns_only_those_properties(table: Table, pk: str, filled) -> None:
    rows = list(table.query(eq("PartitionKey", pk), eq("status", "sent"), select=["RowKey", "n"]))
    assert len(rows) == 1
    assert rows[0]["RowKey"] == "r1" and rows[0]["n"] == 1
    assert "status" not in rows[0] and "expires" not in rows[0]


def test_query_values_are_parameters_not_filter_text(table: Table, pk: str, filled) -> None:
    assert _keys(table.query(eq("PartitionKey", pk), eq("status", "queued' or status ne 'x"))) == []


def test_a_field_name_that_is_not_an_identifier_is_refused(table: Table) -> None:
    with pytest.raises(ValueError):
        list(table.query(eq("status or true", "x")))
