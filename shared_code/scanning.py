"""Malware scanning behind one interface, chosen by the SCANNER setting.

* `ClamAvScanner` streams the bytes to `clamd` (INSTREAM) over TCP or a unix socket.
* `DefenderScanner` waits for Microsoft Defender for Storage's on-upload scan of the blob: its
  scan-result event, recorded by the `record_scan_result` function, for this very version of
  the blob (never the blob index tags, which the blob's writers could forge).

Both fail closed. When no verdict can be had *now* (clamd down, a time-out, no result yet) they
raise `ScanError`, and the caller retries, then rejects the file as "could not be scanned".
A clamd that is not listening yet (still starting, or restarting) is first waited for, up to
CLAMD_STARTUP_WAIT_SECONDS, so an upload made while the scanner starts gets its real verdict.
When the scanner has answered that it cannot scan this file (too large for clamd, a Defender
error state) the answer is final, so they return a rejecting `Verdict` straight away.
"""

from __future__ import annotations

import logging
import re
import socket
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol
from urllib.parse import urlsplit

from shared_code.settings import Settings, SettingsError

log = logging.getLogger(__name__)

#: The reason given whenever a file is not released because it could not be scanned.
COULD_NOT_BE_SCANNED = "could not be scanned"


@dataclass(frozen=True)
class Verdict:
    """One scanner's answer about one file.

    `reason` completes "This file ..." for a rejected file (None when clean). `signature` is
    the engine's own name for what it found or why it gave up, kept for the record.
    """

    clean: bool
    reason: str | None
    engine: str
    signature: str | None
    scanned_at: datetime


class ScanError(Exception):
    """The scanner could not give a verdict now; the caller retries, then fails closed."""


class ClamdNotListening(ScanError):
    """Nothing accepts connections at the clamd address: clamd is not started (yet) or is restarting."""


class Scanner(Protocol):
    """Anything that can judge a file's bytes (or its blob) for malware."""

    def scan(self, data: bytes, *, blob_name: str) -> Verdict:
        """The verdict for `data`, stored as `blob_name`; raises `ScanError` when there is none."""
        ...


def _now() -> datetime:
    return datetime.now(timezone.utc)


def malware_reason(name: str | None) -> str:
    """Plain words for a detection, naming the signature when there is one."""
    if name and name.startswith("Heuristics."):
        return f"was flagged as suspicious by the virus scanner ({name})"
    return f"contains a virus or malware ({name})" if name else "contains a virus or malware"


# --------------------------------------------------------------------------- ClamAV

_FOUND = re.compile(r"^stream: (.+) FOUND$")
_SIZE_LIMIT = "INSTREAM size limit exceeded"
_MAX_REPLY = 4096


#: While waiting for a starting clamd, each PING may take this long: a clamd that has bound its
#: socket but is still loading its database leaves the connection unanswered in the backlog.
_STARTUP_PING_TIMEOUT = 1.0


