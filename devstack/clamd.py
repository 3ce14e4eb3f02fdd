"""Start ClamAV's `clamd` (Debian's clamav-daemon) on a free local TCP port.

Its signature database is the project's own test database (`tests/clamav/`: EICAR and
test markers) plus whatever signatures the machine already has in /var/lib/clamav, since
no download is possible here. Used by `make run` and by the test suite.

`launch_clamd` starts it without waiting, so a caller can start other services while clamd
loads its database, then `ClamdProcess.wait_until_ready`; `start_clamd` does both.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from devstack.process import die_with_parent

ROOT = Path(__file__).resolve().parent.parent
TEST_SIGNATURES = ROOT / "tests" / "clamav"
SYSTEM_SIGNATURES = Path("/var/lib/clamav")
_SIGNATURE_SUFFIXES = {".cvd", ".cld", ".cud", ".ndb", ".hdb", ".hsb", ".ldb", ".yar", ".yara", ".ign2", ".fp", ".sfp"}
#: Names the clamd to use instead of looking for it (scripts/install-system-deps.sh reads it too);
#: lets a test play a machine without ClamAV, or a clamd that fails, on a machine that has one.
BINARY_OVERRIDE = "ENCLOSE_CLAMD_BINARY"
#: What `make run` says, and does not start, when clamd is missing.
NOT_INSTALLED = "Enclose needs ClamAV to scan uploads: run `sudo apt-get install clamav-daemon` and try again."


def clamd_binary() -> str | None:
    """Path of clamd, or None when ClamAV is not installed."""
    override = os.environ.get(BINARY_OVERRIDE)
    if override:
        return override if os.access(override, os.X_OK) and Path(override).is_file() else None
    return shutil.which("clamd") or ("/usr/sbin/clamd" if Path("/usr/sbin/clamd").exists() else None)


def clamd_available() -> bool:
    """Whether clamd is installed."""
    return clamd_binary() is not None


@dataclass
class ClamdProcess:
    """A running clamd, listening on a loopback TCP port and a unix socket."""

    proc: subprocess.Popen
    port: int
    workdir: Path
    started_in: float = 0.0  # seconds from launch to the first PONG
    launched_at: float = 0.0  # time.monotonic() at launch

    @property
    def address(self) -> str:
        """The CLAMD_ADDRESS setting for this clamd (TCP)."""
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def unix_address(self) -> str:
        """The same clamd through its unix socket."""
        return f"unix://{self.workdir / 'clamd.sock'}"

    @property
    def pid(self) -> int:
        """clamd's process id."""
        return self.proc.pid

    def wait_until_ready(self, timeout: float = 120.0) -> None:
        """Return once clamd answers PING; RuntimeError if it exits first, TimeoutError after `timeout` s."""
        deadline = time.monotonic() + timeout
        while not _ping(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError("clamd exited at start:\n" + _tail(self.workdir / "clamd.out"))
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("clamd did not answer within the time-out")
            time.sleep(0.02)
        self.started_in = time.monotonic() - self.launched_at

    def stop(self) -> None:
        """Stop clamd and wait for it."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-2000:]
    except OSError:
        return ""


def free_port() -> int:
    """A loopback TCP port nobody listens on now (for `port=`, when the address is needed before launch)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"zPING\0")
            return s.recv(16) == b"PONG\0"
    except OSError:
        return False


def start_clamd(
    workdir: Path,
    *,
    port: int | None = None,
    include_system_signatures: bool = True,
    stream_max_bytes: int = 10 * 1024 * 1024,
    timeout: float = 120.0,
) -> ClamdProcess:
    """Start clamd with its database and config under `workdir`; returns once it answers PING."""
    clamd = launch_clamd(
        workdir, port=port, include_system_signatures=include_system_signatures, stream_max_bytes=stream_max_bytes
    )
    clamd.wait_until_ready(timeout)
    return clamd


def launch_clamd(
    workdir: Path,
    *,
    port: int | None = None,
    include_system_signatures: bool = True,
    stream_max_bytes: int = 10 * 1024 * 1024,
) -> ClamdProcess:
    """Start clamd with its database and config under `workdir`, without waiting for it to answer.

    Call it from a thread that lives as long as clamd should: the child is tied to it (see
    devstack/process.py).
    """
    binary = clamd_binary()
    if binary is None:
        raise FileNotFoundError("clamd is not installed (apt-get install clamav-daemon)")
    workdir.mkdir(parents=True, exist_ok=True)
    database = workdir / "db"
    if database.exists():
        shutil.rmtree(database)
    database.mkdir()
    sources = [TEST_SIGNATURES]
    if include_system_signatures:
        sources.append(SYSTEM_SIGNATURES)
    for source in sources:
        if source.is_dir():
            for sig in source.iterdir():
                if sig.suffix in _SIGNATURE_SUFFIXES and sig.is_file():
                    shutil.copy2(sig, database / sig.name)
    port = port or free_port()
    config = workdir / "clamd.conf"
    config.write_text(
        "\n".join(
            [
                "Foreground yes",
                f"DatabaseDirectory {database}",
                f"TCPSocket {port}",
                "TCPAddr 127.0.0.1",
                f"LocalSocket {workdir / 'clamd.sock'}",
                f"StreamMaxLength {stream_max_bytes}",
                "MaxThreads 4",
                "ReadTimeout 30",
                "CommandReadTimeout 30",
                "LogTime yes",
                f"LogFile {workdir / 'clamd.log'}",
                "LogSyslog no",
                "SelfCheck 0",
                f"PidFile {workdir / 'clamd.pid'}",
                f"TemporaryDirectory {workdir}",
                "",
            ]
        )
    )
    started = time.monotonic()
    with open(workdir / "clamd.out", "ab") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [binary, "--config-file", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    return ClamdProcess(proc, port, workdir, launched_at=started)
