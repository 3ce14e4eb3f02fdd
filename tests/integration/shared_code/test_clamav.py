"""ClamAvScanner against a real clamd (Debian's clamav-daemon) with the test signatures."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared_code.scanning import COULD_NOT_BE_SCANNED, ClamAvScanner, ScanError
from tests.support import corpus
from tests.support.clamd import STREAM_MAX_BYTES, ClamdProcess, clamd_binary, clamd_fixture, start_clamd
from tests.support.components import missing

clamd = clamd_fixture()

EICAR_SIGNATURE = "Enclose.Test.EICAR.UNOFFICIAL"
MARKER_SIGNATURE = "Enclose.Test.Marker.UNOFFICIAL"


@pytest.fixture
def own_clamd(tmp_path: Path) -> Iterator[ClamdProcess]:
    """A clamd for one test, which the test may stop or freeze."""
    if clamd_binary() is None:
        missing("ClamAV clamd", "install the Debian package clamav-daemon (make test does, as root)")
    handle = start_clamd(tmp_path / "clamd")
    try:
        yield handle
    finally:
        if handle.proc.poll() is None:
            os.kill(handle.pid, signal.SIGCONT)
        handle.stop()


def scanner(process: ClamdProcess, timeout: float = 10.0) -> ClamAvScanner:
    return ClamAvScanner(process.address, timeout)


def test_ping_and_version(clamd: ClamdProcess) -> None:
    s = scanner(clamd)
    assert s.ping() is True
    assert s.version().startswith("ClamAV ")


@pytest.mark.parametrize("build", [corpus.pdf_good, corpus.docx_good, corpus.jpeg_good, corpus.txt_good])
def test_clean_file_is_clean(clamd: ClamdProcess, build) -> None:
    verdict = scanner(clamd).scan(build(), blob_name="uploads/A12345/clean")
    assert verdict.clean is True
    assert verdict.reason is None
    assert verdict.signature is None
    assert verdict.engine == "clamav"
    assert verdict.scanned_at.tzinfo is not None


def test_eicar_is_found(clamd: ClamdProcess) -> None:
    verdict = scanner(clamd).scan(corpus.eicar(), blob_name="uploads/A12345/eicar")
    assert verdict.clean is False
    assert verdict.signature == EICAR_SIGNATURE
    assert verdict.reason == f"contains a virus or malware ({EICAR_SIGNATURE})"


def test_eicar_over_the_unix_socket(clamd: ClamdProcess) -> None:
    verdict = ClamAvScanner(clamd.unix_address, 10.0).scan(corpus.eicar() + b"\n", blob_name="x")
    assert (verdict.clean, verdict.signature) == (False, EICAR_SIGNATURE)


@pytest.mark.parametrize(
    "build",
    [
        lambda: b"plain text with " + corpus.MALWARE_MARKER + b" inside",
        corpus.pdf_with_marker,  # inside a Flate-compressed PDF stream: clamd must decode it
        corpus.docx_with_marker,  # inside a deflated ZIP entry: clamd must unpack it
    ],
    ids=["text", "pdf-stream", "docx-entry"],
)
def test_test_marker_is_found_in_generated_samples(clamd: ClamdProcess, build) -> None:
    data = build()
    verdict = scanner(clamd).scan(data, blob_name="uploads/A12345/marker")
    assert verdict.clean is False
    assert verdict.signature == MARKER_SIGNATURE


def test_samples_hide_the_marker_from_a_plain_byte_search() -> None:
    # Guards the two tests above: they only prove unpacking if the raw bytes lack the marker.
    assert corpus.MALWARE_MARKER not in corpus.pdf_with_marker()
    assert corpus.MALWARE_MARKER not in corpus.docx_with_marker()


def test_exactly_stream_max_length_is_scanned(clamd: ClamdProcess) -> None:
    verdict = scanner(clamd, 30).scan(b"a" * STREAM_MAX_BYTES, blob_name="x")
    assert verdict.clean is True


@pytest.mark.parametrize("size", [STREAM_MAX_BYTES + 1, 3 * STREAM_MAX_BYTES], ids=["one-over", "far-over"])
def test_over_stream_max_length_fails_closed(clamd: ClamdProcess, size: int) -> None:
    verdict = scanner(clamd, 30).scan(b"a" * size, blob_name="x")
    assert verdict.clean is False
    assert verdict.reason == COULD_NOT_BE_SCANNED
    assert verdict.signature == "INSTREAM size limit exceeded"


def test_clamd_stopped_is_a_scan_error(own_clamd: ClamdProcess) -> None:
    s = scanner(own_clamd, 2)
    assert s.ping() is True
    own_clamd.stop()
    assert s.ping() is False
    with pytest.raises(ScanError, match="could not reach clamd"):
        s.scan(corpus.pdf_good(), blob_name="x")


def test_nothing_listening_is_a_scan_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The port is closed again: nothing listens there.
    with pytest.raises(ScanError):
        ClamAvScanner(f"tcp://127.0.0.1:{port}", 2).scan(b"x", blob_name="x")
    with pytest.raises(ScanError):
        ClamAvScanner("unix:///nonexistent/clamd.sock", 2).scan(b"x", blob_name="x")


def test_frozen_clamd_times_out(own_clamd: ClamdProcess) -> None:
    os.kill(own_clamd.pid, signal.SIGSTOP)  # accepts connections (kernel backlog), never answers
    try:
        with pytest.raises(ScanError, match="did not answer within 0.5 s"):
            ClamAvScanner(own_clamd.address, 0.5).scan(corpus.pdf_good(), blob_name="x")
    finally:
        os.kill(own_clamd.pid, signal.SIGCONT)
    assert scanner(own_clamd).scan(corpus.eicar(), blob_name="x").clean is False  # alive again
