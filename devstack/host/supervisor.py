"""The supervisor of a multi-process host: starts N workers on one port, restarts a crashed one, stops them all."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from devstack.process import die_with_parent

# One logger for the whole package, under the name the host has always logged as: a worker's lines
# read "[worker N] devstack.host: ...", and tests and people filter on that name.
log = logging.getLogger("devstack.host")

# A crashed worker is restarted after this pause (the real host also waits before restarting a
# language worker), so a worker that dies at once does not spin the CPU.
RESTART_DELAY = 1.0
# A worker that dies this many times in a row before it listens will not start at all (a broken
# app, a port in use by someone else): the host gives up rather than retry forever.
START_FAILURES_BEFORE_GIVING_UP = 3


def exit_reason(code: int) -> str:
    """`exit code 1` or `signal SIGKILL`, from a Popen return code."""
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"signal {signal.Signals(-code).name}"
    except ValueError:  # a real-time signal has no name
        return f"signal {-code}"


@dataclass
class Worker:
    """One worker process of a multi-process host, as its supervisor tracks it."""

    index: int
    proc: subprocess.Popen[bytes] | None = None
    ready_fd: int | None = None  # the read end of the pipe the worker writes one byte to once it listens
    ready: bool = False
    start_failures: int = 0  # exits in a row before listening
    restart_at: float = 0.0


class Supervisor:
    """`--processes N`: N workers on one port; forwards stop signals, restarts a worker that crashes.

    Single-threaded on purpose: PR_SET_PDEATHSIG fires when the *thread* that started a child ends,
    so every worker is started from the main thread, which lives as long as the supervisor.
    """

    def __init__(self, command: list[str], processes: int, base_url: str, stop_timeout: float) -> None:
        self.command = command
        self.base_url = base_url
        self.stop_timeout = stop_timeout
        self.workers = [Worker(i) for i in range(processes)]
        # The app reads the count (e.g. to share a sender's rate limit), as under the real host.
        self.env = {**os.environ, "FUNCTIONS_WORKER_PROCESS_COUNT": str(processes)}
        self._stop_requested = False

    def run(self) -> int:
        """Start the workers, print the ready line once all listen, and run until SIGINT or SIGTERM."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._request_stop)
        code = 1
        try:
            for worker in self.workers:
                self._spawn(worker)
            announced = False
            while not self._stop_requested:
                self._wait_for_ready(0.2)
                if not announced and all(w.ready for w in self.workers):
                    log.info("%d workers listening", len(self.workers))
                    print(f"Functions host ready at {self.base_url}", flush=True)
                    announced = True
                for worker in self.workers:
                    if self._stop_requested:
                        break
                    if worker.proc is not None and worker.proc.poll() is not None and not self._exited(worker):
                        return code  # gave up; `finally` stops the others
                    if worker.proc is None and time.monotonic() >= worker.restart_at:
                        self._spawn(worker)
            code = 0
            return code
        finally:
            self._stop_all()

    def _request_stop(self, signum: int, frame: Any) -> None:
        self._stop_requested = True

    def _spawn(self, worker: Worker) -> None:
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        try:
            worker.proc = subprocess.Popen(
                [*self.command, "--worker-index", str(worker.index), "--ready-fd", str(write_fd)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                pass_fds=(write_fd,),
                # Same process group as the supervisor (callers stop the group with os.killpg), and
                # SIGTERM from the kernel if the supervisor dies, even by SIGKILL.
                preexec_fn=die_with_parent,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)  # the worker holds its own copy: EOF here means it is gone
        worker.ready_fd = read_fd
        worker.ready = False

    def _wait_for_ready(self, timeout: float) -> None:
        pending = {w.ready_fd: w for w in self.workers if w.ready_fd is not None}
        if not pending:
            time.sleep(timeout)
            return
        readable, _, _ = select.select(list(pending), [], [], timeout)
        for fd in readable:
            self._read_ready(pending[fd])

    def _read_ready(self, worker: Worker) -> None:
        if worker.ready_fd is None:
            return
        try:
            data = os.read(worker.ready_fd, 16)
        except BlockingIOError:
            return
        worker.ready = worker.ready or bool(data)  # data: it listens; EOF without data: it died first
        os.close(worker.ready_fd)
        worker.ready_fd = None

    def _exited(self, worker: Worker) -> bool:
        """Log a worker's unexpected exit and plan its restart; False if it keeps failing at start-up."""
        assert worker.proc is not None
        self._read_ready(worker)  # it may have listened just before it died
        pid, code = worker.proc.pid, worker.proc.returncode
        worker.proc = None
        worker.start_failures = 0 if worker.ready else worker.start_failures + 1
        worker.ready = False
        how = exit_reason(code)
        if worker.start_failures >= START_FAILURES_BEFORE_GIVING_UP:
            log.error(
                "worker %d (pid %d) exited before listening %d times in a row (%s); giving up",
                worker.index,
                pid,
                worker.start_failures,
                how,
            )
            return False
        log.warning(
            "worker %d (pid %d) exited unexpectedly (%s); restarting it in %.0fs", worker.index, pid, how, RESTART_DELAY
        )
        worker.restart_at = time.monotonic() + RESTART_DELAY
        return True

    def _stop_all(self) -> None:
        """Forward SIGTERM and wait for each worker's graceful stop (in-flight invocations finish)."""
        running = [w for w in self.workers if w.proc is not None and w.proc.poll() is None]
        if running:
            log.info("Stopping %d workers", len(running))
        for worker in running:
            assert worker.proc is not None
            with contextlib.suppress(ProcessLookupError):
                worker.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for worker in running:
            assert worker.proc is not None
            try:
                worker.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker %d did not stop in %.0fs; killing it", worker.index, self.stop_timeout)
                worker.proc.kill()
                worker.proc.wait()
        for worker in self.workers:
            if worker.ready_fd is not None:
                os.close(worker.ready_fd)
                worker.ready_fd = None