class ClamAvScanner:
    """Scans with clamd's INSTREAM command; `timeout` bounds the whole exchange, in seconds.

    When nothing listens at `address`, `scan` waits up to `startup_wait` seconds for clamd to
    answer PING (asking every `poll_interval` s) and then scans; 0 means do not wait.
    """

    engine = "clamav"

    def __init__(
        self,
        address: str,
        timeout: float,
        *,
        chunk_size: int = 64 * 1024,
        startup_wait: float = 0.0,
        poll_interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self.chunk_size = chunk_size
        self.startup_wait = startup_wait
        self.poll_interval = poll_interval
        self._clock = clock
        self._sleep = sleep
        self._family, self._target = parse_clamd_address(address)

    def ping(self) -> bool:
        """True when clamd answers PING with PONG in time; never raises."""
        try:
            return self._command(b"zPING\0") == "PONG"
        except ScanError:
            return False

    def version(self) -> str:
        """clamd's version line, e.g. "ClamAV 1.4.6/27500/..." (the database version follows)."""
        return self._command(b"zVERSION\0")

    def scan(self, data: bytes, *, blob_name: str) -> Verdict:
        """Stream `data` to clamd and turn its reply into a Verdict (or raise ScanError)."""
        try:
            reply = self._instream(data, time.monotonic() + self.timeout)
        except ClamdNotListening:
            if self.startup_wait <= 0:
                raise
            self.wait_until_ready()
            reply = self._instream(data, time.monotonic() + self.timeout)
        log.info("clamd scanned %s: %s", blob_name, reply)
        return verdict_from_clamd_reply(reply)

    def wait_until_ready(self) -> None:
        """Return once clamd answers PING; ScanError when it has not within `startup_wait` seconds."""
        log.warning("clamd at %s is not answering; waiting up to %g s for it to start", self.address, self.startup_wait)
        deadline = self._clock() + self.startup_wait
        while True:
            try:
                if self._command(b"zPING\0", min(self.timeout, _STARTUP_PING_TIMEOUT)) == "PONG":
                    log.info("clamd at %s is answering", self.address)
                    return
            except ScanError:
                pass  # not up yet
            left = deadline - self._clock()
            if left <= 0:
                raise ScanError(f"clamd at {self.address} did not start within {self.startup_wait:g} s")
            self._sleep(min(self.poll_interval, left))

    # -- protocol

    def _connect(self, deadline: float) -> socket.socket:
        sock = socket.socket(self._family, socket.SOCK_STREAM)
        try:
            sock.settimeout(_remaining(deadline))
            sock.connect(self._target)
        except BaseException:
            sock.close()
            raise
        return sock

    def _command(self, command: bytes, timeout: float | None = None) -> str:
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        try:
            with self._connect(deadline) as sock:
                sock.sendall(command)
                return _read_reply(sock, deadline)
        except TimeoutError:
            raise ScanError(f"clamd did not answer within {timeout:g} s") from None
        except OSError as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: OSError) -> ScanError:
        message = f"could not reach clamd at {self.address}: {exc.strerror or exc}"
        # Refused (TCP, or a unix socket nobody holds) or no socket file: clamd is not listening.
        if isinstance(exc, (ConnectionRefusedError, FileNotFoundError)):
            return ClamdNotListening(message)
        return ScanError(message)

    def _instream(self, data: bytes, deadline: float) -> str:
        try:
            with self._connect(deadline) as sock:
                try:
                    sock.settimeout(_remaining(deadline))
                    sock.sendall(b"zINSTREAM\0")
                    view = memoryview(data)
                    for start in range(0, len(view), self.chunk_size):
                        chunk = view[start : start + self.chunk_size]
                        sock.settimeout(_remaining(deadline))
                        sock.sendall(struct.pack(">I", len(chunk)))
                        sock.sendall(chunk)
                    sock.settimeout(_remaining(deadline))
                    sock.sendall(struct.pack(">I", 0))
                except (BrokenPipeError, ConnectionResetError):
                    # clamd hangs up mid-stream when the size limit is passed; its reply says why.
                    pass
                return _read_reply(sock, deadline)
        except TimeoutError:
            raise ScanError(f"clamd did not answer within {self.timeout:g} s") from None
        except OSError as exc:
            raise self._unreachable(exc) from None


def verdict_from_clamd_reply(reply: str) -> Verdict:
    """Turn clamd's INSTREAM reply into a Verdict, or raise ScanError when it gave none."""
    if reply == "stream: OK":
        return Verdict(True, None, ClamAvScanner.engine, None, _now())
    found = _FOUND.match(reply)
    if found:
        name = found.group(1)
        return Verdict(False, malware_reason(name), ClamAvScanner.engine, name, _now())
    if reply.startswith(_SIZE_LIMIT):
        # Deterministic: retrying cannot help, and an unscanned file is never released.
        return Verdict(False, COULD_NOT_BE_SCANNED, ClamAvScanner.engine, _SIZE_LIMIT, _now())
    raise ScanError(f"clamd could not scan the file: {reply[:200]}")


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


def _read_reply(sock: socket.socket, deadline: float) -> str:
    """Read one NUL-terminated reply (the 'z' command form); a closed connection ends it too."""
    reply = b""
    while not reply.endswith(b"\0") and len(reply) < _MAX_REPLY:
        sock.settimeout(_remaining(deadline))
        chunk = sock.recv(_MAX_REPLY)
        if not chunk:
            break
        reply += chunk
    if not reply:
        raise ScanError("clamd closed the connection without an answer")
    return reply.rstrip(b"\0").decode("utf-8", "replace").strip()


def parse_clamd_address(address: str) -> tuple[int, Any]:
    """(socket family, connect target) for "tcp://host:port" or "unix:///path/to/socket"."""
    parts = urlsplit(address)
    if parts.scheme == "tcp" and parts.hostname and parts.port:
        return (socket.AF_INET6 if ":" in parts.hostname else socket.AF_INET), (parts.hostname, parts.port)
    if parts.scheme == "unix" and parts.path:
        return socket.AF_UNIX, parts.path
    raise SettingsError("CLAMD_ADDRESS must look like tcp://host:port or unix:///path/to/clamd.sock")


