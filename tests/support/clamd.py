"""clamd for tests: the project's own launcher (devstack/clamd.py) with the test signatures only."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devstack.clamd import ClamdProcess, clamd_binary
from devstack.clamd import start_clamd as _start_clamd
from tests.support.components import missing

__all__ = ["STREAM_MAX_BYTES", "ClamdProcess", "clamd_binary", "clamd_fixture", "start_clamd"]

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
