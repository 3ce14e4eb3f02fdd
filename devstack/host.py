"""A small local Azure Functions host: runs the app's registered functions as the real host would.

Azure Functions Core Tools cannot be installed everywhere, so this module reads the `Function` objects
of a Python v2 programming-model app (`app.get_functions()`) and serves them:

- HTTP triggers on one port, with the host's route templates (`{id:guid}`, `{x?}`, `{*rest}`),
  `extensions.http.routePrefix` from host.json (default `api`) and method filters (a wrong method
  answers 404, as the real host does);
- queue triggers polling Azure Storage (Azurite) with visibility timeouts, dequeue counts and a
  `<queue>-poison` queue after `maxDequeueCount` tries;
- blob triggers polling a container, with receipts in `azure-webjobs-hosts` so that a restart does
  not run a blob twice, and `webjobs-blobtrigger-poison` after `maxDequeueCount` failures;
- timer triggers on their NCRONTAB schedules (six fields, seconds first);
- Event Grid triggers at `/runtime/webhooks/eventgrid?functionName=NAME`.

Arguments are built with the `azure.functions` converters the real Python worker uses, so a function
sees the same objects here as in Azure. Sync functions run in a thread pool sized like the worker's
(`PYTHON_THREADPOOL_THREAD_COUNT`), `async def` functions on one event loop.

One Python process is bound by one core (the GIL). As the real host runs several Python workers per
instance (FUNCTIONS_WORKER_PROCESS_COUNT) and scales out to several instances, `--processes N` runs
N worker processes: all serve HTTP on the one port (SO_REUSEPORT: the kernel spreads connections)
and all consume the queues (competing consumers, like scaled-out instances); blob and timer triggers
run in worker 0 only. A small supervisor starts them, restarts one that crashes, and stops them all.

Logs carry function names, invocation ids, route templates, message and blob ids: never URLs (a portal
URL holds a token), headers or bodies.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import contextlib
import datetime as dt
import email.utils
import importlib
import inspect
import json
import logging
import math
import os
import re
import select
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions.http import HttpRequest as _WorkerHttpRequest
from azure.functions.http import HttpResponseConverter
from azure.functions.meta import Datum

from devstack.process import die_with_parent

log = logging.getLogger("devstack.host")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BODY_LIMIT = 104_857_600  # the real host's FUNCTIONS_REQUEST_BODY_SIZE_LIMIT default (100 MB)
HOSTS_CONTAINER = "azure-webjobs-hosts"
BLOB_POISON_QUEUE = "webjobs-blobtrigger-poison"
# Local polling: fast while busy so end-to-end latency is not dominated by polling, slower when idle.
QUEUE_MIN_POLL = 0.05
QUEUE_MAX_POLL = 1.0
# A listing of the container every 30 ms keeps the upload-to-verdict latency near what Event Grid
# gives in Azure (ENCLOSE_BLOB_POLL_SECONDS overrides it). Each listing costs a few ms of CPU in
# this process and in Azurite, so once the container has been empty for BLOB_IDLE_AFTER seconds
# the listing slows down to BLOB_IDLE_POLL: a first upload after a pause waits at most that long.
BLOB_POLL = float(os.environ.get("ENCLOSE_BLOB_POLL_SECONDS") or 0.03)
BLOB_IDLE_AFTER = 2.0
BLOB_IDLE_POLL = max(BLOB_POLL, 0.2)
# A message being processed stays invisible this long and is renewed at half of it (the real host
# uses 10 minutes; shorter here so a crashed local run hands its messages back quickly).
PROCESSING_VISIBILITY = 30
IDLE_CONNECTION_TIMEOUT = 130  # seconds, Kestrel's keep-alive timeout

SUPPORTED_TRIGGERS = {"httpTrigger", "queueTrigger", "blobTrigger", "timerTrigger", "eventGridTrigger"}


# --------------------------------------------------------------------------- settings and host.json


def load_local_settings(path: Path | str) -> dict[str, str]:
    """The `Values` of a local.settings.json file, as strings (an absent file gives `{}`)."""
    p = Path(path)
    if not p.exists():
        return {}
    data = json.loads(p.read_text(encoding="utf-8"))
    values = data.get("Values") or {}
    if not isinstance(values, dict):
        raise ValueError(f"{p}: 'Values' must be an object")
    out: dict[str, str] = {}
    for key, value in values.items():
        if value is None:
            continue
        # Core Tools accepts JSON booleans and numbers and passes their text on.
        out[str(key)] = json.dumps(value) if isinstance(value, bool) else str(value)
    return out


def _timespan(text: str | int | float | None, default: float) -> float:
    """Seconds in a .NET TimeSpan string (`hh:mm:ss`, `d.hh:mm:ss.fff`)."""
    if text is None:
        return default
    if isinstance(text, (int, float)):
        return float(text)
    m = re.fullmatch(r"(?:(\d+)\.)?(\d+):(\d+):(\d+(?:\.\d+)?)", text.strip())
    if not m:
        raise ValueError(f"not a TimeSpan: {text!r}")
    days, hours, minutes, seconds = m.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@dataclass(frozen=True)
class HostConfig:
    """The parts of host.json this host honours."""

    route_prefix: str = "api"
    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0
    batch_size: int = 16
    new_batch_threshold: int = 8
    message_encoding: str = "base64"
    max_polling_interval: float = QUEUE_MAX_POLL
    function_timeout: float = 300.0

    @classmethod
    def load(cls, path: Path | None) -> HostConfig:
        """Read host.json (or the real host's defaults when there is none)."""
        if path is None or not Path(path).exists():
            return cls()
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        ext = data.get("extensions") or {}
        http = ext.get("http") or {}
        queues = ext.get("queues") or {}
        blobs = ext.get("blobs") or {}
        batch = int(queues.get("batchSize", 16))
        return cls(
            route_prefix=str(http.get("routePrefix", "api")).strip("/"),
            max_dequeue_count=int(queues.get("maxDequeueCount", blobs.get("maxDequeueCount", 5))),
            visibility_timeout=_timespan(queues.get("visibilityTimeout"), 0.0),
            batch_size=batch,
            new_batch_threshold=int(queues.get("newBatchThreshold", batch // 2)),
            message_encoding=str(queues.get("messageEncoding", "base64")).lower(),
            # Never poll slower than our own idle ceiling: Azure's default (1 min) is for billing.
            max_polling_interval=min(QUEUE_MAX_POLL, _timespan(queues.get("maxPollingInterval"), QUEUE_MAX_POLL)),
            function_timeout=_timespan(data.get("functionTimeout"), 300.0),
        )


def _resolve(value: str) -> str:
    """Replace `%SETTING%` with the app setting's value, as the host does in binding properties."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in os.environ:
            raise ValueError(f"binding refers to app setting {name!r}, which is not set")
        return os.environ[name]

    return re.sub(r"%([^%]+)%", sub, value)


# --------------------------------------------------------------------------- route templates

_CONSTRAINTS = {
    "int",
    "long",
    "guid",
    "alpha",
    "bool",
    "minlength",
    "maxlength",
    "length",
    "min",
    "max",
    "range",
    "regex",
    "datetime",
    "decimal",
    "double",
    "float",
    "required",
}


def _split_constraints(text: str) -> list[tuple[str, str | None]]:
    """`int:min(1)` -> [("int", None), ("min", "1")], keeping ':' inside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == ":" and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    parts.append(cur)
    out: list[tuple[str, str | None]] = []
    for p in parts:
        m = re.fullmatch(r"(\w+)(?:\((.*)\))?", p, re.S)
        if not m or m.group(1).lower() not in _CONSTRAINTS:
            raise ValueError(f"unsupported route constraint {p!r}")
        out.append((m.group(1).lower(), m.group(2)))
    return out


def _constraint_ok(kind: str, arg: str | None, value: str) -> bool:
    try:
        if kind in ("int", "long"):
            bits = 31 if kind == "int" else 63
            return re.fullmatch(r"[-+]?\d+", value) is not None and -(2**bits) <= int(value) < 2**bits
        if kind == "guid":
            uuid.UUID(value)
            return True
        if kind == "alpha":
            return value.isascii() and value.isalpha()
        if kind == "bool":
            return value.lower() in ("true", "false")
        if kind in ("minlength", "maxlength", "length", "min", "max", "range"):
            nums = [int(x) for x in (arg or "").split(",")]
            n = len(value) if "length" in kind else int(value)
            lo, hi = {
                "minlength": (nums[0], math.inf),
                "maxlength": (-math.inf, nums[0]),
                "min": (nums[0], math.inf),
                "max": (-math.inf, nums[0]),
            }.get(kind, (nums[0], nums[-1]))
            return lo <= n <= hi
        if kind == "regex":
            return re.search(arg or "", value, re.IGNORECASE) is not None
        if kind == "datetime":
            dt.datetime.fromisoformat(value)
            return True
        if kind in ("decimal", "double", "float"):
            float(value)
            return True
        return value != ""  # required
    except ValueError:
        return False


@dataclass(frozen=True)
class _Param:
    name: str
    group: str
    constraints: tuple[tuple[str, str | None], ...]
    default: str | None


class RouteTemplate:
    """An ASP.NET Core route template as the Functions host uses it (literals match case-insensitively)."""

    def __init__(self, template: str) -> None:
        self.template = template
        self.params: list[_Param] = []
        segments = template.strip("/").split("/") if template.strip("/") else []
        parts: list[str] = []
        ranks: list[int] = []
        for i, seg in enumerate(segments):
            tokens = re.split(r"(\{[^{}]+\})", seg)
            tokens = [t for t in tokens if t]
            specs = [t for t in tokens if t.startswith("{")]
            if not specs:
                parts.append("/" + re.escape(seg))
                ranks.append(1)
                continue
            if len(tokens) == 1:
                spec = specs[0][1:-1]
                catch_all = spec.startswith("*")
                spec = spec.lstrip("*")
                optional = spec.endswith("?")
                spec = spec.rstrip("?")
                spec, _, default = spec.partition("=")
                name, _, cons = spec.partition(":")
                param = self._add(name, cons, default or None)
                if catch_all:
                    if i != len(segments) - 1:
                        raise ValueError(f"{template!r}: a catch-all parameter must be last")
                    parts.append(f"(?:/(?P<{param.group}>.*))?")
                    ranks.append(5)
                elif optional or param.default is not None:
                    parts.append(f"(?:/(?P<{param.group}>[^/]+))?")
                    ranks.append(3 if param.constraints else 4)
                else:
                    parts.append(f"/(?P<{param.group}>[^/]+)")
                    ranks.append(3 if param.constraints else 4)
                continue
            # A complex segment such as `{name}.{ext}`.
            regex = "/"
            for j, tok in enumerate(tokens):
                if tok.startswith("{"):
                    name, _, cons = tok[1:-1].rstrip("?").partition(":")
                    param = self._add(name, cons, None)
                    lazy = "" if j == len(tokens) - 1 else "?"
                    regex += f"(?P<{param.group}>[^/]+{lazy})"
                else:
                    regex += re.escape(tok)
            parts.append(regex)
            ranks.append(2)
        self.precedence = tuple(ranks)
        self.regex = re.compile("^" + "".join(parts) + "/?$", re.IGNORECASE)

    def _add(self, name: str, constraints: str, default: str | None) -> _Param:
        if not name:
            raise ValueError(f"{self.template!r}: empty route parameter name")
        param = _Param(
            name=name,
            group=f"p{len(self.params)}",
            constraints=tuple(_split_constraints(constraints)) if constraints else (),
            default=default,
        )
        self.params.append(param)
        return param

    def match(self, path: str) -> dict[str, str] | None:
        """Route values for a decoded path starting with '/', or None if it does not match."""
        m = self.regex.match(path)
        if m is None:
            return None
        values: dict[str, str] = {}
        for p in self.params:
            value = m.group(p.group)
            if value is None or value == "":
                if p.default is None:
                    continue
                value = p.default
            if not all(_constraint_ok(kind, arg, value) for kind, arg in p.constraints):
                return None
            values[p.name] = value
        return values


# --------------------------------------------------------------------------- function discovery


@dataclass
class FunctionSpec:
    """One registered function, as the host sees it."""

    name: str
    func: Callable[..., Any]
    trigger_type: str
    trigger: Any
    trigger_param: str
    annotation: Any
    context_param: str | None
    is_async: bool

    @property
    def full_name(self) -> str:
        """The name the host uses for ids and receipts."""
        return f"Host.Functions.{self.name}"


def _annotation(param: inspect.Parameter) -> Any:
    ann = param.annotation
    if ann is inspect.Parameter.empty:
        return None
    if isinstance(ann, str):  # unresolvable forward reference: judge by name
        return {"str": str, "bytes": bytes}.get(ann.rsplit(".", 1)[-1])
    return ann


def discover(functions: list[Any]) -> list[FunctionSpec]:
    """Specs for `app.get_functions()`, checked the way the Python worker checks them at indexing."""
    specs = []
    for f in functions:
        trigger = f.get_trigger()
        name = f.get_function_name()
        if trigger is None:
            raise ValueError(f"function {name!r} has no trigger")
        ttype = trigger.type
        if ttype not in SUPPORTED_TRIGGERS:
            raise ValueError(f"function {name!r}: trigger {ttype!r} is not supported by the local host")
        user_fn = f.get_user_function()
        for b in f.get_bindings():
            if b is trigger or (b.name == "$return" and b.type == "http"):
                continue
            raise ValueError(f"function {name!r}: binding {b.type!r} ({b.name!r}) is not supported by the local host")
        try:
            sig = inspect.signature(user_fn, eval_str=True)
        except (NameError, TypeError, AttributeError):
            sig = inspect.signature(user_fn)
        context_param = None
        trigger_param = None
        annotation = None
        for pname, param in sig.parameters.items():
            if pname == trigger.name:
                trigger_param = pname
                annotation = _annotation(param)
            elif pname == "context":
                context_param = pname
            else:
                raise ValueError(f"function {name!r}: parameter {pname!r} has no binding")
        if trigger_param is None:
            raise ValueError(f"function {name!r}: no parameter named {trigger.name!r} for its trigger")
        specs.append(
            FunctionSpec(
                name=name,
                func=user_fn,
                trigger_type=ttype,
                trigger=trigger,
                trigger_param=trigger_param,
                annotation=annotation,
                context_param=context_param,
                is_async=inspect.iscoroutinefunction(user_fn),
            )
        )
    names = [s.name.lower() for s in specs]
    if len(set(names)) != len(names):
        raise ValueError("function names must be unique")
    return specs


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


def _convert(spec: FunctionSpec, data: Datum, metadata: Mapping[str, Datum] | None = None) -> Any:
    """The trigger argument, built by the worker's own converter (or raw str/bytes when annotated so)."""
    ann = spec.annotation
    if ann in (str, bytes) and data.type in ("bytes", "string"):
        raw = data.value
        if ann is str:
            return raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return raw.encode("utf-8") if isinstance(raw, str) else raw
    converter = func.get_binding_registry().get(spec.trigger_type)
    return converter.decode(data, trigger_metadata=metadata or {})


# --------------------------------------------------------------------------- invocation


@dataclass
class Outcome:
    """The result of one invocation."""

    invocation_id: str
    ok: bool
    value: Any = None
    error: BaseException | None = None
    duration_ms: float = 0.0


class _Invoker:
    """Runs user functions like the Python worker: sync in a thread pool, async on one event loop."""

    def __init__(self) -> None:
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
        """Invoke and wait."""
        start = time.perf_counter()
        invocation_id, fut = self.submit(spec, arg)
        return _outcome(invocation_id, fut, start)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._loop_thread.join(timeout=5)
        self.loop.close()


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _outcome(invocation_id: str, fut: concurrent.futures.Future[Any], start: float) -> Outcome:
    try:
        value = fut.result()
        return Outcome(invocation_id, True, value, None, (time.perf_counter() - start) * 1000)
    except BaseException as exc:  # noqa: BLE001 - a function's failure is data for the trigger
        return Outcome(invocation_id, False, None, exc, (time.perf_counter() - start) * 1000)


def _log_outcome(spec: FunctionSpec, outcome: Outcome, detail: str) -> None:
    state = "Succeeded" if outcome.ok else "Failed"
    msg = "Executed 'Functions.%s' (%s, Id=%s, Duration=%dms) %s"
    args = (spec.name, state, outcome.invocation_id, round(outcome.duration_ms), detail)
    if outcome.ok:
        log.info(msg, *args)
    else:
        log.error(msg, *args, exc_info=outcome.error)


# --------------------------------------------------------------------------- HTTP


@dataclass
class HttpAnswer:
    """A response on its way to the socket."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def _json_answer(status: int, obj: Any) -> HttpAnswer:
    return HttpAnswer(status, [("Content-Type", "application/json; charset=utf-8")], json.dumps(obj).encode())


@dataclass
class _HttpRoute:
    spec: FunctionSpec
    template: RouteTemplate
    methods: frozenset[str] | None


class _HttpHandler(BaseHTTPRequestHandler):
    """Parses HTTP/1.1 (keep-alive, chunked bodies) and hands requests to the host."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in one write anyway; no 40 ms stalls
    timeout = IDLE_CONNECTION_TIMEOUT
    localhost: LocalHost  # set on the per-host subclass

    def setup(self) -> None:
        super().setup()
        self.localhost._connection_opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.localhost._connection_closed(self.connection)

    # The standard handler logs request lines: they hold portal tokens. Log nothing from here.
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base signature
        return

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002 - the base signature
        log.debug("HTTP protocol error %s", args[0] if args and isinstance(args[0], int) else "")

    def handle_expect_100(self) -> bool:
        length = self.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > self.localhost._body_limit:
            self._send(HttpAnswer(413), close=True)
            return False
        return super().handle_expect_100()

    def _dispatch(self) -> None:
        host = self.localhost
        with host._http_request():
            if host._stopping.is_set():
                self._send(HttpAnswer(503), close=True)
                return
            try:
                body = self._read_body(host._body_limit)
            except _BodyError as exc:
                self._send(HttpAnswer(exc.status), close=True)
                return
            try:
                answer = host._handle_http(self.command, self.path, self.headers, body)
            except Exception:
                if host._stopping.is_set():  # the worker pool closed under us
                    self._send(HttpAnswer(503), close=True)
                    return
                log.exception("host error while serving %s", self.command)
                answer = HttpAnswer(500)
            self._send(answer)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_TRACE = _dispatch

    def __getattr__(self, name: str) -> Any:
        # http.server answers 501 for a method it has no do_X for; the real host routes every
        # method, and one no function declares gets the router's 404.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _read_body(self, limit: int) -> bytes:
        te = self.headers.get("Transfer-Encoding")
        if te is not None:
            if te.strip().lower() != "chunked":
                raise _BodyError(501)
            return self._read_chunked(limit)
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        if not length.strip().isdigit():
            raise _BodyError(400)
        n = int(length)
        if n > limit:
            raise _BodyError(413)
        body = self.rfile.read(n)
        if len(body) != n:
            raise _BodyError(400)
        return body

    def _read_chunked(self, limit: int) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BodyError(400) from None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers: nothing we use
                return b"".join(chunks)
            total += size
            if total > limit:
                raise _BodyError(413)
            data = self.rfile.read(size)
            if len(data) != size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise _BodyError(400)
            chunks.append(data)

    def _send(self, answer: HttpAnswer, *, close: bool = False) -> None:
        if close:
            self.close_connection = True
        try:
            reason = HTTPStatus(answer.status).phrase
        except ValueError:
            reason = ""
        no_body = answer.status in (204, 304) or 100 <= answer.status < 200
        lines = [f"HTTP/1.1 {answer.status} {reason}", f"Date: {email.utils.formatdate(usegmt=True)}"]
        for name, value in answer.headers:
            if name.lower() in ("content-length", "transfer-encoding", "connection", "date"):
                continue  # framing is ours
            lines.append(f"{name}: {value.replace(chr(13), '').replace(chr(10), '')}")
        if not no_body:
            lines.append(f"Content-Length: {len(answer.body)}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        body = b"" if no_body or self.command == "HEAD" else answer.body
        if len(body) <= 65536:
            self.wfile.write(head + body)  # one segment for the usual small answer
        else:
            self.wfile.write(head)  # no copy of a large body (Nagle is off, so no stall)
            self.wfile.write(body)


class _BodyError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], *, reuse_port: bool) -> None:
        self.reuse_port = reuse_port  # read by server_bind, which the base __init__ calls
        super().__init__(address, handler)

    def server_bind(self) -> None:
        if self.reuse_port:
            # Before bind: every worker of a multi-process host binds the same port, and the kernel
            # balances new connections over their listening sockets.
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn), which can stall start-up.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return  # the client went away
        log.exception("HTTP connection error")


# --------------------------------------------------------------------------- storage helpers


def _queue_client(conn: str, name: str) -> Any:
    from azure.storage.queue import QueueClient

    return QueueClient.from_connection_string(conn, name, **_client_options())


def _blob_service(conn: str) -> Any:
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(conn, **_client_options())


_TRANSPORT: Any = None
_TRANSPORT_LOCK = threading.Lock()


def _client_options() -> dict[str, Any]:
    """One shared connection pool large enough for a batch of handlers, and short retries so stop() is prompt."""
    global _TRANSPORT
    with _TRANSPORT_LOCK:
        if _TRANSPORT is None:
            # The SDKs' stock transport over one requests session that every client shares, so the
            # host's queue and blob polling reuse one connection pool (session_owner=False: closing
            # one client must not close the others' session).
            import requests
            from azure.core.pipeline.transport import RequestsTransport

            _TRANSPORT = RequestsTransport(
                session=requests.Session(), session_owner=False, connection_timeout=5, read_timeout=30
            )
    return {
        "transport": _TRANSPORT,
        "retry_total": 2,
        "initial_backoff": 0,
        "increment_base": 1,
        "random_jitter_range": 0,
    }


def _create_if_missing(create: Callable[[], Any]) -> None:
    from azure.core.exceptions import ResourceExistsError

    with contextlib.suppress(ResourceExistsError):
        create()


# --------------------------------------------------------------------------- queue trigger


class _QueueListener:
    """Polls one queue; runs up to batchSize + newBatchThreshold messages at once, like the host."""

    def __init__(self, host: LocalHost, spec: FunctionSpec) -> None:
        self.host = host
        self.spec = spec
        cfg = host.config
        self.queue_name = _resolve(spec.trigger.queue_name).lower()
        conn = host._connection(spec.trigger.connection)
        self.client = _queue_client(conn, self.queue_name)
        self.poison = _queue_client(conn, f"{self.queue_name}-poison")
        self.batch = max(1, min(32, cfg.batch_size))  # 32 is the storage API's maximum
        self.threshold = max(0, cfg.new_batch_threshold)
        self.retry_delay = math.ceil(cfg.visibility_timeout)
        self.in_flight = 0
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, name=f"queue-{self.queue_name}", daemon=True)

    def start(self) -> None:
        _create_if_missing(self.client.create_queue)
        self.thread.start()

    def _run(self) -> None:
        stopping = self.host._stopping
        interval = QUEUE_MIN_POLL
        failing = False
        while not stopping.is_set():
            with self.cond:
                while self.in_flight > self.threshold and not stopping.is_set():
                    self.cond.wait(0.5)
            if stopping.is_set():
                break
            try:
                messages = list(
                    self.client.receive_messages(
                        max_messages=self.batch,
                        messages_per_page=self.batch,
                        visibility_timeout=PROCESSING_VISIBILITY,
                    )
                )
                failing = False
            except Exception as exc:  # noqa: BLE001 - storage down: keep trying, say so once
                if not failing:
                    log.warning("queue %s: polling failed (%s); retrying", self.queue_name, type(exc).__name__)
                failing = True
                stopping.wait(self.host.config.max_polling_interval)
                continue
            if not messages:
                stopping.wait(interval)
                interval = min(interval * 2, self.host.config.max_polling_interval)
                continue
            interval = QUEUE_MIN_POLL
            for msg in messages:
                with self.cond:
                    self.in_flight += 1
                self.host._host_pool.submit(self._handle, msg)

    def _handle(self, msg: Any) -> None:
        try:
            self._process(msg)
        except Exception:
            log.exception("queue %s: message %s could not be completed", self.queue_name, msg.id)
        finally:
            with self.cond:
                self.in_flight -= 1
                self.cond.notify_all()

    def _process(self, msg: Any) -> None:
        max_count = self.host.config.max_dequeue_count
        if self.host._stopping.is_set():
            self._release(msg.id, msg.pop_receipt)
            return
        if msg.dequeue_count > max_count:
            self._to_poison(msg, msg.pop_receipt, "dequeue count over the limit")
            return
        try:
            body = self._decode(msg.content)
        except ValueError:
            self._to_poison(msg, msg.pop_receipt, "body cannot be decoded")
            return
        iso = lambda d: d.isoformat() if d else None  # noqa: E731
        metadata = {
            "Id": Datum(msg.id, "string"),
            "DequeueCount": Datum(msg.dequeue_count, "int"),
            "InsertionTime": Datum(iso(msg.inserted_on), "string"),
            "ExpirationTime": Datum(iso(msg.expires_on), "string"),
            "NextVisibleTime": Datum(iso(msg.next_visible_on), "string"),
            "PopReceipt": Datum(msg.pop_receipt, "string"),
        }
        arg = _convert(self.spec, Datum(body, "bytes"), metadata)
        start = time.perf_counter()
        invocation_id, fut = self.host._invoker.submit(self.spec, arg)
        receipt = msg.pop_receipt
        renew_at = time.monotonic() + PROCESSING_VISIBILITY / 2
        # Wait without fut.result(timeout): a function raising TimeoutError must not look unfinished.
        while not concurrent.futures.wait([fut], timeout=0.25).done:
            if self.host._stopping.is_set() and not self.spec.is_async and fut.cancel():
                self._release(msg.id, receipt)  # never started: hand it back untouched
                return
            if time.monotonic() >= renew_at:
                receipt = self._renew(msg.id, receipt)
                renew_at = time.monotonic() + PROCESSING_VISIBILITY / 2
        outcome = _outcome(invocation_id, fut, start)
        _log_outcome(self.spec, outcome, f"queue={self.queue_name} message={msg.id} dequeueCount={msg.dequeue_count}")
        if outcome.ok:
            self.client.delete_message(msg.id, receipt)
        elif msg.dequeue_count >= max_count:
            self._to_poison(msg, receipt, f"failed {msg.dequeue_count} times")
        else:
            self.client.update_message(msg.id, receipt, visibility_timeout=self.retry_delay)

    def _decode(self, content: str | None) -> bytes:
        text = content or ""
        if self.host.config.message_encoding == "base64":
            try:
                return base64.b64decode(text, validate=True)
            except (ValueError, TypeError) as exc:
                raise ValueError("not base64") from exc
        return text.encode("utf-8")

    def _renew(self, msg_id: str, receipt: str) -> str:
        updated = self.client.update_message(msg_id, receipt, visibility_timeout=PROCESSING_VISIBILITY)
        return updated.pop_receipt

    def _release(self, msg_id: str, receipt: str) -> None:
        self.client.update_message(msg_id, receipt, visibility_timeout=0)

    def _to_poison(self, msg: Any, receipt: str, why: str) -> None:
        _create_if_missing(self.poison.create_queue)
        self.poison.send_message(msg.content)  # as received: still in the queue's encoding
        self.client.delete_message(msg.id, receipt)
        log.warning("queue %s: message %s moved to %s-poison (%s)", self.queue_name, msg.id, self.queue_name, why)


