"""`python -m devstack.run` (what `make run` starts) and ClamAV: it never runs a stack that cannot scan.

The whole stack runs as a process on free ports against real Azurite, the SMS emulator, the local
Functions host and a real clamd. ENCLOSE_CLAMD_BINARY plays a machine without ClamAV, or with a
clamd that dies at start-up, on this machine that has one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.azurite import azurite_binary, connection_string
from devstack.clamd import NOT_INSTALLED, ClamdProcess, clamd_binary, free_port, start_clamd
from devstack.ports import Ports
from shared_code.attachments import find_attachment
from shared_code.scanning import ClamAvScanner
from shared_code.settings import load_settings
from shared_code.storage import Storage
from tests.support import corpus
from tests.support.components import missing
from tests.support.stack import RunningStack, sample_pdf

ROOT = Path(__file__).resolve().parents[3]
BANNER = "Enclose is running"


def _env(tmp_path: Path, ports: Ports, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"CLAMD_ADDRESS", "CLAMD_STARTUP_WAIT_SECONDS"}}
    return {**env, **ports.env(), "ENCLOSE_LOCAL_DIR": str(tmp_path / "local"), **extra}


def _needs_the_stack() -> None:
    if azurite_binary() is None:
        missing("Azurite", "run `npm ci` (make test does)")
    if clamd_binary() is None:
        missing("ClamAV clamd", "apt-get install clamav-daemon (make test does, as root)")


def test_without_clamd_it_refuses_to_start_in_one_sentence(tmp_path: Path) -> None:
    env = _env(tmp_path, Ports.free(), ENCLOSE_CLAMD_BINARY=str(tmp_path / "no-clamd-here"))
    result = subprocess.run(
        [sys.executable, "-m", "devstack.run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr == NOT_INSTALLED + "\n"
    assert BANNER not in result.stdout
    assert not (tmp_path / "local").exists()  # refused before starting or making anything


def test_a_clamd_that_dies_at_start_stops_the_stack(tmp_path: Path) -> None:
    _needs_the_stack()
    broken = tmp_path / "clamd"
    broken.write_text(
        "#!/bin/sh\necho 'LibClamAV Error: cli_loaddbdir(): No supported database files found' >&2\nexit 2\n"
    )
    broken.chmod(0o755)
    env = _env(tmp_path, Ports.free(), ENCLOSE_CLAMD_BINARY=str(broken))
    result = subprocess.run(
        [sys.executable, "-m", "devstack.run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert BANNER not in result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ClamAV (clamd) stopped at start-up, so Enclose cannot scan uploads: see ")
    assert (tmp_path / "local" / "clamd" / "clamd.out").read_text().startswith("LibClamAV Error")


@pytest.fixture
def late_clamd(tmp_path: Path) -> Iterator[tuple[RunningStack, int, list[ClamdProcess]]]:
    """The stack with CLAMD_ADDRESS at a port where clamd is not listening yet; the test starts it."""
    _needs_the_stack()
    port = free_port()
    ports = Ports.free()
    env = _env(tmp_path, ports, CLAMD_ADDRESS=f"tcp://127.0.0.1:{port}")
    stack = RunningStack(ports, tmp_path / "local", tmp_path / "stack.log", env=env)
    started: list[ClamdProcess] = []
    stack.start()
    try:
        yield stack, port, started
    finally:
        stack.stop()
        for clamd in started:
            clamd.stop()


@pytest.mark.slow
def test_uploads_made_while_the_scanner_starts_wait_for_it(tmp_path: Path, late_clamd) -> None:
    stack, port, started = late_clamd
    letter = stack.upload(sample_pdf("Letter"), "letter.pdf")
    virus = stack.upload(corpus.eicar(), "virus.txt", content_type="text/plain")
    assert (letter.status_code, virus.status_code) == (202, 202), (letter.text, virus.text)
    # The host serves uploads already, but "Enclose is running" waits for the scanner.
    time.sleep(4)
    for upload in (letter, virus):
        assert stack.wait_attachment(upload.json()["id"], timeout=0)["status"] == "scanning"
    assert BANNER not in stack.log_path.read_text()

    started.append(start_clamd(tmp_path / "clamd", port=port, include_system_signatures=False, timeout=60))
    answering = time.monotonic()
    clean = stack.wait_attachment(letter.json()["id"], timeout=60)
    assert clean["status"] == "clean", clean
    rejected = stack.wait_attachment(virus.json()["id"], timeout=60)
    assert rejected["status"] == "rejected", rejected
    assert rejected["reason"].startswith("This file contains a virus or malware (Enclose.Test.EICAR"), rejected
    # They waited in the scan: verdicts within moments of clamd answering, not at the host's next
    # retry (10 s later), and no failed attempt was counted against either upload.
    assert time.monotonic() - answering < 5
    storage = Storage(load_settings({"AzureWebJobsStorage": connection_string(stack.ports)}))
    for upload in (letter, virus):
        record = find_attachment(storage, "A12345", upload.json()["id"])
        assert record is not None and record.scan_attempts == 0, record
    deadline = time.monotonic() + 30
    while BANNER not in stack.log_path.read_text():
        assert time.monotonic() < deadline, "no banner once clamd answered:\n" + stack.log_path.read_text()[-3000:]
        time.sleep(0.1)


@pytest.mark.slow
def test_make_run_starts_its_own_clamd_and_says_running_once_it_answers(tmp_path: Path) -> None:
    _needs_the_stack()
    ports = Ports.free()
    stack = RunningStack(ports, tmp_path / "local", tmp_path / "stack.log", env=_env(tmp_path, ports))
    stack.start()
    try:
        deadline = time.monotonic() + 120
        while BANNER not in stack.log_path.read_text():
            assert stack.proc is not None and stack.proc.poll() is None, stack.log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "no banner:\n" + stack.log_path.read_text()[-3000:]
            time.sleep(0.1)
        # By the banner, clamd answers: an upload is scanned at once, not retried.
        upload = stack.upload(sample_pdf("Letter"), "letter.pdf")
        assert upload.status_code == 202, upload.text
        assert stack.wait_attachment(upload.json()["id"], timeout=30)["status"] == "clean"
        # The clamd under the stack's own folder is the one it started.
        port = re.search(r"^TCPSocket (\d+)$", (tmp_path / "local" / "clamd" / "clamd.conf").read_text(), re.M)
        assert port is not None
        assert ClamAvScanner(f"tcp://127.0.0.1:{port.group(1)}", 5.0).ping() is True
    finally:
        stack.stop()
