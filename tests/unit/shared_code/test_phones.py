"""Mobile numbers: what practices type, normalised to E.164; only mobiles of allowed countries."""

from __future__ import annotations

import re

import pytest

from shared_code.phones import InvalidMobile, to_e164_mobile


def _refusal(raw: str, **options) -> str:
    with pytest.raises(InvalidMobile) as caught:
        to_e164_mobile(raw, **options)
    return str(caught.value)


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


# -- Ofcom's drama range ------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "07700 900123",
        "07700900123",
        "+447700900123",
        "+44 7700 900123",
        "447700900123",
        "00447700900123",
        "0044 7700 900 123",
        "(07700) 900-123",
        "07700-900-123",
        "+44 (0)7700 900123",
        " 07700 900123 ",
    ],
)
def test_drama_number_in_any_typed_form_with_the_flag_on(typed: str) -> None:
    assert to_e164_mobile(typed, allow_drama=True) == "+447700900123"


@pytest.mark.parametrize("typed", ["07700 900000", "07700 900999"])
def test_both_ends_of_the_drama_range(typed: str) -> None:
    assert to_e164_mobile(typed, allow_drama=True) == "+44" + _digits(typed)[1:]


@pytest.mark.parametrize("typed", ["07700 899999", "07700 901000"])
def test_just_outside_the_drama_range_is_not_a_drama_number(typed: str) -> None:
    message = _refusal(typed, allow_drama=True)
    assert _digits(typed)[-6:] not in _digits(message)


@pytest.mark.parametrize("typed", ["07700 900123", "+447700900123", "07700 900000", "07700 900999"])
def test_drama_number_with_the_flag_off_is_invalid(typed: str) -> None:
    assert _refusal(typed) == "Enter a valid mobile phone number"
    assert _refusal(typed, allow_drama=False) == "Enter a valid mobile phone number"


def test_drama_numbers_are_british_so_need_gb_allowed() -> None:
    with pytest.raises(InvalidMobile):
        to_e164_mobile("+447700900123", allowed_countries=("FR",), allow_drama=True)


# -- real-format UK mobiles -----------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "07400 123456",
        "07400123456",
        "+447400123456",
        "447400123456",
        "00447400123456",
        "(07400) 123-456",
        "07400.123.456",
        "+44 (0) 7400 123456",
    ],
)
def test_uk_mobile_forms(typed: str) -> None:
    assert to_e164_mobile(typed) == "+447400123456"


def test_flag_on_does_not_change_real_mobiles() -> None:
    assert to_e164_mobile("07400 123456", allow_drama=True) == "+447400123456"


def test_national_form_is_british_whatever_the_order_of_allowed_countries() -> None:
    # Regression: the first allowed country used to decide how `07…` was read.
    assert to_e164_mobile("07400 123456", allowed_countries=("IE", "GB")) == "+447400123456"
    assert to_e164_mobile("07700 900123", allowed_countries=("IE", "GB"), allow_drama=True) == "+447700900123"


# -- not mobiles ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "020 7946 0000",  # London landline (Ofcom's drama range for 020)
        "0113 496 0000",  # Leeds landline
        "0909 879 0000",  # premium rate
        "09098 790000",  # premium rate
        "0800 123 4567",  # freephone
        "0300 123 4567",  # non-geographic
        "070 1234 5678",  # personal number: looks like a mobile, is not one
    ],
)
def test_uk_numbers_that_are_not_mobiles_are_refused_as_such(typed: str) -> None:
    message = _refusal(typed)
    assert "not a mobile" in message
    assert _digits(typed)[-6:] not in _digits(message)


# -- other countries --------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["+33 6 12 34 56 78", "0033612345678", "+353 87 123 4567", "+1 201 555 0123"])
def test_non_uk_mobile_refused_by_default(typed: str) -> None:
    message = _refusal(typed)
    assert message == "Mobile numbers from this country cannot be texted"


def test_non_uk_mobile_accepted_when_its_country_is_allowed() -> None:
    assert to_e164_mobile("+33 6 12 34 56 78", allowed_countries=("GB", "FR")) == "+33612345678"
    assert to_e164_mobile("+353 87 123 4567", allowed_countries=("GB", "IE")) == "+353871234567"
    # ...and a UK mobile is still fine alongside.
    assert to_e164_mobile("07400 123456", allowed_countries=("GB", "FR")) == "+447400123456"


