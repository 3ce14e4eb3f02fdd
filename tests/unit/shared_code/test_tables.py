"""The table adapter's pure parts: the filter it builds and the fake's bookkeeping."""

from __future__ import annotations

import pytest

from shared_code.tables import MemoryTables, Where, any_of, at_most, eq, odata_filter


def test_conditions_become_a_parameterised_filter() -> None:
    text, parameters = odata_filter([eq("PartitionKey", "org"), any_of("status", ["a", "b"]), at_most("t", "z")])
    assert text == "PartitionKey eq @p0 and ( status eq @p1 or status eq @p2 ) and t le @p3"
    assert parameters == {"p0": "org", "p1": "a", "p2": "b", "p3": "z"}


def test_no_conditions_is_no_filter() -> None:
    assert odata_filter([]) == ("", {})


@pytest.mark.parametrize("where", [eq("a b", 1), eq("a)", 1), Where("a", "eq", ())])
def test_a_condition_that_cannot_be_a_safe_filter_is_refused(where: Where) -> None:
    with pytest.raises(ValueError):
        odata_filter([where])


def test_memory_tables_are_one_table_per_name() -> None:
    tables = MemoryTables()
    tables.table("a").insert({"PartitionKey": "p", "RowKey": "r"})
    assert tables.table("a").get("p", "r") is not None
    assert tables.table("b").get("p", "r") is None