# --------------------------------------------------------------------------- blob trigger


class _BlobListener:
    """Polls one container for new or changed blobs matching the trigger's path; keeps receipts."""

    def __init__(self, host: LocalHost, spec: FunctionSpec) -> None:
        self.host = host
        self.spec = spec
        path = _resolve(spec.trigger.path)
        self.container_name, _, pattern = path.partition("/")
        self.prefix = pattern.split("{", 1)[0]
        regex = ""
        for tok in re.split(r"(\{[^{}]+\})", pattern):
            regex += "(.+)" if tok.startswith("{") else re.escape(tok)
        self.regex = re.compile(regex or ".+")
        conn = host._connection(spec.trigger.connection)
        self.container = _blob_service(conn).get_container_client(self.container_name)
        self.receipts = _blob_service(host._host_storage(conn)).get_container_client(HOSTS_CONTAINER)
        self.poison = _queue_client(host._host_storage(conn), BLOB_POISON_QUEUE)
        self.receipt_prefix = f"blobreceipts/{host.host_id}/{spec.full_name}/"
        self.limit = max(1, host.config.batch_size)
        self.lock = threading.Lock()
        self.done: dict[str, set[str]] = {}  # blob name -> ETags with a receipt
        self.busy: set[str] = set()
        self.failures: dict[tuple[str, str], int] = {}
        self.retry_at: dict[tuple[str, str], float] = {}
        self.thread = threading.Thread(target=self._run, name=f"blob-{spec.name}", daemon=True)

    def start(self) -> None:
        _create_if_missing(self.container.create_container)
        _create_if_missing(self.receipts.create_container)
        for b in self.receipts.list_blobs(name_starts_with=self.receipt_prefix):
            etag, _, rest = b.name[len(self.receipt_prefix) :].partition("/")
            container, _, name = rest.partition("/")
            if container == self.container_name:
                self.done.setdefault(name, set()).add(etag)
        self.thread.start()

    def _run(self) -> None:
        failing = False
        last_seen = time.monotonic()  # when the container last held a matching blob
        while not self.host._stopping.is_set():
            try:
                if self._scan():
                    last_seen = time.monotonic()
                failing = False
            except Exception as exc:  # noqa: BLE001 - storage down: keep trying, say so once
                if not failing:
                    log.warning("blob trigger %s: scan failed (%s); retrying", self.spec.name, type(exc).__name__)
                failing = True
            idle = time.monotonic() - last_seen > BLOB_IDLE_AFTER
            self.host._stopping.wait(BLOB_IDLE_POLL if idle else BLOB_POLL)

    def _scan(self) -> bool:
        """Start the blobs that are new or changed; returns whether the container held any blob."""
        listed = {
            b.name: b
            for b in self.container.list_blobs(name_starts_with=self.prefix or None, include=["metadata"])
            if self.regex.fullmatch(b.name)
        }
        now = time.monotonic()
        with self.lock:
            for name in [n for n in self.done if n not in listed]:
                del self.done[name]  # deleted blobs: keep memory bounded
            for key in [k for k in self.failures if k[0] not in listed]:
                self.failures.pop(key, None)
                self.retry_at.pop(key, None)
            for name, props in listed.items():
                etag = props.etag.strip('"')
                key = (name, etag)
                if etag in self.done.get(name, ()) or name in self.busy or self.retry_at.get(key, 0) > now:
                    continue
                if len(self.busy) >= self.limit or self.host._stopping.is_set():
                    break
                self.busy.add(name)
                self.host._host_pool.submit(self._handle, props, etag)
        return bool(listed)

    def _handle(self, props: Any, etag: str) -> None:
        try:
            self._process(props, etag)
        except Exception:
            log.exception(
                "blob trigger %s: blob %s/%s could not be completed", self.spec.name, self.container_name, props.name
            )
        finally:
            with self.lock:
                self.busy.discard(props.name)

    def _process(self, props: Any, etag: str) -> None:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        if self.host._stopping.is_set():
            return
        blob = self.container.get_blob_client(props.name)
        try:
            data = blob.download_blob(etag=props.etag, match_condition=MatchConditions.IfNotModified).readall()
        except (ResourceNotFoundError, ResourceModifiedError):
            return  # gone or changed since the listing: the next scan decides
        properties = {
            "Length": props.size,
            "ContentLength": props.size,
            "ETag": props.etag,
            "ContentType": props.content_settings.content_type,
            "BlobType": "BlockBlob",
            "LastModified": props.last_modified.isoformat() if props.last_modified else None,
            "CreatedOn": props.creation_time.isoformat() if props.creation_time else None,
        }
        metadata = {
            "BlobTrigger": Datum(f"{self.container_name}/{props.name}", "string"),
            "Uri": Datum(blob.url, "string"),
            "Properties": Datum(json.dumps(properties), "json"),
            "Metadata": Datum(json.dumps(props.metadata or {}), "json"),
        }
        arg = _convert(self.spec, Datum(data, "bytes"), metadata)
        outcome = self.host._invoker.run(self.spec, arg)
        _log_outcome(self.spec, outcome, f"blob={self.container_name}/{props.name}")
        key = (props.name, etag)
        if outcome.ok:
            self._receipt(props.name, etag)
            return
        with self.lock:
            tries = self.failures[key] = self.failures.get(key, 0) + 1
            self.retry_at[key] = time.monotonic() + self.host.config.visibility_timeout
        if tries >= self.host.config.max_dequeue_count:
            message = json.dumps(
                {
                    "Type": "BlobTrigger",
                    "FunctionId": self.spec.full_name,
                    "BlobType": "BlockBlob",
                    "ContainerName": self.container_name,
                    "BlobName": props.name,
                    "ETag": props.etag,
                }
            )
            _create_if_missing(self.poison.create_queue)
            self.poison.send_message(base64.b64encode(message.encode()).decode())
            log.warning(
                "blob trigger %s: blob %s/%s failed %d times; sent to %s",
                self.spec.name,
                self.container_name,
                props.name,
                tries,
                BLOB_POISON_QUEUE,
            )
            self._receipt(props.name, etag)

    def _receipt(self, name: str, etag: str) -> None:
        # Written only after the function finished (or was poisoned): a crash mid-run means a re-run.
        self.receipts.upload_blob(f"{self.receipt_prefix}{etag}/{self.container_name}/{name}", b"", overwrite=True)
        with self.lock:
            self.done.setdefault(name, set()).add(etag)
            self.failures.pop((name, etag), None)
            self.retry_at.pop((name, etag), None)


