"""In-memory tables that stage races, for unit tests of the domain's conditional writes.

Built on `shared_code.tables.MemoryTable` (whose semantics the adapter's contract test checks
against Azurite); each only changes when reads happen or what another writer does between them.
"""

from __future__ import annotations

import threading

from shared_code.tables import MemoryTable, Row


class OneTable:
    """A storage-like object whose every table is `table` (for a domain function that takes a Storage)."""

    def __init__(self, table: MemoryTable) -> None:
        self._table = table

    def table(self, name: str) -> MemoryTable:
        """`table`, whatever the name."""
        return self._table


class ContendedTable(MemoryTable):
    """Another writer rewrites the row (same values, new version) after every read, so every
    conditional write made after a read loses."""

    def get(self, partition: str, row: str) -> Row | None:
        """The row as read, already out of date."""
        found = super().get(partition, row)
        if found is not None:
            self.replace(found, etag=None)
        return found

    def stored(self, partition: str, row: str) -> Row | None:
        """The row now, without starting another rival write."""
        return super().get(partition, row)


class ReadTogetherTable(MemoryTable):
    """The first `racers` reads each wait for all the others, so every racer starts from the same version."""

    def __init__(self, name: str, racers: int) -> None:
        super().__init__(name)
        self._first_reads = threading.Barrier(racers)
        self._reads = 0
        self._counting = threading.Lock()

    def get(self, partition: str, row: str) -> Row | None:
        """The row, read at the same moment as the other racers' first reads."""
        found = super().get(partition, row)
        with self._counting:
            self._reads += 1
            together = self._reads <= self._first_reads.parties
        if together:
            self._first_reads.wait(timeout=60)
        return found
