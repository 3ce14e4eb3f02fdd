"""The rules for a new message request: each 422 names its field exactly as the contract does."""

from __future__ import annotations

import copy
import json
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from shared_code import clock
from shared_code.errors import Unprocessable
from shared_code.message_request import (
    MAX_BODY_CHARS,
    NewMessage,
    parse_date_of_birth,
    parse_new_message,
)
from shared_code.settings import Settings

NOW = datetime(2026, 3, 15, 10, 30, tzinfo=timezone.utc)
TODAY = NOW.date()
DRAMA_ON = Settings(allow_drama_numbers=True)
_REMOVE = object()  # a field value meaning "leave the field out"

GOOD: dict[str, Any] = {
    "patient": {"nhsNumber": "9434765919", "dateOfBirth": "1970-01-31", "mobile": "07700900123", "name": "Jo Bloggs"},
    "body": "Dear Jo, your fit note is attached.",
    "attachmentIds": ["a1"],
    "sendAt": None,
}


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: NOW)


def request(**changes: Any) -> dict[str, Any]:
    """The contract's example with some top-level or `patient.x` fields changed (_REMOVE leaves one out)."""
    payload = copy.deepcopy(GOOD)
    for name, value in changes.items():
        target, key = (payload["patient"], name[8:]) if name.startswith("patient_") else (payload, name)
        if value is _REMOVE:
            target.pop(key, None)
        else:
            target[key] = value
    return payload


def errors_of(payload: dict[str, Any], settings: Settings = DRAMA_ON) -> list[tuple[str, str]]:
    with pytest.raises(Unprocessable) as caught:
        parse_new_message(payload, settings)
    assert caught.value.status == 422
    return [(e.field, e.message) for e in caught.value.errors]


def fields_of(payload: dict[str, Any], settings: Settings = DRAMA_ON) -> list[str]:
    return [field for field, _ in errors_of(payload, settings)]


# -- the good request ----------------------------------------------------------------------------


def test_contract_example_is_accepted() -> None:
    assert parse_new_message(request(), DRAMA_ON) == NewMessage(
        date_of_birth=date(1970, 1, 31),
        mobile="+447700900123",
        body="Dear Jo, your fit note is attached.",
        attachment_ids=("a1",),
        send_at=None,
        nhs_number="9434765919",
    )


def test_optional_fields_may_be_absent() -> None:
    parsed = parse_new_message(request(sendAt=_REMOVE, patient_name=_REMOVE), DRAMA_ON)
    assert parsed.send_at is None


def test_body_is_trimmed() -> None:
    assert parse_new_message(request(body="  Dear Jo \n"), DRAMA_ON).body == "Dear Jo"


# -- patient.nhsNumber ---------------------------------------------------------------------------


@pytest.mark.parametrize("nhs", ["943 476 5919", "943-476-5919", "9999999999"])
def test_valid_nhs_numbers(nhs: str) -> None:
    parse_new_message(request(patient_nhsNumber=nhs), DRAMA_ON)


@pytest.mark.parametrize("nhs", ["9434765918", "943476591", "94347659190", "943476591X", "", 9434765919, None, _REMOVE])
def test_invalid_nhs_number(nhs: Any) -> None:
    assert fields_of(request(patient_nhsNumber=nhs)) == ["patient.nhsNumber"]


# -- patient.dateOfBirth ---------------------------------------------------------------------------


def test_dob_today_is_valid() -> None:
    assert parse_date_of_birth(TODAY.isoformat(), TODAY) == (TODAY, None)


def test_dob_tomorrow_is_in_the_future() -> None:
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    assert parse_date_of_birth(tomorrow, TODAY) == (None, "The date of birth must be in the past")


def test_dob_exactly_130_years_ago_is_valid() -> None:
    assert parse_date_of_birth("1896-03-15", TODAY) == (date(1896, 3, 15), None)


def test_dob_130_years_and_a_day_ago_is_too_old() -> None:
    dob, reason = parse_date_of_birth("1896-03-14", TODAY)
    assert dob is None
    assert "130 years" in reason


def test_130_years_before_a_29_february() -> None:
    leap_day = date(2028, 2, 29)  # 1898 has no 29 February: the oldest allowed is the 28th
    assert parse_date_of_birth("1898-02-28", leap_day) == (date(1898, 2, 28), None)
    assert parse_date_of_birth("1898-02-27", leap_day)[0] is None


