"""Validation and preparation in a worker process under hard limits: memory, CPU and wall-time
ceilings, the resource bombs of the corpus rejected by the format limits with the worker's memory
bounded, and uploads prepared (cleaned, fitted) there, their bytes sent back."""

from __future__ import annotations

import io
import os
import signal
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared_code.filetypes import REASONS, TYPES, ContentRejected, isolation
from shared_code.filetypes.fitting import CannotFit
from shared_code.filetypes.isolation import (
    CPU_LIMIT_SECONDS,
    MEMORY_LIMIT_BYTES,
    WORKERS,
    Limits,
    Pool,
    ValidatorUnavailable,
    prepare_isolated,
    validate_isolated,
)
from tests.support import corpus
from tests.support.corpus import fitting as fitting_samples
from tests.support.corpus.bombs import _incompressible_comment, pdf_operator_bomb
from tests.support.corpus.pdf import _pdf_objects, _stream, raw_pdf

TOO_COMPLEX = "is too complex to check safely"


@pytest.fixture
def pools() -> Iterator[list[Pool]]:
    """Pools made by a test, closed after it (no worker outlives its test)."""
    made: list[Pool] = []
    yield made
    for pool in made:
        pool.close()


def _pool(pools: list[Pool], limits: Limits | None = None) -> Pool:
    pool = Pool(limits)
    pools.append(pool)
    return pool


def _wide_blank_pdf(mebibytes: int) -> bytes:
    """A valid PDF whose content stream inflates to `mebibytes` of blank space (under the format's
    64 MiB decoded limit): harmless, but it needs that much memory to tokenise."""
    objects = _pdf_objects()
    objects[3] = _stream(zlib.compress(b" " * (mebibytes * 1024 * 1024), 9), b"/Filter /FlateDecode ")
    return raw_pdf(objects)


def _busy_pdf() -> bytes:
    """A valid PDF with 900,000 operators (under the 1,000,000 limit): a second or two of CPU."""
    return pdf_operator_bomb(450_000)


def test_the_ceilings_are_within_the_issue_limits() -> None:
    assert MEMORY_LIMIT_BYTES <= 1024**3
    # Every worker at its ceiling together still stays within 1 GiB.
    assert WORKERS * MEMORY_LIMIT_BYTES <= 1024**3
    assert 0 < CPU_LIMIT_SECONDS <= 20


def test_worker_runs_under_rlimit_as_and_rlimit_cpu(pools: list[Pool]) -> None:
    pool = _pool(pools)
    assert pool.check(corpus.pdf_good(), TYPES["pdf"]).rule is None
    (pid,) = pool.worker_pids()
    limits = Path(f"/proc/{pid}/limits").read_text().splitlines()
    address = next(line for line in limits if line.startswith("Max address space")).split()
    assert int(address[3]) == int(address[4]) == MEMORY_LIMIT_BYTES  # soft and hard
    cpu = next(line for line in limits if line.startswith("Max cpu time")).split()
    assert cpu[3] != "unlimited" and int(cpu[3]) >= CPU_LIMIT_SECONDS


@pytest.mark.parametrize("name", sorted(corpus.GOOD))
def test_good_sample_passes_in_the_worker(name: str, pools: list[Pool]) -> None:
    kind, build = corpus.GOOD[name]
    outcome = _pool(pools).check(build(), TYPES[kind])
    assert (outcome.rule, outcome.reason) == (None, None)


@pytest.mark.parametrize("case", corpus.BOMBS, ids=lambda c: c.name)
def test_bomb_is_too_complex_with_the_workers_memory_bounded(case: corpus.Case, pools: list[Pool]) -> None:
    outcome = _pool(pools).check(case.build(), TYPES[case.kind])
    assert (outcome.rule, outcome.reason) == ("too_complex", TOO_COMPLEX)
    # The format limits stopped it, not the ceiling: the worker answered (a worker the ceiling
    # stops reports no peak), below its ceiling. The peak is the worker's lifetime maximum, so it
    # also carries whatever the worker checked before; the ceiling is the bound that holds.
    assert outcome.peak_rss_bytes is not None
    assert outcome.peak_rss_bytes < MEMORY_LIMIT_BYTES


