"""A local stand-in for Azure Communication Services SMS, for the local stack and the tests.

Two listeners:

* the ACS SMS REST API (`POST /sms?api-version=...`) over https with the self-signed
  certificate from `.local/`, checking the HMAC-SHA256 signature `azure-communication-sms`
  sends, honouring each recipient's `repeatabilityRequestId`, answering in ACS's shape;
* an inbox on plain http: `GET /messages` (JSON, newest last), `GET /` (the same as a page),
  `DELETE /messages`, and the controls `/control/faults` and `/control/delivery`.

When a send asks for delivery reports, a `Microsoft.Communication.SMSDeliveryReportReceived`
Event Grid event is posted to the configured URL shortly afterwards, off the request thread.

Logs carry message ids only: never a number or a message text.
Run it alone with `python -m devstack.sms_emulator`.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import html
import itertools
import json
import logging
import re
import socket
import socketserver
import ssl
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import urllib3

log = logging.getLogger(__name__)

REQUIRED_SIGNED_HEADERS = ("x-ms-date", "host", "x-ms-content-sha256")
# Azure's usual tolerance for a request's clock against the service's.
MAX_CLOCK_SKEW = timedelta(minutes=15)
MAX_RECIPIENTS = 100
MAX_BODY_BYTES = 1024 * 1024
DELIVERY_EVENT_TYPE = "Microsoft.Communication.SMSDeliveryReportReceived"
DELIVERY_STATUSES = ("Delivered", "Failed")
# status: answer an error; timeout: answer nothing for a while; drop: close the connection;
# accept_then_status / accept_then_cut: record the text, then answer an error / break the 202
# answer off half-way (timeout and drop record it first with "record": true).
FAULT_MODES = ("status", "timeout", "accept_then_status", "drop", "accept_then_cut")
TOPIC = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/enclose-local"
    "/providers/microsoft.communication/communicationservices/sms-emulator"
)

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
# An alphanumeric sender ID: up to 11 letters, digits and spaces, at least one letter.
_ALPHA_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_URL = re.compile(r"https?://[^\s<>\"']+")


def event_grid_url(functions_port: int, host: str = "127.0.0.1") -> str:
    """Where the local Functions host takes the `delivery_report` Event Grid trigger."""
    return f"http://{host}:{functions_port}/runtime/webhooks/eventgrid?functionName=delivery_report"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def _parse_http_date(value: str) -> datetime:
    """An IMF-fixdate (`Mon, 01 Apr 2019 06:22:03 GMT`) as an aware datetime; ValueError if not one."""
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError) as exc:
        raise ValueError("not an HTTP date") from exc
    if moment is None:
        raise ValueError("not an HTTP date")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def check_signature(
    *, method: str, target: str, headers: Message, body: bytes, key: bytes, now: datetime
) -> str | None:
    """Check an ACS HMAC-SHA256 request signature; None if good, else why not (no secrets in it).

    The string to sign is `VERB\\n<path?query>\\n<signed header values joined by ';'>`, as the
    SDK's `HMACCredentialsPolicy` builds it; `x-ms-content-sha256` must also be the body's hash,
    or a body could be swapped under a valid signature.
    """
    scheme, _, params = (headers.get("Authorization") or "").partition(" ")
    if scheme != "HMAC-SHA256":
        return "no HMAC-SHA256 Authorization header"
    fields = dict(part.partition("=")[::2] for part in params.split("&"))
    signed = [name.strip().lower() for name in fields.get("SignedHeaders", "").split(";") if name.strip()]
    if not set(REQUIRED_SIGNED_HEADERS) <= set(signed):
        return "x-ms-date, host and x-ms-content-sha256 must be signed"
    values = []
    for name in signed:
        value = headers.get(name)
        if value is None:
            return f"signed header {name} is missing"
        values.append(value)
    try:
        sent = _parse_http_date(headers["x-ms-date"])
    except ValueError:
        return "x-ms-date is not an HTTP date"
    if abs(now - sent) > MAX_CLOCK_SKEW:
        return "x-ms-date is too far from the current time"
    if not hmac.compare_digest(headers["x-ms-content-sha256"].encode("latin-1"), _b64_sha256(body).encode()):
        return "x-ms-content-sha256 does not match the body"
    string_to_sign = f"{method}\n{target}\n{';'.join(values)}"
    expected = base64.b64encode(hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).digest())
    if not hmac.compare_digest(fields.get("Signature", "").encode("latin-1"), expected):
        return "signature does not match"
    return None


@dataclass
class Fault:
    """One pending fault: how the next `remaining` sends misbehave."""

    id: str
    mode: str
    count: int
    remaining: int
    status: int | None = None
    seconds: float | None = None
    record: bool = False
    retry_after: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The fault as `GET /control/faults` shows it."""
        return {
            "id": self.id,
            "mode": self.mode,
            "status": self.status,
            "count": self.count,
            "remaining": self.remaining,
            "seconds": self.seconds,
            "record": self.record,
            "retryAfter": self.retry_after,
        }


