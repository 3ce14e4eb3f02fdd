"""Batch: validating a 10,000-row CSV against a bare `phonenumbers` parse-and-check of the same numbers.

Budget (architecture.md): reading and checking the file (`batch_csv.read_csv` and
`batch_rows.check_rows`: every row's NHS number, date of birth, mobile, name, placeholders filled and
segments counted, as a single send checks them) at most 2x the floor, the same run's
`phonenumbers.parse`, `is_valid_number`, `region_code_for_number` and `number_type` of the same
10,000 numbers, which any mobile check must do. Both are CPU time of this process (the machine's
other tenants move wall-clock time by 3x), each timed REPEATS times, interleaved, the best kept.
"""

from __future__ import annotations

import random
import time

from bench.table import print_table
from tests.support.nhs_numbers import random_nhs_number

ROWS = 10_000
REPEATS = 3
BUDGET_RATIO = 2.0


def sample_csv(rows: int = ROWS, seed: int = 16) -> tuple[bytes, list[str]]:
    """A practice's export: CRLF, three date forms, names, a personalisation column; and its mobiles."""
    rng = random.Random(seed)
    dates = ("31/01/1970", "02-Feb-1981", "1990-12-25")
    mobiles = [f"07{rng.choice('45789')}{rng.randrange(10**8):08d}" for _ in range(rows)]
    lines = ["NHS Number,Date of Birth,Mobile Telephone,Name,Clinic Date"]
    for i, mobile in enumerate(mobiles):
        lines.append(f"{random_nhs_number(rng)},{dates[i % 3]},{mobile},Patient {i},Monday {i % 28 + 1} December")
    return ("\r\n".join(lines) + "\r\n").encode(), mobiles


def _floor(mobiles: list[str]) -> float:
    import phonenumbers

    start = time.process_time()
    for mobile in mobiles:
        number = phonenumbers.parse(mobile, "GB")
        if phonenumbers.is_valid_number(number):
            phonenumbers.region_code_for_number(number)
            phonenumbers.number_type(number)
    return time.process_time() - start


def _ours(data: bytes) -> tuple[float, int]:
    from shared_code.batch_csv import read_csv
    from shared_code.batch_rows import BatchText, check_rows
    from shared_code.settings import Settings

    settings = Settings()
    text = BatchText("Dear ((first name)), your flu clinic is on ((clinic date)).", None, None, ("doc",))
    start = time.process_time()
    checked = check_rows(read_csv(data), text, settings, practice_name="Riverside Surgery")
    return time.process_time() - start, len(checked.valid)


def main() -> None:
    data, mobiles = sample_csv()
    _floor(mobiles[:200])  # imports and phonenumbers' metadata loaded before timing
    _ours(sample_csv(200)[0])
    floors, ours, valid = [], [], 0
    for _ in range(REPEATS):
        floors.append(_floor(mobiles))
        seconds, valid = _ours(data)
        ours.append(seconds)
    floor, best = min(floors), min(ours)
    ratio = best / floor
    print_table(
        ["what", "rows", "best of 3 (CPU s)", "per row (µs)", "ratio", "budget", "verdict"],
        [
            ["phonenumbers floor", ROWS, f"{floor:.3f}", f"{floor / ROWS * 1e6:.0f}", "1.00", "", ""],
            [
                "read + check CSV",
                f"{valid}/{ROWS} valid",
                f"{best:.3f}",
                f"{best / ROWS * 1e6:.0f}",
                f"{ratio:.2f}",
                f"≤ {BUDGET_RATIO:.1f}",
                "ok" if ratio <= BUDGET_RATIO else "OVER",
            ],
        ],
    )


if __name__ == "__main__":
    main()