# --------------------------------------------------------------------------- timer trigger


class _TimerRunner:
    """Fires one timer function on its schedule; invocations of one timer never overlap."""

    def __init__(self, host: LocalHost, spec: FunctionSpec) -> None:
        self.host = host
        self.spec = spec
        self.schedule = _resolve(spec.trigger.schedule).strip()
        self.interval: float | None = None
        if re.fullmatch(r"(?:\d+\.)?\d+:\d+:\d+(?:\.\d+)?", self.schedule):
            self.interval = _timespan(self.schedule, 0)
        else:
            from croniter import croniter

            if len(self.schedule.split()) != 6 or not croniter.is_valid(self.schedule, second_at_beginning=True):
                raise ValueError(f"function {spec.name!r}: not a six-field NCRONTAB schedule: {self.schedule!r}")
        self.thread = threading.Thread(target=self._run, name=f"timer-{spec.name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _next(self, after: dt.datetime) -> dt.datetime:
        if self.interval is not None:
            return after + dt.timedelta(seconds=self.interval)
        from croniter import croniter

        return croniter(self.schedule, after, second_at_beginning=True).get_next(dt.datetime)

    def _run(self) -> None:
        stopping = self.host._stopping
        last: dt.datetime | None = None
        if self.spec.trigger.run_on_startup:
            now = dt.datetime.now(dt.UTC)
            self._fire(False, last, now, self._next(now))
            last = now
        due = self._next(dt.datetime.now(dt.UTC))
        while not stopping.is_set():
            delay = (due - dt.datetime.now(dt.UTC)).total_seconds()
            if delay > 0 and stopping.wait(delay):
                break
            now = dt.datetime.now(dt.UTC)
            # Late by more than a second (an overrun, a paused machine): tell the function, as Azure does.
            past_due = (now - due).total_seconds() > 1.0
            following = self._next(max(now, due))
            self._fire(past_due, last, due, following)
            last = due
            due = self._next(max(dt.datetime.now(dt.UTC), due))

    def _fire(self, past_due: bool, last: dt.datetime | None, due: dt.datetime, following: dt.datetime) -> None:
        info = {
            "Schedule": {"AdjustForDST": True},
            "ScheduleStatus": {
                "Last": (last or dt.datetime.min.replace(tzinfo=dt.UTC)).isoformat(),
                "Next": following.isoformat(),
                "LastUpdated": due.isoformat(),
            },
            "IsPastDue": past_due,
        }
        arg = _convert(self.spec, Datum(json.dumps(info), "json"))
        outcome = self.host._invoker.run(self.spec, arg)
        _log_outcome(self.spec, outcome, f"timer pastDue={past_due}")


# --------------------------------------------------------------------------- the host


class LocalHost:
    """Serves a list of `azure.functions` Function objects: HTTP, queue, blob, timer and Event Grid.

    One LocalHost is one worker process. Several of them make a multi-process host (`--processes`):
    each is started with `reuse_port=True`, so that all of them listen on the same port and the kernel
    spreads new connections over them, and all but one with `singletons=False`, so that the blob and
    timer triggers run in one process only (Azure runs a timer as a singleton, and our blob receipts
    are not safe with two writers). Queue triggers run in every process: competing consumers on one
    queue, as scaled-out instances are.
    """

    def __init__(
        self,
        functions: list[Any],
        *,
        port: int = 7071,
        host: str = "127.0.0.1",
        host_json: Path | None = None,
        environ: Mapping[str, str] | None = None,
        singletons: bool = True,
        reuse_port: bool = False,
    ) -> None:
        if hasattr(functions, "get_functions"):
            functions = functions.get_functions()  # an app object: its one allowed call
        self.specs = discover(list(functions))
        self.config = HostConfig.load(host_json)
        self.port = port
        self.bind_host = host
        self.environ = dict(environ or {})
        self.singletons = singletons
        self.reuse_port = reuse_port
        self.host_id = _host_id()
        self._stopping = threading.Event()
        self._saved_env: dict[str, str | None] = {}
        self._server: _HttpServer | None = None
        self._server_thread: threading.Thread | None = None
        self._invoker: _Invoker
        self._host_pool: concurrent.futures.ThreadPoolExecutor
        self._listeners: list[Any] = []
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self._http_busy = 0
        self._http_cond = threading.Condition()
        self._body_limit = DEFAULT_BODY_LIMIT
        self._routes: list[_HttpRoute] = []
        self._started = False
        self._stopped = False

    @property
    def base_url(self) -> str:
        """Where the HTTP functions are served, e.g. http://127.0.0.1:7071."""
        return f"http://{self.bind_host}:{self.port}"

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Apply the settings, start the pollers and the HTTP server; returns once it listens."""
        if self._started:
            raise RuntimeError("this host was already started")
        self._started = True
        for key, value in self.environ.items():
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value
        try:
            self._body_limit = int(os.environ.get("FUNCTIONS_REQUEST_BODY_SIZE_LIMIT") or DEFAULT_BODY_LIMIT)
            self._invoker = _Invoker()
            self._routes = self._build_routes()
            for spec in self.specs:
                if spec.trigger_type == "queueTrigger":
                    self._listeners.append(_QueueListener(self, spec))
                elif spec.trigger_type == "blobTrigger" and self.singletons:
                    self._listeners.append(_BlobListener(self, spec))
                elif spec.trigger_type == "timerTrigger" and self.singletons:
                    self._listeners.append(_TimerRunner(self, spec))
            slots = sum(
                (lst.batch + lst.threshold) if isinstance(lst, _QueueListener) else lst.limit
                for lst in self._listeners
                if isinstance(lst, (_QueueListener, _BlobListener))
            )
            self._host_pool = concurrent.futures.ThreadPoolExecutor(slots + 2, thread_name_prefix="host")
            handler = type("Handler", (_HttpHandler,), {"localhost": self})
            self._server = _HttpServer((self.bind_host, self.port), handler, reuse_port=self.reuse_port)
            self.port = self._server.server_address[1]
            for listener in self._listeners:
                listener.start()
            self._server_thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="http-accept", daemon=True
            )
            self._server_thread.start()
        except BaseException:
            self.stop()
            raise
        log.info("Functions host listening on %s (%d functions)", self.base_url, len(self.specs))
        for line in self.describe():
            log.info("  %s", line)

    def stop(self) -> None:
        """Stop taking work, let in-flight invocations finish and commit, then close everything."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        if self._server is not None and self._server_thread is not None:
            self._server.shutdown()  # no new connections
            if self.reuse_port:
                # Leave the port's group now: the kernel then sends new connections to the other
                # workers, instead of queueing them on a socket nobody will accept from again.
                self._server.socket.close()
        for listener in self._listeners:
            if listener.thread.is_alive():
                listener.thread.join(timeout=self.config.function_timeout)
        if hasattr(self, "_host_pool"):
            self._host_pool.shutdown(wait=True)  # queue/blob handlers: finish, delete or release
        with self._http_cond:
            self._http_cond.wait_for(lambda: self._http_busy == 0, timeout=self.config.function_timeout)
        with self._conns_lock:
            idle = list(self._conns)
        for conn in idle:  # wake keep-alive connections waiting for a next request
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._server is not None:
            self._server.server_close()
        if hasattr(self, "_invoker"):
            self._invoker.close()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}

    def describe(self) -> list[str]:
        """One line per function, like Core Tools prints at start-up."""
        lines = []
        for spec in self.specs:
            if spec.trigger_type == "httpTrigger":
                route = next(r for r in self._routes if r.spec is spec)
                methods = ",".join(sorted(route.methods)) if route.methods else "*"
                lines.append(f"{spec.name}: [{methods}] {self.base_url}/{route.template.template}")
            elif spec.trigger_type == "eventGridTrigger":
                lines.append(
                    f"{spec.name}: eventGridTrigger {self.base_url}/runtime/webhooks/eventgrid?functionName={spec.name}"
                )
            elif spec.trigger_type in ("blobTrigger", "timerTrigger") and not self.singletons:
                lines.append(f"{spec.name}: {spec.trigger_type} (not in this process: it runs in worker 0)")
            else:
                lines.append(f"{spec.name}: {spec.trigger_type}")
        return lines

    # ----------------------------------------------------------------- helpers for triggers

    def _connection(self, name: str | None) -> str:
        setting = name or "AzureWebJobsStorage"
        for candidate in (setting, f"AzureWebJobs{setting}"):
            value = os.environ.get(candidate)
            if value:
                return value
        raise RuntimeError(f"connection setting {setting!r} is not set (a storage connection string is needed locally)")

    def _host_storage(self, fallback: str) -> str:
        return os.environ.get("AzureWebJobsStorage") or fallback  # noqa: SIM112 - the host's own name

    def _connection_opened(self, conn: socket.socket) -> None:
        with self._conns_lock:
            self._conns.add(conn)

    def _connection_closed(self, conn: socket.socket) -> None:
        with self._conns_lock:
            self._conns.discard(conn)

    @contextlib.contextmanager
    def _http_request(self) -> Iterator[None]:
        with self._http_cond:
            self._http_busy += 1
        try:
            yield
        finally:
            with self._http_cond:
                self._http_busy -= 1
                self._http_cond.notify_all()

    def _build_routes(self) -> list[_HttpRoute]:
        routes = []
        for spec in self.specs:
            if spec.trigger_type != "httpTrigger":
                continue
            route = spec.trigger.route if spec.trigger.route is not None else spec.name
            route = _resolve(route).strip("/")
            full = f"{self.config.route_prefix}/{route}".strip("/") if self.config.route_prefix else route
            methods = spec.trigger.methods
            allowed = frozenset(str(getattr(m, "value", m)).upper() for m in methods) if methods else None
            routes.append(_HttpRoute(spec, RouteTemplate(full), allowed))
        routes.sort(key=lambda r: r.template.precedence)  # stable: registration order breaks ties
        return routes

    # ----------------------------------------------------------------- HTTP dispatch

    def _handle_http(self, method: str, target: str, headers: Any, body: bytes) -> HttpAnswer:
        split = urllib.parse.urlsplit(target)
        path = urllib.parse.unquote(split.path or "/")
        lowered = path.lower().rstrip("/")
        if lowered == "/runtime/webhooks/eventgrid":
            return self._eventgrid(method, split.query, headers, body)
        if lowered == "/admin/host/status" and method == "GET":
            return _json_answer(200, {"id": self.host_id, "state": "Running"})
        if lowered.startswith("/admin/functions/") and method == "POST":
            return self._admin_invoke(path.rsplit("/", 1)[-1], body)
        for route in self._routes:
            values = route.template.match(path)
            if values is None or (route.methods is not None and method not in route.methods):
                continue
            return self._invoke_http(route, method, split, headers, values, body)
        return HttpAnswer(404)  # the real host answers 404 for an unknown route and for a wrong method

    def _invoke_http(
        self,
        route: _HttpRoute,
        method: str,
        split: urllib.parse.SplitResult,
        headers: Any,
        values: dict[str, str],
        body: bytes,
    ) -> HttpAnswer:
        merged: dict[str, str] = {}
        for name, value in headers.items():
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        params: dict[str, str] = {}
        for name, value in urllib.parse.parse_qsl(split.query, keep_blank_values=True):
            params[name] = f"{params[name]},{value}" if name in params else value
        authority = headers.get("Host") or f"{self.bind_host}:{self.port}"
        url = f"http://{authority}{split.path}" + (f"?{split.query}" if split.query else "")
        request = _WorkerHttpRequest(
            method=method,
            url=url,
            headers=merged,
            params=params,
            route_params=values,
            body_type="bytes",
            body=body,
        )
        outcome = self._invoker.run(route.spec, request)
        answer = self._http_answer(route.spec, outcome)
        detail = f"{method} /{route.template.template} -> {answer.status}"
        _log_outcome(route.spec, outcome, detail)
        return answer

    def _http_answer(self, spec: FunctionSpec, outcome: Outcome) -> HttpAnswer:
        if not outcome.ok:
            return HttpAnswer(500)  # no stack trace, no message: it is logged instead
        value = outcome.value
        if value is None:
            return HttpAnswer(204)
        if isinstance(value, (str, bytes)):
            text = value if isinstance(value, bytes) else value.encode("utf-8")
            return HttpAnswer(200, [("Content-Type", "text/plain; charset=utf-8")], text)
        try:
            datum = HttpResponseConverter.encode(value, expected_type=None)
        except (NotImplementedError, TypeError):
            log.error("function %s returned a %s, not an HttpResponse", spec.name, type(value).__name__)
            return HttpAnswer(500)
        resp = datum.value
        out = [(name, str(h.value)) for name, h in resp["headers"].items()]
        for cookie in resp["cookies"] or []:
            out.extend(("Set-Cookie", _set_cookie(morsel)) for morsel in cookie.values())
        return HttpAnswer(int(resp["status_code"].value), out, resp["body"].value or b"")

    def _admin_invoke(self, name: str, body: bytes) -> HttpAnswer:
        """POST /admin/functions/NAME {"input": ...}: run a non-HTTP function now, as Core Tools allows."""
        spec = next((s for s in self.specs if s.name.lower() == name.lower()), None)
        if spec is None:
            return HttpAnswer(404)
        try:
            payload = json.loads(body or b"{}")
            text = str(payload.get("input") or "")
        except (ValueError, AttributeError):
            return HttpAnswer(400)
        if spec.trigger_type == "timerTrigger":
            info = {"Schedule": {"AdjustForDST": True}, "ScheduleStatus": {}, "IsPastDue": False}
            arg = _convert(spec, Datum(json.dumps(info), "json"))
        elif spec.trigger_type == "queueTrigger":
            meta = {"Id": Datum(str(uuid.uuid4()), "string"), "DequeueCount": Datum(1, "int")}
            arg = _convert(spec, Datum(text.encode("utf-8"), "bytes"), meta)
        else:
            return HttpAnswer(400)

        def run() -> None:
            _log_outcome(spec, self._invoker.run(spec, arg), "admin")

        self._host_pool.submit(run)
        return HttpAnswer(202)

    def _eventgrid(self, method: str, query: str, headers: Any, body: bytes) -> HttpAnswer:
        if method == "OPTIONS":  # CloudEvents webhook validation (abuse protection)
            origin = headers.get("WebHook-Request-Origin")
            if not origin:
                return HttpAnswer(400)
            return HttpAnswer(200, [("WebHook-Allowed-Origin", origin), ("WebHook-Allowed-Rate", "*")])
        if method != "POST":
            return HttpAnswer(404)
        name = dict(urllib.parse.parse_qsl(query)).get("functionName", "")
        spec = next(
            (s for s in self.specs if s.trigger_type == "eventGridTrigger" and s.name.lower() == name.lower()),
            None,
        )
        if spec is None:
            return HttpAnswer(404)
        try:
            events = json.loads(body)
        except ValueError:
            return HttpAnswer(400)
        if isinstance(events, dict):
            events = [events]
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            return HttpAnswer(400)
        kind = (headers.get("aeg-event-type") or "Notification").lower()
        if kind == "subscriptionvalidation":
            for event in events:
                if event.get("eventType") == "Microsoft.EventGrid.SubscriptionValidationEvent":
                    code = (event.get("data") or {}).get("validationCode")
                    return _json_answer(200, {"validationResponse": code})
            return HttpAnswer(400)
        if kind == "unsubscribe":
            return HttpAnswer(202)
        if kind != "notification":
            return HttpAnswer(400)
        failed = False
        for event in events:
            try:
                arg = _convert(spec, Datum(json.dumps(event), "json"))
            except (ValueError, TypeError, KeyError):
                return HttpAnswer(400)
            outcome = self._invoker.run(spec, arg)
            _log_outcome(spec, outcome, f"eventgrid event={event.get('id')}")
            failed = failed or not outcome.ok
        return HttpAnswer(500 if failed else 202)  # 500 makes Event Grid retry


