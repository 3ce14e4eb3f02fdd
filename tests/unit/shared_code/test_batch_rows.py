"""Each row of a batch judged exactly as a single send is: per-row errors by column, duplicates,
segments after filling in, and a fault of the batch itself refusing the whole request."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from shared_code import clock
from shared_code.batch_csv import read_csv
from shared_code.batch_rows import BatchText, check_rows, previews
from shared_code.errors import Unprocessable
from shared_code.settings import Settings
from shared_code.sms_text import measure
from shared_code.template_request import sample_link
from tests.support.nhs_numbers import nhs_number

SETTINGS = Settings(allow_drama_numbers=True)
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
TEXT = BatchText("Dear ((first name)), your ((clinic)) appointment.", None, None, ("doc-1",))


@pytest.fixture(autouse=True)
def _now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: NOW)


def _check(csv_text: str, text: BatchText = TEXT, settings: Settings = SETTINGS):
    return check_rows(read_csv(csv_text.encode()), text, settings, practice_name="Riverside Surgery")


def test_good_rows_become_messages_filled_in_for_each_patient() -> None:
    checked = _check(
        "NHS Number,Date of Birth,Mobile,Name,Clinic\n"
        f"{nhs_number(1)},31/01/1970,07700 900123,Jo Bloggs,flu\n"
        f'"{nhs_number(2)[:3]} {nhs_number(2)[3:6]} {nhs_number(2)[6:]}",02-Feb-1980,+447700900124,Sam Smith,asthma\n'
    )
    assert checked.errors == []
    assert [(r.row, r.date_of_birth, r.mobile, r.body) for r in checked.valid] == [
        (2, "1970-01-31", "+447700900123", "Dear Jo, your flu appointment."),
        (3, "1980-02-02", "+447700900124", "Dear Sam, your asthma appointment."),
    ]
    link = sample_link(SETTINGS)
    assert previews(checked, SETTINGS)[0] == {
        "row": 2,
        "body": f"Dear Jo, your flu appointment.\n{link}",
        "segments": measure(f"Dear Jo, your flu appointment.\n{link}").segments,
    }


def test_given_and_family_names_make_the_name_and_the_first_name() -> None:
    checked = _check(
        f"NHS Number,DOB,Mobile,Given Name,Family Name,clinic\n{nhs_number(1)},1970-01-31,07700900123,Jo,Bloggs,x\n"
    )
    assert checked.valid[0].body == "Dear Jo, your x appointment."


def test_each_bad_field_is_an_error_on_its_column_and_the_row_is_refused() -> None:
    checked = _check(
        "NHS No,DOB,Mobile Number,Name,Clinic\n"
        f"1234567890,31/02/1970,07700900123,Jo,flu\n"  # bad check digit; no 31 February
        f"{nhs_number(3)},1970/01/31,0113 496 0000,Jo,flu\n"  # date in no accepted form; a landline
        f"{nhs_number(4)},01/01/2099,07700900125,Jo,\n"  # in the future; no clinic for ((clinic))
    )
    assert checked.valid == []
    assert sorted(checked.refused) == [2, 3, 4]
    by_row = {}
    for error in checked.errors:
        by_row.setdefault(error.row, []).append(error.column)
    assert by_row == {2: ["NHS No", "DOB"], 3: ["DOB", "Mobile Number"], 4: ["DOB"]}
    # The clinic is only missing once the row is otherwise good (the text is filled last).
    checked = _check(f"NHS Number,DOB,Mobile,Name,Clinic\n{nhs_number(4)},01/01/1990,07700900125,Jo,\n")
    assert [(e.row, e.column) for e in checked.errors] == [(2, "Clinic")]


def test_errors_never_repeat_the_values() -> None:
    checked = _check("NHS Number,DOB,Mobile,Name,Clinic\n9999999999,31/01/1970,07999 123,Jo Bloggs,flu\n")
    text = " ".join(e.message for e in checked.errors)
    for value in ("9999999999", "07999", "Jo Bloggs"):
        assert value not in text


def test_a_patient_twice_is_texted_once_and_counted_as_a_duplicate() -> None:
    number = nhs_number(5)
    spaced = f"{number[:3]} {number[3:6]} {number[6:]}"
    checked = _check(
        "NHS Number,DOB,Mobile,Name,Clinic\n"
        f"{number},1970-01-31,07700900123,Jo,flu\n"
        f"{spaced},1970-01-31,07700900123,Jo,flu\n"
        f"{number},1970-01-31,07700900999,Jo,flu\n"
        f"{nhs_number(6)},1970-01-31,07700900124,Sam,flu\n"
    )
    assert [r.row for r in checked.valid] == [2, 5]
    assert checked.duplicates == 2
    assert checked.total == 4


def test_a_text_exactly_at_the_segment_limit_goes_and_one_character_more_is_refused() -> None:
    settings = Settings(allow_drama_numbers=True, max_segments=2)
    link = sample_link(settings)
    # GSM-7, two segments hold 306 characters; the text is filled, then a new line and the link.
    room = 306 - len(link) - 1
    rows = "NHS Number,DOB,Mobile,filler\n"
    rows += f"{nhs_number(7)},1970-01-31,07700900123,{'a' * 150}\n"  # a value is at most 200 characters
    checked = _check(rows, BatchText("x" * (room - 150) + "((filler))", None, None, ("doc-1",)), settings)
    assert checked.valid and checked.valid[0].segments == 2
    checked = _check(rows, BatchText("x" * (room - 149) + "((filler))", None, None, ("doc-1",)), settings)
    assert [(e.row, e.column) for e in checked.errors] == [(2, None)]


def test_a_ucs2_text_exactly_at_the_segment_limit_goes_and_one_unit_more_is_refused() -> None:
    settings = Settings(allow_drama_numbers=True, max_segments=2)
    link = sample_link(settings)
    room = 2 * 67 - len(link) - 1  # two UCS-2 segments hold 134 16-bit units
    rows = f"NHS Number,DOB,Mobile\n{nhs_number(8)},1970-01-31,07700900123\n"
    checked = _check(rows, BatchText("ŵ" * room, None, None, ("doc-1",)), settings)
    assert len(checked.valid) == 1
    assert previews(checked, settings)[0]["segments"] == 2
    checked = _check(rows, BatchText("ŵ" * (room + 1), None, None, ("doc-1",)), settings)
    assert checked.valid == [] and "3 SMS segments" in checked.errors[0].message


def test_a_fault_of_the_batch_itself_refuses_the_whole_request() -> None:
    with pytest.raises(Unprocessable) as caught:
        _check(
            f"NHS Number,DOB,Mobile,Name,clinic\n{nhs_number(1)},1970-01-31,07700900123,Jo,flu\n",
            BatchText(TEXT.text, None, None, ("doc-1",), send_at="tomorrow"),
        )
    assert [e.field for e in caught.value.errors] == ["sendAt"]


def test_a_row_wider_than_the_header_is_refused() -> None:
    checked = _check(f"NHS Number,DOB,Mobile,Name,clinic\n{nhs_number(1)},1970-01-31,07700900123,Jo,flu,extra\n")
    assert checked.valid == [] and checked.errors[0].column is None
