"""`SmsEmulator`: its state (inbox, repeatability ids, faults, delivery outcomes), life cycle and the send itself."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import random
import socket
import ssl
import threading
import time
import uuid
from datetime import datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from devstack.identity import identity_key
from devstack.localsecrets import LocalSecrets
from devstack.ports import Ports
from devstack.sms_emulator.api import (
    E164,
    FROM_PROBLEM,
    MALFORMED_FROM,
    Cut,
    Hangup,
    Reply,
    error,
    failed_item,
    fault_reply,
    request_problem,
)
from devstack.sms_emulator.auth import bearer_refusal, check_signature, iso, parse_http_date, utc_now
from devstack.sms_emulator.controls import DeliveryOverride, Fault
from devstack.sms_emulator.delivery import REPORT_CASINGS, DeliveryReporter, event_grid_url, report_posts
from devstack.sms_emulator.repeats import REPEAT_MODES, Recorded, RepeatStats
from devstack.sms_emulator.server import ApiHandler, InboxHandler, Server

# The emulator has always logged as "devstack.sms_emulator": every module keeps that one name.
log = logging.getLogger("devstack.sms_emulator")


class SmsEmulator:
    """The ACS SMS API (https) and the inbox/control listener (http), run on background threads."""

    @classmethod
    def for_local_stack(cls, secrets: LocalSecrets, ports: Ports, **options: Any) -> Self:
        """The emulator of a local stack: its ports, its key and certificate from `secrets`, and
        delivery reports posted to that stack's Functions host (`options` may override any of it)."""
        settings: dict[str, Any] = {
            "api_port": ports.sms_api,
            "inbox_port": ports.sms_inbox,
            "access_key": secrets.value("sms-access-key"),
            "cert_file": secrets.sms_cert,
            "key_file": secrets.sms_key,
            "event_grid_url": event_grid_url(ports.functions),
            "identity_key": identity_key(secrets.root),
        }
        return cls(**{**settings, **options})

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
        report_casing: str = "camel",
        repeat_mode: str = "replay",
        in_progress_seconds: float = 0.0,
        late_report_share: float = 0.0,
        late_report_seconds: float = 0.0,
        seed: int | None = None,
        identity_key: bytes | None = None,
    ) -> None:
        """Configure; nothing listens until `start()`.

        `access_key` is the base64 key of the connection string. `repeatability_window_seconds`
        is how long ACS tracks a repeatability id: a recipient whose `repeatabilityFirstSent` is
        older is rejected with 412 and not sent. `report_casing` spells the delivery reports' fields
        (`delivery.REPORT_CASINGS`: camelCase, as Event Grid's schema, by default). `repeat_mode` and
        `in_progress_seconds`: see `configure_repeats`. A `late_report_share` of the delivery reports
        (drawn at random, from `seed`) comes `late_report_seconds` after the send instead of
        `delivery_delay_seconds`. With `identity_key`, a request may also authenticate as ACS allows
        a Microsoft Entra ID identity to: `Authorization: Bearer` with a token from the local managed-
        identity endpoint (`devstack.identity`) for ACS's resource; any other token is refused (401), and
        one for a principal not allowed on the resource (`allow_principals`) is forbidden (403).
        """
        if report_casing not in REPORT_CASINGS:
            raise ValueError(f"report_casing must be one of {', '.join(REPORT_CASINGS)}")
        if not 0.0 <= late_report_share <= 1.0:
            raise ValueError("late_report_share must be from 0 to 1")
        self._report_casing = report_casing
        self._lock = threading.Lock()
        self._repeat_mode = "replay"
        self._in_progress = 0.0
        self.configure_repeats(repeat_mode, in_progress_seconds)
        self._stats = RepeatStats()
        self._late_share = late_report_share
        self._late_delay = late_report_seconds
        self._random = random.Random(seed)
        self._late_reports = 0
        self._identity_key = identity_key
        self._allowed_principals: frozenset[str] | None = None
        self._auth_counts = {"key": 0, "bearer": 0}
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
        self._messages: list[dict[str, Any]] = []
        self._repeats: dict[str, Recorded] = {}
        self._faults: list[Fault] = []
        self._outcomes: list[DeliveryOverride] = []
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._servers: list[Server] = []
        self._threads: list[threading.Thread] = []
        self._reporter: DeliveryReporter | None = None

    # --- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Listen on both ports and serve on background threads; returns once listening."""
        if self._servers:
            raise RuntimeError("already started")
        self._stopping.clear()
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.minimum_version = ssl.TLSVersion.TLSv1_2
        tls.load_cert_chain(self._cert_file, self._key_file)
        api = Server((self._host, self._api_port), ApiHandler, self, tls)
        try:
            inbox = Server((self._host, self._inbox_port), InboxHandler, self)
        except OSError:
            api.server_close()
            raise
        self._servers = [api, inbox]
        if self._event_grid_url:
            self._reporter = DeliveryReporter(self._event_grid_url, self._delivery_delay)
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

    def configure_repeats(self, mode: str, in_progress_seconds: float = 0.0) -> None:
        """How a repeat of a recorded request is answered (`REPEAT_MODES`), and how long ACS goes on
        handling a request after it took it: a repeat within `in_progress_seconds` of the first (or
        while a time-out fault still holds it) gets 409, "in progress"."""
        if mode not in REPEAT_MODES:
            raise ValueError(f"mode must be one of {', '.join(REPEAT_MODES)}")
        if not 0.0 <= in_progress_seconds <= 600:
            raise ValueError("in_progress_seconds must be from 0 to 600")
        with self._lock:
            self._repeat_mode, self._in_progress = mode, float(in_progress_seconds)
        log.info("repeats: %s, in progress for %gs", mode, in_progress_seconds)

    def repeats(self) -> dict[str, Any]:
        """The repeat settings and what repeats met so far."""
        with self._lock:
            return {
                "mode": self._repeat_mode,
                "inProgressSeconds": self._in_progress,
                **self._stats.as_json(),
                "lateReports": self._late_reports,
            }

    def reset_repeat_stats(self) -> None:
        """Zero the counts `repeats()` gives."""
        with self._lock:
            self._stats = RepeatStats()
            self._late_reports = 0

    def allow_principals(self, principals: list[str] | None) -> None:
        """Which managed identities hold a role on the resource (None: any whose token is genuine)."""
        with self._lock:
            self._allowed_principals = None if principals is None else frozenset(principals)

    def identity(self) -> dict[str, Any]:
        """Who may send with a token, and how many sends authenticated each way."""
        with self._lock:
            allowed = None if self._allowed_principals is None else sorted(self._allowed_principals)
            return {
                "acceptsTokens": self._identity_key is not None,
                "allowedPrincipals": allowed,
                "keySends": self._auth_counts["key"],
                "bearerSends": self._auth_counts["bearer"],
            }

    def _authenticate(self, target: str, headers: Message, body: bytes) -> Reply | None:
        """None when the request is signed with the access key or carries a token ACS would take; else the refusal."""
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        if scheme != "Bearer":
            reason = check_signature(
                method="POST", target=target, headers=headers, body=body, key=self._key, now=utc_now()
            )
            if reason is not None:
                log.info("send refused: 401 (%s)", reason)
                return Reply(401, error("Unauthorized", f"Denied: {reason}."), {"WWW-Authenticate": "HMAC-SHA256"})
            kind = "key"
        else:
            with self._lock:
                allowed = self._allowed_principals
            refused = bearer_refusal(self._identity_key, token.strip(), allowed)
            if refused is not None:
                return Reply(refused, error("Unauthorized" if refused == 401 else "Forbidden", ""), {})
            kind = "bearer"
        with self._lock:
            self._auth_counts[kind] += 1
        return None

    def _take_fault(self) -> Fault | None:
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.remaining -= 1
            if fault.remaining == 0:
                self._faults.pop(0)
            return fault

    def _take_outcome(self) -> DeliveryOverride:
        # Caller holds self._lock.
        if not self._outcomes:
            return DeliveryOverride("Delivered", "No error.", 1, 1)
        outcome = self._outcomes[0]
        outcome.remaining -= 1
        if outcome.remaining == 0:
            self._outcomes.pop(0)
        return outcome

    def _reports(
        self, message_id: str, sender: str, to: str, text: str, tag: str | None, outcome: DeliveryOverride
    ) -> list[tuple[dict[str, Any], float]]:
        """The Event Grid posts one accepted text leads to, in the order they arrive, each with its
        delay after the one before (the first: after the send)."""
        delay = self._delivery_delay if outcome.delay is None else outcome.delay
        if outcome.delay is None and self._late_share and self._random.random() < self._late_share:
            delay = self._late_delay
            self._late_reports += 1
        return report_posts(message_id, sender, to, text, tag, outcome, delay, self._report_casing)

    # --- the send ------------------------------------------------------------------------------

    def _handle_send(self, target: str, headers: Message, body: bytes) -> Reply | Hangup:
        split = urlsplit(target)
        if split.path != "/sms":
            return Reply(404, error("NotFound", "Resource not found."), {})
        refusal = self._authenticate(target, headers, body)
        if refusal is not None:
            return refusal
        if not parse_qs(split.query).get("api-version"):
            return Reply(400, error("MissingApiVersionParameter", "The api-version query parameter is required."), {})

        fault = self._take_fault()
        if fault is not None:
            log.info("fault %s applied (mode %s)", fault.id, fault.mode)
            if fault.mode == "item_status":
                return self._failed_items(body, fault)
            records_first = fault.mode in ("accept_then_status", "accept_then_cut") or fault.record
            if not records_first:
                if fault.mode == "status":
                    return fault_reply(fault)
                return Hangup(fault.seconds or 0.0)
            # What the request will be answered with, and how long ACS still holds it (a time-out).
            answered = fault.status if fault.mode == "accept_then_status" and fault.status else 202
            hold = (fault.seconds or 0.0) if fault.mode == "timeout" else 0.0
            outcome = self._send(body, answered=answered, hold=hold)
            if outcome.status != 202:
                return outcome
            if fault.mode == "accept_then_status":
                return fault_reply(fault)
            if fault.mode == "accept_then_cut":
                return Cut(json.dumps(outcome.body).encode("utf-8"))
            return Hangup(fault.seconds or 0.0)
        return self._send(body)

    def _parse(self, body: bytes) -> dict[str, Any] | Reply:
        """The send request, or the 400 ACS answers a malformed one with."""
        try:
            request = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            return Reply(400, error("BadRequest", "The request body is not valid JSON."), {})
        problem = request_problem(request)
        if problem == FROM_PROBLEM:
            return Reply(400, MALFORMED_FROM, {})
        if problem:
            return Reply(400, error("BadRequest", problem), {})
        return request

    def _failed_items(self, body: bytes, fault: Fault) -> Reply:
        """202, every recipient failed with the fault's status and nothing sent (a per-recipient 429 or 503)."""
        request = self._parse(body)
        if isinstance(request, Reply):
            return request
        assert fault.status is not None
        items = [
            failed_item(r.get("to"), fault.status, f"Emulated failure (fault {fault.id}).")
            for r in request["smsRecipients"]
        ]
        return Reply(202, {"value": items}, {})

    def _send(self, body: bytes, *, answered: int = 202, hold: float = 0.0) -> Reply:
        request = self._parse(body)
        if isinstance(request, Reply):
            return request
        sender, text = request["from"], request["message"]
        options = request.get("smsSendOptions") or {}
        wants_report = bool(options.get("enableDeliveryReport")) and self._reporter is not None
        tag = options.get("tag")
        now = utc_now()
        items, reports = [], []
        started = time.monotonic()
        for recipient in request["smsRecipients"]:
            item, posts = self._send_one(sender, text, recipient, wants_report, tag, now, answered, started, hold)
            items.append(item)
            if posts:
                reports.append(posts)
        for posts in reports:
            assert self._reporter is not None
            self._reporter.schedule_chain(posts)
        return Reply(202, {"value": items}, {})

    def _send_one(
        self,
        sender: str,
        text: str,
        recipient: dict[str, Any],
        wants_report: bool,
        tag: str | None,
        now: datetime,
        answered: int = 202,
        started: float = 0.0,
        hold: float = 0.0,
    ) -> tuple[dict[str, Any], list[tuple[dict[str, Any], float]]]:
        to = recipient.get("to")
        if not isinstance(to, str) or not E164.match(to):
            return failed_item(to, 400, "Invalid To phone number format."), []
        request_id = recipient.get("repeatabilityRequestId")
        key = fingerprint = None
        if request_id is not None:
            try:
                key = str(uuid.UUID(request_id)) if isinstance(request_id, str) and len(request_id) == 36 else None
            except ValueError:
                key = None
            if key is None:
                return failed_item(to, 400, "Invalid repeatabilityRequestId: a GUID is required.", "rejected"), []
            first_sent = recipient.get("repeatabilityFirstSent")
            if first_sent is not None:
                try:
                    first = parse_http_date(first_sent) if isinstance(first_sent, str) else None
                except ValueError:
                    first = None
                if first is None:
                    return failed_item(
                        to, 400, "Invalid repeatabilityFirstSent: an IMF-fixdate is required.", "rejected"
                    ), []
                if now - first > self._window:
                    log.info("repeatability id %s refused: first sent outside the tracked window", key)
                    return failed_item(to, 412, "repeatabilityFirstSent is outside the tracked window.", "rejected"), []
            fingerprint = hashlib.sha256(json.dumps([sender, to, text]).encode("utf-8")).hexdigest()

        with self._lock:
            if key is not None:
                previous = self._repeats.get(key)
                if previous is not None:
                    if previous.fingerprint != fingerprint:
                        log.info("repeatability id %s refused: it was used for a different request", key)
                        return failed_item(to, 400, "The repeated request does not match the original.", "rejected"), []
                    if time.monotonic() < max(previous.held_until, previous.started + self._in_progress):
                        self._stats.in_progress += 1
                        log.info("repeat of %s: the first request is still in progress (409)", key)
                        return failed_item(to, 409, "The original request is still in progress.", "accepted"), []
                    if not (self._repeat_mode == "reexecute" and previous.answered >= 500):
                        self._stats.replayed += 1
                        log.info("repeat of %s: original answer returned, nothing sent", previous.item["messageId"])
                        return dict(previous.item), []
                    # Re-executed, as Microsoft's page says of a repeat of a request answered 5xx: a second text.
                    self._stats.reexecuted += 1
                    log.info("repeat of %s: the first was answered %d, so it is executed again", key, previous.answered)
            message_id = f"Outgoing_{now:%Y%m%d%H%M%S}{uuid.uuid4()}"
            item = {"to": to, "messageId": message_id, "httpStatusCode": 202, "successful": True}
            if key is not None:
                item["repeatabilityResult"] = "accepted"
                self._repeats[key] = Recorded(fingerprint or "", dict(item), answered, started, started + hold)
            self._messages.append({"id": message_id, "from": sender, "to": to, "message": text, "receivedAt": iso(now)})
            outcome = self._take_outcome() if wants_report else None
        log.info("accepted %s", message_id)
        if outcome is None:
            return item, []
        return item, self._reports(message_id, sender, to, text, tag, outcome)
