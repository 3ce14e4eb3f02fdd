"""Scanner choice, clamd reply parsing and the Defender verdict logic (no I/O).

ClamAV itself is tested for real in tests/integration/shared_code/test_clamav.py. Defender for
Storage is an Azure service that cannot run here, so its scanner is tested with a plain
function standing in for "read the blob's index tags" (the only thing it asks of storage) and
a fake clock, so polling and time-outs are exact and instant.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from datetime import datetime, timezone

import pytest

from shared_code.scanning import (
    COULD_NOT_BE_SCANNED,
    RESULT_TAG,
    TIME_TAG,
    ClamAvScanner,
    DefenderScanner,
    ScanError,
    Verdict,
    malware_reason,
    parse_clamd_address,
    scanner_from_settings,
    verdict_from_clamd_reply,
    verdict_from_event,
    verdict_from_tags,
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


class Tags:
    """Index tags as Defender would leave them over time: one answer per read."""

    def __init__(self, *answers: Mapping[str, str] | Exception) -> None:
        self.answers = list(answers)
        self.reads: list[str] = []

    def __call__(self, blob_name: str) -> Mapping[str, str]:
        self.reads.append(blob_name)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def defender(tags: Tags, clock: FakeClock, timeout: float = 10.0, interval: float = 2.0) -> DefenderScanner:
    return DefenderScanner(tags, timeout, poll_interval=interval, clock=clock, sleep=clock.sleep)


def test_defender_polls_until_the_verdict_tag_appears() -> None:
    clock = FakeClock()
    tags = Tags({}, {"other": "x"}, {RESULT_TAG: "No threats found", TIME_TAG: "2026-11-27T10:00:01.1234567Z"})
    verdict = defender(tags, clock).scan(b"ignored", blob_name="uploads/A12345/doc-1")
    assert verdict == Verdict(True, None, "defender", None, datetime(2026, 11, 27, 10, 0, 1, 123456, timezone.utc))
    assert tags.reads == ["uploads/A12345/doc-1"] * 3
    assert clock.sleeps == [2.0, 2.0]


def test_defender_malicious_is_rejected() -> None:
    verdict = defender(Tags({RESULT_TAG: "Malicious"}), FakeClock()).scan(b"", blob_name="b")
    assert (verdict.clean, verdict.reason, verdict.signature) == (False, "contains a virus or malware", "Malicious")


@pytest.mark.parametrize("value", ["Not scanned", "SAM259201: Scan failed - internal service error."])
def test_defender_error_states_fail_closed_at_once(value: str) -> None:
    clock = FakeClock()
    verdict = defender(Tags({RESULT_TAG: value}), clock).scan(b"", blob_name="b")
    assert (verdict.clean, verdict.reason, verdict.signature) == (False, COULD_NOT_BE_SCANNED, value)
    assert clock.sleeps == []


def test_defender_tag_name_is_matched_without_regard_to_case() -> None:
    verdict = verdict_from_tags({"Malware scanning scan result": "No threats found"})
    assert verdict is not None and verdict.clean


def test_defender_time_out_is_a_scan_error_exactly_at_the_deadline() -> None:
    clock = FakeClock()
    tags = Tags({})
    with pytest.raises(ScanError, match="no verdict from Defender .* within 10 s"):
        defender(tags, clock, timeout=10.0, interval=3.0).scan(b"", blob_name="b")
    assert clock.sleeps == [3.0, 3.0, 3.0, 1.0]  # never sleeps past the deadline
    assert len(tags.reads) == 5  # and reads once more at the deadline itself


def test_defender_verdict_arriving_on_the_last_read_counts() -> None:
    clock = FakeClock()
    tags = Tags({}, {}, {RESULT_TAG: "No threats found"})
    assert defender(tags, clock, timeout=4.0, interval=2.0).scan(b"", blob_name="b").clean
    assert clock.now == 1004.0


def test_defender_storage_failure_is_a_scan_error() -> None:
    with pytest.raises(ScanError, match="could not read the scan result"):
        defender(Tags(ConnectionError("storage down")), FakeClock()).scan(b"", blob_name="b")


def test_defender_event_names_the_malware() -> None:
    verdict = verdict_from_event(
        {
            "scanResultType": "Malicious",
            "scanResultDetails": {"malwareNamesFound": ["DOS/EICAR_Test_File"], "sha256": "ab"},
            "scanFinishedTimeUtc": "2026-11-27T10:00:00Z",
        }
    )
    assert verdict is not None
    assert verdict.signature == "DOS/EICAR_Test_File"
    assert verdict.reason == "contains a virus or malware (DOS/EICAR_Test_File)"
    assert verdict.scanned_at == datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc)


def test_defender_event_clean_and_incomplete() -> None:
    verdict = verdict_from_event({"scanResultType": "No threats found", "scanResultDetails": None})
    assert verdict is not None and verdict.clean
    assert verdict_from_event({"blobUri": "x"}) is None


# --------------------------------------------------------------------------- choosing


def test_scanner_from_settings_clamav() -> None:
    settings = load_settings({"SCANNER": "clamav", "CLAMD_ADDRESS": "unix:///tmp/c.sock", "CLAMD_TIMEOUT_SECONDS": "7"})
    scanner = scanner_from_settings(settings)
    assert isinstance(scanner, ClamAvScanner)
    assert (scanner.address, scanner.timeout) == ("unix:///tmp/c.sock", 7.0)


def test_scanner_from_settings_defender() -> None:
    settings = load_settings({"SCANNER": "defender", "DEFENDER_VERDICT_TIMEOUT_SECONDS": "120"})
    scanner = scanner_from_settings(settings, get_tags=lambda name: {})
    assert isinstance(scanner, DefenderScanner)
    assert scanner.timeout == 120.0
    with pytest.raises(SettingsError):
        scanner_from_settings(settings)
