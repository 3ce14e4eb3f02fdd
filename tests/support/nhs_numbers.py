"""Made-up NHS numbers that pass the Modulus 11 check, for tests and benchmarks (never a real patient's)."""

from __future__ import annotations

import random


def with_check_digit(nine: str) -> str | None:
    """The ten-digit number nine digits make with their check digit; None when no digit fits (11 - sum is 10)."""
    check = 11 - sum(int(d) * w for d, w in zip(nine, range(10, 1, -1), strict=True)) % 11
    if check == 10:
        return None
    return nine + str(0 if check == 11 else check)


def nhs_number(seed: int, step: int = 7) -> str:
    """A valid NHS number from a seed: the first of `seed * step` and the 19 numbers after it that has
    a check digit (a larger `step` keeps the numbers of consecutive seeds apart)."""
    for bump in range(20):
        number = with_check_digit(f"{(seed * step + bump) % 10**9:09d}")
        if number is not None:
            return number
    raise AssertionError("no check digit")


def random_nhs_number(rng: random.Random) -> str:
    """A valid NHS number drawn from `rng`."""
    while True:
        number = with_check_digit(f"{rng.randrange(10**9):09d}")
        if number is not None:
            return number