@pytest.mark.parametrize(
    "raw", ["2023-02-29", "1970-02-30", "1970-13-01", "1970-00-10", "1970-01-00", "1970-04-31", "0000-01-01"]
)
def test_dob_not_a_real_date(raw: str) -> None:
    assert parse_date_of_birth(raw, TODAY) == (None, "The date of birth must be a real date")


def test_29_february_of_a_leap_year_is_real() -> None:
    assert parse_date_of_birth("2024-02-29", TODAY) == (date(2024, 2, 29), None)


@pytest.mark.parametrize(
    "raw",
    [
        "1970-1-31",
        "70-01-31",
        "1970/01/31",
        "1970-01-3 ",
        "19700131",
        "31/01/1970",
        "1970-01-31T00:00",
        "1970-01-31 ",
        " 1970-01-31",
        "",
        "1970-W05-6",  # an ISO week date (31 January 1970) that fromisoformat would accept
        "+970-01-01",
        "１９７０-01-31",
        "1970-０1-31",
        19700131,
        None,
        ["1970-01-31"],
    ],
)
def test_dob_format_errors(raw: Any) -> None:
    assert parse_date_of_birth(raw, TODAY) == (None, "Enter the date of birth as YYYY-MM-DD")


@pytest.mark.parametrize(
    "dob",
    ["2026-03-16", "1896-03-14", "2023-02-29", "1970-1-31", "1970-W05-6", None, _REMOVE],
)
def test_invalid_dob_is_named_in_the_request(dob: Any) -> None:
    assert fields_of(request(patient_dateOfBirth=dob)) == ["patient.dateOfBirth"]


def test_dob_limits_use_the_clock() -> None:
    assert parse_new_message(request(patient_dateOfBirth="2026-03-15"), DRAMA_ON).date_of_birth == TODAY
    assert parse_new_message(request(patient_dateOfBirth="1896-03-15"), DRAMA_ON).date_of_birth == date(1896, 3, 15)


# -- patient.mobile ------------------------------------------------------------------------------


@pytest.mark.parametrize("mobile", ["07700 900123", "+447700900123", "447700900123", "(07700) 900-123"])
def test_drama_mobile_accepted_when_allowed(mobile: str) -> None:
    assert parse_new_message(request(patient_mobile=mobile), DRAMA_ON).mobile == "+447700900123"


def test_drama_mobile_refused_with_the_flag_off() -> None:
    assert fields_of(request(), Settings()) == ["patient.mobile"]


def test_real_format_mobile_accepted_with_the_flag_off() -> None:
    assert parse_new_message(request(patient_mobile="07400 123456"), Settings()).mobile == "+447400123456"


def test_landline_refused_as_not_a_mobile() -> None:
    [(field, message)] = errors_of(request(patient_mobile="020 7946 0000"))
    assert field == "patient.mobile"
    assert "not a mobile" in message
    assert "7946" not in message


def test_non_uk_mobile_follows_allowed_countries() -> None:
    french = request(patient_mobile="+33 6 12 34 56 78")
    assert fields_of(french) == ["patient.mobile"]
    allowed = Settings(allow_drama_numbers=True, allowed_countries=("GB", "FR"))
    assert parse_new_message(french, allowed).mobile == "+33612345678"


@pytest.mark.parametrize("mobile", ["", 7700900123, None, _REMOVE])
def test_missing_mobile(mobile: Any) -> None:
    assert errors_of(request(patient_mobile=mobile))[0][0] == "patient.mobile"


# -- patient.name --------------------------------------------------------------------------------


def test_name_limits() -> None:
    parse_new_message(request(patient_name="J" * 200), DRAMA_ON)
    parse_new_message(request(patient_name=None), DRAMA_ON)
    assert fields_of(request(patient_name="J" * 201)) == ["patient.name"]
    assert fields_of(request(patient_name=42)) == ["patient.name"]


# -- body ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["", "   ", "\n\t ", None, 5, ["text"], _REMOVE])
def test_empty_or_missing_body(body: Any) -> None:
    assert errors_of(request(body=body)) == [("body", "Enter the text of the message")]


def test_body_length_limit() -> None:
    parse_new_message(request(body="x" * MAX_BODY_CHARS), DRAMA_ON)
    assert fields_of(request(body="x" * (MAX_BODY_CHARS + 1))) == ["body"]


def test_nul_in_body_is_refused_with_its_own_reason() -> None:
    [(field, message)] = errors_of(request(body="Dear Jo\x00"))
    assert field == "body"
    assert "character" in message
    assert "at most" not in message


