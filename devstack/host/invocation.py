"""Invocation: user functions run as the Python worker runs them (sync in a thread pool, async on one loop)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import azure.functions as func

from devstack.host.config import ROOT
from devstack.host.discovery import FunctionSpec

# One logger for the whole package, under the name the host has always logged as: a worker's lines
# read "[worker N] devstack.host: ...", and tests and people filter on that name.
log = logging.getLogger("devstack.host")


class _TraceContext(func._abc.TraceContext):
    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext(func._abc.RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> Any:
        return None


class _Context(func.Context):
    """The `context` argument a function may declare."""

    def __init__(self, invocation_id: str, function_name: str) -> None:
        self._id = invocation_id
        self._name = function_name
        self._tls = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._id

    @property
    def thread_local_storage(self) -> Any:
        return self._tls

    @property
    def function_name(self) -> str:
        return self._name

    @property
    def function_directory(self) -> str:
        return str(ROOT)

    @property
    def trace_context(self) -> func._abc.TraceContext:
        return _TraceContext()

    @property
    def retry_context(self) -> func._abc.RetryContext:
        return _RetryContext()


@dataclass
class Outcome:
    """The result of one invocation."""

    invocation_id: str
    ok: bool
    value: Any = None
    error: BaseException | None = None
    duration_ms: float = 0.0


class FunctionTimeout(Exception):
    """An invocation ran past host.json's `functionTimeout`."""


class Invoker:
    """Runs user functions like the Python worker: sync in a thread pool, async on one event loop.

    `function_timeout` is host.json's `functionTimeout`. An invocation that runs past it fails
    and `on_timeout` is called: in Azure the host then restarts the language worker process,
    which ends every invocation in it (azure-functions-host: FunctionInvocationDispatcher
    restarts the channel on a timeout); a worker of a multi-process local host does the same by
    exiting, so its supervisor starts a new one.
    """

    def __init__(
        self,
        function_timeout: float | None = None,
        on_timeout: Callable[[FunctionSpec, str], None] | None = None,
    ) -> None:
        self.function_timeout = function_timeout
        self.on_timeout = on_timeout
        configured = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT")
        workers = int(configured) if configured else min(32, (os.cpu_count() or 1) + 4)
        self.pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="functions-worker")
        self.loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self.loop.run_forever, name="functions-loop", daemon=True)
        self._loop_thread.start()

    def submit(self, spec: FunctionSpec, arg: Any) -> tuple[str, concurrent.futures.Future[Any]]:
        invocation_id = str(uuid.uuid4())
        kwargs = {spec.trigger_param: arg}
        if spec.context_param:
            kwargs[spec.context_param] = _Context(invocation_id, spec.name)
        if spec.is_async:
            return invocation_id, asyncio.run_coroutine_threadsafe(spec.func(**kwargs), self.loop)
        return invocation_id, self.pool.submit(self._call_sync, spec.func, kwargs)

    def _call_sync(self, fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        result = fn(**kwargs)
        if inspect.isawaitable(result):  # a sync wrapper around a coroutine function
            result = asyncio.run_coroutine_threadsafe(_await(result), self.loop).result()
        return result

    def run(self, spec: FunctionSpec, arg: Any) -> Outcome:
        """Invoke and wait, at most `function_timeout`."""
        start = time.perf_counter()
        invocation_id, fut = self.submit(spec, arg)
        # Wait without fut.result(timeout): a function raising TimeoutError must not look unfinished.
        if not concurrent.futures.wait([fut], timeout=self.function_timeout).done:
            return self.timed_out(spec, invocation_id, start)
        return outcome_of(invocation_id, fut, start)

    def past_timeout(self, start: float) -> bool:
        """Whether an invocation begun at `start` (a `time.perf_counter()` value) has run too long."""
        return self.function_timeout is not None and time.perf_counter() - start > self.function_timeout

    def timed_out(self, spec: FunctionSpec, invocation_id: str, start: float) -> Outcome:
        """Fail an invocation that ran past `function_timeout`, logged as the real host logs it."""
        seconds = int(self.function_timeout or 0)
        limit = f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
        log.error(
            "Timeout value of %s exceeded by function 'Functions.%s' (Id: '%s'). Initiating cancellation.",
            limit,
            spec.name,
            invocation_id,
        )
        if self.on_timeout is not None:
            self.on_timeout(spec, invocation_id)
        error = FunctionTimeout(f"Timeout value of {limit} was exceeded by function: Functions.{spec.name}")
        return Outcome(invocation_id, False, None, error, (time.perf_counter() - start) * 1000)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._loop_thread.join(timeout=5)
        self.loop.close()


async def _await(awaitable: Any) -> Any:
    return await awaitable


def outcome_of(invocation_id: str, fut: concurrent.futures.Future[Any], start: float) -> Outcome:
    """The `Outcome` of a finished invocation, timed from `start` (a `time.perf_counter()` value)."""
    try:
        value = fut.result()
        return Outcome(invocation_id, True, value, None, (time.perf_counter() - start) * 1000)
    except BaseException as exc:  # noqa: BLE001 - a function's failure is data for the trigger
        return Outcome(invocation_id, False, None, exc, (time.perf_counter() - start) * 1000)


def log_outcome(spec: FunctionSpec, outcome: Outcome, detail: str) -> None:
    """Log an invocation as the host does (`Executed 'Functions.NAME' (Succeeded, ...)`), with ids only."""
    state = "Succeeded" if outcome.ok else "Failed"
    msg = "Executed 'Functions.%s' (%s, Id=%s, Duration=%dms) %s"
    args = (spec.name, state, outcome.invocation_id, round(outcome.duration_ms), detail)
    if outcome.ok:
        log.info(msg, *args)
    else:
        log.error(msg, *args, exc_info=outcome.error)
