"""Storage against the session's Azurite: tables come as the adapter, made on first use."""

from __future__ import annotations

import uuid

from shared_code.settings import load_settings
from shared_code.storage import Storage
from shared_code.tables import AzureTable


def test_a_table_is_created_on_first_use_and_its_adapter_kept(base_env) -> None:
    storage = Storage(load_settings(base_env))  # its own: the session's has made the app's tables
    name = "t" + uuid.uuid4().hex[:12]
    assert name not in {t.name for t in storage.table_service.list_tables()}
    table = storage.table(name)
    assert isinstance(table, AzureTable) and table.name == name
    assert name in {t.name for t in storage.table_service.list_tables()}
    assert storage.table(name) is table
    table.insert({"PartitionKey": "p", "RowKey": "r", "n": 1})
    assert Storage(load_settings(base_env)).table(name).get("p", "r")["n"] == 1  # one made already is used
