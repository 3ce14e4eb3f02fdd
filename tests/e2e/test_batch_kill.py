"""A worker process killed mid-batch (SIGKILL, as a crashed or recycled instance): its supervisor starts
another, the entries it held come back, and afterwards every row has exactly one text."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from bench.pacing import start_batch, start_stack, wait_texts

ROWS = 150
RATE = 600
#: Long enough for an entry the killed worker held to come back and be decided (the queue's
#: visibility, then the evidence wait of a try that may have reached the emulator) and for any
#: second text to arrive.
SETTLE_SECONDS = 50


@pytest.mark.timeout(600)
def test_a_worker_killed_mid_batch_leaves_one_text_per_row(tmp_path: Path, clamd_address: str) -> None:
    stack = start_stack(tmp_path, clamd_address, RATE, processes=2)
    try:
        marker = start_batch(stack, ROWS)
        deadline = time.monotonic() + 180
        while sum(marker in m["message"] for m in stack.emulator.messages) < ROWS // 4:
            assert time.monotonic() < deadline, "the batch did not start sending"
            time.sleep(0.2)
        workers = stack.worker_pids()
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        wait_texts(stack, marker, ROWS, timeout=300)
        time.sleep(SETTLE_SECONDS)
        texts = [m for m in stack.emulator.messages if marker in m["message"]]
        restarted = stack.worker_pids()
    finally:
        stack.stop()
    assert workers[0] not in restarted and len(restarted) == 2  # the supervisor replaced it
    recipients = [m["to"] for m in texts]
    assert len(set(recipients)) == ROWS
    assert len(recipients) == ROWS  # no second text for any row