def test_the_reason_is_the_plain_words() -> None:
    assert REASONS["too_complex"] == TOO_COMPLEX


def test_memory_ceiling_rejects_as_too_complex_and_the_pool_recovers(pools: list[Pool]) -> None:
    data = _wide_blank_pdf(60)
    assert _pool(pools).check(data, TYPES["pdf"]).rule is None  # under the real ceiling it passes
    tight = _pool(pools, Limits(memory_bytes=160 * 1024 * 1024))
    outcome = tight.check(data, TYPES["pdf"])
    assert (outcome.rule, outcome.reason) == ("too_complex", TOO_COMPLEX)
    assert tight.check(corpus.pdf_good(), TYPES["pdf"]).rule is None


def _busy_docx() -> bytes:
    """A valid DOCX of 900,000 empty elements (under the 1,000,000 limit): several seconds of CPU."""
    return corpus.docx(_incompressible_comment(60_000) + "<x/>" * 900_000)


def test_cpu_ceiling_rejects_as_too_complex_and_the_pool_recovers(pools: list[Pool]) -> None:
    data = _busy_docx()
    assert _pool(pools).check(data, TYPES["docx"]).rule is None
    # One second more than the worker has used so far, rounded up: at most two seconds for the file.
    tight = _pool(pools, Limits(cpu_seconds=1, wall_seconds=60))
    tight.check(corpus.pdf_good(), TYPES["pdf"])
    started = time.monotonic()
    outcome = tight.check(data, TYPES["docx"])
    assert (outcome.rule, outcome.reason) == ("too_complex", TOO_COMPLEX)
    assert outcome.peak_rss_bytes is None  # the kernel stopped the worker
    assert time.monotonic() - started < 30
    assert tight.check(corpus.pdf_good(), TYPES["pdf"]).rule is None


def test_wall_ceiling_kills_an_overrunning_worker(pools: list[Pool]) -> None:
    tight = _pool(pools, Limits(wall_seconds=0.3))
    tight.check(corpus.pdf_good(), TYPES["pdf"])  # warm: the ceiling is for the file, not the start
    (slow_pid,) = tight.worker_pids()
    started = time.monotonic()
    outcome = tight.check(_busy_pdf(), TYPES["pdf"])
    assert time.monotonic() - started < 3
    assert (outcome.rule, outcome.reason) == ("too_complex", TOO_COMPLEX)
    assert not Path(f"/proc/{slow_pid}").exists()  # killed and reaped
    assert tight.check(corpus.pdf_good(), TYPES["pdf"]).rule is None


def test_the_caller_process_keeps_running_while_a_file_is_checked(pools: list[Pool]) -> None:
    pool = _pool(pools)
    pool.check(corpus.pdf_good(), TYPES["pdf"])
    data = _busy_pdf()
    done = threading.Event()
    cpu_in_caller: list[float] = []

    def check() -> None:
        before = time.thread_time()
        pool.check(data, TYPES["pdf"])
        cpu_in_caller.append(time.thread_time() - before)
        done.set()

    worker = threading.Thread(target=check)
    started = time.monotonic()
    worker.start()
    # The waiting thread holds no GIL: this thread's short sleeps stay short throughout.
    worst = 0.0
    ticks = 0
    while not done.is_set():
        before = time.monotonic()
        sum(range(20_000))  # a little Python work, which needs the GIL
        time.sleep(0.01)
        worst = max(worst, time.monotonic() - before)
        ticks += 1
    worker.join()
    assert time.monotonic() - started > 0.3, "the check was too quick to show anything"
    assert ticks > 10
    assert worst < 0.25
    # The parse ran elsewhere: the waiting thread itself used almost no CPU (nor the GIL).
    assert cpu_in_caller[0] < 0.2


