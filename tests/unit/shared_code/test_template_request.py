"""The rules for template requests: fields, previews, pages and If-Match, each boundary exactly."""

from __future__ import annotations

from typing import Any

import pytest

from shared_code.errors import PreconditionFailed, PreconditionRequired, Unprocessable
from shared_code.message_request import MAX_BODY_CHARS
from shared_code.settings import Settings
from shared_code.sms_text import measure
from shared_code.template_request import (
    MAX_TEMPLATE_NAME_CHARS,
    check_if_match,
    parse_page,
    parse_preview,
    parse_template,
    sample_link,
)
from shared_code.template_store import MAX_PAGE_SIZE, encode_cursor

SETTINGS = Settings()
GOOD: dict[str, Any] = {"name": "Flu leaflet", "body": "Dear ((first name)), your leaflet is attached."}


def fields_of(payload: dict[str, Any], settings: Settings = SETTINGS) -> list[str]:
    with pytest.raises(Unprocessable) as caught:
        parse_template(payload, settings)
    return [e.field for e in caught.value.errors]


def test_a_good_template_with_defaults() -> None:
    fields = parse_template({**GOOD, "name": "  Flu leaflet ", "body": " Hi \n"}, SETTINGS)
    assert fields.name == "Flu leaflet" and fields.body == "Hi"
    assert fields.attachment_ids == () and fields.shared is True


def test_shared_false_and_documents() -> None:
    fields = parse_template({**GOOD, "shared": False, "attachmentIds": ["a", "b"]}, SETTINGS)
    assert fields.shared is False and fields.attachment_ids == ("a", "b")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"name": "x" * (MAX_TEMPLATE_NAME_CHARS + 1)}, "name"),
        ({"name": "two\nlines"}, "name"),
        ({"body": "  "}, "body"),
        ({"body": 5}, "body"),
        ({"body": "x" * (MAX_BODY_CHARS + 1)}, "body"),
        ({"body": "a\x00b"}, "body"),
        ({"body": "Your ((date of birth)) is on file"}, "body"),
        ({"body": "NHS number: ((NHS number))"}, "body"),
        ({"body": "Hello ((a.b))"}, "body"),
        ({"body": "See https://evil.example"}, "body"),
        ({"attachmentIds": "a"}, "attachmentIds"),
        ({"attachmentIds": [1]}, "attachmentIds"),
        ({"attachmentIds": ["a", "a"]}, "attachmentIds"),
        ({"attachmentIds": [f"a{i}" for i in range(6)]}, "attachmentIds"),
        ({"shared": "yes"}, "shared"),
    ],
)
def test_each_invalid_field_is_named(changes: dict[str, Any], field: str) -> None:
    assert fields_of({**GOOD, **changes}) == [field]


def test_the_limits_themselves_are_accepted() -> None:
    parse_template(
        {**GOOD, "name": "x" * MAX_TEMPLATE_NAME_CHARS, "attachmentIds": [f"a{i}" for i in range(5)]}, SETTINGS
    )


def test_every_invalid_field_at_once() -> None:
    assert fields_of({"name": "", "body": "", "attachmentIds": None, "shared": 1}) == ["name", "body", "shared"]


def _body_of_segments(segments: int, settings: Settings) -> str:
    """A GSM-7 body that, with the link, is exactly `segments` segments long (153 septets each)."""
    link = sample_link(settings)
    return "x" * (153 * segments - len(link) - 1)


def test_a_text_already_too_long_without_its_values_is_refused_at_save() -> None:
    six = _body_of_segments(6, SETTINGS)
    assert measure(f"{six}\n{sample_link(SETTINGS)}").segments == 6
    parse_template({**GOOD, "body": six + "((x))"}, SETTINGS)  # the placeholder costs nothing yet
    assert fields_of({**GOOD, "body": six + "y((x))"}) == ["body"]


def test_the_length_limit_is_the_setting() -> None:
    two = _body_of_segments(2, SETTINGS)
    parse_template({**GOOD, "body": two}, Settings(max_segments=2))
    assert fields_of({**GOOD, "body": two + "y"}, Settings(max_segments=2)) == ["body"]


# -- preview -----------------------------------------------------------------------------------


def test_a_preview_may_be_empty() -> None:
    preview = parse_preview({})
    assert preview.full_name is None and preview.first_name is None and preview.personalisation == {}


def test_a_preview_takes_the_names_and_ignores_the_rest_of_the_patient() -> None:
    preview = parse_preview(
        {"patient": {"name": "Jo Bloggs", "firstName": "Jo", "nhsNumber": "bad"}, "personalisation": {"a": "b"}}
    )
    assert (preview.full_name, preview.first_name, preview.personalisation) == ("Jo Bloggs", "Jo", {"a": "b"})


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"patient": "Jo"}, "patient"),
        ({"patient": {"name": 3}}, "patient.name"),
        ({"patient": {"firstName": "x" * 201}}, "patient.firstName"),
        ({"personalisation": "x"}, "personalisation"),
        ({"personalisation": {"": "x"}}, "personalisation"),
        ({"personalisation": {"k" * 101: "x"}}, "personalisation"),
    ],
)
def test_a_bad_preview_is_a_422_naming_the_field(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(Unprocessable) as caught:
        parse_preview(payload)
    assert [e.field for e in caught.value.errors] == [field]


# -- paging ------------------------------------------------------------------------------------


def test_page_defaults_and_limits() -> None:
    assert parse_page({}) == (50, None)
    assert parse_page({"limit": "1"}) == (1, None)
    assert parse_page({"limit": str(MAX_PAGE_SIZE)}) == (MAX_PAGE_SIZE, None)
    token = encode_cursor(("flu leaflet", "id-1"))
    assert parse_page({"continuationToken": token}) == (50, ("flu leaflet", "id-1"))


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"limit": "0"}, ["limit"]),
        ({"limit": str(MAX_PAGE_SIZE + 1)}, ["limit"]),
        ({"limit": "-1"}, ["limit"]),
        ({"limit": "ten"}, ["limit"]),
        ({"limit": "٣"}, ["limit"]),  # a digit, but not an ASCII one
        ({"continuationToken": "not a token"}, ["continuationToken"]),
        ({"continuationToken": encode_cursor(("a", "b"))[:-2]}, ["continuationToken"]),
        ({"continuationToken": "WzFd"}, ["continuationToken"]),  # base64 of [1]
        ({"limit": "0", "continuationToken": "@"}, ["limit", "continuationToken"]),
    ],
)
def test_bad_paging_is_a_422_naming_each_parameter(params: dict[str, str], fields: list[str]) -> None:
    with pytest.raises(Unprocessable) as caught:
        parse_page(params)
    assert [e.field for e in caught.value.errors] == fields


# -- If-Match ----------------------------------------------------------------------------------


def test_if_match_accepts_the_current_etag_a_list_with_it_or_a_star() -> None:
    for header in ('"v3"', ' "v2", "v3" ', "*"):
        check_if_match(header, '"v3"', required=True)


def test_a_stale_or_weak_etag_is_412() -> None:
    for header in ('"v2"', 'W/"v3"', "v3", '"V3"'):
        with pytest.raises(PreconditionFailed):
            check_if_match(header, '"v3"', required=True)


def test_a_missing_if_match_is_428_only_where_required() -> None:
    for header in (None, "", "  "):
        with pytest.raises(PreconditionRequired):
            check_if_match(header, '"v3"', required=True)
        check_if_match(header, '"v3"', required=False)
