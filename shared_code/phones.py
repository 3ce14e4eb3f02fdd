"""Patients' mobile numbers: parse what practices type, accept only mobiles of allowed countries."""

from __future__ import annotations

import re

# Ofcom's drama range (07700 900000–900999): reserved for fiction and tests, and called
# invalid by `phonenumbers`. Accepted only while ALLOW_DRAMA_NUMBERS is on, so docs and
# tests never text a real person.
_DRAMA = re.compile(r"^\+447700900\d{3}$")
_PUNCTUATION = re.compile(r"[\s\-().]")


class InvalidMobile(ValueError):
    """Not a mobile number we can text; the message never contains the number."""


def to_e164_mobile(raw: str, *, allowed_countries: tuple[str, ...] = ("GB",),
                   allow_drama: bool = False) -> str:
    """Normalise a mobile number to E.164, or raise InvalidMobile with a plain reason."""
    import phonenumbers
    from phonenumbers import PhoneNumberType

    text = _PUNCTUATION.sub("", raw or "")
    if not text:
        raise InvalidMobile("Enter a mobile phone number")
    if text.startswith("00"):
        text = "+" + text[2:]
    elif not text.startswith("+") and text.startswith("44") and len(text) >= 12:
        text = "+" + text  # typed in international form without the plus
    if not re.fullmatch(r"\+?\d{6,15}", text):
        raise InvalidMobile("Enter a mobile phone number using digits only, like 07700 900123")
    # National numbers (`07…`) are read as British whenever GB is allowed, whatever the list's order.
    home = "GB" if "GB" in allowed_countries or not allowed_countries else allowed_countries[0]
    try:
        number = phonenumbers.parse(text, home)
    except phonenumbers.NumberParseException:
        raise InvalidMobile("Enter a valid mobile phone number") from None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if allow_drama and "GB" in allowed_countries and _DRAMA.match(e164):
        return e164
    if not phonenumbers.is_valid_number(number):
        raise InvalidMobile("Enter a valid mobile phone number")
    region = phonenumbers.region_code_for_number(number)
    if region not in allowed_countries:
        raise InvalidMobile("Mobile numbers from this country cannot be texted")
    if phonenumbers.number_type(number) not in (
        PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE
    ):
        raise InvalidMobile("This is not a mobile number: enter a mobile that can receive texts")
    return e164