def _int_field(spec: dict[str, Any], name: str, default: int | None, low: int, high: int) -> int | None:
    value = spec.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}")
    return value


def parse_fault(spec: Any) -> Fault:
    """A `Fault` from a `POST /control/faults` body; ValueError says what is wrong with it."""
    if not isinstance(spec, dict):
        raise ValueError("a fault is a JSON object")
    unknown = set(spec) - {"mode", "status", "count", "seconds", "record", "retryAfter"}
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    mode = spec.get("mode", "status")
    if mode not in FAULT_MODES:
        raise ValueError(f"mode must be one of {', '.join(FAULT_MODES)}")
    count = _int_field(spec, "count", 1, 1, 1_000_000)
    assert count is not None
    fault = Fault(id=uuid.uuid4().hex, mode=mode, count=count, remaining=count)
    allowed = {"mode", "count"}
    if mode in ("status", "accept_then_status"):
        allowed |= {"status", "retryAfter"}
        if mode == "status" and "status" not in spec:
            raise ValueError("status is required")
        fault.status = _int_field(spec, "status", 500, 400, 599)
        fault.retry_after = _int_field(spec, "retryAfter", 1 if fault.status == 429 else None, 0, 3600)
    else:
        allowed |= {"record"} | ({"seconds"} if mode == "timeout" else set())
        record = spec.get("record", False)
        if not isinstance(record, bool):
            raise ValueError("record must be true or false")
        fault.record = record
        if mode == "timeout":
            seconds = spec.get("seconds", 30)
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= 600:
                raise ValueError("seconds must be a number above 0 and at most 600")
            fault.seconds = float(seconds)
    extra = set(spec) - allowed
    if extra:
        raise ValueError(f"not used by mode {mode}: {', '.join(sorted(extra))}")
    return fault


@dataclass
class DeliveryOverride:
    """The outcome of the next `remaining` delivery reports."""

    status: str
    details: str
    count: int
    remaining: int

    def as_json(self) -> dict[str, Any]:
        """The override as `GET /control/delivery` shows it."""
        return {"status": self.status, "details": self.details, "count": self.count, "remaining": self.remaining}


def parse_delivery_override(spec: Any) -> DeliveryOverride:
    """A `DeliveryOverride` from a `POST /control/delivery` body; ValueError if malformed."""
    if not isinstance(spec, dict):
        raise ValueError("a delivery outcome is a JSON object")
    unknown = set(spec) - {"status", "details", "count"}
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    status = spec.get("status")
    if status not in DELIVERY_STATUSES:
        raise ValueError(f"status must be one of {', '.join(DELIVERY_STATUSES)}")
    details = spec.get("details", "No error." if status == "Delivered" else "Delivery failed.")
    if not isinstance(details, str) or len(details) > 500:
        raise ValueError("details must be a string of at most 500 characters")
    count = _int_field(spec, "count", 1, 1, 1_000_000)
    assert count is not None
    return DeliveryOverride(status=status, details=details, count=count, remaining=count)


@dataclass
class _Repeat:
    fingerprint: str
    item: dict[str, Any]


@dataclass
class _Reply:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class _Cut:
    """Start the 202 answer, then break it off half-way through the body."""

    body: bytes


