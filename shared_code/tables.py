"""Table rows behind one small interface: the one place the Table SDK and its errors are met.

Domain code reads and writes rows through a `Table` and sees only the outcomes it decides on:
a row that is not there (`None`), a key already taken (`RowExists`), a conditional write that
lost a race (`RowChanged`) and a storage service that is not answering (`StorageUnavailable`,
a 503). `AzureTable` speaks to Table Storage (Azurite locally) through the stock
`azure-data-tables` client; `MemoryTable` keeps rows in a dict with the same semantics, for
unit tests of the domain that need no Azurite. `tests/integration/shared_code/test_tables.py`
runs the same checks against both, so the fake can be no kinder than the service.

Semantics modelled (Table service REST reference, "Insert Entity", "Update Entity",
"Delete Entity"): an insert of a taken key is 409; a write or delete with `If-Match` on a
changed row is 412 and on a missing row 404, both of which mean "someone else got there first"
to a conditional writer; a write with `If-Match: *` (here: `etag=None`) replaces or creates.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal, Protocol

from shared_code.errors import ServiceUnavailable


class RowExists(Exception):
    """An insert found its key taken."""


class RowChanged(Exception):
    """A conditional write or delete found the row changed (or deleted) since it was read."""


class StorageUnavailable(ServiceUnavailable):
    """Table Storage did not answer (or answered with an error nobody here can act on)."""


class Row(dict[str, Any]):
    """One stored row: its properties (PartitionKey and RowKey included), with its `etag` and
    the service's last-modified `timestamp` beside them (not among the properties)."""

    def __init__(self, values: Mapping[str, Any], etag: str | None, timestamp: datetime | None) -> None:
        super().__init__(values)
        self.etag = etag
        self.timestamp = timestamp


Op = Literal["eq", "ne", "lt", "le", "gt", "ge"]


@dataclass(frozen=True)
class Where:
    """One condition of a query: `field op value`, or `field eq` any of `values`."""

    field: str
    op: Op
    values: tuple[Any, ...]


def eq(field: str, value: Any) -> Where:
    """`field` equals `value`."""
    return Where(field, "eq", (value,))


def any_of(field: str, values: Iterable[Any]) -> Where:
    """`field` equals one of `values`."""
    return Where(field, "eq", tuple(values))


def at_most(field: str, value: Any) -> Where:
    """`field` is at most `value` (strings compare as the service does, by ordinal)."""
    return Where(field, "le", (value,))


class Table(Protocol):
    """The operations the domain needs on one table."""

    name: str

    def get(self, partition: str, row: str) -> Row | None:
        """The row, or None."""
        ...

    def insert(self, entity: Mapping[str, Any]) -> str:
        """Add a new row; its ETag. Raises RowExists when the key is taken."""
        ...

    def replace(self, entity: Mapping[str, Any], *, etag: str | None) -> str:
        """Write the whole row; its new ETag. With `etag`, only over that version of the row
        (RowChanged otherwise, also when it is gone); with None, whatever is stored (or nothing)."""
        ...

    def delete(self, partition: str, row: str, *, etag: str | None = None) -> None:
        """Remove the row if it is there. With `etag`, only that version: RowChanged when the
        stored row is another version (a row already gone is not an error)."""
        ...

    def query(self, *where: Where, select: Iterable[str] | None = None) -> Iterator[Row]:
        """Rows matching every condition (all rows with none), by partition and row key."""
        ...


# -- Azure ---------------------------------------------------------------------------------


