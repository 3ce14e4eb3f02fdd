"""The two measured resource bombs of issue 13 against the whole local stack: while they are
checked, the API keeps answering, the stack's memory stays bounded, and both end `rejected`."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import requests

from tests.support import corpus
from tests.support.stack import RunningStack, sample_pdf

TOO_COMPLEX = "This file is too complex to check safely."


def _group_rss_bytes(pgid: int) -> int:
    """Resident memory of every process in the stack's process group (host, workers, emulators)."""
    total = 0
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # field 5 of stat: the process group
                total += int((entry / "statm").read_text().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue  # the process ended meanwhile
    return total


def test_bombs_are_rejected_while_the_api_keeps_answering(stack: RunningStack) -> None:
    assert stack.proc is not None
    other = stack.upload(sample_pdf("Fit note"), "fit-note.pdf").json()["id"]
    assert stack.wait_attachment(other)["status"] == "clean"
    headers = stack.auth()
    bombs = {
        stack.upload(corpus.pdf_operator_bomb(), "letter.pdf").json()["id"]: "pdf",
        stack.upload(
            corpus.docx_deep_xml(),
            "letter.docx",
            content_type="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ).json()["id"]: "docx",
    }
    finals: dict[str, dict] = {}
    peak_rss = 0
    stop = threading.Event()

    def watch_memory() -> None:
        nonlocal peak_rss
        while not stop.is_set():
            peak_rss = max(peak_rss, _group_rss_bytes(stack.proc.pid))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch_memory)
    watcher.start()
    slowest = 0.0
    deadline = time.monotonic() + 120
    try:
        while len(finals) < len(bombs) and time.monotonic() < deadline:
            started = time.monotonic()
            answer = requests.get(f"{stack.base_url}/api/v1/attachments/{other}", headers=headers, timeout=10)
            slowest = max(slowest, time.monotonic() - started)
            assert answer.status_code == 200 and answer.json()["status"] == "clean"
            for bomb in bombs:
                if bomb not in finals:
                    doc = requests.get(f"{stack.base_url}/api/v1/attachments/{bomb}", headers=headers, timeout=10)
                    if doc.json()["status"] != "scanning":
                        finals[bomb] = doc.json()
            time.sleep(0.1)
    finally:
        stop.set()
        watcher.join()
    assert slowest < 2.0
    assert set(finals) == set(bombs), "a bomb was still scanning after two minutes"
    for doc in finals.values():
        assert (doc["status"], doc["reason"]) == ("rejected", TOO_COMPLEX)
    assert peak_rss < 1024**3, f"the stack peaked at {peak_rss / 1024**2:.0f} MiB"