@dataclass
class _Hangup:
    """Answer nothing: wait `seconds`, then close the connection."""

    seconds: float = 0.0


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _failed_item(to: Any, status: int, message: str, repeatability: str | None = None) -> dict[str, Any]:
    return {
        "to": to if isinstance(to, str) else "",
        "messageId": None,
        "httpStatusCode": status,
        "errorMessage": message,
        "repeatabilityResult": repeatability,
        "successful": False,
    }


def _segments(text: str) -> int:
    from shared_code.sms_text import measure

    return measure(text).segments


class _DeliveryReporter:
    """Posts delivery report events after a delay, retrying while the receiver is not up."""

    # Seconds before each retry; Event Grid retries too, on a longer schedule.
    RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0)
    # Event Grid does not retry these answers.
    FINAL_STATUSES = (400, 401, 403, 413)

    def __init__(self, url: str, delay: float) -> None:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError("the Event Grid URL must be http(s)")
        self._url = url
        self._delay = delay
        self._heap: list[tuple[float, int, dict[str, Any], int]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sms-delivery")
        # Kept-alive connections, as Event Grid keeps them to a subscriber; never through a
        # proxy (urllib3 reads no proxy settings): the receiver is always local.
        self._http = urllib3.PoolManager(maxsize=4, retries=False, timeout=10)
        self._thread = threading.Thread(target=self._run, name="sms-delivery-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify_all()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def schedule(self, event: dict[str, Any], delay: float | None = None, attempt: int = 0) -> None:
        due = time.monotonic() + (self._delay if delay is None else delay)
        with self._cond:
            if self._stopped:
                return
            heapq.heappush(self._heap, (due, next(self._seq), event, attempt))
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._cond.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                if self._stopped:
                    return
                _, _, event, attempt = heapq.heappop(self._heap)
            try:
                self._pool.submit(self._post, event, attempt)
            except RuntimeError:  # the pool was shut down by stop()
                return

    def _post(self, event: dict[str, Any], attempt: int) -> None:
        status: int | None
        try:
            response = self._http.request(
                "POST",
                self._url,
                body=json.dumps([event]).encode("utf-8"),
                headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "aeg-event-type": "Notification",
                    "aeg-subscription-name": "SMS-EMULATOR",
                    "aeg-delivery-count": str(attempt),
                    "aeg-data-version": event["dataVersion"],
                    "aeg-metadata-version": event["metadataVersion"],
                },
            )
            status = response.status
        except urllib3.exceptions.HTTPError:
            status = None
        message_id = event["data"]["MessageId"]
        if status is not None and 200 <= status < 300:
            log.info("delivery report posted for %s (%s)", message_id, event["data"]["DeliveryStatus"])
            return
        if status in self.FINAL_STATUSES or attempt >= len(self.RETRY_DELAYS):
            log.warning("delivery report for %s not taken (last answer %s); giving up", message_id, status)
            return
        log.info("delivery report for %s not taken (answer %s); retrying", message_id, status)
        self.schedule(event, self.RETRY_DELAYS[attempt], attempt + 1)


class _Server(ThreadingHTTPServer):
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
    server: _Server

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
                self.send_json(411, _error("LengthRequired", "Content-Length is required."))
                return None
            return b""
        try:
            size = int(length)
        except ValueError:
            size = -1
        if not 0 <= size <= MAX_BODY_BYTES:
            self.close_connection = True
            self.send_json(413, _error("RequestEntityTooLarge", "The request body is too large."))
            return None
        return self.rfile.read(size)

    def send_body(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
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


class _ApiHandler(_Handler):
    """The ACS SMS API: `POST /sms?api-version=...`."""

    def do_POST(self) -> None:
        body = self.read_body()
        if body is None:
            return
        outcome = self.server.emulator._handle_send(self.path, self.headers, body)
        if isinstance(outcome, _Hangup):
            self.hang_up(outcome.seconds)
            return
        if isinstance(outcome, _Cut):
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
        self.send_json(outcome.status, outcome.body, headers)

    def do_GET(self) -> None:
        self.send_json(404, _error("NotFound", "Resource not found."))

    do_PUT = do_DELETE = do_PATCH = do_GET


class _InboxHandler(_Handler):
    """The inbox (`/`, `/messages`) and the controls (`/control/faults`, `/control/delivery`)."""

    def do_GET(self) -> None:
        emulator = self.server.emulator
        path = urlsplit(self.path).path
        if path == "/":
            page = _render_inbox(emulator.messages).encode("utf-8")
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
        else:
            self.send_json(404, _error("NotFound", "No such page."))

    def do_POST(self) -> None:
        body = self.read_body()
        if body is None:
            return
        path = urlsplit(self.path).path
        if path not in ("/control/faults", "/control/delivery"):
            self.send_json(404, _error("NotFound", "No such control."))
            return
        try:
            spec = json.loads(body or b"null")
            if path == "/control/faults":
                created = self.server.emulator.add_fault(parse_fault(spec)).as_json()
            else:
                created = self.server.emulator.add_delivery_outcome(parse_delivery_override(spec)).as_json()
        except ValueError as exc:  # json.JSONDecodeError is a ValueError too
            self.send_json(400, _error("BadRequest", str(exc)))
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
        else:
            self.send_json(404, _error("NotFound", "No such resource."))
            return
        self.send_json(204, None)


def _linkify(text: str) -> str:
    """`text` as HTML with every http(s) URL a link; everything escaped."""
    out, pos = [], 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(".,;:!?)]}")
        out.append(html.escape(text[pos : match.start()]))
        out.append(f'<a href="{html.escape(url, quote=True)}" rel="noreferrer">{html.escape(url)}</a>')
        pos = match.start() + len(url)
    out.append(html.escape(text[pos:]))
    return "".join(out)


def _render_inbox(messages: list[dict[str, Any]]) -> str:
    rows = "\n".join(
        "<tr>"
        f"<td>{html.escape(m['receivedAt'])}</td><td>{html.escape(m['from'])}</td>"
        f'<td>{html.escape(m["to"])}</td><td class="text">{_linkify(m["message"])}</td>'
        f"<td><code>{html.escape(m['id'])}</code></td>"
        "</tr>"
        for m in messages
    )
    empty = "" if messages else '<p class="empty">No messages yet.</p>'
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>SMS emulator inbox</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border-bottom: 1px solid #ccc; padding: .4rem .6rem; text-align: left; vertical-align: top; }}
td.text {{ white-space: pre-wrap; overflow-wrap: anywhere; }}
</style>
</head>
<body>
<h1>SMS emulator inbox</h1>
<p>{len(messages)} message(s), newest last. <a href="/">Refresh</a> · <a href="/messages">JSON</a></p>
{empty}
<table>
<thead><tr><th>Received</th><th>From</th><th>To</th><th>Message</th><th>Id</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
</body>
</html>
"""


class SmsEmulator:
    """The ACS SMS API (https) and the inbox/control listener (http), run on background threads."""

    def __init__(
        self,
        *,
        api_port: int,
        inbox_port: int,
        access_key: str,
        cert_file: Path,
        key_file: Path,
        event_grid_url: str | None = None,
        delivery_delay_seconds: float = 0.2,
        host: str = "127.0.0.1",
        repeatability_window_seconds: float = 300.0,
    ) -> None:
        """Configure; nothing listens until `start()`.

        `access_key` is the base64 key of the connection string. `repeatability_window_seconds`
        is how long ACS tracks a repeatability id: a recipient whose `repeatabilityFirstSent` is
        older is rejected with 412 and not sent.
        """
        self._key = base64.b64decode(access_key, validate=True)
        if event_grid_url is not None and urlsplit(event_grid_url).scheme not in ("http", "https"):
            raise ValueError("event_grid_url must be an http(s) URL")
        self._access_key = access_key
        self._api_port = api_port
        self._inbox_port = inbox_port
        self._cert_file = Path(cert_file)
        self._key_file = Path(key_file)
        self._event_grid_url = event_grid_url
        self._delivery_delay = delivery_delay_seconds
        self._host = host
        self._window = timedelta(seconds=repeatability_window_seconds)
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []
        self._repeats: dict[str, _Repeat] = {}
        self._faults: list[Fault] = []
        self._outcomes: list[DeliveryOverride] = []
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self._reporter: _DeliveryReporter | None = None

    # --- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Listen on both ports and serve on background threads; returns once listening."""
        if self._servers:
            raise RuntimeError("already started")
        self._stopping.clear()
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.minimum_version = ssl.TLSVersion.TLSv1_2
        tls.load_cert_chain(self._cert_file, self._key_file)
        api = _Server((self._host, self._api_port), _ApiHandler, self, tls)
        try:
            inbox = _Server((self._host, self._inbox_port), _InboxHandler, self)
        except OSError:
            api.server_close()
            raise
        self._servers = [api, inbox]
        if self._event_grid_url:
            self._reporter = _DeliveryReporter(self._event_grid_url, self._delivery_delay)
            self._reporter.start()
        for server, name in ((api, "sms-api"), (inbox, "sms-inbox")):
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
            )
            thread.start()
            self._threads.append(thread)
        log.info("SMS emulator listening: api %s, inbox %s", self.api_url, self.inbox_url)

    def stop(self) -> None:
        """Stop listening, end open connections and pending delivery reports. Safe to call twice."""
        self._stopping.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        with self._lock:
            connections = list(self._connections)
        for sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(timeout=5)
        if self._reporter is not None:
            self._reporter.stop()
        self._servers, self._threads, self._reporter = [], [], None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.add(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.discard(sock)

    # --- addresses -----------------------------------------------------------------------------

    def _port(self, index: int, configured: int) -> int:
        return self._servers[index].server_address[1] if self._servers else configured

    @property
    def api_url(self) -> str:
        """The ACS endpoint, e.g. `https://127.0.0.1:7443`."""
        return f"https://{self._host}:{self._port(0, self._api_port)}"

    @property
    def inbox_url(self) -> str:
        """The inbox and control base URL, e.g. `http://127.0.0.1:7072`."""
        return f"http://{self._host}:{self._port(1, self._inbox_port)}"

    @property
    def connection_string(self) -> str:
        """An ACS connection string for this emulator."""
        return f"endpoint={self.api_url}/;accesskey={self._access_key}"

    # --- inbox and controls --------------------------------------------------------------------

    @property
    def messages(self) -> list[dict]:
        """Delivered messages `{"id", "from", "to", "message", "receivedAt"}`, newest last (a copy)."""
        with self._lock:
            return [dict(m) for m in self._messages]

    def clear_messages(self) -> None:
        """Empty the inbox (repeatability ids are kept: a repeat still never delivers)."""
        with self._lock:
            self._messages.clear()

    def add_fault(self, fault: Fault) -> Fault:
        """Queue a fault; faults are used up in the order added."""
        with self._lock:
            self._faults.append(fault)
        log.info("fault %s added: mode %s, status %s, count %d", fault.id, fault.mode, fault.status, fault.count)
        return fault

    def pending_faults(self) -> list[dict[str, Any]]:
        """Faults not yet used up."""
        with self._lock:
            return [f.as_json() for f in self._faults]

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._faults.clear()

    def add_delivery_outcome(self, outcome: DeliveryOverride) -> DeliveryOverride:
        """Make the next `outcome.count` delivery reports carry this status."""
        with self._lock:
            self._outcomes.append(outcome)
        return outcome

    def pending_delivery_outcomes(self) -> list[dict[str, Any]]:
        """Delivery outcomes not yet used up."""
        with self._lock:
            return [o.as_json() for o in self._outcomes]

    def clear_delivery_outcomes(self) -> None:
        """Back to every report saying Delivered."""
        with self._lock:
            self._outcomes.clear()

    def _take_fault(self) -> Fault | None:
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.remaining -= 1
            if fault.remaining == 0:
                self._faults.pop(0)
            return fault

    def _take_outcome(self) -> tuple[str, str]:
        # Caller holds self._lock.
        if not self._outcomes:
            return "Delivered", "No error."
        outcome = self._outcomes[0]
        outcome.remaining -= 1
        if outcome.remaining == 0:
            self._outcomes.pop(0)
        return outcome.status, outcome.details

    # --- the send ------------------------------------------------------------------------------

    def _handle_send(self, target: str, headers: Message, body: bytes) -> _Reply | _Hangup:
        split = urlsplit(target)
        if split.path != "/sms":
            return _Reply(404, _error("NotFound", "Resource not found."), {})
        reason = check_signature(
            method="POST", target=target, headers=headers, body=body, key=self._key, now=_utc_now()
        )
        if reason is not None:
            log.info("send refused: 401 (%s)", reason)
            return _Reply(401, _error("Unauthorized", f"Denied: {reason}."), {"WWW-Authenticate": "HMAC-SHA256"})
        if not parse_qs(split.query).get("api-version"):
            return _Reply(400, _error("MissingApiVersionParameter", "The api-version query parameter is required."), {})

        fault = self._take_fault()
        if fault is not None:
            log.info("fault %s applied (mode %s)", fault.id, fault.mode)
            records_first = fault.mode in ("accept_then_status", "accept_then_cut") or fault.record
            if not records_first:
                if fault.mode == "status":
                    return self._fault_reply(fault)
                return _Hangup(fault.seconds or 0.0)
            outcome = self._send(body)
            if outcome.status != 202:
                return outcome
            if fault.mode == "accept_then_status":
                return self._fault_reply(fault)
            if fault.mode == "accept_then_cut":
                return _Cut(json.dumps(outcome.body).encode("utf-8"))
            return _Hangup(fault.seconds or 0.0)
        return self._send(body)

    @staticmethod
    def _fault_reply(fault: Fault) -> _Reply:
        assert fault.status is not None
        headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
        code = "TooManyRequests" if fault.status == 429 else "ServiceError"
        return _Reply(fault.status, _error(code, f"Emulated failure (fault {fault.id})."), headers)

    def _send(self, body: bytes) -> _Reply:
        try:
            request = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            return _Reply(400, _error("BadRequest", "The request body is not valid JSON."), {})
        problem = _request_problem(request)
        if problem:
            return _Reply(400, _error("BadRequest", problem), {})
        sender, text = request["from"], request["message"]
        options = request.get("smsSendOptions") or {}
        wants_report = bool(options.get("enableDeliveryReport")) and self._reporter is not None
        tag = options.get("tag")
        now = _utc_now()
        items, reports = [], []
        for recipient in request["smsRecipients"]:
            item, report = self._send_one(sender, text, recipient, wants_report, tag, now)
            items.append(item)
            if report is not None:
                reports.append(report)
        for event in reports:
            assert self._reporter is not None
            self._reporter.schedule(event)
        return _Reply(202, {"value": items}, {})

    def _send_one(
        self, sender: str, text: str, recipient: dict[str, Any], wants_report: bool, tag: str | None, now: datetime
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        to = recipient.get("to")
        if not isinstance(to, str) or not _E164.match(to):
            return _failed_item(to, 400, "Invalid To phone number format."), None
        request_id = recipient.get("repeatabilityRequestId")
        key = fingerprint = None
        if request_id is not None:
            try:
                key = str(uuid.UUID(request_id)) if isinstance(request_id, str) and len(request_id) == 36 else None
            except ValueError:
                key = None
            if key is None:
                return _failed_item(to, 400, "Invalid repeatabilityRequestId: a GUID is required.", "rejected"), None
            first_sent = recipient.get("repeatabilityFirstSent")
            if first_sent is not None:
                try:
                    first = _parse_http_date(first_sent) if isinstance(first_sent, str) else None
                except ValueError:
                    first = None
                if first is None:
                    return _failed_item(
                        to, 400, "Invalid repeatabilityFirstSent: an IMF-fixdate is required.", "rejected"
                    ), None
                if now - first > self._window:
                    log.info("repeatability id %s refused: first sent outside the tracked window", key)
                    return _failed_item(
                        to, 412, "repeatabilityFirstSent is outside the tracked window.", "rejected"
                    ), None
            fingerprint = hashlib.sha256(json.dumps([sender, to, text]).encode("utf-8")).hexdigest()

        with self._lock:
            if key is not None:
                previous = self._repeats.get(key)
                if previous is not None:
                    if previous.fingerprint != fingerprint:
                        log.info("repeatability id %s refused: it was used for a different request", key)
                        return _failed_item(
                            to, 400, "The repeated request does not match the original.", "rejected"
                        ), None
                    log.info("repeat of %s: original answer returned, nothing sent", previous.item["messageId"])
                    return dict(previous.item), None
            message_id = f"Outgoing_{now:%Y%m%d%H%M%S}{uuid.uuid4()}"
            item = {"to": to, "messageId": message_id, "httpStatusCode": 202, "successful": True}
            if key is not None:
                item["repeatabilityResult"] = "accepted"
                self._repeats[key] = _Repeat(fingerprint or "", dict(item))
            self._messages.append(
                {"id": message_id, "from": sender, "to": to, "message": text, "receivedAt": _iso(now)}
            )
            outcome = self._take_outcome() if wants_report else None
        log.info("accepted %s", message_id)
        if outcome is None:
            return item, None
        return item, self._delivery_event(message_id, sender, to, text, tag, outcome)

    def _delivery_event(
        self, message_id: str, sender: str, to: str, text: str, tag: str | None, outcome: tuple[str, str]
    ) -> dict[str, Any]:
        status, details = outcome
        reported = _utc_now() + timedelta(seconds=self._delivery_delay)
        segments = _segments(text)
        delivered = status == "Delivered"
        data: dict[str, Any] = {
            "MessageId": message_id,
            # ACS's sample events give From without the '+' and To with it.
            "From": sender.lstrip("+"),
            "To": to,
            "DeliveryStatus": status,
            "DeliveryStatusDetails": details,
            "ReceivedTimestamp": _iso(reported),
            "DeliveryAttempts": [
                {
                    "Timestamp": _iso(reported - timedelta(milliseconds=50)),
                    "SegmentsSucceeded": segments if delivered else 0,
                    "SegmentsFailed": 0 if delivered else segments,
                }
            ],
        }
        if tag is not None:
            data["Tag"] = tag
        return {
            "id": message_id,
            "topic": TOPIC,
            "subject": f"/phonenumber/{sender.lstrip('+')}",
            "data": data,
            "eventType": DELIVERY_EVENT_TYPE,
            "dataVersion": "1.0",
            "metadataVersion": "1",
            "eventTime": _iso(reported),
        }


def _request_problem(request: Any) -> str | None:
    """What makes a send request malformed as a whole (ACS answers 400), or None."""
    if not isinstance(request, dict):
        return "The request body must be a JSON object."
    sender = request.get("from")
    if not isinstance(sender, str) or not (_E164.match(sender) or _ALPHA_SENDER.match(sender)):
        return "Invalid From phone number format."
    message = request.get("message")
    if not isinstance(message, str) or not message:
        return "Message is required."
    recipients = request.get("smsRecipients")
    if not isinstance(recipients, list) or not recipients or not all(isinstance(r, dict) for r in recipients):
        return "smsRecipients must list at least one recipient."
    if len(recipients) > MAX_RECIPIENTS:
        return f"At most {MAX_RECIPIENTS} recipients are allowed."
    options = request.get("smsSendOptions")
    if options is not None:
        if not isinstance(options, dict):
            return "smsSendOptions must be an object."
        if not isinstance(options.get("enableDeliveryReport", False), bool):
            return "enableDeliveryReport must be true or false."
        if options.get("tag") is not None and not isinstance(options["tag"], str):
            return "tag must be a string."
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the emulator in the foreground on the local stack's ports until Ctrl-C or SIGTERM."""
    import argparse
    import signal

    from devstack.localsecrets import DEFAULT_LOCAL_DIR, ensure_local_secrets
    from devstack.ports import Ports

    parser = argparse.ArgumentParser(prog="python -m devstack.sms_emulator", description=__doc__.splitlines()[0])
    parser.add_argument("--local-dir", type=Path, default=DEFAULT_LOCAL_DIR, help="where the local secrets live")
    parser.add_argument("--delivery-delay", type=float, default=0.2, help="seconds before a delivery report")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    ports = Ports.from_env()
    secrets = ensure_local_secrets(args.local_dir)
    emulator = SmsEmulator(
        api_port=ports.sms_api,
        inbox_port=ports.sms_inbox,
        access_key=secrets.value("sms-access-key"),
        cert_file=secrets.sms_cert,
        key_file=secrets.sms_key,
        event_grid_url=event_grid_url(ports.functions),
        delivery_delay_seconds=args.delivery_delay,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    emulator.start()
    print(f"SMS emulator API (ACS):  {emulator.api_url}", flush=True)
    print(f"SMS emulator inbox:      {emulator.inbox_url}/", flush=True)
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