def _set_cookie(morsel: Any) -> str:
    """A Set-Cookie value from the worker's parsed cookie, written as the host writes it (value unquoted)."""
    parts = [f"{morsel.key}={morsel.value}"]
    for attr, label in (
        ("expires", "expires"),
        ("max-age", "max-age"),
        ("domain", "domain"),
        ("path", "path"),
        ("samesite", "samesite"),
    ):
        if morsel[attr]:
            parts.append(f"{label}={morsel[attr]}")
    parts.extend(flag for flag in ("secure", "httponly") if morsel[flag])
    return "; ".join(parts)


def _host_id() -> str:
    """The host id used in receipt paths: the setting when present, else from the machine's name."""
    configured = os.environ.get("AzureFunctionsWebHost__hostid")  # noqa: SIM112 - the host's own name
    if configured:
        return configured
    name = re.sub(r"[^a-z0-9-]", "", socket.gethostname().lower())[:32].strip("-")
    return name or "localhost"


# --------------------------------------------------------------------------- command line


def _find_app(module: Any) -> Any:
    from azure.functions.decorators.function_app import FunctionRegister

    for value in vars(module).values():
        if isinstance(value, FunctionRegister):
            return value
    raise RuntimeError(f"{module.__name__} defines no FunctionApp")


MAX_PROCESSES = 10  # the real host's ceiling for FUNCTIONS_WORKER_PROCESS_COUNT
# A crashed worker is restarted after this pause (the real host also waits before restarting a
# language worker), so a worker that dies at once does not spin the CPU.
RESTART_DELAY = 1.0
# A worker that dies this many times in a row before it listens will not start at all (a broken
# app, a port in use by someone else): the host gives up rather than retry forever.
START_FAILURES_BEFORE_GIVING_UP = 3
LOG_FORMAT = "%(asctime)s %(levelname)s {tag}%(name)s: %(message)s"


