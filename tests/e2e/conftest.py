"""The whole local stack (`python -m devstack.run`) started as a process on free ports.

Every answer an e2e test receives from `/api/v1/...` on the local stack is checked against
`docs/openapi.yaml`; a test that meets one that does not match fails, naming each mismatch.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devstack.ports import Ports
from tests.support.openapi import is_checked, mismatch_report, response_problems
from tests.support.stack import RunningStack

_MISMATCHES = pytest.StashKey[list[str]]()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, clamd_address: str) -> Iterator[RunningStack]:
    """The whole stack for the e2e session; its log is printed when it fails to start."""
    ports = Ports.free()
    local_dir = tmp_path_factory.mktemp("local")
    env = {**os.environ, **ports.env(), "ENCLOSE_LOCAL_DIR": str(local_dir), "CLAMD_ADDRESS": clamd_address}
    running = RunningStack(ports, local_dir, local_dir.parent / f"{local_dir.name}-stack.log", env=env)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(autouse=True)
def api_answers_match_openapi(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Check every `/api/v1` answer from the local stack against the OpenAPI document.

    All of `requests` (its module-level functions too) sends through `Session.send`, from any
    thread, so wrapping it catches every answer the test receives. Mismatches are collected
    rather than raised where they happen: a test's own retry loop must not swallow them.
    """
    mismatches: list[str] = []
    lock = threading.Lock()
    request.node.stash[_MISMATCHES] = mismatches
    original_send = requests.Session.send

    def checked_send(session: requests.Session, prepared: requests.PreparedRequest, **kwargs) -> requests.Response:
        response = original_send(session, prepared, **kwargs)
        # A redirect the session follows is sent through here again and checked there; this call's
        # own answer is the first of the chain.
        own = response.history[0] if response.history else response
        if is_checked(prepared.url or ""):
            problems = response_problems(own)
            if problems:
                with lock:
                    mismatches.append(mismatch_report(own, problems))
        return response

    monkeypatch.setattr(requests.Session, "send", checked_send)
    yield
    # Answers received after the test body (by a function-scoped fixture's teardown) end up here.
    if mismatches:
        pytest.fail(_report(mismatches), pytrace=False)


def _log_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _log_warnings(path: Path, offset: int, keep: int = 60) -> str:
    """The last `keep` lines past `offset` that are warnings, errors or part of a traceback."""
    with open(path, "rb") as log:
        log.seek(offset)
        lines = log.read().decode("utf-8", "replace").splitlines()
    wanted = [line for line in lines if any(word in line for word in _LOUD)]
    return "\n".join(wanted[-keep:]) or "(nothing at warning level or above)"


_LOUD = ("WARNING", "ERROR", "CRITICAL", "Traceback", "Error:", "Exception", "  File ")


def _report(mismatches: list[str]) -> str:
    """Every mismatch so far, once: the list is emptied so the fixture's teardown does not repeat them."""
    report = "answers that do not match docs/openapi.yaml:\n\n" + "\n\n".join(mismatches)
    mismatches.clear()
    return report


def _stacks(item: pytest.Item) -> list[RunningStack]:
    """The running stacks a test uses (its fixtures' values)."""
    return [value for value in getattr(item, "funcargs", {}).values() if isinstance(value, RunningStack)]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Fail the test itself (not only its teardown) when an answer it received does not match the document;
    when it fails, report what its stacks logged at warning level or above meanwhile (ids only: the app never
    logs personal data), so a failure seen only in CI can be understood from its output."""
    offsets = {stack.log_path: _log_size(stack.log_path) for stack in _stacks(item)}
    try:
        result = yield
    except BaseException:
        for path, offset in offsets.items():
            item.add_report_section("call", f"stack log {path.name}", _log_warnings(path, offset))
        raise
    mismatches = item.stash.get(_MISMATCHES, [])
    if mismatches:
        pytest.fail(_report(mismatches), pytrace=False)
    return result