def test_validate_isolated_raises_content_rejected(pools: list[Pool]) -> None:
    pool = _pool(pools)
    with pytest.raises(ContentRejected) as info:
        validate_isolated(corpus.pdf_operator_bomb(), TYPES["pdf"], pool)
    assert (info.value.rule, info.value.reason) == ("too_complex", TOO_COMPLEX)
    with pytest.raises(ContentRejected) as info:
        validate_isolated(corpus.pdf_launch(), TYPES["pdf"], pool)
    assert info.value.rule == "pdf_launch"
    validate_isolated(corpus.pdf_good(), TYPES["pdf"], pool)


def test_concurrent_checks_share_the_pool(pools: list[Pool]) -> None:
    pool = _pool(pools)
    samples = [(corpus.pdf_good(), "pdf"), (corpus.docx_good(), "docx"), (corpus.png_good(), "png")] * 3
    results: list[str | None] = []
    lock = threading.Lock()

    def one(data: bytes, kind: str) -> None:
        rule = pool.check(data, TYPES[kind]).rule
        with lock:
            results.append(rule)

    threads = [threading.Thread(target=one, args=sample) for sample in samples]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [None] * len(samples)
    assert len(pool.worker_pids()) <= WORKERS


def test_an_idle_worker_killed_meanwhile_is_replaced_without_the_caller_noticing(pools: list[Pool]) -> None:
    pool = _pool(pools)
    assert pool.check(corpus.pdf_good(), TYPES["pdf"]).rule is None
    (pid,) = pool.worker_pids()
    os.kill(pid, signal.SIGKILL)
    assert pool.check(corpus.pdf_good(), TYPES["pdf"]).rule is None
    assert pool.worker_pids() and pid not in pool.worker_pids()


def _failing_starts(monkeypatch: pytest.MonkeyPatch, failures: int) -> list[int]:
    """Make the first `failures` worker starts fail as a start on a machine too busy would."""
    starts: list[int] = []

    class Flaky(isolation._Worker):
        def __init__(self, limits: Limits) -> None:
            starts.append(1)
            if len(starts) <= failures:
                raise ValidatorUnavailable("the file-check worker did not start")
            super().__init__(limits)

    monkeypatch.setattr(isolation, "_Worker", Flaky)
    return starts


def test_a_worker_that_does_not_start_is_tried_again(monkeypatch: pytest.MonkeyPatch, pools: list[Pool]) -> None:
    starts = _failing_starts(monkeypatch, failures=2)
    assert _pool(pools).check(corpus.pdf_good(), TYPES["pdf"]).rule is None
    assert len(starts) == 3


def test_no_worker_starting_is_unavailable_and_logged(
    monkeypatch: pytest.MonkeyPatch, pools: list[Pool], caplog: pytest.LogCaptureFixture
) -> None:
    _failing_starts(monkeypatch, failures=3)
    with pytest.raises(ValidatorUnavailable, match="did not start"):
        _pool(pools).check(corpus.pdf_good(), TYPES["pdf"])
    assert "no file-check worker took the pdf file" in caplog.text


# -- preparation in the worker (issue 18) ---------------------------------------------------------


LIMIT = 3 * 1024 * 1024


def test_a_phone_photo_is_prepared_in_the_worker_and_comes_back_fitted(pools: list[Pool]) -> None:
    pool = _pool(pools)
    data = fitting_samples.phone_jpeg()
    outcome = prepare_isolated(data, TYPES["jpeg"], LIMIT, pool)
    assert outcome.cleaned and outcome.reduced
    assert outcome.data is not None and len(outcome.data) <= LIMIT
    assert b"Exif" not in outcome.data
    validate_isolated(outcome.data, TYPES["jpeg"], pool, prepared=True)
    # Decoding a 12-megapixel photo stayed well inside the worker's ceiling.
    assert outcome.peak_rss_bytes is not None and outcome.peak_rss_bytes < MEMORY_LIMIT_BYTES