def _process_count(text: str) -> int:
    """A worker process count, 1 to MAX_PROCESSES (argparse type; also checks the environment's value)."""
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_PROCESSES:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_PROCESSES}, not {text!r}")
    return count


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devstack.host", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=None, help="HTTP port (default ENCLOSE_FUNCTIONS_PORT or 7071)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--app", default="function_app", help="module holding the FunctionApp")
    parser.add_argument("--settings", type=Path, default=ROOT / "local.settings.json")
    parser.add_argument("--host-json", type=Path, default=ROOT / "host.json")
    parser.add_argument(
        "--processes",
        type=_process_count,
        default=None,
        metavar="N",
        help=f"worker processes sharing the port, 1 to {MAX_PROCESSES} "
        "(default FUNCTIONS_WORKER_PROCESS_COUNT, else 1)",
    )
    # Set by the supervisor of a multi-process host on the workers it starts; not for people.
    parser.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """`python -m devstack.host`: serve function_app with local.settings.json until Ctrl-C.

    With `--processes N` (N > 1) this process becomes a supervisor of N workers, each this command
    with `--worker-index`, as FUNCTIONS_WORKER_PROCESS_COUNT gives the real host N Python workers.
    """
    from devstack.ports import Ports

    parser = _parser()
    args = parser.parse_args(argv)
    # Like Core Tools: local.settings.json fills in what the environment does not already set.
    for key, value in load_local_settings(args.settings).items():
        os.environ.setdefault(key, value)
    port = args.port if args.port is not None else Ports.from_env().functions
    processes = args.processes
    if processes is None:
        configured = os.environ.get("FUNCTIONS_WORKER_PROCESS_COUNT") or "1"
        try:
            processes = _process_count(configured)
        except argparse.ArgumentTypeError as exc:
            parser.error(f"FUNCTIONS_WORKER_PROCESS_COUNT {exc}")

    if args.worker_index is not None:
        tag = f"[worker {args.worker_index}] "  # several workers share one log: say whose line it is
    elif processes > 1:
        tag = "[supervisor] "
    else:
        tag = ""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT.format(tag=tag))
    logging.getLogger("azure").setLevel(logging.WARNING)  # the SDK logs every request at INFO
    if args.worker_index is None and processes > 1:
        if port == 0:
            port = _free_port(args.host)  # the workers must agree on one port
        command = [
            sys.executable,
            "-m",
            "devstack.host",
            "--port",
            str(port),
            "--host",
            args.host,
            "--app",
            args.app,
            "--settings",
            str(args.settings.resolve()),
            "--host-json",
            str(args.host_json.resolve()),
        ]
        stop_timeout = 2 * HostConfig.load(args.host_json).function_timeout + 30
        return _Supervisor(command, processes, f"http://{args.host}:{port}", stop_timeout).run()
    return _serve(args, port)