# --------------------------------------------------------------------------- Defender

#: The Event Grid event type Defender for Storage publishes for every scan result.
MALWARE_SCANNING_RESULT = "Microsoft.Security.MalwareScanningResult"
_NO_THREATS = "no threats found"
_MALICIOUS = "malicious"


@dataclass(frozen=True)
class BlobVersion:
    """One version of a blob as storage describes it: what a verdict must be about."""

    etag: str
    last_modified: datetime
    content_md5: bytes | None = None


@dataclass(frozen=True)
class ScanResult:
    """Defender's result for one version of one blob, as its scan-result event gave it.

    `etag` is the ETag of the bytes Defender read (None if the event had none); `scanned_at`
    is when its scan finished. `result` and `malware_names` are Defender's own words.
    """

    account: str
    container: str
    blob: str
    etag: str | None
    result: str
    malware_names: tuple[str, ...]
    scanned_at: datetime

    @property
    def verdict(self) -> Verdict:
        """The verdict this result gives (clean, malicious, or could not be scanned)."""
        name = ", ".join(self.malware_names) or None
        return _defender_verdict(self.result, name, self.scanned_at)


class VerdictSource(Protocol):
    """Where the Defender scanner learns about a blob and the results recorded for it."""

    def blob_version(self, blob_name: str) -> BlobVersion:
        """The upload's current version; raises when it cannot be read."""
        ...

    def results(self, blob_name: str) -> list[ScanResult]:
        """Every scan result recorded for the upload, any version."""
        ...


