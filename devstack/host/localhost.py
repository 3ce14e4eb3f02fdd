"""The host itself: `LocalHost` starts the triggers and the HTTP server, routes requests, and stops gracefully."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import os
import re
import socket
import threading
import urllib.parse
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from azure.functions.http import HttpRequest as _WorkerHttpRequest
from azure.functions.http import HttpResponseConverter
from azure.functions.meta import Datum

from devstack.host.blob_trigger import BlobListener
from devstack.host.config import DEFAULT_BODY_LIMIT, HostConfig, resolve_setting
from devstack.host.discovery import FunctionSpec, convert, discover
from devstack.host.eventgrid import eventgrid_webhook
from devstack.host.http_server import HttpAnswer, HttpHandler, HttpRoute, HttpServer, json_answer
from devstack.host.invocation import Invoker, Outcome, log_outcome
from devstack.host.queue_trigger import QueueListener
from devstack.host.routes import RouteTemplate
from devstack.host.timer_trigger import TimerRunner

# One logger for the whole package, under the name the host has always logged as: a worker's lines
# read "[worker N] devstack.host: ...", and tests and people filter on that name.
log = logging.getLogger("devstack.host")
#: How a worker that ran past `functionTimeout` exits (the supervisor restarts it, as Azure does).
TIMEOUT_EXIT_CODE = 75


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
        exit_on_timeout: bool = False,
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
        self.exit_on_timeout = exit_on_timeout
        self.host_id = host_id_from_env()
        self._stopping = threading.Event()
        self._saved_env: dict[str, str | None] = {}
        self._server: HttpServer | None = None
        self._server_thread: threading.Thread | None = None
        self._invoker: Invoker
        self._host_pool: concurrent.futures.ThreadPoolExecutor
        self._listeners: list[Any] = []
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self._http_busy = 0
        self._http_cond = threading.Condition()
        self._body_limit = DEFAULT_BODY_LIMIT
        self._routes: list[HttpRoute] = []
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
            self._invoker = Invoker(self.config.function_timeout, self._on_function_timeout)
            self._routes = self._build_routes()
            for spec in self.specs:
                if spec.trigger_type == "queueTrigger":
                    self._listeners.append(QueueListener(self, spec))
                elif spec.trigger_type == "blobTrigger" and self.singletons:
                    self._listeners.append(BlobListener(self, spec))
                elif spec.trigger_type == "timerTrigger" and self.singletons:
                    self._listeners.append(TimerRunner(self, spec))
            slots = sum(
                (lst.batch + lst.threshold) if isinstance(lst, QueueListener) else lst.limit
                for lst in self._listeners
                if isinstance(lst, (QueueListener, BlobListener))
            )
            self._host_pool = concurrent.futures.ThreadPoolExecutor(slots + 2, thread_name_prefix="host")
            handler = type("Handler", (HttpHandler,), {"localhost": self})
            self._server = HttpServer((self.bind_host, self.port), handler, reuse_port=self.reuse_port)
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

    def _on_function_timeout(self, spec: Any, invocation_id: str) -> None:
        """An invocation ran past `functionTimeout`. Azure restarts the worker process then, ending every
        invocation in it; a worker of a multi-process host does so by exiting (its supervisor starts a
        new one). A single in-process host cannot stop a running thread: the invocation has failed
        (HTTP 500, a queue message retried) but its thread runs on, which Azure would not allow."""
        if self.exit_on_timeout:
            for handler in logging.getLogger().handlers + log.handlers:
                handler.flush()
            os._exit(TIMEOUT_EXIT_CODE)

    def _build_routes(self) -> list[HttpRoute]:
        routes = []
        for spec in self.specs:
            if spec.trigger_type != "httpTrigger":
                continue
            route = spec.trigger.route if spec.trigger.route is not None else spec.name
            route = resolve_setting(route).strip("/")
            full = f"{self.config.route_prefix}/{route}".strip("/") if self.config.route_prefix else route
            methods = spec.trigger.methods
            allowed = frozenset(str(getattr(m, "value", m)).upper() for m in methods) if methods else None
            routes.append(HttpRoute(spec, RouteTemplate(full), allowed))
        # No precedence sort: Azure's host tries routes in the order they were added
        # (azure-functions-extensions' WebJobsRouteBuilder keeps a List<Route>), so a parameter route
        # registered before a literal one takes its requests. The app's routes are checked to be
        # unambiguous (tests/unit/test_function_app_routes.py), so it is right in any order.
        return routes

    # ----------------------------------------------------------------- HTTP dispatch

    def _handle_http(self, method: str, target: str, headers: Any, body: bytes) -> HttpAnswer:
        split = urllib.parse.urlsplit(target)
        path = urllib.parse.unquote(split.path or "/")
        lowered = path.lower().rstrip("/")
        if lowered == "/runtime/webhooks/eventgrid":
            return eventgrid_webhook(self.specs, self._invoker, method, split.query, headers, body)
        if lowered == "/admin/host/status" and method == "GET":
            return json_answer(200, {"id": self.host_id, "state": "Running"})
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
        route: HttpRoute,
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
        log_outcome(route.spec, outcome, detail)
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
            out.extend(("Set-Cookie", set_cookie(morsel)) for morsel in cookie.values())
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
            arg = convert(spec, Datum(json.dumps(info), "json"))
        elif spec.trigger_type == "queueTrigger":
            meta = {"Id": Datum(str(uuid.uuid4()), "string"), "DequeueCount": Datum(1, "int")}
            arg = convert(spec, Datum(text.encode("utf-8"), "bytes"), meta)
        else:
            return HttpAnswer(400)

        def run() -> None:
            log_outcome(spec, self._invoker.run(spec, arg), "admin")

        self._host_pool.submit(run)
        return HttpAnswer(202)


def set_cookie(morsel: Any) -> str:
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


def host_id_from_env() -> str:
    """The host id used in receipt paths: the setting when present, else from the machine's name."""
    configured = os.environ.get("AzureFunctionsWebHost__hostid")  # noqa: SIM112 - the host's own name
    if configured:
        return configured
    name = re.sub(r"[^a-z0-9-]", "", socket.gethostname().lower())[:32].strip("-")
    return name or "localhost"
