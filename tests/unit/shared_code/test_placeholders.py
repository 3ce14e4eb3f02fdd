"""Placeholders: matching names, refusing personal identifiers, checking values and filling in one pass."""

from __future__ import annotations

import pytest

from shared_code.placeholders import (
    MAX_NAME_CHARS,
    MAX_VALUE_CHARS,
    built_in_values,
    fill,
    key,
    placeholders_in,
    text_problems,
    value_problem,
    values_by_key,
    without_placeholders,
)

ALLOWED = ("nhs.uk", "gov.uk")


@pytest.mark.parametrize(
    "name", ["first name", "First Name", "FIRST_NAME", "first-name", " first  name ", "firstname", "First_-_Name"]
)
def test_names_match_ignoring_case_spaces_underscores_and_hyphens(name: str) -> None:
    assert key(name) == "firstname"
    assert fill(f"Dear (({name})),", {"firstname": "Jo"}).text == "Dear Jo,"


def test_each_placeholder_is_listed_once_as_first_written_in_order() -> None:
    text = "((Appointment date)) at ((time)); bring ((appointment_DATE)) and ((first name))"
    found = placeholders_in(text)
    assert [p.name for p in found] == ["Appointment date", "time", "first name"]
    assert [p.key for p in found] == ["appointmentdate", "time", "firstname"]


def test_text_without_double_brackets_has_no_placeholders() -> None:
    assert placeholders_in("Call (01234) 567890 (option 2) today") == []
    assert text_problems("Call (01234) 567890 (option 2) today") == []


@pytest.mark.parametrize(
    "text",
    [
        "((date of birth))",
        "((DOB))",
        "((d-o-b))",
        "((Birth date))",
        "((patient dob))",
        "((NHS number))",
        "((nhs_no))",
        "((NHS))",
        "((nhsnumber))",
    ],
)
def test_a_date_of_birth_or_nhs_number_placeholder_is_refused(text: str) -> None:
    problems = text_problems(f"Hello {text}")
    assert len(problems) == 1 and "date of birth or an NHS number" in problems[0]


@pytest.mark.parametrize("inner", ["", "  ", "first.name", "-name", "name_", "a/b", "x" * (MAX_NAME_CHARS + 1)])
def test_a_badly_written_name_is_refused(inner: str) -> None:
    assert text_problems(f"Hello (({inner}))") != []
    assert placeholders_in(f"Hello (({inner}))") == []


def test_the_longest_name_is_accepted() -> None:
    name = "x" * MAX_NAME_CHARS
    assert text_problems(f"((  {name}  ))") == []
    assert [p.name for p in placeholders_in(f"(({name}))")] == [name]


def test_problems_are_listed_once_each() -> None:
    # One for the date of birth (twice), one for the badly written names (the same rule twice).
    assert len(text_problems("((dob)) and ((dob)) and ((a.b)) ((c.d))")) == 2
    assert len(text_problems("((dob)) ((nhs number))")) == 2


def test_missing_values_are_named_once_each_and_left_as_written() -> None:
    filled = fill("((first name)) ((Date)) ((date)) ((time))", {"firstname": "Jo"})
    assert filled.missing == ("Date", "time")
    assert filled.text == "Jo ((Date)) ((date)) ((time))"


def test_filling_is_one_pass_so_a_value_is_never_filled_itself() -> None:
    filled = fill("((a)) ((b))", {"a": "((b))", "b": "B"})
    assert filled.text == "((b)) B" and filled.missing == ()


def test_a_value_may_be_empty_of_placeholders_and_the_text_keeps_everything_else() -> None:
    assert fill("(((a)))", {"a": "x"}).text == "(x)"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (3, "text"),
        (None, "text"),
        ("   ", "empty"),
        ("x" * (MAX_VALUE_CHARS + 1), "at most"),
        ("two\nlines", "one line"),
        ("tab\there", "one line"),
        ("a\u2028b", "one line"),
        ("zero\u200bwidth", "one line"),
        ("see bit.ly/x", "web address"),
        ("https://evil.example", "web address"),
    ],
)
def test_values_must_be_plain_text_on_one_line_without_links(value: object, problem: str) -> None:
    assert problem in (value_problem(value, ALLOWED) or "")


@pytest.mark.parametrize("value", ["Jo", "x" * MAX_VALUE_CHARS, "Tuesday 3 March, 10:30", "see www.nhs.uk/flu", "Zoë"])
def test_good_values_pass(value: str) -> None:
    assert value_problem(value, ALLOWED) is None


def test_built_ins_come_from_the_request_and_the_first_name_from_the_full_name_when_not_given() -> None:
    assert built_in_values(full_name="Jo Bloggs", first_name=None, practice_name="Riverside Surgery") == {
        "fullname": "Jo Bloggs",
        "firstname": "Jo",
        "practicename": "Riverside Surgery",
    }
    assert built_in_values(full_name="Jo Bloggs", first_name="Joanna", practice_name=None) == {
        "fullname": "Jo Bloggs",
        "firstname": "Joanna",
    }
    assert built_in_values(full_name="  ", first_name=None, practice_name="") == {}


def test_personalisation_fills_what_the_request_leaves_and_cannot_override_it() -> None:
    built_ins = {"fullname": "Jo Bloggs"}
    values = values_by_key({"Full Name": "Someone Else", "Practice_Name": "Riverside", "Date": "Monday"}, built_ins)
    assert values == {"fullname": "Jo Bloggs", "practicename": "Riverside", "date": "Monday"}


def test_of_two_personalisation_keys_that_match_the_first_wins() -> None:
    assert values_by_key({"date": "Monday", "DATE": "Tuesday"}, {}) == {"date": "Monday"}


def test_without_placeholders_is_the_least_a_text_costs() -> None:
    assert without_placeholders("Dear ((first name)), on ((date)) (bring this)") == "Dear , on  (bring this)"
