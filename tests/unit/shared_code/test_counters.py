"""Bounded counters on the in-memory table: the limit exactly, the period reset, lost races retried."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared_code.counters import take_slot
from shared_code.tables import MemoryTable
from tests.support.tables import ContendedTable, ReadTogetherTable


@pytest.mark.parametrize("limit", [1, 2, 5])
def test_exactly_limit_places_are_taken_then_none(limit: int) -> None:
    table = MemoryTable("counters")
    assert [take_slot(table, "p", "~count", limit) for _ in range(limit)] == [True] * limit
    assert take_slot(table, "p", "~count", limit) is False
    assert take_slot(table, "p", "~count", limit) is False
    assert table.get("p", "~count")["count"] == limit


def test_counters_are_per_row() -> None:
    table = MemoryTable("counters")
    assert take_slot(table, "p", "a", 1) is True
    assert take_slot(table, "p", "b", 1) is True
    assert take_slot(table, "q", "a", 1) is True
    assert take_slot(table, "p", "a", 1) is False


def test_a_new_period_starts_the_count_again_and_the_old_one_is_not_reopened() -> None:
    table = MemoryTable("counters")
    assert [take_slot(table, "p", "c", 2, period="10:00") for _ in range(3)] == [True, True, False]
    assert [take_slot(table, "p", "c", 2, period="10:01") for _ in range(3)] == [True, True, False]
    stored = table.get("p", "c")
    assert (stored["window"], stored["count"]) == ("10:01", 2)


def test_without_a_period_the_count_never_starts_again() -> None:
    table = MemoryTable("counters")
    assert take_slot(table, "p", "c", 1) is True
    assert take_slot(table, "p", "c", 1, period=None) is False


def test_a_writer_that_loses_every_race_gives_up_with_none() -> None:
    table = ContendedTable("counters")
    assert take_slot(table, "p", "c", 5) is True  # the first insert meets no rival
    assert take_slot(table, "p", "c", 5, attempts=3) is None
    assert table.stored("p", "c")["count"] == 1  # nothing counted by the losing writer


def test_parallel_writers_take_exactly_the_limit() -> None:
    table = MemoryTable("counters")
    start = threading.Barrier(20)

    def take(_: int) -> bool | None:
        start.wait()
        return take_slot(table, "p", "c", 7, attempts=500)

    with ThreadPoolExecutor(max_workers=20) as pool:
        taken = list(pool.map(take, range(20)))
    assert taken.count(True) == 7 and taken.count(False) == 13
    assert table.get("p", "c")["count"] == 7


@pytest.mark.parametrize(("racers", "limit"), [(2, 1), (6, 4), (6, 6)])
def test_writers_that_all_read_the_same_count_never_pass_the_limit(racers: int, limit: int) -> None:
    table = ReadTogetherTable("counters", racers)
    table.insert({"PartitionKey": "p", "RowKey": "c", "count": 0})

    with ThreadPoolExecutor(max_workers=racers) as pool:
        taken = list(pool.map(lambda _: take_slot(table, "p", "c", limit, attempts=50), range(racers)))
    assert taken.count(True) == limit and taken.count(False) == racers - limit
    assert table.get("p", "c")["count"] == limit


def test_first_writers_racing_to_create_the_counter_take_one_place_each() -> None:
    table = ReadTogetherTable("counters", 4)  # all four find no row, all four insert: one wins
    with ThreadPoolExecutor(max_workers=4) as pool:
        taken = list(pool.map(lambda _: take_slot(table, "p", "c", 3, attempts=50), range(4)))
    assert taken.count(True) == 3 and taken.count(False) == 1
    assert table.get("p", "c")["count"] == 3
