"""clamd for tests: the project's own launcher (devstack/clamd.py) with the test signatures only."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devstack.clamd import ClamdProcess, clamd_binary
from devstack.clamd import start_clamd as _start_clamd
from tests.support.components import missing

__all__ = ["STREAM_MAX_BYTES", "ClamdProcess", "add_signature", "clamd_binary", "clamd_fixture", "start_clamd"]

#: StreamMaxLength for the test clamd: above the app's 3 MiB upload limit, small enough to
#: test the "too large for the scanner" path quickly.
STREAM_MAX_BYTES = 4 * 1024 * 1024


def start_clamd(tmp_dir: Path, *, stream_max_bytes: int = STREAM_MAX_BYTES, timeout: float = 60.0) -> ClamdProcess:
    """Start clamd with only tests/clamav/ as its database; returns once it answers PING."""
    return _start_clamd(tmp_dir, include_system_signatures=False, stream_max_bytes=stream_max_bytes, timeout=timeout)


def clamd_fixture(scope: str = "session") -> Callable[..., Iterator[ClamdProcess]]:
    """A pytest fixture that runs one clamd for its scope: `clamd = clamd_fixture()` in a module."""

    @pytest.fixture(scope=scope)  # type: ignore[call-overload]
    def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClamdProcess]:
        if clamd_binary() is None:
            missing("ClamAV clamd", "install the Debian package clamav-daemon (make test does, as root)")
        handle = start_clamd(tmp_path_factory.mktemp("clamd"))
        try:
            yield handle
        finally:
            handle.stop()

    return clamd


def add_signature(clamd: ClamdProcess, name: str, marker: bytes, timeout: float = 60.0) -> str:
    """Teach a running clamd one more signature, as a signature update does: an `.ndb` file in its
    database folder, then RELOAD. Returns once a scan of `marker` finds it, with the name clamd
    reports (`<name>.UNOFFICIAL`). Use a marker no other test's files contain."""
    from shared_code.scanning import ClamAvScanner

    (clamd.workdir / "db" / f"{name}.ndb").write_text(f"{name}:0:*:{marker.hex()}\n")
    with socket.create_connection(("127.0.0.1", clamd.port), timeout=10) as conn:
        conn.sendall(b"zRELOAD\0")
        assert conn.recv(64).rstrip(b"\0") == b"RELOADING"
    scanner = ClamAvScanner(clamd.address, 10.0, startup_wait=10.0)
    deadline = time.monotonic() + timeout
    while scanner.scan(marker, blob_name="signature-probe").clean:
        if time.monotonic() > deadline:
            raise TimeoutError(f"clamd did not load the signature {name}")
        time.sleep(0.2)
    return f"{name}.UNOFFICIAL"
