"""Revoking a message's link against real Azurite: the documents go, once, and only for its organisation."""

from __future__ import annotations

import pytest

from shared_code.errors import NotFound
from shared_code.message_links import revoke_message
from shared_code.message_store import get_message
from shared_code.message_views import message_view
from shared_code.storage import DOCUMENTS
from tests.support.records import new_message


def test_revoke_deletes_the_documents_and_is_idempotent(storage, settings) -> None:
    message = new_message(storage, settings)
    blob = storage.container(DOCUMENTS).get_blob_client(message.document_blob(message.attachment_ids[0]))
    assert blob.exists()
    revoked = revoke_message(storage, message.org, message.id)
    assert revoked.status == "revoked" and not blob.exists()
    assert revoked.sealed_token is None and revoked.body is None
    revoke_message(storage, message.org, message.id)
    view = message_view(storage, get_message(storage, message.org, message.id))
    assert [e["type"] for e in view["events"]].count("revoked") == 1
    assert view["attachments"][0]["downloads"] == 0


def test_another_organisation_cannot_see_or_revoke(storage, settings) -> None:
    message = new_message(storage, settings)
    with pytest.raises(NotFound):
        get_message(storage, "B99999", message.id)
    with pytest.raises(NotFound):
        revoke_message(storage, "B99999", message.id)
    with pytest.raises(NotFound):
        get_message(storage, message.org, "not-a-uuid")