def test_a_file_with_nothing_to_do_sends_no_bytes_back(pools: list[Pool]) -> None:
    outcome = prepare_isolated(corpus.pdf_good(), TYPES["pdf"], LIMIT, _pool(pools))
    assert (outcome.data, outcome.cleaned, outcome.reduced) == (None, False, False)


def test_a_file_that_cannot_fit_raises_cannot_fit(pools: list[Pool]) -> None:
    with pytest.raises(CannotFit):
        prepare_isolated(fitting_samples.lettering_pdf(), TYPES["pdf"], LIMIT, _pool(pools))


def test_a_refused_file_is_refused_by_the_preparation_too(pools: list[Pool]) -> None:
    with pytest.raises(ContentRejected) as info:
        prepare_isolated(corpus.pdf_launch(), TYPES["pdf"], 10, _pool(pools))
    assert info.value.rule == "pdf_launch"


def test_the_scans_check_refuses_bytes_that_were_not_prepared(pools: list[Pool]) -> None:
    data = fitting_samples.text_pdf(author=fitting_samples.AUTHOR)
    pool = _pool(pools)
    validate_isolated(data, TYPES["pdf"], pool)  # valid...
    with pytest.raises(ContentRejected) as info:
        validate_isolated(data, TYPES["pdf"], pool, prepared=True)  # ...but not prepared
    assert info.value.rule == "not_prepared"


def test_a_picture_bomb_inside_a_pdf_is_never_decoded(pools: list[Pool]) -> None:
    # 2,000 x 2,000 grey says 4 MB; the data inflates to 400 MB, nearly the worker's whole ceiling.
    objects = _pdf_objects(page_extra=b"/Resources << /XObject << /Im 6 0 R >> >> ", content=b"/Im Do")
    objects.append(
        _stream(
            zlib.compress(b"\x00" * 400 * 1024 * 1024, 9),
            b"/Type /XObject /Subtype /Image /Width 2000 /Height 2000 /ColorSpace /DeviceGray "
            b"/BitsPerComponent 8 /Filter /FlateDecode ",
        )
    )
    pool = _pool(pools)
    with pytest.raises(CannotFit):
        prepare_isolated(raw_pdf(objects), TYPES["pdf"], 1000, pool)
    (pid,) = pool.worker_pids()  # the worker answered and is still alive: its memory stayed bounded


def test_a_preparation_over_the_memory_ceiling_is_too_complex_and_the_pool_recovers(pools: list[Pool]) -> None:
    tight = _pool(pools, Limits(memory_bytes=200 * 1024 * 1024))
    with pytest.raises(ContentRejected) as info:
        prepare_isolated(fitting_samples.phone_jpeg(orientation=6), TYPES["jpeg"], 10_000_000, tight)
    assert (info.value.rule, info.value.reason) == ("too_complex", TOO_COMPLEX)
    assert prepare_isolated(corpus.pdf_good(), TYPES["pdf"], LIMIT, tight).data is None


def test_a_small_picture_that_must_be_turned_decodes_within_the_ceiling_or_is_too_complex(pools: list[Pool]) -> None:
    # 49 megapixels of one colour compress to almost nothing, but turning them upright decodes them all.
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.new("RGB", (7000, 7000), "white").save(buf, "PNG", exif=exif)
    pool = _pool(pools)
    try:
        outcome = prepare_isolated(buf.getvalue(), TYPES["png"], LIMIT, pool)
    except ContentRejected as refused:
        assert refused.rule == "too_complex"
    else:
        assert outcome.cleaned and outcome.peak_rss_bytes is not None
        assert outcome.peak_rss_bytes < MEMORY_LIMIT_BYTES
    assert prepare_isolated(corpus.pdf_good(), TYPES["pdf"], LIMIT, pool).data is None  # the pool goes on