# -- attachmentIds -------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 5])
def test_one_to_five_attachments(count: int) -> None:
    ids = [f"id{i}" for i in range(count)]
    assert parse_new_message(request(attachmentIds=ids), DRAMA_ON).attachment_ids == tuple(ids)


@pytest.mark.parametrize("count", [0, 6])
def test_zero_or_six_attachments(count: int) -> None:
    assert fields_of(request(attachmentIds=[f"id{i}" for i in range(count)])) == ["attachmentIds"]


def test_attachment_limit_comes_from_settings() -> None:
    ids = [f"id{i}" for i in range(3)]
    assert fields_of(request(attachmentIds=ids), Settings(allow_drama_numbers=True, max_attachments=2)) == [
        "attachmentIds"
    ]


@pytest.mark.parametrize("ids", ["a1", {"a1": 1}, [1], ["a1", None], None, _REMOVE])
def test_attachment_ids_must_be_a_list_of_strings(ids: Any) -> None:
    assert fields_of(request(attachmentIds=ids)) == ["attachmentIds"]


def test_the_same_attachment_twice() -> None:
    assert fields_of(request(attachmentIds=["a1", "a1"])) == ["attachmentIds"]


# -- sendAt --------------------------------------------------------------------------------------


def test_send_at_in_the_future_is_kept_in_utc() -> None:
    parsed = parse_new_message(request(sendAt="2026-03-16T09:00:00+01:00"), DRAMA_ON)
    assert parsed.send_at == datetime(2026, 3, 16, 8, 0, tzinfo=timezone.utc)
    assert parsed.send_at.utcoffset() == timedelta(0)


