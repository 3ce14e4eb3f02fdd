"""Storing lifecycle changes on the in-memory table: the ETag-checked write, and `transition`'s
retries, so that of racing changes exactly one wins and none is lost."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from shared_code import lifecycle
from shared_code.errors import NotFound, ServiceUnavailable
from shared_code.message_model import Message, message_from_entity, message_to_entity
from shared_code.message_store import find_message, get_message, save_message, transition
from shared_code.storage import MESSAGES
from shared_code.tables import MemoryTable, MemoryTables, Row, RowChanged
from tests.support.messages import message_record
from tests.support.tables import ContendedTable, OneTable, ReadTogetherTable

LIMIT = 5
#: Whole milliseconds, as times are stored, so a message read back equals the one written.
AT = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def storage() -> MemoryTables:
    return MemoryTables()


def _stored(storage: MemoryTables, **changes: object) -> Message:
    message = message_record(at=AT, **changes)
    etag = storage.table(MESSAGES).insert(message_to_entity(message))
    return replace(message, etag=etag)


def _wrong_dob(m: Message) -> Message | None:
    return lifecycle.dob_checked(m, False, LIMIT, AT)


def test_a_stored_message_is_found_with_its_etag(storage) -> None:
    message = _stored(storage)
    assert find_message(storage, message.org, message.id) == message
    assert find_message(storage, "B99999", message.id) is None
    with pytest.raises(NotFound):
        get_message(storage, "B99999", message.id)
    with pytest.raises(NotFound):
        get_message(storage, message.org, "not-a-uuid")


def test_a_save_over_a_version_someone_changed_is_a_lost_race(storage) -> None:
    message = _stored(storage)
    saved = save_message(storage, replace(message, dob_attempts=1))
    assert saved.etag != message.etag
    with pytest.raises(RowChanged):
        save_message(storage, replace(message, dob_attempts=3))
    assert get_message(storage, message.org, message.id).dob_attempts == 1


def test_a_message_never_read_from_the_table_is_not_saved_unconditionally(storage) -> None:
    message = _stored(storage)
    with pytest.raises(ValueError):
        save_message(storage, replace(message, etag=None, dob_attempts=3))
    assert get_message(storage, message.org, message.id).dob_attempts == 0


def test_a_change_is_stored_and_reported_as_made_by_this_call(storage) -> None:
    message = _stored(storage)
    updated, won = transition(storage, message.org, message.id, lambda m: lifecycle.revoked(m, AT))
    assert won and updated.revoked_at is not None and updated.body is None
    assert get_message(storage, message.org, message.id) == updated


def test_a_refused_change_writes_nothing(storage) -> None:
    message = _stored(storage, revoked_at=AT)
    current, won = transition(storage, message.org, message.id, lambda m: lifecycle.revoked(m, AT))
    assert not won and current == message
    assert storage.table(MESSAGES).get(message.org, message.id).etag == message.etag


def test_a_change_tried_on_a_stale_copy_is_decided_again_on_the_stored_row(storage) -> None:
    stale = _stored(storage)
    transition(storage, stale.org, stale.id, _wrong_dob)  # another request counted a guess meanwhile
    updated, won = transition(storage, stale.org, stale.id, _wrong_dob, known=stale)
    assert won and updated.dob_attempts == 2  # both counted: the retry did not overwrite the first
    assert get_message(storage, stale.org, stale.id).dob_attempts == 2


class _NoReads(MemoryTable):
    def get(self, partition: str, row: str) -> Row | None:
        raise AssertionError("read again")


def test_a_change_on_a_current_copy_saves_without_reading_again() -> None:
    table = _NoReads(MESSAGES)
    message = message_record(at=AT)
    known = replace(message, etag=table.insert(message_to_entity(message)))
    updated, won = transition(OneTable(table), message.org, message.id, _wrong_dob, known=known)
    assert won and updated.dob_attempts == 1


def _race(racers: int, change, *, attempts: int = 10) -> tuple[list[bool], Message]:
    table = ReadTogetherTable(MESSAGES, racers)
    message = message_record(at=AT)
    table.insert(message_to_entity(message))
    storage = OneTable(table)

    def run(_: int) -> bool:
        return transition(storage, message.org, message.id, change, attempts=attempts)[1]

    with ThreadPoolExecutor(max_workers=racers) as pool:
        won = list(pool.map(run, range(racers)))
    return won, table.get(message.org, message.id)


@pytest.mark.parametrize("racers", [2, 8])
def test_of_racing_changes_that_can_happen_once_exactly_one_wins(racers: int) -> None:
    won, stored = _race(racers, lambda m: lifecycle.revoked(m, AT))
    assert won.count(True) == 1
    assert [e.type for e in message_from_entity(stored).history].count("revoked") == 1


def test_racing_counted_changes_are_each_stored_once_and_the_limit_holds() -> None:
    won, stored = _race(8, _wrong_dob, attempts=20)
    message = message_from_entity(stored)
    assert won.count(True) == LIMIT and message.dob_attempts == LIMIT and message.locked


def test_a_change_that_loses_every_race_is_a_503_and_writes_nothing() -> None:
    message = message_record(at=AT)
    table = ContendedTable(MESSAGES)
    table.insert(message_to_entity(message))
    with pytest.raises(ServiceUnavailable):
        transition(OneTable(table), message.org, message.id, _wrong_dob, attempts=3)
    assert table.stored(message.org, message.id)["dobAttempts"] == 0
