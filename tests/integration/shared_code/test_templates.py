"""Templates against real Azurite: their own copies of documents, versions, sends and the link purge."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from shared_code import clock
from shared_code.attachments import (
    REJECTED,
    _settle,
    delete_attachment,
    find_attachment,
    get_attachment,
    upload_attachment,
)
from shared_code.errors import Conflict, NotFound, PreconditionFailed, Unprocessable
from shared_code.message_create import create_message
from shared_code.message_links import revoke_message
from shared_code.message_request import parse_new_message
from shared_code.message_store import get_message, transition
from shared_code.message_views import message_view
from shared_code.portal import list_documents
from shared_code.retention import purge_expired
from shared_code.storage import DOCUMENTS, TEMPLATE_DOCUMENTS
from shared_code.templates import apply_template, create_template, delete_template, update_template
from tests.support.records import DOB, clean_attachment, mark_sent, principal
from tests.support.stack import sample_pdf

GP1 = principal()


def _template(storage, settings, uploads, **fields):
    payload = {"name": "Leaflets", "body": "Dear ((first name)), see the leaflet.", **fields}
    return create_template(storage, settings, GP1, {**payload, "attachmentIds": [u.id for u in uploads]})


def _bytes(storage, container: str, name: str) -> bytes | None:
    blob = storage.container(container).get_blob_client(name)
    return blob.download_blob().readall() if blob.exists() else None


def _template_blobs(storage, org: str = "A12345") -> set[str]:
    return {b.name for b in storage.container(TEMPLATE_DOCUMENTS).list_blobs(name_starts_with=f"{org}/")}


def _send(storage, settings, template_id: str, **fields):
    payload = {
        "patient": {"nhsNumber": "9434765919", "dateOfBirth": DOB, "mobile": "07700900123", "name": "Jo Bloggs"},
        "templateId": template_id,
        **fields,
    }
    request = apply_template(storage, settings, GP1, parse_new_message(payload, settings))
    return create_message(storage, settings, GP1, request)


def test_a_template_keeps_its_own_copies_of_clean_uploads(storage, settings) -> None:
    letters = [sample_pdf("Leaflet one"), sample_pdf("Leaflet two")]
    uploads = [clean_attachment(storage, settings, data=data) for data in letters]
    template = _template(storage, settings, uploads)
    assert [d.filename for d in template.documents] == ["letter.pdf", "letter.pdf"]
    assert {d.id for d in template.documents}.isdisjoint({u.id for u in uploads})
    for document, data in zip(template.documents, letters, strict=True):
        assert _bytes(storage, TEMPLATE_DOCUMENTS, f"A12345/{document.id}") == data
        record = find_attachment(storage, "A12345", document.id)
        assert record.template_id == template.id and record.status == "clean" and record.size == len(data)
        # Not an attachment of the API: it cannot be read or deleted from under its template.
        with pytest.raises(NotFound):
            get_attachment(storage, "A12345", document.id)
        with pytest.raises(NotFound):
            delete_attachment(storage, "A12345", document.id)
    # Deleting the uploads leaves the template's documents alone.
    for upload in uploads:
        delete_attachment(storage, "A12345", upload.id)
    assert all(_bytes(storage, TEMPLATE_DOCUMENTS, f"A12345/{d.id}") for d in template.documents)


def test_only_clean_uploads_of_the_organisation_may_be_kept(storage, settings) -> None:
    scanning = upload_attachment(storage, settings, GP1, "x.pdf", sample_pdf("x"))
    with pytest.raises(Conflict) as caught:
        _template(storage, settings, [scanning])
    assert "attachmentIds[0]" in caught.value.detail
    data = sample_pdf("bad")
    rejected = upload_attachment(storage, settings, GP1, "bad.pdf", data)
    _settle(storage, replace(rejected, status=REJECTED, reason="bad", scan_engine="test"), data)
    theirs = clean_attachment(storage, settings, org="B99999")
    before = _template_blobs(storage)
    with pytest.raises(Unprocessable) as caught:
        _template(storage, settings, [clean_attachment(storage, settings), rejected, theirs])
    assert [e.field for e in caught.value.errors] == ["attachmentIds[1]", "attachmentIds[2]"]
    assert _template_blobs(storage) == before  # nothing copied for a refused request


def test_a_document_of_one_template_cannot_be_put_in_another(storage, settings) -> None:
    first = _template(storage, settings, [clean_attachment(storage, settings)])
    with pytest.raises(Unprocessable):
        create_template(storage, settings, GP1, {"name": "b", "body": "b", "attachmentIds": [first.documents[0].id]})


def test_an_update_keeps_the_documents_named_adds_new_ones_and_deletes_the_rest(storage, settings) -> None:
    v1 = _template(storage, settings, [clean_attachment(storage, settings)])
    kept = v1.documents[0]
    added = clean_attachment(storage, settings, data=sample_pdf("Added"))
    v2 = update_template(
        storage, settings, GP1, v1.id, v1.etag, {"name": "L", "body": "B", "attachmentIds": [added.id, kept.id]}
    )
    assert v2.version == 2 and v2.documents[1] == kept and v2.documents[0].id not in (added.id, kept.id)
    new = v2.documents[0]
    v3 = update_template(storage, settings, GP1, v1.id, v2.etag, {"name": "L", "body": "C", "attachmentIds": [new.id]})
    assert [d.id for d in v3.documents] == [new.id]
    assert _bytes(storage, TEMPLATE_DOCUMENTS, f"A12345/{kept.id}") is None
    assert find_attachment(storage, "A12345", kept.id).deleted
    # Versions 1 and 2 had the deleted document: they can no longer be sent; 3 can.
    for version in (1, 2):
        with pytest.raises(Conflict):
            _send(storage, settings, v1.id, templateVersion=version)
    assert _send(storage, settings, v1.id, templateVersion=3).template_version == 3


def test_a_stale_update_leaves_no_copies_behind(storage, settings) -> None:
    v1 = _template(storage, settings, [])
    update_template(storage, settings, GP1, v1.id, v1.etag, {"name": "L", "body": "Mine"})
    before = _template_blobs(storage)
    upload = clean_attachment(storage, settings)
    with pytest.raises(PreconditionFailed):
        update_template(
            storage, settings, GP1, v1.id, v1.etag, {"name": "L", "body": "x", "attachmentIds": [upload.id]}
        )
    assert _template_blobs(storage) == before


def test_deleting_a_template_deletes_its_documents_not_the_messages_copies(storage, settings) -> None:
    template = _template(storage, settings, [clean_attachment(storage, settings)])
    message = _send(storage, settings, template.id)
    document = template.documents[0]
    delete_template(storage, GP1, template.id, template.etag)
    assert _bytes(storage, TEMPLATE_DOCUMENTS, f"A12345/{document.id}") is None
    assert _bytes(storage, DOCUMENTS, message.document_blob(document.id)) is not None
    # The message keeps working with its own copy, as after deleting an upload.
    sent = get_message(storage, "A12345", message.id)
    assert [d.id for d in list_documents(storage, sent)] == [document.id]
    view = message_view(storage, sent)
    assert view["attachments"][0]["filename"] == "letter.pdf"


def test_a_message_sent_with_a_template_gets_its_own_copy_and_records_the_version(storage, settings) -> None:
    data = sample_pdf("Leaflet")
    template = _template(storage, settings, [clean_attachment(storage, settings, data=data)])
    extra = clean_attachment(storage, settings, data=sample_pdf("Extra"))
    message = _send(storage, settings, template.id, attachmentIds=[extra.id])
    document = template.documents[0]
    assert message.attachment_ids == (document.id, extra.id)
    assert message.state == "queued" and message.body == "Dear Jo, see the leaflet."
    assert (message.template_id, message.template_version) == (template.id, 1)
    assert _bytes(storage, DOCUMENTS, message.document_blob(document.id)) == data
    view = message_view(storage, get_message(storage, "A12345", message.id))
    assert (view["templateId"], view["templateVersion"]) == (template.id, 1)
    assert [a["filename"] for a in view["attachments"]] == ["letter.pdf", "letter.pdf"]
    portal = list_documents(storage, get_message(storage, "A12345", message.id))
    assert [d.id for d in portal] == [document.id, extra.id]
    # Revoking the message deletes its copies, never the template's.
    revoke_message(storage, "A12345", message.id)
    assert _bytes(storage, DOCUMENTS, message.document_blob(document.id)) is None
    assert _bytes(storage, TEMPLATE_DOCUMENTS, f"A12345/{document.id}") == data


def test_template_documents_survive_the_link_purge(storage, settings) -> None:
    data = sample_pdf("Kept for months")
    template = _template(storage, settings, [clean_attachment(storage, settings, data=data)])
    message = mark_sent(storage, _send(storage, settings, template.id))
    document = template.documents[0]
    transition(storage, "A12345", message.id, lambda m: replace(m, link_expires_at=clock.now() - timedelta(minutes=1)))
    assert purge_expired(storage) >= 1
    assert get_message(storage, "A12345", message.id).purged_at is not None
    assert _bytes(storage, DOCUMENTS, message.document_blob(document.id)) is None
    assert _bytes(storage, TEMPLATE_DOCUMENTS, f"A12345/{document.id}") == data
    assert find_attachment(storage, "A12345", document.id).status == "clean"
    again = _send(storage, settings, template.id)
    assert _bytes(storage, DOCUMENTS, again.document_blob(document.id)) == data
