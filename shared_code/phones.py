"""Patients' mobile numbers: parse what practices type, accept only mobiles of allowed countries."""

from __future__ import annotations

import re
import unicodedata

# Ofcom's drama range (07700 900000–900999): reserved for fiction and tests, and called
# invalid by `phonenumbers`. Accepted only while ALLOW_DRAMA_NUMBERS is on, so docs and
# tests never text a real person.
_DRAMA = re.compile(r"^\+447700900\d{3}$")
# Spaces (any kind), ASCII and typographic dashes, brackets and dots, as people and word
# processors write them: "07700 900123", "07700–900123", "(07700) 900-123".
_PUNCTUATION = re.compile(r"[\s\-\u2010-\u2015\u2212().]")


class InvalidMobile(ValueError):
    """Not a mobile number we can text; the message never contains the number."""


def to_e164_mobile(raw: str, *, allowed_countries: tuple[str, ...] = ("GB",), allow_drama: bool = False) -> str:
    """Normalise a mobile number to E.164, or raise InvalidMobile with a plain reason."""
    import phonenumbers
    from phonenumbers import PhoneNumberType

    # Full-width and other scripts' digits (pasted from anywhere) as ASCII digits.
    text = raw or ""
    if not text.isascii():
        text = "".join(
            str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in unicodedata.normalize("NFKC", text)
        )
    text = _PUNCTUATION.sub("", text)
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
    if home == "GB" and text[0] not in "+0":
        # "7700 900123" lost its 0 or its +44: a guess could text a stranger, so ask.
        raise InvalidMobile("Enter the mobile number with its leading 0 (07…) or as +44…")
    try:
        number = phonenumbers.parse(text, home)
    except phonenumbers.NumberParseException:
        raise InvalidMobile("Enter a valid mobile phone number") from None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if allow_drama and "GB" in allowed_countries and _DRAMA.match(e164):
        return e164
    # is_valid_number is region_code_for_number, then a type that is not UNKNOWN in that region's
    # metadata (phonenumberutil.is_valid_number_for_region), which is what number_type computes: so the
    # region and the type decide validity too, with one lookup fewer (a batch checks 10,000 numbers).
    region = phonenumbers.region_code_for_number(number)
    kind = phonenumbers.number_type(number)
    if region is None or kind == PhoneNumberType.UNKNOWN:
        raise InvalidMobile("Enter a valid mobile phone number")
    if region not in allowed_countries:
        raise InvalidMobile("Mobile numbers from this country cannot be texted")
    if kind not in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
        raise InvalidMobile("This is not a mobile number: enter a mobile that can receive texts")
    return e164