def test_national_form_of_the_only_allowed_country() -> None:
    assert to_e164_mobile("06 12 34 56 78", allowed_countries=("FR",)) == "+33612345678"


def test_uk_mobile_refused_when_gb_is_not_allowed() -> None:
    assert _refusal("+447400123456", allowed_countries=("FR",)) == "Mobile numbers from this country cannot be texted"


def test_landline_of_an_allowed_country_is_not_a_mobile() -> None:
    assert "not a mobile" in _refusal("+33 1 23 45 67 89", allowed_countries=("GB", "FR"))


# -- malformed --------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["", "   ", "()-."])
def test_nothing_typed(typed: str) -> None:
    assert _refusal(typed) == "Enter a mobile phone number"


@pytest.mark.parametrize(
    "typed",
    [
        "0740O 123456",
        "07400 12345x",
        "tel:07400123456",
        "07400/123456",
        "+44 abc",
        "++447400123456",
        "07400 123456 ext 2",
        "12345",
    ],
)
def test_letters_and_symbols_are_refused(typed: str) -> None:
    message = _refusal(typed)
    assert _digits(typed)[-6:] not in _digits(message)


@pytest.mark.parametrize("typed", ["07400 12345", "07400 1234567", "+44 7400 123456 789", "+999 1234 5678"])
def test_wrong_length_or_unknown_country_code(typed: str) -> None:
    message = _refusal(typed)
    assert _digits(typed)[-5:] not in _digits(message)


# -- the number never appears in a refusal ------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "options"),
    [
        ("07400 12345", {}),
        ("020 7946 0000", {}),
        ("09098 790000", {}),
        ("+33 6 12 34 56 78", {}),
        ("07700 900456", {}),
        ("07700 900456", {"allowed_countries": ("FR",), "allow_drama": True}),
        ("07400 98765z", {}),
    ],
)
def test_refusal_never_contains_the_number(typed: str, options: dict) -> None:
    message = _refusal(typed, **options)
    digits = _digits(typed)
    compact = message.replace(" ", "")
    assert typed not in message
    assert digits not in _digits(message)
    assert digits[-6:] not in compact
    assert digits[-6:] not in _digits(message)


def test_invalid_mobile_is_a_value_error() -> None:
    assert issubclass(InvalidMobile, ValueError)


# -- forms pasted from documents and other keyboards ------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "07400\u2013123456",  # en dash, as word processors write it
        "07400\u2014123\u2014456",  # em dashes
        "07400\u2010123456",  # hyphen
        "07400\u2212123456",  # minus sign
        "07400\u00a0123456",  # no-break space
        "07400\u2009123\u2009456",  # thin spaces
        "\uff10\uff17\uff14\uff10\uff10\uff11\uff12\uff13\uff14\uff15\uff16",  # full-width digits
        "\uff0b\uff14\uff14\uff17\uff14\uff10\uff10\uff11\uff12\uff13\uff14\uff15\uff16",  # full-width +44…
        "+44 07400 123456",  # +44 and the national 0 both typed
        "44 (0)7400 123456",
        "\t07400 123456\n",
    ],
)
def test_pasted_and_unusual_forms(typed: str) -> None:
    assert to_e164_mobile(typed) == "+447400123456"


@pytest.mark.parametrize("typed", ["7400 123456", "7700 900123", "(7400) 123456"])
def test_a_uk_number_without_its_0_or_44_is_not_guessed(typed: str) -> None:
    message = _refusal(typed, allow_drama=True)
    assert "leading 0" in message
    assert _digits(typed)[-6:] not in _digits(message)


def test_pagers_and_personal_numbers_are_not_mobiles() -> None:
    assert "not a mobile" in _refusal("076 0012 3456")  # radiopaging
    assert "not a mobile" in _refusal("+44 70 1234 5678")  # personal numbering


def test_crown_dependency_mobiles_need_their_own_country_allowed() -> None:
    # +44 7624 is the Isle of Man's, +44 7781 Guernsey's: not GB for the country rule.
    assert _refusal("07624 123456") == "Mobile numbers from this country cannot be texted"
    assert to_e164_mobile("07624 123456", allowed_countries=("GB", "IM")) == "+447624123456"