def test_send_at_with_z() -> None:
    parsed = parse_new_message(request(sendAt="2026-03-20T09:00:00Z"), DRAMA_ON)
    assert parsed.send_at == datetime(2026, 3, 20, 9, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("when", [NOW, NOW - timedelta(seconds=1), NOW - timedelta(days=400)])
def test_send_at_now_or_past_means_now(when: datetime) -> None:
    assert parse_new_message(request(sendAt=clock.iso(when)), DRAMA_ON).send_at is None


def test_send_at_just_after_now_is_scheduled() -> None:
    when = NOW + timedelta(milliseconds=1)
    assert parse_new_message(request(sendAt=clock.iso(when)), DRAMA_ON).send_at == when


def test_send_at_at_most_30_days_ahead() -> None:
    limit = NOW + timedelta(days=30)
    assert parse_new_message(request(sendAt=clock.iso(limit)), DRAMA_ON).send_at == limit
    too_far = limit + timedelta(milliseconds=1)
    assert fields_of(request(sendAt=clock.iso(too_far))) == ["sendAt"]


@pytest.mark.parametrize("send_at", ["2026-03-20T09:00:00", "2026-03-20", "tomorrow", "", 1773566400, True, ["x"]])
def test_send_at_must_be_a_date_time_with_a_zone(send_at: Any) -> None:
    assert fields_of(request(sendAt=send_at)) == ["sendAt"]


# -- several problems at once --------------------------------------------------------------------


def test_every_invalid_field_is_listed_in_order() -> None:
    payload = {
        "patient": {"nhsNumber": "9434765918", "dateOfBirth": "2023-02-29", "mobile": "020 7946 0000", "name": 42},
        "body": "  ",
        "attachmentIds": [f"id{i}" for i in range(6)],
        "sendAt": "not a time",
    }
    assert fields_of(payload) == [
        "patient.nhsNumber",
        "patient.dateOfBirth",
        "patient.mobile",
        "patient.name",
        "body",
        "attachmentIds",
        "sendAt",
    ]


def test_no_patient_object() -> None:
    fields = fields_of({"patient": "Jo", "body": "x", "attachmentIds": ["a"]})
    assert fields == ["patient", "patient.nhsNumber", "patient.dateOfBirth", "patient.mobile"]


def test_empty_request_names_every_required_field() -> None:
    assert fields_of({}) == [
        "patient",
        "patient.nhsNumber",
        "patient.dateOfBirth",
        "patient.mobile",
        "body",
        "attachmentIds",
    ]


def test_problem_document_lists_the_errors_without_personal_data() -> None:
    payload = request(
        patient_nhsNumber="9434765918", patient_dateOfBirth="2099-01-31", patient_mobile="020 7946 0000", body=""
    )
    with pytest.raises(Unprocessable) as caught:
        parse_new_message(payload, DRAMA_ON)
    problem = caught.value.problem()
    assert problem["status"] == 422
    assert [e["field"] for e in problem["errors"]] == [
        "patient.nhsNumber",
        "patient.dateOfBirth",
        "patient.mobile",
        "body",
    ]
    text = json.dumps(problem)
    for secret in ["9434765918", "2099-01-31", "7946", "Jo Bloggs"]:
        assert secret not in text


# -- links in the text -----------------------------------------------------------------------------


def test_a_link_off_the_allow_list_is_a_422_on_body_that_does_not_repeat_it() -> None:
    errors = errors_of(request(body="Your results: https://results-portal.example/login"))
    assert [field for field, _ in errors] == ["body"]
    message = errors[0][1]
    assert "nhs.uk or gov.uk" in message and "results-portal" not in message


@pytest.mark.parametrize("body", ["See www.evil.example", "Log in at bit.ly/x1", "Visit evil.com today"])
def test_every_kind_of_address_off_the_list_is_refused(body: str) -> None:
    assert fields_of(request(body=body)) == ["body"]


def test_links_to_nhs_and_government_sites_are_allowed() -> None:
    body = "Flu advice: https://www.nhs.uk/conditions/flu/ and www.gov.uk/sick-pay. Dr.Smith, e.g. today."
    assert parse_new_message(request(body=body), DRAMA_ON).body == body


def test_the_allow_list_is_a_setting() -> None:
    own = Settings(allow_drama_numbers=True, allowed_link_domains=("riverside.example",))
    assert parse_new_message(request(body="See riverside.example/opening"), own).body == "See riverside.example/opening"
    assert fields_of(request(body="See www.nhs.uk"), own) == ["body"]


# -- a template instead of, or with, the body -------------------------------------------------------

TEMPLATE_ID = "6f7c0b2e-1d3a-4c5b-9e8f-0a1b2c3d4e5f"


def test_with_a_template_the_body_and_attachments_may_be_left_out() -> None:
    parsed = parse_new_message(
        request(body=_REMOVE, attachmentIds=_REMOVE, templateId=TEMPLATE_ID, personalisation={"date": "Monday"}),
        DRAMA_ON,
    )
    assert parsed.body == "" and parsed.attachment_ids == ()
    assert parsed.template_id == TEMPLATE_ID and parsed.template_version is None
    assert parsed.personalisation == {"date": "Monday"}
    assert parsed.patient_name == "Jo Bloggs"


def test_with_a_template_an_empty_attachment_list_is_allowed_but_a_given_body_is_still_checked() -> None:
    parsed = parse_new_message(request(templateId=TEMPLATE_ID, attachmentIds=[], templateVersion=3), DRAMA_ON)
    assert parsed.attachment_ids == () and parsed.template_version == 3
    assert fields_of(request(templateId=TEMPLATE_ID, body="   ")) == ["body"]


def test_without_a_template_the_names_are_not_kept() -> None:
    parsed = parse_new_message(request(patient_firstName="Jo"), DRAMA_ON)
    assert parsed.patient_name is None and parsed.first_name is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"templateId": 7}, "templateId"),
        ({"templateId": "  "}, "templateId"),
        ({"templateId": TEMPLATE_ID, "templateVersion": 0}, "templateVersion"),
        ({"templateId": TEMPLATE_ID, "templateVersion": "2"}, "templateVersion"),
        ({"templateId": TEMPLATE_ID, "templateVersion": True}, "templateVersion"),
        ({"templateVersion": 2}, "templateVersion"),
        ({"templateId": TEMPLATE_ID, "personalisation": ["date"]}, "personalisation"),
        ({"templateId": TEMPLATE_ID, "personalisation": {f"k{i}": "v" for i in range(51)}}, "personalisation"),
        ({"templateId": TEMPLATE_ID, "personalisation": {" ": "v"}}, "personalisation"),
        ({"templateId": TEMPLATE_ID, "patient_firstName": "J" * 201}, "patient.firstName"),
    ],
)
def test_template_fields_are_checked_for_their_shape(changes: dict[str, Any], field: str) -> None:
    assert fields_of(request(**changes)) == [field]


def test_fifty_personalisation_values_are_allowed() -> None:
    values = {f"k{i}": "v" for i in range(50)}
    assert (
        parse_new_message(request(templateId=TEMPLATE_ID, personalisation=values), DRAMA_ON).personalisation == values
    )
