"""Template rows on in-memory tables: visibility, versions kept, conditional writes, paging."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from shared_code.errors import NotFound
from shared_code.tables import MemoryTables
from shared_code.template_model import Template, TemplateDocument, Withdrawal, template_from_entity, template_to_entity
from shared_code.template_store import (
    BadCursor,
    TemplateChanged,
    all_templates,
    count_templates,
    decode_cursor,
    delete_template_rows,
    encode_cursor,
    find_template,
    find_version,
    get_visible,
    insert_template,
    list_visible,
    replace_template,
    templates_table,
)

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)


def make(org: str = "A12345", owner: str = "gp1", name: str = "Flu", shared: bool = True, **changes) -> Template:
    return Template(
        id=str(uuid.uuid4()),
        org=org,
        name=name,
        body="Dear ((first name))",
        shared=shared,
        owner=owner,
        version=1,
        created_at=T0,
        updated_at=T0,
        **changes,
    )


@pytest.fixture
def tables() -> MemoryTables:
    return MemoryTables()


def test_a_template_row_round_trips() -> None:
    template = make(
        documents=(TemplateDocument("d1", "Leaflet.pdf", "application/pdf", 10),),
        withdrawn=(Withdrawal("d0", "Old.pdf", "This file contains a virus or malware (X).", T0),),
    )
    assert replace(template_from_entity(template_to_entity(template)), row_etag=None) == template


def test_the_etag_is_the_version_strong() -> None:
    assert make().etag == '"v1"' and replace(make(), version=12).etag == '"v12"'


def test_shared_templates_are_the_organisations_and_private_ones_their_owners(tables: MemoryTables) -> None:
    shared = insert_template(tables, make(shared=True))
    private = insert_template(tables, make(shared=False))
    assert get_visible(tables, "A12345", "gp2", shared.id).id == shared.id
    assert get_visible(tables, "A12345", "gp1", private.id).id == private.id
    with pytest.raises(NotFound):
        get_visible(tables, "A12345", "gp2", private.id)


def test_another_organisations_template_is_never_found(tables: MemoryTables) -> None:
    theirs = insert_template(tables, make(org="B99999"))
    for user in ("gp1", "gp2"):
        with pytest.raises(NotFound):
            get_visible(tables, "A12345", user, theirs.id)
    assert find_template(tables, "A12345", theirs.id) is None


@pytest.mark.parametrize("template_id", ["", "nope", "../x", "1" * 36])
def test_ids_that_are_not_uuids_are_not_found(tables: MemoryTables, template_id: str) -> None:
    assert find_template(tables, "A12345", template_id) is None


def test_an_earlier_versions_row_is_not_a_template(tables: MemoryTables) -> None:
    first = insert_template(tables, make())
    replace_template(tables, first, replace(first, version=2, body="Second"))
    assert count_templates(tables, "A12345") == 1
    assert [t.version for t in all_templates(tables)] == [2]


def test_each_change_keeps_the_version_it_replaces(tables: MemoryTables) -> None:
    v1 = insert_template(tables, make(documents=(TemplateDocument("d1", "a.pdf", "application/pdf", 1),)))
    v2 = replace_template(tables, v1, replace(v1, version=2, body="Second", documents=()))
    v3 = replace_template(tables, v2, replace(v2, version=3, body="Third"))
    assert find_version(tables, v3, 1).body == "Dear ((first name))"
    assert [d.id for d in find_version(tables, v3, 1).documents] == ["d1"]
    assert find_version(tables, v3, 2).body == "Second"
    assert find_version(tables, v3, 3).body == "Third"
    for missing in (0, 4, -1):
        assert find_version(tables, v3, missing) is None


def test_of_two_changes_to_one_version_only_the_first_is_written(tables: MemoryTables) -> None:
    v1 = insert_template(tables, make())
    replace_template(tables, v1, replace(v1, version=2, body="Mine"))
    with pytest.raises(TemplateChanged):
        replace_template(tables, v1, replace(v1, version=2, body="Theirs"))
    stored = find_template(tables, "A12345", v1.id)
    assert stored.version == 2 and stored.body == "Mine"
    # The loser's archive write of version 1 wrote version 1's own content: nothing is wrong.
    assert find_version(tables, stored, 1).body == "Dear ((first name))"


def test_a_delete_of_a_stale_version_is_refused_and_a_delete_takes_the_versions_with_it(tables: MemoryTables) -> None:
    v1 = insert_template(tables, make())
    v2 = replace_template(tables, v1, replace(v1, version=2))
    with pytest.raises(TemplateChanged):
        delete_template_rows(tables, v1)
    other = insert_template(tables, make())
    delete_template_rows(tables, v2)
    assert find_template(tables, "A12345", v1.id) is None
    rows = list(templates_table(tables).query())
    assert [r["RowKey"] for r in rows] == [other.id]


def test_the_list_is_by_name_ignoring_case_then_id_and_pages_without_gaps(tables: MemoryTables) -> None:
    names = ["beta", "Alpha", "alpha", "Gamma", "delta", "Beta", "epsilon"]
    made = [insert_template(tables, make(name=n)) for n in names]
    insert_template(tables, make(name="aaa private", shared=False, owner="gp2"))
    insert_template(tables, make(name="aaa other org", org="B99999"))
    expected = [t.id for t in sorted(made, key=lambda t: (t.name.casefold(), t.id))]
    seen, after, pages = [], None, 0
    while True:
        page, token = list_visible(tables, "A12345", "gp1", limit=3, after=after)
        pages += 1
        seen += [t.id for t in page]
        if token is None:
            break
        after = decode_cursor(token)
    assert seen == expected and pages == 3


def test_a_page_exactly_at_the_end_has_no_token(tables: MemoryTables) -> None:
    for n in range(4):
        insert_template(tables, make(name=f"t{n}"))
    page, token = list_visible(tables, "A12345", "gp1", limit=4, after=None)
    assert len(page) == 4 and token is None
    page, token = list_visible(tables, "A12345", "gp1", limit=3, after=None)
    assert len(page) == 3 and token is not None


def test_the_owner_sees_their_private_templates_in_the_list(tables: MemoryTables) -> None:
    mine = insert_template(tables, make(shared=False, owner="gp2"))
    assert [t.id for t in list_visible(tables, "A12345", "gp2", limit=10, after=None)[0]] == [mine.id]
    assert list_visible(tables, "A12345", "gp1", limit=10, after=None)[0] == []


def test_cursor_round_trip_and_refusals() -> None:
    assert decode_cursor(encode_cursor(("flu ✓", "id"))) == ("flu ✓", "id")
    for bad in ("", "!!", "e30", encode_cursor(("a", "b")) + "x"):  # e30 is {}
        with pytest.raises(BadCursor):
            decode_cursor(bad)


def test_row_times_are_kept_to_the_millisecond() -> None:
    later = T0 + timedelta(milliseconds=1)
    assert template_from_entity(template_to_entity(replace(make(), updated_at=later))).updated_at == later
