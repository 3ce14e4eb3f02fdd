"""Template rows in storage: find one as its caller may see it, list a page, and the conditional writes.

Every write of a template's current row is conditional on the row version it was decided on,
so of two changes made at once exactly one wins and the other is told (`TemplateChanged`).
Before a newer version replaces a row, the version being replaced is kept in a row of its own
(written first and idempotent: the same version always has the same content, so a writer that
then loses the race has written nothing wrong).

Another organisation's template is never found: rows are looked up in the caller's partition
only, and a private template is found only by its owner. Both answer 404, never 403.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, Protocol

from shared_code.errors import NotFound
from shared_code.tables import RowChanged, RowExists, Table, eq
from shared_code.template_model import (
    CURRENT,
    EARLIER,
    TEMPLATES,
    Template,
    TemplateVersion,
    current_version,
    template_from_entity,
    template_to_entity,
    version_from_entity,
    version_row_key,
    version_to_entity,
)

#: Templates one organisation may keep; a list reads the whole partition, so it stays bounded.
MAX_TEMPLATES_PER_ORG = 500
#: Page sizes of `GET /api/v1/templates`.
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 50, 100


class Tables(Protocol):
    """Anything that gives a table by name: `Storage`, or `MemoryTables` in unit tests."""

    def table(self, name: str) -> Any:
        """The table of this name."""
        ...


class TemplateChanged(Exception):
    """The template was changed or deleted since it was read; the caller's change was not written."""


class BadCursor(ValueError):
    """A continuation token that is not one this API gave out."""


def templates_table(tables: Tables) -> Table:
    """The `templates` table as a `tables.Table`."""
    table = tables.table(TEMPLATES)
    if hasattr(table, "insert"):
        return table
    # A bare SDK TableClient (from a Storage that does not yet give adapters).
    from shared_code.tables import AzureTable

    return AzureTable(table)


def _plausible_id(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return False
    return True


def find_template(tables: Tables, org: str, template_id: str) -> Template | None:
    """The organisation's template with this id, whoever may see it, or None."""
    if not _plausible_id(template_id):
        return None
    row = templates_table(tables).get(org, template_id)
    if row is None or row.get("kind") != CURRENT:
        return None
    return template_from_entity(row)


def get_visible(tables: Tables, org: str, user: str, template_id: str) -> Template:
    """The template as this caller may see it; 404 for unknown ids, other organisations' and
    other users' private templates alike."""
    found = find_template(tables, org, template_id)
    if found is None or not found.visible_to(user):
        raise NotFound("There is no template with this id.")
    return found


def insert_template(tables: Tables, template: Template) -> Template:
    """Store a new template (the caller has checked the organisation's limit, MAX_TEMPLATES_PER_ORG)."""
    try:
        etag = templates_table(tables).insert(template_to_entity(template))
    except RowExists:  # a fresh uuid4 is never taken; a repeat of this very write is
        raise TemplateChanged(template.id) from None
    return _with_row_etag(template, etag)


def replace_template(tables: Tables, current: Template, new: Template) -> Template:
    """Write `new` over `current` (the version it was decided on), keeping `current` as an earlier
    version; TemplateChanged when the stored row is no longer `current`."""
    table = templates_table(tables)
    if new.version != current.version:
        table.replace(version_to_entity(current), etag=None)
    try:
        etag = table.replace(template_to_entity(new), etag=current.row_etag)
    except RowChanged:
        raise TemplateChanged(current.id) from None
    return _with_row_etag(new, etag)


def delete_template_rows(tables: Tables, template: Template) -> None:
    """Delete the template (only the version given: TemplateChanged otherwise), then its earlier versions."""
    table = templates_table(tables)
    try:
        table.delete(template.org, template.id, etag=template.row_etag)
    except RowChanged:
        raise TemplateChanged(template.id) from None
    for row in table.query(eq("PartitionKey", template.org), eq("templateId", template.id), select=["RowKey"]):
        table.delete(template.org, row["RowKey"])


def find_version(tables: Tables, template: Template, version: int) -> TemplateVersion | None:
    """The given version of the template (the current one, or a kept earlier one), or None."""
    if version == template.version:
        return current_version(template)
    if not 1 <= version < template.version:
        return None
    row = templates_table(tables).get(template.org, version_row_key(template.id, version))
    if row is None or row.get("kind") != EARLIER:
        return None
    return version_from_entity(row)


def count_templates(tables: Tables, org: str) -> int:
    """How many templates the organisation has."""
    rows = templates_table(tables).query(eq("PartitionKey", org), eq("kind", CURRENT), select=["RowKey"])
    return sum(1 for _ in rows)


def all_templates(tables: Tables) -> Iterator[Template]:
    """Every organisation's templates, current versions (for the scheduled re-scan)."""
    for row in templates_table(tables).query(eq("kind", CURRENT)):
        yield template_from_entity(row)


# -- a page of the list ----------------------------------------------------------------------


def _order(template: Template) -> tuple[str, str]:
    """Templates are listed by name (ignoring case), then id: a total order that survives paging."""
    return template.name.casefold(), template.id


def encode_cursor(after: tuple[str, str]) -> str:
    """The opaque continuation token for "after this name and id"."""
    return base64.urlsafe_b64encode(json.dumps(list(after)).encode()).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[str, str]:
    """The position a continuation token names; BadCursor when it is not one we gave."""
    try:
        padded = token + "=" * (-len(token) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        raise BadCursor(token) from None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise BadCursor(token)
    return value[0], value[1]


def list_visible(
    tables: Tables, org: str, user: str, *, limit: int, after: tuple[str, str] | None
) -> tuple[list[Template], str | None]:
    """One page of the templates this caller may see, by name; and the token of the next page, if any."""
    rows = templates_table(tables).query(eq("PartitionKey", org), eq("kind", CURRENT))
    visible = sorted((t for t in map(template_from_entity, rows) if t.visible_to(user)), key=_order)
    if after is not None:
        visible = [t for t in visible if _order(t) > after]
    page = visible[:limit]
    more = len(visible) > limit
    return page, encode_cursor(_order(page[-1])) if more else None


def _with_row_etag(template: Template, etag: str) -> Template:
    return replace(template, row_etag=etag)
