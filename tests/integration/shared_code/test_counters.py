"""Bounded counters against real Azurite: never past the limit, however many raise them at once."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from shared_code.counters import take_slot
from shared_code.storage import EVENTS


def test_places_are_taken_up_to_the_limit_and_no_further(storage) -> None:
    table, key = storage.table(EVENTS), str(uuid.uuid4())
    assert [take_slot(table, key, "~count", 3) for _ in range(5)] == [True, True, True, False, False]


def test_a_new_period_starts_the_count_again(storage) -> None:
    table, key = storage.table(EVENTS), str(uuid.uuid4())
    assert [take_slot(table, key, "~count", 2, period="10:00") for _ in range(3)] == [True, True, False]
    assert take_slot(table, key, "~count", 2, period="10:01") is True
    assert take_slot(table, key, "~count", 2, period="10:01") is True
    assert take_slot(table, key, "~count", 2, period="10:01") is False


def test_thirty_parallel_raises_take_exactly_the_limit(storage) -> None:
    table, key = storage.table(EVENTS), str(uuid.uuid4())
    with ThreadPoolExecutor(max_workers=30) as pool:
        taken = list(pool.map(lambda _: take_slot(table, key, "~count", 7, attempts=500), range(30)))
    assert taken.count(True) == 7 and taken.count(False) == 23
    assert table.get(key, "~count")["count"] == 7
