"""Scanner choice, clamd reply parsing and the Defender verdict logic (no I/O).

ClamAV itself is tested for real in tests/integration/shared_code/test_clamav.py. Defender for
Storage is an Azure service that cannot run here, so its scanner is tested with a stand-in for
the recorded scan results and the blob's version (all it asks of storage; the real store is
tested against Azurite in tests/integration/shared_code/test_scan_verdicts.py) and a fake
clock, so polling and time-outs are exact and instant. Waiting for a clamd that is still
starting is tested the same way (a fake clock), against a tiny clamd stand-in on a real loopback
socket that appears after so many sleeps.
"""

from __future__ import annotations

import hashlib
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from shared_code.scanning import (
    COULD_NOT_BE_SCANNED,
    BlobVersion,
    ClamAvScanner,
    ClamdNotListening,
    DefenderScanner,
    ScanError,
    ScanResult,
    Verdict,
    blob_address,
    malware_reason,
    parse_clamd_address,
    same_etag,
    scan_result_from_event,
    scanner_from_settings,
    verdict_for_version,
    verdict_from_clamd_reply,
)
from shared_code.settings import SettingsError, load_settings

# --------------------------------------------------------------------------- clamd


@pytest.mark.parametrize(
    ("address", "family", "target"),
    [
        ("tcp://127.0.0.1:3310", socket.AF_INET, ("127.0.0.1", 3310)),
        ("tcp://clamav.internal:3310", socket.AF_INET, ("clamav.internal", 3310)),
        ("tcp://[::1]:3310", socket.AF_INET6, ("::1", 3310)),
        ("unix:///run/clamav/clamd.ctl", socket.AF_UNIX, "/run/clamav/clamd.ctl"),
    ],
)
def test_parse_clamd_address(address: str, family: int, target: object) -> None:
    assert parse_clamd_address(address) == (family, target)


@pytest.mark.parametrize("address", ["127.0.0.1:3310", "tcp://127.0.0.1", "http://x:1", "unix://", ""])
def test_bad_clamd_address_is_a_settings_error(address: str) -> None:
    with pytest.raises(SettingsError, match="CLAMD_ADDRESS"):
        ClamAvScanner(address, 1.0)


def test_clamd_ok_is_clean() -> None:
    verdict = verdict_from_clamd_reply("stream: OK")
    assert (verdict.clean, verdict.reason, verdict.signature, verdict.engine) == (True, None, None, "clamav")
    assert verdict.scanned_at.tzinfo is not None


def test_clamd_found_names_the_signature() -> None:
    verdict = verdict_from_clamd_reply("stream: Win.Test.EICAR_HDB-1 FOUND")
    assert verdict.clean is False
    assert verdict.signature == "Win.Test.EICAR_HDB-1"
    assert verdict.reason == "contains a virus or malware (Win.Test.EICAR_HDB-1)"


def test_clamd_size_limit_fails_closed_at_once() -> None:
    verdict = verdict_from_clamd_reply("INSTREAM size limit exceeded. ERROR")
    assert (verdict.clean, verdict.reason) == (False, COULD_NOT_BE_SCANNED)
    assert verdict.signature == "INSTREAM size limit exceeded"


@pytest.mark.parametrize("reply", ["Can't allocate memory ERROR", "stream: lstat() failed ERROR", "PONG", ""])
def test_other_clamd_replies_are_scan_errors(reply: str) -> None:
    with pytest.raises(ScanError):
        verdict_from_clamd_reply(reply)


def test_heuristic_detections_are_worded_as_suspicious() -> None:
    assert malware_reason("Heuristics.Encrypted.PDF") == "was flagged as suspicious by the virus scanner " + (
        "(Heuristics.Encrypted.PDF)"
    )
    assert malware_reason(None) == "contains a virus or malware"


# --------------------------------------------------------------------------- Defender


