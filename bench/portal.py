"""The patient portal on the local stack: date-of-birth check plus SAS issue, and pages per second.

Budget (design.md): DOB check plus SAS issue, p95 under 50 ms server time. Nothing is added
to the app to time it. Two measurements, labelled as such:

- function time: the portal's two HTTP functions (POST the right date of birth; GET a document,
  which issues the SAS) invoked in this process with `azure.functions.HttpRequest` objects, as the
  Functions worker invokes them, against the local stack's Azurite. This is the server time the
  budget speaks of (what Azure reports as a function's duration), and the budget is judged on it;
- client-observed wall time of the same two requests over loopback through the local Functions
  host (HTTP parsing, the host and the network stack included): an upper bound.

Pages per second are client-observed through the local host, several clients in parallel.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

from bench.stack import local_stack
from bench.table import print_table
from devstack.localsecrets import ensure_local_secrets, local_settings
from tests.support.stack import RunningStack, sample_pdf

RUNS = 200
WARM_UP = 20
BUDGET_MS = 50.0
THROUGHPUT_SECONDS = 5.0
CLIENTS = 8
RIGHT_DATE = {"dob-day": "31", "dob-month": "1", "dob-year": "1970"}


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _session(link: str) -> tuple[requests.Session, str]:
    """A browser-like session on the link with its CSRF value (from the form's cookie)."""
    session = requests.Session()
    answer = session.get(link, timeout=10)
    answer.raise_for_status()
    return session, session.cookies["enclose_csrf"]


def _timed(call: object) -> tuple[float, requests.Response]:
    t = time.perf_counter()
    answer = call()  # type: ignore[operator]
    return time.perf_counter() - t, answer


def _dob_and_sas(stack: RunningStack, link: str, attachment_id: str) -> list[tuple[float, float]]:
    """(DOB POST, download GET) wall times, RUNS times, after a warm-up."""
    token = urlsplit(link).path.rsplit("/", 1)[1]
    download = f"{stack.base_url}/p/{token}/documents/{attachment_id}"
    session, csrf = _session(link)
    samples = []
    for index in range(WARM_UP + RUNS):
        check, verified = _timed(
            lambda: session.post(link, data={**RIGHT_DATE, "csrf": csrf}, allow_redirects=False, timeout=10)
        )
        assert verified.status_code == 303, verified.status_code
        issue, redirect = _timed(lambda: session.get(download, allow_redirects=False, timeout=10))
        assert redirect.status_code == 303 and "sig=" in redirect.headers["Location"], redirect.status_code
        if index >= WARM_UP:
            samples.append((check, issue))
    return samples


@contextmanager
def _app_environment(stack: RunningStack) -> Iterator[None]:
    """This process's environment set as the stack's app sees it (the app reads settings from it)."""
    from shared_code.settings import get_settings
    from shared_code.storage import get_storage

    saved = dict(os.environ)
    os.environ.update(local_settings(ensure_local_secrets(stack.local_dir), stack.ports))
    get_settings.cache_clear()
    get_storage.cache_clear()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()
        get_storage.cache_clear()


def _user_functions() -> dict[str, Any]:
    """The portal blueprint's functions by name, as the worker would call them."""
    import azure.functions as func

    from functions.portal import bp

    app = func.FunctionApp()
    app.register_functions(bp)
    return {f.get_function_name(): f.get_user_function() for f in app.get_functions()}


def _function_times(stack: RunningStack, link: str, attachment_id: str) -> list[tuple[float, float]]:
    """(DOB POST, document GET) durations of in-process function invocations, RUNS times."""
    import azure.functions as func

    functions = _user_functions()
    token = urlsplit(link).path.rsplit("/", 1)[1]
    csrf = "bench-csrf-value"
    body = urlencode({**RIGHT_DATE, "csrf": csrf}).encode()
    samples = []
    for index in range(WARM_UP + RUNS):
        post = func.HttpRequest(
            "POST",
            link,
            headers={"Cookie": f"enclose_csrf={csrf}", "Content-Type": "application/x-www-form-urlencoded"},
            route_params={"token": token},
            body=body,
        )
        check, verified = _timed(lambda: functions["portal_link"](post))  # noqa: B023 - called at once
        assert verified.status_code == 303, verified.status_code
        session = verified.headers["Set-Cookie"].split(";", 1)[0]
        get = func.HttpRequest(
            "GET",
            f"{link}/documents/{attachment_id}",
            headers={"Cookie": session},
            route_params={"token": token, "attachmentId": attachment_id},
            body=b"",
        )
        issue, redirect = _timed(lambda: functions["portal_download"](get))  # noqa: B023 - called at once
        assert redirect.status_code == 303 and "sig=" in redirect.headers["Location"], redirect.status_code
        if index >= WARM_UP:
            samples.append((check, issue))
    return samples


def _latency_rows(samples: list[tuple[float, float]]) -> tuple[list[list[object]], float]:
    """Table rows for (DOB, SAS) samples and the p95 of their sum in ms."""
    checks, issues = [c for c, _ in samples], [i for _, i in samples]
    both = [c + i for c, i in samples]
    rows = [
        [name, len(values), _ms(statistics.median(values)), _ms(_percentile(values, 0.95)), _ms(max(values))]
        for name, values in (
            ("POST date of birth (right) → 303", checks),
            ("GET document → 303 with SAS", issues),
            ("both (DOB check plus SAS issue)", both),
        )
    ]
    return rows, _percentile(both, 0.95) * 1000


def _pages_per_second(url: str, session_factory: object, expected: int) -> float:
    """Requests per second for one page, CLIENTS clients in parallel for THROUGHPUT_SECONDS."""
    stop = time.monotonic() + THROUGHPUT_SECONDS
    counts = []
    lock = threading.Lock()

    def client() -> None:
        session = session_factory()  # type: ignore[operator]
        done = 0
        while time.monotonic() < stop:
            answer = session.get(url, allow_redirects=False, timeout=10)
            assert answer.status_code == expected, answer.status_code
            done += 1
        with lock:
            counts.append(done)

    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        for future in [pool.submit(client) for _ in range(CLIENTS)]:
            future.result()
    return sum(counts) / (time.monotonic() - started)


def main() -> None:
    """Start a stack on free ports, send one document, measure, print tables."""
    with local_stack() as (stack, clamd):
        message_id, link, _ = stack.send_clean(sample_pdf("Benchmark"), "bench.pdf", org_name="Bench Surgery")
        attachment_id = stack.message(message_id)["attachments"][0]["id"]

        with _app_environment(stack):
            rows, p95 = _latency_rows(_function_times(stack, link, attachment_id))
        print("Function time: the portal's functions invoked in-process against the stack's Azurite")
        print_table(["request", "n", "p50 ms", "p95 ms", "max ms"], rows)
        print(
            f"DOB check plus SAS issue, p95 {p95:.1f} ms server time (budget < {BUDGET_MS:.0f} ms): "
            f"{'within budget' if p95 < BUDGET_MS else 'OVER BUDGET'}"
        )

        rows, p95 = _latency_rows(_dob_and_sas(stack, link, attachment_id))
        print("\nClient-observed wall time over loopback through the local host (an upper bound)")
        print_table(["request", "n", "p50 ms", "p95 ms", "max ms"], rows)

        token = urlsplit(link).path.rsplit("/", 1)[1]

        def signed_in() -> requests.Session:
            session, csrf = _session(link)
            session.post(link, data={**RIGHT_DATE, "csrf": csrf}, allow_redirects=False, timeout=10)
            return session

        pages = [
            ("date-of-birth form (GET /p/{token})", link, requests.Session, 200),
            ("documents (GET /p/{token}/documents)", f"{stack.base_url}/p/{token}/documents", signed_in, 200),
            ("link not found (GET /p/{unknown})", f"{stack.base_url}/p/{'x' * 24}", requests.Session, 404),
            ("stylesheet (GET /static/portal.css)", f"{stack.base_url}/static/portal.css", requests.Session, 200),
        ]
        rows = [[name, f"{_pages_per_second(url, factory, status):.0f}"] for name, url, factory, status in pages]
        print(f"\nPortal pages per second ({CLIENTS} clients in parallel, {THROUGHPUT_SECONDS:.0f} s each)")
        print_table(["page", "pages/s"], rows)


if __name__ == "__main__":
    main()
