"""The app-wide SMS rate across worker processes: a batch sent by the local host at `--processes 4`
never reaches the emulator faster than SMS_RATE_PER_MINUTE in any 60-second window, and over the
batch (its first and last tenth left out: `bench.pacing.steady_rate_per_minute`) stays within 10 %
below it; and each row is texted once.

240 a minute and 320 rows prove the windows in about 80 s of sending (the 60-second windows slide
over every text's arrival time at the emulator, which stands for ACS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.pacing import busiest_window, run_batch, start_stack, steady_rate_per_minute

RATE = 240
ROWS = 320
PROCESSES = 4


@pytest.mark.timeout(600)
def test_four_processes_share_one_rate(tmp_path: Path, clamd_address: str) -> None:
    stack = start_stack(tmp_path, clamd_address, RATE, PROCESSES)
    try:
        times = run_batch(stack, ROWS, timeout=300)
        texts = [m for m in stack.emulator.messages if "Your leaflet" in m["message"]]
    finally:
        stack.stop()
    assert len(times) == ROWS  # one text a row, no more
    assert len(texts) == ROWS
    assert busiest_window(times) <= RATE
    per_10s = [0] * (int((times[-1] - times[0]).total_seconds()) // 10 + 1)
    for at in times:
        per_10s[int((at - times[0]).total_seconds()) // 10] += 1
    steady = steady_rate_per_minute(times)
    assert 0.9 * RATE <= steady <= RATE, f"{steady:.0f} a minute; per 10 s: {per_10s}"