class FakeClock:
    """A clock that only moves when the scanner sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


WRITTEN = datetime(2026, 11, 27, 10, 0, 0, tzinfo=timezone.utc)  # storage's Last-Modified: whole seconds
ETAG = '"0x8DCE73009331803"'  # as storage sends it; Defender's event has it without the quotes
BYTES = b"%PDF-1.7 a letter"


def result(
    verdict: str = "No threats found",
    *,
    etag: str | None = "0x8DCE73009331803",
    scanned_at: datetime = WRITTEN + timedelta(seconds=2),
    names: tuple[str, ...] = (),
) -> ScanResult:
    return ScanResult("stenclose", "uploads", "A12345/doc-1", etag, verdict, names, scanned_at)


class Source:
    """The recorded results as they arrive over time (one answer per read), and the blob."""

    def __init__(self, *answers: list[ScanResult] | Exception, version: BlobVersion | Exception | None = None) -> None:
        self.answers = list(answers)
        self.version = version or BlobVersion(ETAG, WRITTEN, hashlib.md5(BYTES).digest())
        self.reads: list[str] = []

    def blob_version(self, blob_name: str) -> BlobVersion:
        if isinstance(self.version, Exception):
            raise self.version
        return self.version

    def results(self, blob_name: str) -> list[ScanResult]:
        self.reads.append(blob_name)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def defender(source: Source, clock: FakeClock, timeout: float = 10.0, interval: float = 2.0) -> DefenderScanner:
    return DefenderScanner(source, timeout, poll_interval=interval, clock=clock, sleep=clock.sleep)


def test_defender_polls_until_the_scan_result_is_recorded() -> None:
    clock = FakeClock()
    source = Source([], [result(etag="0xOTHER")], [result()])
    verdict = defender(source, clock).scan(BYTES, blob_name="A12345/doc-1")
    assert verdict == Verdict(True, None, "defender", None, WRITTEN + timedelta(seconds=2))
    assert source.reads == ["A12345/doc-1"] * 3
    assert clock.sleeps == [2.0, 2.0]


def test_defender_malicious_is_rejected_naming_the_malware() -> None:
    verdict = defender(Source([result("Malicious", names=("DOS/EICAR_Test_File",))]), FakeClock()).scan(
        BYTES, blob_name="b"
    )
    assert (verdict.clean, verdict.reason, verdict.signature) == (
        False,
        "contains a virus or malware (DOS/EICAR_Test_File)",
        "DOS/EICAR_Test_File",
    )
    unnamed = defender(Source([result("Malicious")]), FakeClock()).scan(BYTES, blob_name="b")
    assert (unnamed.reason, unnamed.signature) == ("contains a virus or malware", "Malicious")


@pytest.mark.parametrize("value", ["Not Scanned", "SAM259201: Scan failed - internal service error."])
def test_defender_error_states_fail_closed_at_once(value: str) -> None:
    clock = FakeClock()
    verdict = defender(Source([result(value)]), clock).scan(BYTES, blob_name="b")
    assert (verdict.clean, verdict.reason, verdict.signature) == (False, COULD_NOT_BE_SCANNED, value)
    assert clock.sleeps == []


def test_a_verdict_scanned_at_the_last_write_counts_and_one_a_moment_before_does_not() -> None:
    version = BlobVersion(ETAG, WRITTEN)
    assert verdict_for_version([result(scanned_at=WRITTEN)], version) is not None
    assert verdict_for_version([result(scanned_at=WRITTEN - timedelta(microseconds=1))], version) is None


def test_a_verdict_for_another_version_of_the_blob_does_not_count() -> None:
    # An overwrite within the same second as the old scan: the time alone cannot tell them apart.
    version = BlobVersion('"0x8DCE7300AAAAAAA"', WRITTEN)
    assert verdict_for_version([result(etag="0x8DCE73009331803")], version) is None
    assert verdict_for_version([result(etag="0x8DCE7300AAAAAAA")], version) is not None


@pytest.mark.parametrize("spelling", ["0x8DCE73009331803", '"0x8DCE73009331803"', 'W/"0x8DCE73009331803"'])
def test_etags_match_however_they_are_quoted(spelling: str) -> None:
    assert same_etag(spelling, ETAG)
    assert not same_etag(spelling, '"0x8DCE73009331804"')
    assert not same_etag("", "")


def test_a_result_without_an_etag_counts_by_its_time_alone() -> None:
    version = BlobVersion(ETAG, WRITTEN)
    assert verdict_for_version([result(etag=None)], version) is not None
    assert verdict_for_version([result(etag=None, scanned_at=WRITTEN - timedelta(seconds=1))], version) is None


def test_when_several_results_count_a_rejection_wins() -> None:
    version = BlobVersion(ETAG, WRITTEN)
    clean_later = result(scanned_at=WRITTEN + timedelta(seconds=9))
    malicious = result("Malicious", scanned_at=WRITTEN + timedelta(seconds=3))
    verdict = verdict_for_version([clean_later, malicious], version)
    assert verdict is not None and not verdict.clean
    latest = verdict_for_version([result(scanned_at=WRITTEN + timedelta(seconds=1)), clean_later], version)
    assert latest is not None and latest.scanned_at == WRITTEN + timedelta(seconds=9)


def test_bytes_that_are_not_the_stored_blob_are_not_judged_by_its_verdict() -> None:
    # The verdict is about what storage holds now; the bytes in hand must be those.
    source = Source([result()])
    with pytest.raises(ScanError, match="changed after it was read"):
        defender(source, FakeClock()).scan(b"other bytes", blob_name="b")
    assert source.reads == []
    no_md5 = Source([result()], version=BlobVersion(ETAG, WRITTEN, None))
    assert defender(no_md5, FakeClock()).scan(b"other bytes", blob_name="b").clean


def test_defender_time_out_is_a_scan_error_exactly_at_the_deadline() -> None:
    clock = FakeClock()
    source = Source([])
    with pytest.raises(ScanError, match="no verdict from Defender .* within 10 s"):
        defender(source, clock, timeout=10.0, interval=3.0).scan(BYTES, blob_name="b")
    assert clock.sleeps == [3.0, 3.0, 3.0, 1.0]  # never sleeps past the deadline
    assert len(source.reads) == 5  # and reads once more at the deadline itself


def test_defender_verdict_arriving_on_the_last_read_counts() -> None:
    clock = FakeClock()
    source = Source([], [], [result()])
    assert defender(source, clock, timeout=4.0, interval=2.0).scan(BYTES, blob_name="b").clean
    assert clock.now == 1004.0


@pytest.mark.parametrize("where", ["results", "version"])
def test_defender_storage_failure_is_a_scan_error(where: str) -> None:
    down = ConnectionError("storage down")
    source = Source(down) if where == "results" else Source([result()], version=down)
    with pytest.raises(ScanError, match="could not read the scan result"):
        defender(source, FakeClock()).scan(BYTES, blob_name="b")


EVENT = {
    "correlationId": "aaaa0000-bb11-2222-33cc-444444dddddd",
    "blobUri": "https://stenclose.blob.core.windows.net/uploads/A12345/doc-1",
    "eTag": "0x8DCE73009331803",
    "scanFinishedTimeUtc": "2026-11-27T10:00:01.1234567Z",
    "scanResultType": "Malicious",
    "scanResultDetails": {"malwareNamesFound": ["DOS/EICAR_Test_File"], "sha256": "AA11"},
}


def test_a_scan_result_event_as_microsoft_documents_it() -> None:
    parsed = scan_result_from_event(EVENT)
    assert parsed == ScanResult(
        account="stenclose",
        container="uploads",
        blob="A12345/doc-1",
        etag="0x8DCE73009331803",
        result="Malicious",
        malware_names=("DOS/EICAR_Test_File",),
        scanned_at=datetime(2026, 11, 27, 10, 0, 1, 123456, timezone.utc),
    )
    assert parsed.verdict.reason == "contains a virus or malware (DOS/EICAR_Test_File)"
    clean = scan_result_from_event({**EVENT, "scanResultType": "No threats found", "scanResultDetails": None})
    assert clean is not None and clean.verdict.clean and clean.malware_names == ()


@pytest.mark.parametrize(
    "change",
    [
        {"scanResultType": None},
        {"scanResultType": "  "},
        {"blobUri": None},
        {"blobUri": "https://stenclose.blob.core.windows.net/uploads"},
        {"scanFinishedTimeUtc": None},
        {"scanFinishedTimeUtc": "yesterday"},
    ],
)
def test_a_scan_result_without_what_a_verdict_needs_is_not_one(change: dict[str, object]) -> None:
    # No time would make any old verdict look current, so it is never guessed.
    assert scan_result_from_event({**EVENT, **change}) is None


def test_a_scan_result_without_an_etag_is_kept_without_one() -> None:
    parsed = scan_result_from_event({k: v for k, v in EVENT.items() if k != "eTag"})
    assert parsed is not None and parsed.etag is None


@pytest.mark.parametrize(
    ("uri", "address"),
    [
        ("https://stenclose.blob.core.windows.net/uploads/A12345/doc-1", ("stenclose", "uploads", "A12345/doc-1")),
        (
            "http://127.0.0.1:10000/devstoreaccount1/uploads/A12345/doc-1",
            ("devstoreaccount1", "uploads", "A12345/doc-1"),
        ),
        ("https://st.blob.core.windows.net/uploads/a%20b", ("st", "uploads", "a b")),
        ("https://st.blob.core.windows.net/uploads/", None),
        ("https://st.blob.core.windows.net/", None),
        (42, None),
    ],
)
def test_blob_addresses(uri: object, address: tuple[str, str, str] | None) -> None:
    assert blob_address(uri) == address


# --------------------------------------------------------------------------- waiting for a starting clamd


class FakeClamd:
    """Enough of clamd on a real socket: PING, and INSTREAM answered OK (or FOUND for b"EICAR")."""

    def __init__(self, family: int, target: object) -> None:
        self.server = socket.socket(family, socket.SOCK_STREAM)
        if family == socket.AF_INET:
            self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(target)
        self.server.listen()
        self.commands: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return  # closed
            with conn:
                command = _read_until_nul(conn)
                self.commands.append(command)
                if command == b"zPING":
                    conn.sendall(b"PONG\0")
                elif command == b"zINSTREAM":
                    data = b""
                    while size := struct.unpack(">I", _read_exactly(conn, 4))[0]:
                        data += _read_exactly(conn, size)
                    conn.sendall(b"stream: Test.EICAR FOUND\0" if b"EICAR" in data else b"stream: OK\0")

    def close(self) -> None:
        self.server.close()


def _read_until_nul(conn: socket.socket) -> bytes:
    out = b""
    while not out.endswith(b"\0"):
        chunk = conn.recv(1)
        if not chunk:
            break
        out += chunk
    return out.rstrip(b"\0")


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    out = b""
    while len(out) < size:
        chunk = conn.recv(size - len(out))
        if not chunk:
            raise ConnectionError("closed mid-chunk")
        out += chunk
    return out


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StartingClock(FakeClock):
    """A fake clock whose `after`-th sleep starts the clamd stand-in (`after=None`: it never starts)."""

    def __init__(self, start: Callable[[], FakeClamd], after: int | None) -> None:
        super().__init__()
        self.start, self.after = start, after
        self.clamd: FakeClamd | None = None

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        if self.after is not None and len(self.sleeps) == self.after:
            self.clamd = self.start()


@pytest.fixture
def tcp_target() -> Iterator[tuple[str, Callable[[], FakeClamd], list[FakeClamd]]]:
    port = _free_tcp_port()
    started: list[FakeClamd] = []

    def start() -> FakeClamd:
        started.append(FakeClamd(socket.AF_INET, ("127.0.0.1", port)))
        return started[-1]

    yield f"tcp://127.0.0.1:{port}", start, started
    for clamd in started:
        clamd.close()


def starting_scanner(address: str, clock: FakeClock, wait: float = 10.0) -> ClamAvScanner:
    return ClamAvScanner(address, 5.0, startup_wait=wait, poll_interval=0.25, clock=clock, sleep=clock.sleep)


def test_a_scan_waits_for_a_clamd_that_is_not_listening_yet(tcp_target) -> None:
    address, start, _ = tcp_target
    clock = StartingClock(start, after=3)
    verdict = starting_scanner(address, clock).scan(b"%PDF-1.7 letter", blob_name="A12345/doc")
    assert verdict.clean is True
    assert clock.sleeps == [0.25, 0.25, 0.25]  # pinged every 0.25 s until clamd answered
    assert clock.clamd is not None and clock.clamd.commands == [b"zPING", b"zINSTREAM"]


def test_after_waiting_the_verdict_is_the_real_one(tcp_target) -> None:
    address, start, _ = tcp_target
    clock = StartingClock(start, after=1)
    verdict = starting_scanner(address, clock).scan(b"X EICAR X", blob_name="A12345/doc")
    assert (verdict.clean, verdict.signature) == (False, "Test.EICAR")


def test_a_clamd_that_never_comes_is_a_scan_error_exactly_at_the_deadline(tcp_target) -> None:
    address, start, started = tcp_target
    clock = StartingClock(start, after=None)
    with pytest.raises(ScanError, match=r"did not start within 1\.1 s") as raised:
        starting_scanner(address, clock, wait=1.1).scan(b"x", blob_name="A12345/doc")
    assert not isinstance(raised.value, ClamdNotListening)
    assert clock.sleeps == pytest.approx([0.25, 0.25, 0.25, 0.25, 0.1])  # never sleeps past the deadline
    assert clock.now == pytest.approx(1001.1)
    assert started == []


def test_a_clamd_answering_on_the_last_ping_counts(tcp_target) -> None:
    address, start, _ = tcp_target
    clock = StartingClock(start, after=4)  # the sleep that reaches the deadline exactly
    assert starting_scanner(address, clock, wait=1.0).scan(b"x", blob_name="A12345/doc").clean is True
    assert clock.now == 1001.0


def test_no_startup_wait_fails_at_once(tcp_target) -> None:
    address, start, _ = tcp_target
    clock = StartingClock(start, after=1)
    with pytest.raises(ClamdNotListening, match="could not reach clamd"):
        starting_scanner(address, clock, wait=0).scan(b"x", blob_name="A12345/doc")
    assert clock.sleeps == []


def test_a_missing_unix_socket_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "clamd.sock"
    clock = StartingClock(lambda: FakeClamd(socket.AF_UNIX, str(path)), after=2)
    try:
        assert starting_scanner(f"unix://{path}", clock).scan(b"x", blob_name="A12345/doc").clean is True
        assert clock.sleeps == [0.25, 0.25]
    finally:
        if clock.clamd:
            clock.clamd.close()


def test_a_clamd_that_answers_badly_is_not_waited_for() -> None:
    # Listening but hanging up without a reply: clamd is there and failing, so waiting cannot help.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def hang_up() -> None:
        conn, _ = server.accept()
        conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    clock = FakeClock()
    try:
        with pytest.raises(ScanError) as raised:
            starting_scanner(f"tcp://127.0.0.1:{server.getsockname()[1]}", clock).scan(b"x", blob_name="b")
        assert not isinstance(raised.value, ClamdNotListening)
        assert clock.sleeps == []
    finally:
        server.close()


# --------------------------------------------------------------------------- choosing


def test_scanner_from_settings_clamav() -> None:
    settings = load_settings({"SCANNER": "clamav", "CLAMD_ADDRESS": "unix:///tmp/c.sock", "CLAMD_TIMEOUT_SECONDS": "7"})
    scanner = scanner_from_settings(settings)
    assert isinstance(scanner, ClamAvScanner)
    assert (scanner.address, scanner.timeout) == ("unix:///tmp/c.sock", 7.0)
    assert scanner.startup_wait == 120.0  # the default: well under host.json's 5-minute functionTimeout


@pytest.mark.parametrize(("value", "expected"), [("0", 0.0), ("45", 45.0), (" 200 ", 200.0)])
def test_clamd_startup_wait_setting(value: str, expected: float) -> None:
    settings = load_settings({"CLAMD_STARTUP_WAIT_SECONDS": value})
    assert settings.clamd_startup_wait_seconds == int(expected)
    scanner = scanner_from_settings(settings)
    assert isinstance(scanner, ClamAvScanner)
    assert scanner.startup_wait == expected


@pytest.mark.parametrize("bad", ["-1", "abc", "1.5"])
def test_bad_clamd_startup_wait_is_a_settings_error(bad: str) -> None:
    with pytest.raises(SettingsError, match="CLAMD_STARTUP_WAIT_SECONDS"):
        load_settings({"CLAMD_STARTUP_WAIT_SECONDS": bad})


def test_scanner_from_settings_defender() -> None:
    settings = load_settings({"SCANNER": "defender", "DEFENDER_VERDICT_TIMEOUT_SECONDS": "120"})
    scanner = scanner_from_settings(settings, verdicts=Source([]))
    assert isinstance(scanner, DefenderScanner)
    assert scanner.timeout == 120.0
    with pytest.raises(SettingsError):
        scanner_from_settings(settings)
