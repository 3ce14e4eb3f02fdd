"""The two listeners' HTTP plumbing: the ACS API handler (https) and the inbox and control handler (http)."""

from __future__ import annotations

import json
import logging
import socket
import socketserver
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from devstack.sms_emulator.api import Cut, Hangup, error
from devstack.sms_emulator.controls import parse_delivery_override, parse_fault, parse_principals, parse_repeats
from devstack.sms_emulator.inbox import render_inbox

if TYPE_CHECKING:
    from devstack.sms_emulator.emulator import SmsEmulator

# The emulator has always logged as "devstack.sms_emulator": every module keeps that one name.
log = logging.getLogger("devstack.sms_emulator")


MAX_BODY_BYTES = 1024 * 1024


class Server(ThreadingHTTPServer):
    """A threading HTTP(S) server that knows its emulator; TLS handshakes run on the request threads."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], handler: type, emulator: SmsEmulator, tls: ssl.SSLContext | None = None
    ) -> None:
        self.emulator = emulator
        self._tls = tls
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would look up the host's FQDN, which can stall without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self._tls is not None:
            # Handshake later, on the connection's own thread, so one slow client cannot stall accept().
            sock = self._tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients going away mid-request (and the drop/timeout faults) are normal here.
        log.debug("connection ended with an error: %r", sys.exc_info()[1])


class _Handler(BaseHTTPRequestHandler):
    """Shared plumbing: keep-alive HTTP/1.1, JSON replies, connection tracking, quiet logs."""

    protocol_version = "HTTP/1.1"
    server_version = "EncloseSmsEmulator/1.0"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this
    # Buffer the answer so headers and body leave in one segment (the base class flushes after
    # each request): two small writes would meet Nagle and delayed ACKs and cost ~40 ms each.
    wbufsize = 64 * 1024
    server: Server

    def setup(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()
        self.server.emulator._track(self.request)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.emulator._untrack(self.request)

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines carry paths only (no numbers or text), and only at debug level.
        log.debug("%s %s", self.address_string(), format % args)

    def read_body(self) -> bytes | None:
        """The request body, or None after answering 411/413 (the connection is then closed)."""
        length = self.headers.get("Content-Length")
        if length is None:
            if self.headers.get("Transfer-Encoding"):
                self.close_connection = True
                self.send_json(411, error("LengthRequired", "Content-Length is required."))
                return None
            return b""
        try:
            size = int(length)
        except ValueError:
            size = -1
        if not 0 <= size <= MAX_BODY_BYTES:
            self.close_connection = True
            self.send_json(413, error("RequestEntityTooLarge", "The request body is too large."))
            return None
        return self.rfile.read(size)

    def send_body(
        self, status: int, body: bytes, content_type: str | None, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        if status == 204:
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps(data).encode("utf-8")
        self.send_body(status, body, "application/json; charset=utf-8", headers)

    def hang_up(self, seconds: float) -> None:
        """Answer nothing; wait (unless the emulator stops), then close the connection."""
        if seconds > 0:
            self.server.emulator._stopping.wait(seconds)
        self.close_connection = True
        try:
            self.request.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class ApiHandler(_Handler):
    """The ACS SMS API: `POST /sms?api-version=...`."""

    def do_POST(self) -> None:
        body = self.read_body()
        if body is None:
            return
        outcome = self.server.emulator._handle_send(self.path, self.headers, body)
        if isinstance(outcome, Hangup):
            self.hang_up(outcome.seconds)
            return
        if isinstance(outcome, Cut):
            self.send_response(202)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(outcome.body)))
            self.end_headers()
            self.wfile.write(outcome.body[: len(outcome.body) // 2])
            self.wfile.flush()
            self.hang_up(0)
            return
        request_id = self.headers.get("x-ms-client-request-id")
        headers = dict(outcome.headers)
        if request_id and self.headers.get("x-ms-return-client-request-id", "").lower() == "true":
            headers["x-ms-client-request-id"] = request_id
        headers["api-supported-versions"] = "2021-03-07"
        if outcome.body is None:  # an answer without a body, as ACS gives some 404s
            self.send_body(outcome.status, b"", None, headers)
            return
        self.send_json(outcome.status, outcome.body, headers)

    def do_GET(self) -> None:
        self.send_json(404, error("NotFound", "Resource not found."))

    do_PUT = do_DELETE = do_PATCH = do_GET


class InboxHandler(_Handler):
    """The inbox (`/`, `/messages`) and the controls (`/control/faults`, `/control/delivery`)."""

    def do_GET(self) -> None:
        emulator = self.server.emulator
        path = urlsplit(self.path).path
        if path == "/":
            page = render_inbox(emulator.messages).encode("utf-8")
            self.send_body(
                200,
                page,
                "text/html; charset=utf-8",
                {
                    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
                    "Referrer-Policy": "no-referrer",
                },
            )
        elif path == "/messages":
            self.send_json(200, emulator.messages)
        elif path == "/control/faults":
            self.send_json(200, emulator.pending_faults())
        elif path == "/control/delivery":
            self.send_json(200, emulator.pending_delivery_outcomes())
        elif path == "/control/repeats":
            self.send_json(200, emulator.repeats())
        elif path == "/control/identity":
            self.send_json(200, emulator.identity())
        else:
            self.send_json(404, error("NotFound", "No such page."))

    def do_POST(self) -> None:
        body = self.read_body()
        if body is None:
            return
        path = urlsplit(self.path).path
        if path not in ("/control/faults", "/control/delivery", "/control/repeats", "/control/identity"):
            self.send_json(404, error("NotFound", "No such control."))
            return
        emulator = self.server.emulator
        try:
            spec = json.loads(body or b"null")
            if path == "/control/faults":
                created = emulator.add_fault(parse_fault(spec)).as_json()
            elif path == "/control/delivery":
                created = emulator.add_delivery_outcome(parse_delivery_override(spec)).as_json()
            elif path == "/control/identity":
                emulator.allow_principals(parse_principals(spec))
                self.send_json(200, emulator.identity())
                return
            else:
                emulator.configure_repeats(*parse_repeats(spec))
                self.send_json(200, emulator.repeats())
                return
        except ValueError as exc:  # json.JSONDecodeError is a ValueError too
            self.send_json(400, error("BadRequest", str(exc)))
            return
        self.send_json(201, created)

    def do_DELETE(self) -> None:
        emulator = self.server.emulator
        path = urlsplit(self.path).path
        if path == "/messages":
            emulator.clear_messages()
        elif path == "/control/faults":
            emulator.clear_faults()
        elif path == "/control/delivery":
            emulator.clear_delivery_outcomes()
        elif path == "/control/repeats":
            emulator.reset_repeat_stats()
        else:
            self.send_json(404, error("NotFound", "No such resource."))
            return
        self.send_json(204, None)
