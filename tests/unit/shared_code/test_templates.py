"""Templates as the API uses them, on in-memory tables: ETags, versions, visibility, previews,
and the text and documents a message sent with one gets (boundaries exactly)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date, datetime, timezone
from typing import Any

import pytest

from shared_code import clock
from shared_code.attachments import CLEAN, Attachment, save_attachment
from shared_code.auth import Principal
from shared_code.errors import Conflict, NotFound, PreconditionFailed, PreconditionRequired, Unprocessable
from shared_code.message_request import NewMessage
from shared_code.settings import Settings
from shared_code.sms_text import measure
from shared_code.tables import MemoryTables
from shared_code.template_model import Template, TemplateDocument
from shared_code.template_request import sample_link
from shared_code.template_store import MAX_TEMPLATES_PER_ORG, find_template, insert_template, replace_template
from shared_code.templates import (
    apply_template,
    create_template,
    delete_template,
    list_templates,
    personalise,
    preview_template,
    read_template,
    update_template,
)

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
SETTINGS = Settings()
GP1 = Principal("A12345", "gp1", "Riverside Surgery")
GP2 = Principal("A12345", "gp2", "Riverside Surgery")
OTHER_ORG = Principal("B99999", "gp1", "Hillside Practice")


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: NOW)


@pytest.fixture
def tables() -> MemoryTables:
    return MemoryTables()


def new(tables: MemoryTables, principal: Principal = GP1, **fields: Any) -> Template:
    payload = {"name": "Flu jab", "body": "Dear ((first name)), your jab is on ((date)).", **fields}
    return create_template(tables, SETTINGS, principal, payload)


# -- create, read, change, delete ------------------------------------------------------------


def test_create_answers_version_1_owned_by_the_caller_and_shared_by_default(tables: MemoryTables) -> None:
    template = new(tables)
    view = template.to_api()
    assert view["version"] == 1 and view["owner"] == "gp1" and view["shared"] is True
    assert view["placeholders"] == ["first name", "date"] and view["attachments"] == []
    assert view["createdAt"] == view["updatedAt"] == "2026-11-30T09:00:00.000Z"
    assert template.etag == '"v1"'
    assert read_template(tables, GP2, template.id) == template


def test_a_change_needs_the_current_etag_and_makes_the_next_version(tables: MemoryTables) -> None:
    template = new(tables)
    with pytest.raises(PreconditionRequired):
        update_template(tables, SETTINGS, GP1, template.id, None, {"name": "x", "body": "y"})
    changed = update_template(tables, SETTINGS, GP2, template.id, '"v1"', {"name": "Flu", "body": "Changed"})
    assert (changed.version, changed.etag, changed.body, changed.owner) == (2, '"v2"', "Changed", "gp1")
    with pytest.raises(PreconditionFailed):
        update_template(tables, SETTINGS, GP1, template.id, '"v1"', {"name": "Flu", "body": "Stale"})
    assert read_template(tables, GP1, template.id).body == "Changed"


def test_an_invalid_change_is_422_and_changes_nothing(tables: MemoryTables) -> None:
    template = new(tables)
    with pytest.raises(Unprocessable):
        update_template(tables, SETTINGS, GP1, template.id, '"v1"', {"name": "Flu", "body": "((NHS number))"})
    assert read_template(tables, GP1, template.id).version == 1


def test_invalid_fields_are_reported_before_a_missing_or_stale_if_match(tables: MemoryTables) -> None:
    template = new(tables)
    for if_match in (None, '"v7"'):
        with pytest.raises(Unprocessable):
            update_template(tables, SETTINGS, GP1, template.id, if_match, {"name": 5, "body": 6})


def test_only_the_owner_may_make_a_shared_template_private(tables: MemoryTables) -> None:
    template = new(tables)
    with pytest.raises(Unprocessable) as caught:
        update_template(tables, SETTINGS, GP2, template.id, '"v1"', {"name": "a", "body": "b", "shared": False})
    assert [e.field for e in caught.value.errors] == ["shared"]
    private = update_template(tables, SETTINGS, GP1, template.id, '"v1"', {"name": "a", "body": "b", "shared": False})
    assert private.shared is False
    with pytest.raises(NotFound):
        read_template(tables, GP2, template.id)


def test_a_private_template_is_404_to_everyone_else_for_every_operation(tables: MemoryTables) -> None:
    template = new(tables, shared=False)
    for principal in (GP2, OTHER_ORG):
        with pytest.raises(NotFound):
            read_template(tables, principal, template.id)
        with pytest.raises(NotFound):
            update_template(tables, SETTINGS, principal, template.id, '"v1"', {"name": "a", "body": "b"})
        with pytest.raises(NotFound):
            delete_template(tables, principal, template.id, None)
        with pytest.raises(NotFound):
            preview_template(tables, SETTINGS, principal, template.id, {})
    assert read_template(tables, GP1, template.id).id == template.id


def test_a_shared_template_is_404_to_another_organisation(tables: MemoryTables) -> None:
    template = new(tables)
    with pytest.raises(NotFound):
        read_template(tables, OTHER_ORG, template.id)
    assert list_templates(tables, OTHER_ORG, {})["items"] == []


def test_delete_with_a_stale_if_match_is_412_without_one_it_deletes(tables: MemoryTables) -> None:
    template = new(tables)
    update_template(tables, SETTINGS, GP1, template.id, '"v1"', {"name": "a", "body": "b"})
    with pytest.raises(PreconditionFailed):
        delete_template(tables, GP1, template.id, '"v1"')
    delete_template(tables, GP1, template.id, None)
    with pytest.raises(NotFound):
        read_template(tables, GP1, template.id)
    with pytest.raises(NotFound):
        delete_template(tables, GP1, template.id, None)


def test_the_organisations_limit_is_a_409(tables: MemoryTables, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared_code import templates

    monkeypatch.setattr(templates, "MAX_TEMPLATES_PER_ORG", 2)
    new(tables)
    new(tables)
    with pytest.raises(Conflict):
        new(tables)
    new(tables, OTHER_ORG)  # per organisation
    assert MAX_TEMPLATES_PER_ORG == 500


def test_the_list_pages_with_a_token(tables: MemoryTables) -> None:
    for name in ("c", "a", "b"):
        new(tables, name=name)
    first = list_templates(tables, GP1, {"limit": "2"})
    assert [t["name"] for t in first["items"]] == ["a", "b"] and first["continuationToken"]
    second = list_templates(tables, GP1, {"limit": "2", "continuationToken": first["continuationToken"]})
    assert [t["name"] for t in second["items"]] == ["c"] and second["continuationToken"] is None


# -- personalising and previewing ---------------------------------------------------------------


def test_personalise_fills_built_ins_from_the_request_and_the_rest_from_personalisation() -> None:
    filled = personalise(
        "((First Name)) ((full_name)) at ((practice-name)) on ((Date))",
        SETTINGS,
        full_name="Jo Bloggs",
        first_name=None,
        practice_name="Riverside Surgery",
        personalisation={"date": "Monday", "unused": 5},
    )
    assert filled.text == "Jo Jo Bloggs at Riverside Surgery on Monday"
    assert filled.missing == () and filled.errors == ()


def test_personalise_names_each_unusable_value_by_its_field() -> None:
    filled = personalise(
        "((first name)) ((a)) ((b)) ((c))",
        SETTINGS,
        full_name="Jo",
        first_name="Jo\nX",
        practice_name=None,
        personalisation={"A": "two\nlines", "b": "see bit.ly/x", "c": 3, "d": "\n"},
    )
    assert [(e.field, e.message.split()[-1]) for e in filled.errors] == [
        ("patient.firstName", "line"),
        ("personalisation.A", "line"),
        ("personalisation.b", "address"),
        ("personalisation.c", "text"),
    ]


def test_values_that_make_a_link_with_the_text_around_them_are_refused() -> None:
    filled = personalise(
        "Go to ((site)).com",
        SETTINGS,
        full_name=None,
        first_name=None,
        practice_name=None,
        personalisation={"site": "evil"},
    )
    assert [e.field for e in filled.errors] == ["body"]


def test_a_preview_shows_the_whole_text_with_a_link_of_the_real_length(tables: MemoryTables) -> None:
    template = new(tables)
    preview = preview_template(tables, SETTINGS, GP1, template.id, {"patient": {"name": "Jo Bloggs"}})
    assert preview == {
        "body": f"Dear Jo, your jab is on ((date)).\n{sample_link(SETTINGS)}",
        "segments": 1,
        "encoding": "GSM-7",
        "missing": ["date"],
    }
    full = preview_template(
        tables, SETTINGS, GP1, template.id, {"patient": {"name": "Zoë"}, "personalisation": {"DATE": "Monday"}}
    )
    assert full["missing"] == [] and full["body"].startswith("Dear Zoë, your jab is on Monday.")
    from shared_code.crypto import new_link_token

    assert len(sample_link(SETTINGS)) == len(f"{SETTINGS.portal_base_url}/p/{new_link_token()}")


def test_a_preview_counts_ucs2_segments_after_filling(tables: MemoryTables) -> None:
    template = new(tables, body="Hello ((first name))")
    preview = preview_template(tables, SETTINGS, GP1, template.id, {"patient": {"firstName": "Łukasz"}})
    assert preview["encoding"] == "UCS-2"
    assert preview["segments"] == measure(preview["body"]).segments


def test_a_preview_with_an_unusable_value_is_422(tables: MemoryTables) -> None:
    template = new(tables)
    with pytest.raises(Unprocessable) as caught:
        preview_template(tables, SETTINGS, GP1, template.id, {"personalisation": {"date": "https://evil.example"}})
    assert [e.field for e in caught.value.errors] == ["personalisation.date"]


# -- a message sent with a template -----------------------------------------------------------


def _document(tables: MemoryTables, org: str = "A12345", status: str = CLEAN, **changes: Any) -> TemplateDocument:
    attachment = Attachment(
        id=str(uuid.uuid4()),
        org=org,
        filename="Leaflet.pdf",
        content_type="application/pdf",
        kind="pdf",
        size=100,
        sha256="0" * 64,
        status=status,
        created_at=NOW,
        created_by="gp1",
        **changes,
    )
    save_attachment(tables, attachment, etag_check=False)
    return TemplateDocument(attachment.id, attachment.filename, attachment.content_type, attachment.size)


def _with_documents(tables: MemoryTables, count: int, body: str = "Dear ((first name)), see ((what)).") -> Template:
    documents = tuple(_document(tables) for _ in range(count))
    template = Template(
        id=str(uuid.uuid4()),
        org="A12345",
        name="Leaflets",
        body=body,
        shared=True,
        owner="gp1",
        version=1,
        created_at=NOW,
        updated_at=NOW,
        documents=documents,
    )
    return insert_template(tables, template)


def _request(template_id: str | None, **changes: Any) -> NewMessage:
    request = NewMessage(
        date_of_birth=date(1970, 1, 31),
        mobile="+447700900123",
        body="",
        attachment_ids=(),
        send_at=None,
        template_id=template_id,
        personalisation={"what": "the leaflet"},
        patient_name="Jo Bloggs",
    )
    return replace(request, **changes)


def _fields(tables: MemoryTables, request: NewMessage, settings: Settings = SETTINGS) -> list[str]:
    with pytest.raises(Unprocessable) as caught:
        apply_template(tables, settings, GP1, request)
    return [e.field for e in caught.value.errors]


def test_a_request_without_a_template_is_unchanged(tables: MemoryTables) -> None:
    request = _request(None, body="Hello", attachment_ids=("a",))
    assert apply_template(tables, SETTINGS, GP1, request) is request


def test_a_template_gives_the_filled_text_its_documents_and_its_version(tables: MemoryTables) -> None:
    template = _with_documents(tables, 2)
    extra = _document(tables).id
    applied = apply_template(tables, SETTINGS, GP1, _request(template.id, attachment_ids=(extra,)))
    assert applied.body == "Dear Jo, see the leaflet."
    assert applied.attachment_ids == (*[d.id for d in template.documents], extra)
    assert applied.template_version == 1


def test_a_given_body_replaces_the_templates_text_and_is_filled_too(tables: MemoryTables) -> None:
    template = _with_documents(tables, 1)
    applied = apply_template(
        tables, SETTINGS, GP1, _request(template.id, body="Hi ((first name)) from ((practice name))")
    )
    assert applied.body == "Hi Jo from Riverside Surgery"
    assert applied.attachment_ids == (template.documents[0].id,)


def test_a_given_body_may_not_name_a_date_of_birth(tables: MemoryTables) -> None:
    template = _with_documents(tables, 1)
    assert _fields(tables, _request(template.id, body="Your DOB: ((dob))")) == ["body"]
    # ...and it is never filled, whatever personalisation says.
    request = _request(template.id, body="Your DOB: ((dob))", personalisation={"dob": "1970-01-31"})
    assert _fields(tables, request) == ["body"]


def test_every_missing_placeholder_is_named_in_one_422(tables: MemoryTables) -> None:
    template = _with_documents(tables, 1, body="((first name)) ((what)) ((when)) ((where)) ((practice name))")
    request = _request(template.id, patient_name=None, personalisation={})
    principal = Principal("A12345", "gp1", None)
    with pytest.raises(Unprocessable) as caught:
        apply_template(tables, SETTINGS, principal, request)
    assert [(e.field, e.message) for e in caught.value.errors] == [
        ("patient.name", "The text uses ((first name)): enter the patient's name"),
        ("personalisation.what", "Give a value for the placeholder ((what))"),
        ("personalisation.when", "Give a value for the placeholder ((when))"),
        ("personalisation.where", "Give a value for the placeholder ((where))"),
        ("personalisation.practice name", "Give a value for the placeholder ((practice name))"),
    ]


def test_documents_up_to_the_limit_exactly_and_one_more_is_422(tables: MemoryTables) -> None:
    template = _with_documents(tables, 3)
    two = (_document(tables).id, _document(tables).id)
    applied = apply_template(tables, SETTINGS, GP1, _request(template.id, attachment_ids=two))
    assert len(applied.attachment_ids) == SETTINGS.max_attachments == 5
    three = (*two, _document(tables).id)
    assert _fields(tables, _request(template.id, attachment_ids=three)) == ["attachmentIds"]


def test_a_template_without_documents_needs_an_attachment(tables: MemoryTables) -> None:
    template = _with_documents(tables, 0)
    assert _fields(tables, _request(template.id)) == ["attachmentIds"]
    extra = _document(tables).id
    assert apply_template(tables, SETTINGS, GP1, _request(template.id, attachment_ids=(extra,))).attachment_ids == (
        extra,
    )


def test_a_templates_own_document_named_again_is_422(tables: MemoryTables) -> None:
    template = _with_documents(tables, 1)
    again = (template.documents[0].id,)
    assert _fields(tables, _request(template.id, attachment_ids=again)) == ["attachmentIds[0]"]


def test_an_unknown_or_invisible_template_is_a_422_on_template_id(tables: MemoryTables) -> None:
    theirs = new(tables, OTHER_ORG)
    private = new(tables, GP2, shared=False)
    for template_id in (str(uuid.uuid4()), "nope", theirs.id, private.id):
        assert _fields(tables, _request(template_id)) == ["templateId"]


def test_an_earlier_version_sends_its_own_text_and_documents(tables: MemoryTables) -> None:
    v1 = _with_documents(tables, 1, body="First ((what))")
    v2 = replace_template(tables, v1, replace(v1, version=2, body="Second ((what))"))
    assert apply_template(tables, SETTINGS, GP1, _request(v1.id, template_version=1)).body == "First the leaflet"
    assert apply_template(tables, SETTINGS, GP1, _request(v1.id)).body == "Second the leaflet"
    assert apply_template(tables, SETTINGS, GP1, _request(v1.id)).template_version == v2.version == 2
    for version in (3, 99):
        assert _fields(tables, _request(v1.id, template_version=version)) == ["templateVersion"]


def test_an_earlier_version_whose_document_is_gone_is_409(tables: MemoryTables) -> None:
    v1 = _with_documents(tables, 1, body="First")
    replace_template(tables, v1, replace(v1, version=2, documents=(_document(tables),)))
    gone = v1.documents[0]
    save_attachment(tables, replace(_attachment(tables, gone.id), deleted=True), etag_check=False)
    with pytest.raises(Conflict) as caught:
        apply_template(tables, SETTINGS, GP1, _request(v1.id, template_version=1))
    assert "Leaflet.pdf" in caught.value.detail and "(2)" in caught.value.detail
    apply_template(tables, SETTINGS, GP1, _request(v1.id, template_version=2))


def _attachment(tables: MemoryTables, attachment_id: str) -> Attachment:
    from shared_code.attachments import find_attachment

    return find_attachment(tables, "A12345", attachment_id)


def test_segments_after_filling_are_the_messages_to_count(tables: MemoryTables) -> None:
    # The filled text is what create_message measures: a value makes it longer, not the name.
    template = _with_documents(tables, 1, body="((x))")
    long = "y" * 200
    applied = apply_template(tables, SETTINGS, GP1, _request(template.id, personalisation={"x": long}))
    assert applied.body == long
    assert find_template(tables, "A12345", template.id).body == "((x))"
