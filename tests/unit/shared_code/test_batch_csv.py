"""Batch CSVs as practices export them: encodings, line ends, quoting, header aliases, bounds, dates."""

from __future__ import annotations

import pytest

from shared_code.batch_csv import (
    DATE_OF_BIRTH,
    FAMILY_NAME,
    GIVEN_NAME,
    MAX_COLUMNS,
    MAX_DATA_ROWS,
    MOBILE,
    NAME,
    NHS_NUMBER,
    iso_date,
    read_csv,
)
from shared_code.errors import Unprocessable


def _file_errors(data: bytes) -> list[str]:
    with pytest.raises(Unprocessable) as caught:
        read_csv(data)
    assert {e.field for e in caught.value.errors} == {"file"}
    return [e.message for e in caught.value.errors]


def test_utf8_with_and_without_bom_and_windows_1252_read_the_same() -> None:
    text = "NHS Number,Date of Birth,Mobile,Name\r\n9434765919,31/01/1970,07700900123,Zoë Brontë\r\n"
    for data in (text.encode("utf-8"), b"\xef\xbb\xbf" + text.encode("utf-8"), text.encode("cp1252")):
        parsed = read_csv(data)
        assert parsed.header == ("NHS Number", "Date of Birth", "Mobile", "Name")
        assert parsed.records == [(2, ["9434765919", "31/01/1970", "07700900123", "Zoë Brontë"])]


def test_bytes_in_neither_encoding_are_refused() -> None:
    # 0x81 is undefined in Windows-1252 and not UTF-8 on its own.
    assert _file_errors(b"NHS Number,DOB,Mobile\r\n943\x81,1970-01-31,07700900123\r\n")


def test_quoted_fields_keep_commas_quotes_and_new_lines_and_count_as_one_row() -> None:
    data = (
        b'NHS Number,DOB,Mobile,Clinic\n"943 476 5919",1970-01-31,07700900123,"Room 2, ""East"" wing\r\nfloor 1"\n'
        b"9434765919,1970-01-31,07700900124,Room 3\n"
    )
    parsed = read_csv(data)
    assert parsed.records[0] == (2, ["943 476 5919", "1970-01-31", "07700900123", 'Room 2, "East" wing\r\nfloor 1'])
    assert parsed.records[1][0] == 3


@pytest.mark.parametrize(
    ("title", "field"),
    [
        ("NHS Number", NHS_NUMBER),
        ("nhs_number", NHS_NUMBER),
        (" NHS  number ", NHS_NUMBER),
        ("Date of Birth", DATE_OF_BIRTH),
        ("DOB", DATE_OF_BIRTH),
        ("Mobile Telephone", MOBILE),
        ("Mobile Number", MOBILE),
        ("mobile", MOBILE),
        ("Phone Number", MOBILE),
        ("Full Name", NAME),
        ("NAME", NAME),
        ("Given Name", GIVEN_NAME),
        ("Family Name", FAMILY_NAME),
    ],
)
def test_header_aliases_match_ignoring_case_and_spaces(title: str, field: str) -> None:
    required = {NHS_NUMBER: "NHS Number", DATE_OF_BIRTH: "DOB", MOBILE: "Mobile"}
    header = [title, *(t for f, t in required.items() if f != field)]
    parsed = read_csv(f"{','.join(header)}\n{','.join(['x'] * len(header))}\n".encode())
    assert parsed.columns[field] == 0
    assert parsed.extra == ()


def test_other_columns_are_personalisation_values_by_their_header_as_written() -> None:
    parsed = read_csv(b"NHS Number,DOB,Mobile,Appointment Date,clinic\n1,2,3,Monday,Room 2\n")
    assert [parsed.header[i] for i in parsed.extra] == ["Appointment Date", "clinic"]


def test_a_missing_required_column_is_named() -> None:
    messages = _file_errors(b"NHS Number,Name\n9434765919,Jo\n")
    assert any("Date of Birth" in m for m in messages)
    assert any("Mobile" in m for m in messages)


def test_a_header_naming_a_field_twice_is_refused() -> None:
    assert _file_errors(b"NHS Number,DOB,Mobile,Mobile Number\n1,2,3,4\n")


def test_blank_rows_are_dropped_and_an_empty_file_or_no_rows_refused() -> None:
    parsed = read_csv(b"NHS Number,DOB,Mobile\r\n1,2,3\r\n,,\r\n\r\n")
    assert [n for n, _ in parsed.records] == [2]
    assert _file_errors(b"")
    assert _file_errors(b"NHS Number,DOB,Mobile\r\n,,\r\n")


def test_rows_exactly_at_the_limit_are_read_and_one_more_is_refused() -> None:
    header = b"NHS Number,DOB,Mobile\n"
    at_limit = header + b"1,2,3\n" * MAX_DATA_ROWS
    assert len(read_csv(at_limit).records) == MAX_DATA_ROWS
    assert _file_errors(at_limit + b"1,2,3\n")


def test_columns_exactly_at_the_limit_are_read_and_one_more_is_refused() -> None:
    titles = ["NHS Number", "DOB", "Mobile"] + [f"v{i}" for i in range(MAX_COLUMNS - 3)]
    data = (",".join(titles) + "\n" + ",".join("x" * len(titles)) + "\n").encode()
    assert len(read_csv(data).header) == MAX_COLUMNS
    wider = (",".join([*titles, "one more"]) + "\n").encode() + b"x\n"
    assert _file_errors(wider)


def test_a_row_with_more_cells_than_the_header_is_marked() -> None:
    parsed = read_csv(b"NHS Number,DOB,Mobile\n1,2,3,surprise\n1,2,3\n1,2\n")
    assert parsed.too_wide == {2}
    assert parsed.records[2] == (4, ["1", "2", ""])


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("31/01/1970", "1970-01-31"),
        ("1/2/1970", "1970-02-01"),
        ("31-Jan-1970", "1970-01-31"),
        ("31-JAN-1970", "1970-01-31"),
        ("31 Jan 1970", "1970-01-31"),
        ("1970-01-31", "1970-01-31"),
        (" 1970-01-31 ", "1970-01-31"),
        ("31/02/1970", "1970-02-31"),  # in form, but not a real date: parse_date_of_birth refuses it
        ("01/31/1970x", None),
        ("31-Foo-1970", None),
        ("31.01.1970", None),
        ("1970/01/31", None),
        ("", None),
    ],
)
def test_dates_in_the_three_accepted_forms(raw: str, iso: str | None) -> None:
    assert iso_date(raw) == iso
