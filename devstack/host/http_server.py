"""The HTTP server: HTTP/1.1 parsing (keep-alive, chunked bodies dropped as in Azure, body limits), framing."""

from __future__ import annotations

import email.utils
import json
import logging
import socket
import socketserver
import sys
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from devstack.host.config import IDLE_CONNECTION_TIMEOUT
from devstack.host.discovery import FunctionSpec
from devstack.host.routes import RouteTemplate

if TYPE_CHECKING:
    from devstack.host.localhost import LocalHost

# One logger for the whole package, under the name the host has always logged as: a worker's lines
# read "[worker N] devstack.host: ...", and tests and people filter on that name.
log = logging.getLogger("devstack.host")


@dataclass
class HttpAnswer:
    """A response on its way to the socket."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def json_answer(status: int, obj: Any) -> HttpAnswer:
    """An answer with a JSON body."""
    return HttpAnswer(status, [("Content-Type", "application/json; charset=utf-8")], json.dumps(obj).encode())


@dataclass
class HttpRoute:
    """An HTTP function with its full route template and allowed methods (None: any)."""

    spec: FunctionSpec
    template: RouteTemplate
    methods: frozenset[str] | None


class HttpHandler(BaseHTTPRequestHandler):
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
            except BodyError as exc:
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
                raise BodyError(501)
            # As Azure: the host hands an out-of-process worker an EMPTY body for a chunked request
            # (headers kept), azure-functions-host issues #4926 and #7930 ("chunked requests are not
            # currently supported for the OOP scenarios"). The chunks are read (bounded) only to
            # keep the connection's framing, then dropped; the app answers such a request 411.
            self._read_chunked(limit)
            return b""
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        if not length.strip().isdigit():
            raise BodyError(400)
        n = int(length)
        if n > limit:
            # As the real host: it puts FUNCTIONS_REQUEST_BODY_SIZE_LIMIT into Kestrel's MaxRequestBodySize
            # (azure-functions-host, src/WebJobs.Script.WebHost/Middleware/HttpRequestBodySizeMiddleware.cs),
            # and Kestrel answers 413 from the Content-Length alone. No byte of the body is read, and
            # the connection is closed so the unread body is never parsed as a request.
            raise BodyError(413)
        body = self.rfile.read(n)
        if len(body) != n:
            raise BodyError(400)
        return body

    def _read_chunked(self, limit: int) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BodyError(400) from None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers: nothing we use
                return b"".join(chunks)
            total += size
            if total > limit:
                raise BodyError(413)
            data = self.rfile.read(size)
            if len(data) != size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BodyError(400)
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


class BodyError(Exception):
    """A request body that cannot be read; `status` is the answer to give."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class HttpServer(ThreadingHTTPServer):
    """The listening socket: threads per connection, optional SO_REUSEPORT, no reverse DNS at bind."""

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
