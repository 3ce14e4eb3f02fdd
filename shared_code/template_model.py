"""The template record: a practice's saved text and documents, its versions, and their table rows.

A template is one row of the `templates` table (partition: the organisation, row key: its id)
holding the current version. Every change makes a new `version`; the version it replaces is
kept as a row of its own (`{id}|v{version}`), body and document list, so a message sent with
an earlier `templateVersion` uses exactly that text and those documents. Only the current
row is listed and re-scanned.

The HTTP `ETag` of a template is its version (`"v3"`): strong, since each version's content
never changes, and not the table's own weak row ETag, which `If-Match` could not compare.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared_code import clock
from shared_code.placeholders import placeholders_in
from shared_code.storage import TEMPLATES  # the table, partitioned by organisation

__all__ = ["TEMPLATES", "Template", "TemplateDocument", "TemplateVersion", "Withdrawal"]
#: What a row holds: a template's current version, or an earlier one.
CURRENT, EARLIER = "template", "version"
#: Withdrawals kept on a template for the practice to see (the latest).
MAX_WITHDRAWALS_SHOWN = 20


@dataclass(frozen=True)
class TemplateDocument:
    """A document kept with a template: its own id (not the upload's), name, type and size."""

    id: str
    filename: str
    content_type: str
    size: int

    def to_api(self) -> dict[str, Any]:
        """As the API shows it."""
        return {"id": self.id, "filename": self.filename, "contentType": self.content_type, "size": self.size}


@dataclass(frozen=True)
class Withdrawal:
    """A document the scheduled re-scan took out of the template, and why."""

    document_id: str
    filename: str
    reason: str
    at: datetime

    def to_api(self) -> dict[str, Any]:
        """As the API shows it."""
        return {"id": self.document_id, "filename": self.filename, "reason": self.reason, "at": clock.iso(self.at)}


@dataclass(frozen=True)
class Template:
    """A saved text with documents, in its current version."""

    id: str
    org: str
    name: str
    body: str
    shared: bool
    owner: str
    version: int
    created_at: datetime
    updated_at: datetime
    documents: tuple[TemplateDocument, ...] = ()
    withdrawn: tuple[Withdrawal, ...] = ()
    #: The stored row's own ETag, for the conditional write (not the HTTP `etag`).
    row_etag: str | None = None

    @property
    def etag(self) -> str:
        """The HTTP ETag of this version (strong)."""
        return version_etag(self.version)

    def visible_to(self, user: str) -> bool:
        """Shared templates are the whole organisation's; the others only their owner's."""
        return self.shared or self.owner == user

    def to_api(self) -> dict[str, Any]:
        """As the API shows it."""
        return {
            "id": self.id,
            "name": self.name,
            "body": self.body,
            "placeholders": [p.name for p in placeholders_in(self.body)],
            "attachments": [d.to_api() for d in self.documents],
            "shared": self.shared,
            "owner": self.owner,
            "version": self.version,
            "createdAt": clock.iso(self.created_at),
            "updatedAt": clock.iso(self.updated_at),
            "withdrawnAttachments": [w.to_api() for w in self.withdrawn],
        }


@dataclass(frozen=True)
class TemplateVersion:
    """What one version of a template sends: its text and its documents."""

    template_id: str
    version: int
    body: str
    documents: tuple[TemplateDocument, ...]


def version_etag(version: int) -> str:
    """The HTTP ETag of a template version."""
    return f'"v{version}"'


def version_row_key(template_id: str, version: int) -> str:
    """The row key of an earlier version (zero-padded, so versions sort in order)."""
    return f"{template_id}|v{version:08d}"


def _documents_json(documents: tuple[TemplateDocument, ...]) -> str:
    return json.dumps([[d.id, d.filename, d.content_type, d.size] for d in documents], separators=(",", ":"))


def _documents_from_json(text: str | None) -> tuple[TemplateDocument, ...]:
    return tuple(TemplateDocument(i, f, c, int(s)) for i, f, c, s in json.loads(text or "[]"))


def template_to_entity(t: Template) -> dict[str, Any]:
    """The current row of a template."""
    return {
        "PartitionKey": t.org,
        "RowKey": t.id,
        "kind": CURRENT,
        "name": t.name,
        "body": t.body,
        "shared": t.shared,
        "owner": t.owner,
        "version": t.version,
        "createdAt": clock.iso(t.created_at),
        "updatedAt": clock.iso(t.updated_at),
        "documents": _documents_json(t.documents),
        "withdrawn": json.dumps(
            [[w.document_id, w.filename, w.reason, clock.iso(w.at)] for w in t.withdrawn[-MAX_WITHDRAWALS_SHOWN:]],
            separators=(",", ":"),
        ),
    }


def template_from_entity(e: Any) -> Template:
    """A template from its current row (a `tables.Row`)."""
    return Template(
        id=e["RowKey"],
        org=e["PartitionKey"],
        name=e["name"],
        body=e["body"],
        shared=bool(e["shared"]),
        owner=e["owner"],
        version=int(e["version"]),
        created_at=clock.parse_iso(e["createdAt"]),
        updated_at=clock.parse_iso(e["updatedAt"]),
        documents=_documents_from_json(e.get("documents")),
        withdrawn=tuple(
            Withdrawal(i, f, r, clock.parse_iso(at)) for i, f, r, at in json.loads(e.get("withdrawn") or "[]")
        ),
        row_etag=getattr(e, "etag", None),
    )


def version_to_entity(t: Template) -> dict[str, Any]:
    """The row that keeps this version of the template once a newer one replaces it."""
    return {
        "PartitionKey": t.org,
        "RowKey": version_row_key(t.id, t.version),
        "kind": EARLIER,
        "templateId": t.id,
        "version": t.version,
        "body": t.body,
        "documents": _documents_json(t.documents),
        "madeAt": clock.iso(t.updated_at),
    }


def version_from_entity(e: Any) -> TemplateVersion:
    """An earlier version from its row."""
    return TemplateVersion(e["templateId"], int(e["version"]), e["body"], _documents_from_json(e.get("documents")))


def current_version(t: Template) -> TemplateVersion:
    """The version a template sends now."""
    return TemplateVersion(t.id, t.version, t.body, t.documents)