def _serve(args: argparse.Namespace, port: int) -> int:
    """Run one LocalHost until SIGINT or SIGTERM: the whole host, or one worker of a multi-process host."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    worker = args.worker_index
    app = _find_app(importlib.import_module(args.app))
    host = LocalHost(
        app.get_functions(),
        port=port,
        host=args.host,
        host_json=args.host_json,
        singletons=worker is None or worker == 0,
        reuse_port=worker is not None,
    )
    # The handler only appends to a list: it runs between two bytecodes of the main thread, and a
    # second signal (os.killpg on the group, then the supervisor forwarding its own) must not find a
    # lock held, as Event.set() would inside Event.wait() and deadlock.
    requested: list[int] = []
    # Set both explicitly: a process started in the background by a shell inherits SIGINT ignored.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: requested.append(signum))
    host.start()
    if args.ready_fd is None:
        print(f"Functions host ready at {host.base_url}", flush=True)
    else:
        # A worker tells only its supervisor, which prints the one ready line once all listen.
        os.write(args.ready_fd, b"1")
        os.close(args.ready_fd)
    while not requested:
        time.sleep(0.2)
    log.info("Stopping: waiting for running invocations")
    host.stop()
    return 0


def _exit_reason(code: int) -> str:
    """`exit code 1` or `signal SIGKILL`, from a Popen return code."""
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"signal {signal.Signals(-code).name}"
    except ValueError:  # a real-time signal has no name
        return f"signal {-code}"


def _free_port(host: str) -> int:
    # For `--port 0`: the supervisor picks the port the workers share. Another process could take it
    # before the workers bind; then they fail to start and the host says so, which is fine locally.
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class _Worker:
    """One worker process of a multi-process host, as its supervisor tracks it."""

    index: int
    proc: subprocess.Popen[bytes] | None = None
    ready_fd: int | None = None  # the read end of the pipe the worker writes one byte to once it listens
    ready: bool = False
    start_failures: int = 0  # exits in a row before listening
    restart_at: float = 0.0


class _Supervisor:
    """`--processes N`: N workers on one port; forwards stop signals, restarts a worker that crashes.

    Single-threaded on purpose: PR_SET_PDEATHSIG fires when the *thread* that started a child ends,
    so every worker is started from the main thread, which lives as long as the supervisor.
    """

    def __init__(self, command: list[str], processes: int, base_url: str, stop_timeout: float) -> None:
        self.command = command
        self.base_url = base_url
        self.stop_timeout = stop_timeout
        self.workers = [_Worker(i) for i in range(processes)]
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

    def _spawn(self, worker: _Worker) -> None:
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

    def _read_ready(self, worker: _Worker) -> None:
        if worker.ready_fd is None:
            return
        try:
            data = os.read(worker.ready_fd, 16)
        except BlockingIOError:
            return
        worker.ready = worker.ready or bool(data)  # data: it listens; EOF without data: it died first
        os.close(worker.ready_fd)
        worker.ready_fd = None

    def _exited(self, worker: _Worker) -> bool:
        """Log a worker's unexpected exit and plan its restart; False if it keeps failing at start-up."""
        assert worker.proc is not None
        self._read_ready(worker)  # it may have listened just before it died
        pid, code = worker.proc.pid, worker.proc.returncode
        worker.proc = None
        worker.start_failures = 0 if worker.ready else worker.start_failures + 1
        worker.ready = False
        how = _exit_reason(code)
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


if __name__ == "__main__":
    raise SystemExit(main())
