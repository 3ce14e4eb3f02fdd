"""Every parse of an uploaded file in a worker process under hard limits no file can pass:
validation (`validate_isolated`, the scan's) and preparation (`prepare_isolated`, the upload's:
hidden metadata removed, pictures and PDFs made to fit, see `preparation`).

`validate` bounds the work of each format (decoded bytes, operators, pages, XML depth), but a
parser can still meet something nobody foresaw; and preparing a file decodes and re-encodes
pictures. So every upload is parsed in a separate, warm worker process that has

* an address-space ceiling (`RLIMIT_AS`, `MEMORY_LIMIT_BYTES`, well under 1 GiB): an
  allocation past it fails (MemoryError, or qpdf aborts), never the host;
* a CPU-time ceiling per file (`RLIMIT_CPU`, `CPU_LIMIT_SECONDS`): the kernel stops the worker;
* a wall-time ceiling per file (`WALL_LIMIT_SECONDS`): the parent kills a worker that overruns.

A file that hits any of them is rejected as "too complex to check safely", like a file over a
format limit; a worker that dies is replaced. Because the parse runs in another process, and the
calling thread only waits on a pipe (releasing the GIL), other requests keep being answered.

The workers are plain `python -m shared_code.filetypes.isolation` child processes speaking a
tiny length-prefixed protocol on stdin/stdout (a request; `+` once it is read; the reply): no
fork of the (threaded) host, no re-import of the host's `__main__`. They start on first use and
stay warm (pikepdf, Pillow and the XML parser imported once); `WORKERS` of them at most, so at
most `WORKERS * MEMORY_LIMIT_BYTES` in all.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from shared_code.filetypes.common import REASONS, ContentRejected, FileType

log = logging.getLogger(__name__)

MEMORY_LIMIT_BYTES = 512 * 1024 * 1024
CPU_LIMIT_SECONDS = 20
WALL_LIMIT_SECONDS = 40  # CPU time plus slack for a busy machine; a sleeping parse is still stopped
START_TIMEOUT_SECONDS = 60  # a cold worker imports pikepdf and Pillow
WORKERS = 2

_HEADER = struct.Struct(">IQ")  # request: JSON header length, file length
_REPLY = struct.Struct(">IQ")  # reply: JSON length, length of the file it sends back (prepare)
_READY = b"ready\n"
_TAKEN = b"+"  # the worker has read the whole request: a death after this is the file's doing


class ValidatorUnavailable(RuntimeError):
    """No worker could be started: a fault of this service, not of the file (retry later)."""


@dataclass(frozen=True)
class Limits:
    """The ceilings one pool of workers runs under."""

    memory_bytes: int = MEMORY_LIMIT_BYTES
    cpu_seconds: int = CPU_LIMIT_SECONDS
    wall_seconds: float = WALL_LIMIT_SECONDS


@dataclass(frozen=True)
class Outcome:
    """What a worker said about one file: `rule`/`reason` are None for a file that passed.

    `peak_rss_bytes` is the worker's peak resident memory so far (None if it died). A
    preparation also says whether it `cleaned` or `reduced` the file, and sends back the bytes
    to store (`data`; None when they are the file's own).
    """

    rule: str | None
    reason: str | None
    peak_rss_bytes: int | None
    cleaned: bool = False
    reduced: bool = False
    data: bytes | None = None


#: What a worker may be asked to do with a file.
VALIDATE, CHECK_PREPARED, PREPARE = "validate", "check_prepared", "prepare"
#: The rule of a preparation that could not bring the file under its limit.
CANNOT_FIT = "cannot_fit"


class _WorkerDied(Exception):
    """The worker process ended (or was killed) before answering."""


class _Worker:
    """One child process and its pipes."""

    def __init__(self, limits: Limits) -> None:
        root = str(Path(__file__).resolve().parents[2])  # the app root, where shared_code lives
        # The host's own import path: in Azure the worker adds the app's packages to sys.path itself.
        path = os.pathsep.join(dict.fromkeys(p for p in (root, *sys.path) if p))
        env = {**os.environ, "PYTHONPATH": path}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shared_code.filetypes.isolation",
                str(limits.memory_bytes),
                str(limits.cpu_seconds),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            # The child never logs file content, but a crash report is not wanted in the host's log either.
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=root,
            close_fds=True,
        )
        try:
            if _read_exact(self.proc.stdout, len(_READY), time.monotonic() + START_TIMEOUT_SECONDS) != _READY:
                raise _WorkerDied
        except _WorkerDied:
            self.kill()
            raise ValidatorUnavailable("the file-check worker did not start") from None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()

    def send(self, data: bytes, file_type: FileType, op: str = VALIDATE, limit: int = 0) -> None:
        """Write one request; `_WorkerDied` if the worker is gone."""
        header = json.dumps(
            {"kind": file_type.kind, "mime": file_type.mime, "extension": file_type.extension, "op": op, "limit": limit}
        )
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(_HEADER.pack(len(header), len(data)) + header.encode() + data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            raise _WorkerDied from None

    def receive(self, deadline: float) -> tuple[dict[str, Any], bytes]:
        """Read one reply (and any file it sends back) by `deadline`; `_WorkerDied` if the worker
        dies or overruns."""
        length, data_length = _REPLY.unpack(_read_exact(self.proc.stdout, _REPLY.size, deadline))
        reply = json.loads(_read_exact(self.proc.stdout, length, deadline))
        return reply, _read_exact(self.proc.stdout, data_length, deadline)


def _read_exact(stream: IO[bytes] | None, size: int, deadline: float) -> bytes:
    """`size` bytes from a worker's stdout, waiting (without the GIL) at most until `deadline`."""
    assert stream is not None
    fd = stream.fileno()
    out = bytearray()
    while len(out) < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _WorkerDied
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            raise _WorkerDied
        chunk = os.read(fd, size - len(out))
        if not chunk:
            raise _WorkerDied  # end of file: the worker exited
        out += chunk
    return bytes(out)


class _Slots:
    """`size` turns at the workers, handed out urgent callers first: a waiting upload (whose HTTP
    request is held open, on one of the app's few threads) takes the next free worker before any
    waiting scan, so uploads never queue behind the blob trigger's backlog."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiting = 0
        self._urgent_waiting = 0
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def taken(self, *, urgent: bool) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            self._urgent_waiting += urgent
            try:
                while self._free == 0 or (not urgent and self._urgent_waiting):
                    self._cond.wait()
                self._free -= 1
            finally:
                self._waiting -= 1
                self._urgent_waiting -= urgent
        try:
            yield
        finally:
            with self._cond:
                self._free += 1
                self._cond.notify_all()


class Pool:
    """Up to `size` warm workers; a caller borrows one for one file."""

    def __init__(self, limits: Limits | None = None, size: int = WORKERS) -> None:
        self.limits = limits or Limits()
        self._slots = _Slots(size)
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []

    def check(self, data: bytes, file_type: FileType, op: str = VALIDATE, limit: int = 0) -> Outcome:
        """Do `op` with `data` in a worker (validate it by default); a worker that dies or
        overruns means "too_complex"."""
        # An upload's request is waiting for its answer: it goes before the scans' background work.
        with self._slots.taken(urgent=op == PREPARE):
            worker = self._handed(data, file_type, op, limit)
            try:
                reply, returned = worker.receive(time.monotonic() + self.limits.wall_seconds)
            except _WorkerDied:
                worker.kill()
                log.warning("file check worker stopped by its limits (%s file); rejected", file_type.kind)
                return Outcome("too_complex", REASONS["too_complex"], None)
            except BaseException:
                worker.kill()
                raise
            if reply.get("rule") == "too_complex" or not worker.alive():
                worker.kill()  # after running out of memory a worker is not trusted again
            else:
                with self._lock:
                    self._idle.append(worker)
            return Outcome(
                reply.get("rule"),
                reply.get("reason"),
                reply.get("peak_rss_bytes"),
                cleaned=bool(reply.get("cleaned")),
                reduced=bool(reply.get("reduced")),
                data=returned if reply.get("changed") else None,
            )

    def _handed(self, data: bytes, file_type: FileType, op: str, limit: int) -> _Worker:
        """A worker that has been sent the request. A worker that dies before reading the file, or
        does not start, failed for a reason of its own (an idle one killed meanwhile, a machine too
        busy to start one in time): the request goes to a fresh worker, and only when that fails too
        is the service unavailable (`ValidatorUnavailable`, logged with what failed)."""
        failures: list[str] = []
        for attempt in range(3):
            try:
                worker = self._borrow() if attempt == 0 else _Worker(self.limits)
            except ValidatorUnavailable as exc:
                failures.append(str(exc))
                continue
            try:
                worker.send(data, file_type, op, limit)
                # A request can sit in the pipe's buffer of a worker that is dying: only its word
                # that it read the file makes a later death the file's doing.
                if _read_exact(worker.proc.stdout, len(_TAKEN), time.monotonic() + START_TIMEOUT_SECONDS) == _TAKEN:
                    return worker
                raise _WorkerDied
            except _WorkerDied:
                worker.kill()
                failures.append("the file-check worker stopped before reading the file")
        log.error("no file-check worker took the %s file: %s", file_type.kind, "; ".join(failures))
        raise ValidatorUnavailable(failures[-1])

    def _borrow(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    return worker
                worker.kill()
        return _Worker(self.limits)

    def worker_pids(self) -> list[int]:
        """Process ids of the idle workers (for checking their limits from outside)."""
        with self._lock:
            return [worker.proc.pid for worker in self._idle if worker.alive()]

    def close(self) -> None:
        """Stop every idle worker (tests; the host simply exits)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()


_pool: Pool | None = None
_pool_lock = threading.Lock()


def _shared_pool() -> Pool:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = Pool()
        return _pool


def validate_isolated(data: bytes, file_type: FileType, pool: Pool | None = None, *, prepared: bool = False) -> None:
    """`validate` in a worker process under the hard limits: raises `ContentRejected` for a file
    that is unsafe, damaged or too complex to check safely; `ValidatorUnavailable` if no worker
    could be started. With `prepared`, also refuse a picture or PDF that still has hidden
    metadata (`preparation.check_prepared`): the scan's check of what was stored."""
    outcome = (pool or _shared_pool()).check(data, file_type, CHECK_PREPARED if prepared else VALIDATE)
    if outcome.rule is not None:
        raise ContentRejected(outcome.reason or REASONS["too_complex"], outcome.rule)


def prepare_isolated(data: bytes, file_type: FileType, limit: int, pool: Pool | None = None) -> Outcome:
    """`preparation.prepare` in a worker under the same hard limits: the outcome's `data` is what
    to store (None: the upload's own bytes). Raises `CannotFit` when the file stays over `limit`,
    `ContentRejected` for a file validation refuses or that hits a limit, `ValidatorUnavailable`
    if no worker could be started."""
    from shared_code.filetypes.fitting import CannotFit

    outcome = (pool or _shared_pool()).check(data, file_type, PREPARE, limit)
    if outcome.rule == CANNOT_FIT:
        raise CannotFit
    if outcome.rule is not None:
        raise ContentRejected(outcome.reason or REASONS["too_complex"], outcome.rule)
    return outcome


# -- the worker side ------------------------------------------------------------------------------


def _serve(memory_bytes: int, cpu_seconds: int) -> None:
    """The worker's loop: limits first, then one reply per request until stdin closes."""
    import resource

    # Import every parser now, so each file does not pay for it (and the limit covers only work).
    import defusedxml.ElementTree  # noqa: F401
    import olefile  # noqa: F401
    import pikepdf  # noqa: F401
    from PIL import Image

    from shared_code.filetypes.fitting import CannotFit
    from shared_code.filetypes.preparation import check_prepared, prepare
    from shared_code.filetypes.validation import validate

    Image.init()
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    inp = sys.stdin.buffer
    # The protocol owns the real stdout; anything a library prints goes to stderr instead.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    out.write(_READY)
    out.flush()
    while True:
        head = inp.read(_HEADER.size)
        if len(head) < _HEADER.size:
            return  # the parent closed the pipe
        header_len, data_len = _HEADER.unpack(head)
        header = json.loads(inp.read(header_len))
        data = inp.read(data_len)
        out.write(_TAKEN)
        out.flush()
        file_type = FileType(header["kind"], header["mime"], header["extension"])
        # RLIMIT_CPU counts the process's whole life: allow this file `cpu_seconds` more than so far.
        usage = resource.getrusage(resource.RUSAGE_SELF)
        spent = math.ceil(usage.ru_utime + usage.ru_stime)  # the limit is in whole seconds
        resource.setrlimit(resource.RLIMIT_CPU, (spent + cpu_seconds, resource.RLIM_INFINITY))
        returned = b""
        try:
            reply: dict[str, Any] = {"rule": None, "reason": None}
            op = header.get("op", VALIDATE)
            if op == PREPARE:
                prepared = prepare(data, file_type, int(header["limit"]))
                returned = prepared.data or b""
                reply.update(cleaned=prepared.cleaned, reduced=prepared.reduced, changed=prepared.data is not None)
            elif op == CHECK_PREPARED:
                check_prepared(data, file_type)
            else:
                validate(data, file_type)
        except ContentRejected as rejected:
            reply = {"rule": rejected.rule, "reason": rejected.reason}
        except CannotFit:
            reply = {"rule": CANNOT_FIT, "reason": None}
        except MemoryError:
            reply = {"rule": "too_complex", "reason": REASONS["too_complex"]}
        del data
        reply["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        body = json.dumps(reply).encode()
        out.write(_REPLY.pack(len(body), len(returned)) + body)
        out.write(returned)
        out.flush()
        del returned
        if reply["rule"] == "too_complex":
            return  # the parent discards this worker; leave at once


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]))
