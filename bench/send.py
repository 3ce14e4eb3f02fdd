"""Send: messages per second accepted by the API and dispatched to the SMS emulator, on the local stack.

Budget (design.md): at least 50 messages/s accepted and dispatched on 2 cores. The pacer is set
above that (SMS_RATE_PER_MINUTE=60000) so the stack itself is measured; a second run at the
default 600 a minute shows the pacing holding a sender's limit.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from bench.table import print_table
from devstack.clamd import start_clamd
from devstack.ports import Ports
from tests.support.stack import RunningStack, sample_pdf

BUDGET_PER_SECOND = 50
CLIENTS = 8


def _create(stack: RunningStack, attachment_id: str, marker: str, n: int) -> float:
    """Create n messages with CLIENTS concurrent callers; returns the seconds it took."""
    headers = stack.auth()
    local = threading.local()

    def one(i: int) -> None:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        body = {"patient": {"nhsNumber": "9434765919", "dateOfBirth": "1970-01-31",
                            "mobile": f"07700 900{i % 1000:03d}"},
                "body": f"Bench {marker} #{i}", "attachmentIds": [attachment_id]}
        answer = session.post(f"{stack.base_url}/api/v1/messages", json=body, headers=headers, timeout=60)
        answer.raise_for_status()

    start = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(one, range(n)))
    return time.perf_counter() - start


def _dispatched(stack: RunningStack, marker: str, n: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        count = sum(1 for m in stack.inbox() if f"Bench {marker} #" in m["message"])
        if count >= n or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def _run(stack: RunningStack, attachment_id: str, n: int) -> list[str]:
    marker = uuid.uuid4().hex[:8]
    start = time.perf_counter()
    created = _create(stack, attachment_id, marker, n)
    count = _dispatched(stack, marker, n, timeout=max(120, n))
    total = time.perf_counter() - start
    return [str(n), f"{created:.1f}", f"{n / created:.0f}", f"{total:.1f}", f"{count / total:.0f}",
            "yes" if count == n else f"only {count}"]


def _stack(tmp: Path, clamd_address: str, rate_per_minute: int) -> RunningStack:
    ports = Ports.free()
    local = tmp / f"local-{rate_per_minute}"
    env = {**os.environ, **ports.env(), "ENCLOSE_LOCAL_DIR": str(local), "CLAMD_ADDRESS": clamd_address,
           "SMS_RATE_PER_MINUTE": str(rate_per_minute)}
    stack = RunningStack(ports, local, tmp / f"stack-{rate_per_minute}.log", env=env)
    stack.start()
    return stack


def _attachment(stack: RunningStack) -> str:
    answer = stack.upload(sample_pdf("Bench"), "bench.pdf")
    answer.raise_for_status()
    doc = stack.wait_attachment(answer.json()["id"])
    if doc["status"] != "clean":
        raise RuntimeError(f"the bench attachment was not clean: {doc}")
    return doc["id"]


def main() -> None:
    """Print the table: one warm-up, then the measured runs."""
    headers = ["messages", "API s", "accepted/s", "to last text s", "dispatched/s", "all arrived"]
    with tempfile.TemporaryDirectory() as tmp:
        clamd = start_clamd(Path(tmp) / "clamd", include_system_signatures=False)
        try:
            rows = []
            stack = _stack(Path(tmp), clamd.address, 60000)
            try:
                attachment_id = _attachment(stack)
                _run(stack, attachment_id, 50)  # warm-up: imports, clients, connection pools
                for n in (200, 500, 1000):
                    rows.append(_run(stack, attachment_id, n))
            finally:
                stack.stop()
            print("SMS_RATE_PER_MINUTE=60000 (the stack's own capacity):")
            print_table(headers, rows)
            worst = min(float(r[4]) for r in rows)
            verdict = "within budget" if worst >= BUDGET_PER_SECOND else "UNDER BUDGET"
            print(f"slowest dispatched/s {worst:.0f} (budget at least {BUDGET_PER_SECOND}/s): {verdict}")

            paced = _stack(Path(tmp), clamd.address, 600)
            try:
                attachment_id = _attachment(paced)
                print("\nSMS_RATE_PER_MINUTE=600 (the default: an alphanumeric sender's limit, 10/s):")
                print_table(headers, [_run(paced, attachment_id, 150)])
            finally:
                paced.stop()
        finally:
            clamd.stop()


if __name__ == "__main__":
    main()
