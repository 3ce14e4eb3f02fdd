"""NHS numbers: ten digits, Modulus 11 check digit, spaces and dashes allowed."""

from __future__ import annotations

import pytest

from shared_code.nhs import is_valid_nhs_number, normalise_nhs_number


def _check_digit(nine: str) -> int:
    """The Modulus 11 check digit worked out independently of the code under test (10 = none exists)."""
    weights = [10, 9, 8, 7, 6, 5, 4, 3, 2]
    remainder = sum(int(d) * w for d, w in zip(nine, weights, strict=True)) % 11
    return {0: 0, 1: 10}.get(remainder, 11 - remainder)


@pytest.mark.parametrize(
    "number",
    [
        "9434765919",  # the contract's example
        "9999999999",  # 9 × 54 = 486, 486 mod 11 = 2, check 9
        "4010232137",
        "1000000060",  # remainder 0: check digit 11 becomes 0
    ],
)
def test_valid_numbers(number: str) -> None:
    assert _check_digit(number[:9]) == int(number[9])
    assert is_valid_nhs_number(number)


@pytest.mark.parametrize("last", "012345678")  # every digit but the right one, 9
def test_every_other_check_digit_is_refused(last: str) -> None:
    assert not is_valid_nhs_number("943476591" + last)


def test_nine_digits_whose_check_digit_would_be_10_have_no_valid_number() -> None:
    prefix = "100000001"
    assert _check_digit(prefix) == 10
    assert not any(is_valid_nhs_number(prefix + str(d)) for d in range(10))


@pytest.mark.parametrize("typed", ["943 476 5919", "943-476-5919", " 9434765919 ", "943 - 476 - 5919"])
def test_spaces_and_dashes_are_allowed(typed: str) -> None:
    assert normalise_nhs_number(typed) == "9434765919"
    assert is_valid_nhs_number(typed)


@pytest.mark.parametrize(
    "number",
    [
        "943476591",  # 9 digits
        "94347659190",  # 11 digits
        "943 476 591",
        "",
        "   ",
        "943476591A",
        "A434765919",
        "9434765919.",
        "943_476_5919",
        "943/476/5919",
        "+9434765919",
        "９４３４７６５９１９",  # full-width digits are digits to str.isdigit but not to us
        "٩٤٣٤٧٦٥٩١٩",  # Arabic-Indic digits, likewise
    ],
)
def test_wrong_length_or_characters_are_refused(number: str) -> None:
    assert not is_valid_nhs_number(number)