class DefenderScanner:
    """Waits for Defender for Storage's on-upload verdict on the blob.

    The verdict comes from Defender's scan-result event, which `record_scan_result` keeps (see
    `shared_code.scan_verdicts`), never from the blob's index tags: those are not
    tamper-resistant, and anyone who may write the blob may write them. A recorded result counts
    only for the bytes it was about: the blob's current ETag, scanned no earlier than the blob's
    last write, and the bytes in hand must be the blob's (its Content-MD5). The bytes themselves
    are not sent anywhere: Defender scans the blob in storage.
    """

    engine = "defender"

    def __init__(
        self,
        source: VerdictSource,
        timeout: float,
        *,
        poll_interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.source = source
        self.timeout = timeout
        self.poll_interval = poll_interval
        self._clock = clock
        self._sleep = sleep

    def scan(self, data: bytes, *, blob_name: str) -> Verdict:
        """Poll the recorded results until one is for this version of the blob, or raise ScanError."""
        import hashlib

        deadline = self._clock() + self.timeout
        version = self._read(lambda: self.source.blob_version(blob_name), blob_name)
        if version.content_md5 and version.content_md5 != hashlib.md5(data, usedforsecurity=False).digest():
            # Defender judged what is stored now; the bytes in hand are something else.
            raise ScanError(f"{blob_name} changed after it was read; scanning again")
        while True:
            verdict = verdict_for_version(self._read(lambda: self.source.results(blob_name), blob_name), version)
            if verdict is not None:
                log.info("defender verdict for %s: %s", blob_name, verdict.signature or "clean")
                return verdict
            left = deadline - self._clock()
            if left <= 0:
                raise ScanError(f"no verdict from Defender for {blob_name} within {self.timeout:g} s")
            self._sleep(min(self.poll_interval, left))

    @staticmethod
    def _read(read: Callable[[], Any], blob_name: str) -> Any:
        try:
            return read()
        except Exception as exc:  # noqa: BLE001 - any storage failure means "no verdict yet"
            raise ScanError(f"could not read the scan result of {blob_name}: {type(exc).__name__}") from exc


def same_etag(a: str, b: str) -> bool:
    """Whether two spellings of an ETag name the same version (quotes and a weak `W/` aside).

    Storage sends `"0x8DC..."` in headers; Defender's event has `0x8DC...` without quotes.
    """

    def bare(value: str) -> str:
        value = value.strip()
        value = value[2:] if value.startswith("W/") else value
        return value.strip('"')

    return bool(bare(a)) and bare(a) == bare(b)


def verdict_for_version(results: list[ScanResult], version: BlobVersion) -> Verdict | None:
    """The verdict recorded for exactly this version of the blob, or None while there is none.

    A result counts only if it names the blob's current ETag (when the event carried one) and
    its scan finished no earlier than the blob's last write: a verdict older than the bytes is
    not a verdict for them. Storage gives the last write to the second, rounded down, so a scan
    within the same second still counts, and the ETag tells versions apart within it. When
    several results count, any rejection wins (fail closed); otherwise the latest clean one.
    """
    current = [
        r
        for r in results
        if (r.etag is None or same_etag(r.etag, version.etag)) and r.scanned_at >= version.last_modified
    ]
    if not current:
        return None
    rejecting = [r.verdict for r in current if not r.verdict.clean]
    if rejecting:
        return rejecting[0]
    return max(current, key=lambda r: r.scanned_at).verdict


def scan_result_from_event(data: Mapping[str, Any]) -> ScanResult | None:
    """A `Microsoft.Security.MalwareScanningResult` event's data as a ScanResult, or None when it
    lacks what a verdict needs (the blob's address, a result, or when the scan finished).

    Fields as Microsoft documents them ("Set up automated remediation for malware detection",
    learn.microsoft.com/azure/defender-for-cloud/defender-for-storage-configure-malware-scan):
    blobUri, eTag, scanFinishedTimeUtc, scanResultType, scanResultDetails.malwareNamesFound.
    """
    result = data.get("scanResultType")
    address = blob_address(data.get("blobUri"))
    scanned_at = _strict_time(data.get("scanFinishedTimeUtc"))
    if not isinstance(result, str) or not result.strip() or address is None or scanned_at is None:
        return None
    details = data.get("scanResultDetails")
    names = details.get("malwareNamesFound") if isinstance(details, Mapping) else None
    etag = data.get("eTag")
    return ScanResult(
        account=address[0],
        container=address[1],
        blob=address[2],
        etag=etag.strip() if isinstance(etag, str) and etag.strip() else None,
        result=result.strip()[:200],
        malware_names=tuple(str(n)[:200] for n in names) if isinstance(names, list) else (),
        scanned_at=scanned_at,
    )


def blob_address(uri: object) -> tuple[str, str, str] | None:
    """(account, container, blob name) of a blob URL, or None.

    Azure's form is `https://{account}.blob.core.windows.net/{container}/{blob}`; an emulator's
    (Azurite) puts the account first in the path: `http://127.0.0.1:10000/{account}/{container}/{blob}`.
    """
    if not isinstance(uri, str):
        return None
    from urllib.parse import unquote

    parts = urlsplit(uri)
    host = parts.hostname or ""
    segments = [unquote(s) for s in parts.path.split("/")[1:]]
    if ".blob." in host:
        account, rest = host.split(".", 1)[0], segments
    elif len(segments) >= 1:
        account, rest = segments[0], segments[1:]
    else:
        return None
    if len(rest) < 2 or not account or not rest[0] or not all(rest[1:]):
        return None
    return account, rest[0], "/".join(rest[1:])


def _defender_verdict(result: str, name: str | None, scanned_at: datetime) -> Verdict:
    value = result.strip()
    if value.casefold() == _NO_THREATS:
        return Verdict(True, None, DefenderScanner.engine, None, scanned_at)
    if value.casefold() == _MALICIOUS:
        return Verdict(False, malware_reason(name), DefenderScanner.engine, name or "Malicious", scanned_at)
    # "Not Scanned" (with a SAM error code in the details), "SAM259201: Scan failed - internal
    # service error." and the like: Defender will not scan this upload again, so the file can
    # never be released.
    return Verdict(False, COULD_NOT_BE_SCANNED, DefenderScanner.engine, value[:200], scanned_at)


def _strict_time(value: object) -> datetime | None:
    """A UTC time from Defender's ISO 8601 text (up to 7 fractional digits), or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00")
    # Azure writes up to 7 fractional digits; Python reads at most 6.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


# --------------------------------------------------------------------------- choosing


def scanner_from_settings(settings: Settings, verdicts: VerdictSource | None = None) -> Scanner:
    """The scanner the SCANNER setting names ("clamav" or "defender", which reads `verdicts`)."""
    if settings.scanner == "clamav":
        return ClamAvScanner(
            settings.clamd_address,
            float(settings.clamd_timeout_seconds),
            startup_wait=float(settings.clamd_startup_wait_seconds),
        )
    if settings.scanner == "defender":
        if verdicts is None:
            raise SettingsError("the defender scanner needs the recorded scan results")
        return DefenderScanner(verdicts, float(settings.defender_verdict_timeout_seconds))
    raise SettingsError("SCANNER must be 'clamav' or 'defender'")
