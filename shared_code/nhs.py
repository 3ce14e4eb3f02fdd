"""NHS numbers: ten digits whose last is a Modulus 11 check digit."""

from __future__ import annotations


def normalise_nhs_number(raw: str) -> str:
    """Digits only: practices type NHS numbers as `943 476 5919` or `943-476-5919`."""
    return "".join(ch for ch in raw if ch not in " -")


def is_valid_nhs_number(raw: str) -> bool:
    """True when `raw` is ten digits (spaces/dashes allowed) passing the Modulus 11 check."""
    digits = normalise_nhs_number(raw)
    if len(digits) != 10 or not digits.isascii() or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    if check == 10:  # no valid check digit exists for these nine digits
        return False
    return check == int(digits[9])