class AzureTable:
    """A `Table` over an `azure.data.tables.TableClient`."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.name: str = client.table_name

    def get(self, partition: str, row: str) -> Row | None:
        """The row, or None."""
        errors = _sdk_errors()
        try:
            return _row(self._client.get_entity(partition, row))
        except errors.ResourceNotFoundError:
            return None
        except errors.AzureError as exc:
            raise _unavailable(exc) from exc

    def insert(self, entity: Mapping[str, Any]) -> str:
        """Add a new row; its ETag. Raises RowExists when the key is taken."""
        errors = _sdk_errors()
        try:
            # The service is asked not to echo the row (the Table service's documented `Prefer`
            # header): nothing reads it, and echoing costs both ends a serialisation.
            meta = self._client.create_entity(dict(entity), headers={"Prefer": "return-no-content"})
        except errors.ResourceExistsError:
            raise RowExists(self.name) from None
        except errors.AzureError as exc:
            raise _unavailable(exc) from exc
        return meta["etag"]

    def replace(self, entity: Mapping[str, Any], *, etag: str | None) -> str:
        """Write the whole row; its new ETag (RowChanged when `etag` no longer matches)."""
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        errors = _sdk_errors()
        try:
            if etag is None:
                meta = self._client.upsert_entity(dict(entity), mode=UpdateMode.REPLACE)
            else:
                meta = self._client.update_entity(
                    dict(entity), mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                )
        except (errors.ResourceModifiedError, errors.ResourceNotFoundError):
            raise RowChanged(self.name) from None
        except errors.AzureError as exc:
            raise _unavailable(exc) from exc
        return meta["etag"]

    def delete(self, partition: str, row: str, *, etag: str | None = None) -> None:
        """Remove the row if it is there (RowChanged when `etag` names another version)."""
        from azure.core import MatchConditions

        errors = _sdk_errors()
        condition = {} if etag is None else {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        try:
            self._client.delete_entity(partition, row, **condition)
        except errors.ResourceModifiedError:
            raise RowChanged(self.name) from None
        except errors.ResourceNotFoundError:
            pass  # already gone (the SDK may also swallow this 404 itself)
        except errors.AzureError as exc:
            raise _unavailable(exc) from exc

    def query(self, *where: Where, select: Iterable[str] | None = None) -> Iterator[Row]:
        """Rows matching every condition, as the service pages them."""
        errors = _sdk_errors()
        text, parameters = odata_filter(where)
        columns = list(select) if select is not None else None
        try:
            if text:
                pages = self._client.query_entities(text, parameters=parameters, select=columns)
            else:
                pages = self._client.list_entities(select=columns)
            for entity in pages:
                yield _row(entity)
        except errors.AzureError as exc:
            raise _unavailable(exc) from exc


def odata_filter(where: Iterable[Where]) -> tuple[str, dict[str, Any]]:
    """The OData `$filter` for `where`, with every value passed as a parameter (never spliced)."""
    clauses: list[str] = []
    parameters: dict[str, Any] = {}
    counter = itertools.count()
    for condition in where:
        if not condition.field.isidentifier():
            raise ValueError("a field name must be an identifier")
        if not condition.values:
            raise ValueError("a condition needs at least one value")
        names = []
        for value in condition.values:
            name = f"p{next(counter)}"
            parameters[name] = value
            names.append(f"{condition.field} {condition.op} @{name}")
        # Spaces around the parentheses: the SDK finds `@name` parameters by splitting on spaces.
        clauses.append(names[0] if len(names) == 1 else "( " + " or ".join(names) + " )")
    return " and ".join(clauses), parameters


def _row(entity: Any) -> Row:
    metadata = getattr(entity, "metadata", {}) or {}
    return Row(entity, metadata.get("etag"), metadata.get("timestamp"))


def _sdk_errors() -> Any:
    # The one place the SDK's exception types are loaded, lazily (cold start).
    import azure.core.exceptions as errors

    return errors


def _unavailable(exc: BaseException) -> StorageUnavailable:
    # The SDK's message may quote a request URL (with keys in its filter); keep only the type.
    return StorageUnavailable(f"Table Storage is not answering ({type(exc).__name__}). Please try again in a minute.")


# -- in memory -----------------------------------------------------------------------------


class MemoryTable:
    """A `Table` in a dict, with the service's conditional-write semantics; for unit tests."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._rows: dict[tuple[str, str], Row] = {}
        self._versions = itertools.count(1)
        self._lock = threading.Lock()

    def get(self, partition: str, row: str) -> Row | None:
        """The row, or None."""
        with self._lock:
            found = self._rows.get((partition, row))
            return None if found is None else Row(found, found.etag, found.timestamp)

    def insert(self, entity: Mapping[str, Any]) -> str:
        """Add a new row; its ETag. Raises RowExists when the key is taken."""
        with self._lock:
            key = _key(entity)
            if key in self._rows:
                raise RowExists(self.name)
            return self._store(key, entity)

    def replace(self, entity: Mapping[str, Any], *, etag: str | None) -> str:
        """Write the whole row; its new ETag (RowChanged when `etag` no longer matches)."""
        with self._lock:
            key = _key(entity)
            if etag is not None:
                current = self._rows.get(key)
                if current is None or current.etag != etag:
                    raise RowChanged(self.name)
            return self._store(key, entity)

    def delete(self, partition: str, row: str, *, etag: str | None = None) -> None:
        """Remove the row if it is there (RowChanged when `etag` names another version)."""
        with self._lock:
            current = self._rows.get((partition, row))
            if current is not None and etag is not None and current.etag != etag:
                raise RowChanged(self.name)
            self._rows.pop((partition, row), None)

    def query(self, *where: Where, select: Iterable[str] | None = None) -> Iterator[Row]:
        """Rows matching every condition, by partition and row key."""
        odata_filter(where)  # the same refusals as the service adapter
        columns = set(select) if select is not None else None
        with self._lock:
            rows = [self._rows[key] for key in sorted(self._rows)]
        for stored in rows:
            if all(_matches(stored, condition) for condition in where):
                values = stored if columns is None else {k: v for k, v in stored.items() if k in columns}
                yield Row(values, stored.etag, stored.timestamp)

    def _store(self, key: tuple[str, str], entity: Mapping[str, Any]) -> str:
        etag = f'W/"memory-{next(self._versions)}"'
        self._rows[key] = Row(entity, etag, datetime.now(timezone.utc))
        return etag


class MemoryTables:
    """In-memory tables by name, standing in for `Storage.table` in unit tests of the domain."""

    def __init__(self) -> None:
        self._tables: dict[str, MemoryTable] = {}

    def table(self, name: str) -> MemoryTable:
        """The table of this name, created empty on first use."""
        return self._tables.setdefault(name, MemoryTable(name))


def _key(entity: Mapping[str, Any]) -> tuple[str, str]:
    return str(entity["PartitionKey"]), str(entity["RowKey"])


def _matches(row: Mapping[str, Any], condition: Where) -> bool:
    if condition.field not in row:
        # The service: a comparison with a property the row lacks is false (even `ne`).
        return False
    value = row[condition.field]
    compare = {
        "eq": lambda a, b: a == b,
        "ne": lambda a, b: a != b,
        "lt": lambda a, b: a < b,
        "le": lambda a, b: a <= b,
        "gt": lambda a, b: a > b,
        "ge": lambda a, b: a >= b,
    }[condition.op]
    try:
        return any(compare(value, wanted) for wanted in condition.values)
    except TypeError:
        return False  # values of different types never match, as in the service
