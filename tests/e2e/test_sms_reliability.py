"""SMS that arrives exactly once, proved through the HTTP API under load, faults and a killed host.

Azurite and the SMS emulator run in this test process and stand for the cloud (Azure Storage
and ACS survive when a Functions host dies); the local Functions host (`python -m devstack.host`)
is a child process in its own process group, which the kill test SIGKILLs and starts again on
the same ports and data.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from devstack.azurite import azurite_binary, start_azurite
from devstack.localsecrets import ensure_local_secrets, local_settings
from devstack.ports import Ports, wait_for_port
from devstack.sms_emulator import SmsEmulator, parse_delivery_override, parse_fault
from shared_code import clock
from shared_code.settings import load_settings
from tests.support.components import missing
from tests.support.stack import ROOT, RunningStack, sample_pdf

FINAL = {"sent", "delivered"}
#: The sender's limit for these tests: high enough to finish quickly, low enough to pace.
RATE_PER_MINUTE = 6000
#: A short time-out, so that time-out faults cost seconds, not minutes (SMS_TIMEOUT_SECONDS).
SMS_TIMEOUT_SECONDS = 2
#: Tries per message: with 20% of sends failing, five failures in a row for one of a thousand
#: messages is likely enough (0.2^5 x 1000 = 0.3) to make a flaky test; eight is not (0.003).
MAX_ATTEMPTS = 8
#: Each kind of fault ACS (or the network) can produce, taken in turn.
FAULT_KINDS = (
    {"mode": "status", "status": 429, "retryAfter": 1},
    {"mode": "status", "status": 500},
    {"mode": "status", "status": 503},
    {"mode": "timeout"},  # no answer: ACS did not take it
    {"mode": "timeout", "record": True},  # no answer: ACS took it
    {"mode": "accept_then_status", "status": 500},  # ACS took it, then answered 500
    {"mode": "drop"},  # the connection dropped before ACS took it
    {"mode": "drop", "record": True},  # ... after ACS took it
    {"mode": "accept_then_cut"},  # ACS took it, then its answer broke off half-way
)


class HostOnlyStack(RunningStack):
    """The local Functions host as a child process; storage and the emulator are the test's own."""

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child writes to it
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devstack.host",
                "--port",
                str(self.ports.functions),
                "--settings",
                str(self.local_dir / "no-local-settings.json"),
                "--host-json",
                str(ROOT / "host.json"),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for_port(self.ports.functions, timeout=120)
        except TimeoutError:
            self.stop(signal.SIGKILL)
            raise RuntimeError("the host did not start:\n" + self.log_path.read_text()[-4000:]) from None


@dataclass
class Reliability:
    """The stack under test and its parts."""

    host: HostOnlyStack
    emulator: SmsEmulator
    timeout_seconds: float

    def headers(self) -> dict[str, str]:
        return self.host.auth()


@pytest.fixture(scope="module")
def reliability(tmp_path_factory: pytest.TempPathFactory, clamd_address: str) -> Iterator[Reliability]:
    if azurite_binary() is None:
        missing("Azurite", "run `npm ci` (make test does)")
    ports = Ports.free()
    local_dir = tmp_path_factory.mktemp("reliability") / ".local"
    secrets = ensure_local_secrets(local_dir)
    azurite = start_azurite(local_dir / "azurite", ports)
    emulator = SmsEmulator.for_local_stack(secrets, ports, delivery_delay_seconds=0.2)
    emulator.start()
    values = {
        **local_settings(secrets, ports),
        "CLAMD_ADDRESS": clamd_address,
        "SMS_RATE_PER_MINUTE": str(RATE_PER_MINUTE),
        "SMS_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        "SMS_TIMEOUT_SECONDS": str(SMS_TIMEOUT_SECONDS),
        # One practice sends the whole run: its own sending limits are not what is tested here.
        "ORG_SMS_PER_MINUTE": "1000000",
        "ORG_DAILY_SMS_QUOTA": "10000000",
    }
    timeout = float(load_settings(values).sms_timeout_seconds)
    env = {**os.environ, **ports.env(), **values, "ENCLOSE_LOCAL_DIR": str(local_dir)}
    host = HostOnlyStack(ports, local_dir, local_dir.parent / "host.log", env=env)
    try:
        host.start()
        yield Reliability(host, emulator, timeout)
    finally:
        host.stop()
        emulator.stop()
        azurite.terminate()
        azurite.wait(timeout=10)


@pytest.fixture
def sms_stack(reliability: Reliability) -> Iterator[Reliability]:
    """The module's stack with no faults or delivery outcomes left over."""
    reliability.emulator.clear_faults()
    reliability.emulator.clear_delivery_outcomes()
    yield reliability
    reliability.emulator.clear_faults()
    reliability.emulator.clear_delivery_outcomes()


@pytest.fixture(scope="module")
def attachment_id(reliability: Reliability) -> str:
    """One clean attachment that many messages refer to."""
    upload = reliability.host.upload(sample_pdf("Letter"), "letter.pdf")
    assert upload.status_code == 202, upload.text
    doc = reliability.host.wait_attachment(upload.json()["id"])
    assert doc["status"] == "clean", doc
    return doc["id"]


def _mobile(i: int) -> str:
    """A drama-range mobile (never a real person), typed as a practice might type it."""
    forms = ("07700 900{:03d}", "+44 7700 900{:03d}", "447700900{:03d}", "(07700) 900-{:03d}")
    return forms[i % len(forms)].format(i % 1000)


def _e164(i: int) -> str:
    return f"+447700900{i % 1000:03d}"


def _payload(attachment_id: str, body: str, mobile: str, **extra) -> dict:
    return {
        "patient": {"nhsNumber": "9434765919", "dateOfBirth": "1970-01-31", "mobile": mobile},
        "body": body,
        "attachmentIds": [attachment_id],
        **extra,
    }


def _texts_with(emulator: SmsEmulator, marker: str) -> list[dict]:
    return [m for m in emulator.messages if marker in m["message"]]


def _wait_until(predicate, timeout: float, what: str, interval: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


class FaultFeeder:
    """Keeps one fault pending whenever fewer than `share` of the sends so far have failed, taking
    the kinds in turn, until `total` faults were injected: faults spread over the whole run."""

    def __init__(self, emulator: SmsEmulator, marker: str, total: int, share: float, timeout_seconds: float) -> None:
        self.emulator = emulator
        self.marker = marker
        self.total = total
        self.share = share
        self.injected: Counter[str] = Counter()
        self._kinds = itertools.cycle(FAULT_KINDS)
        self._timeout = timeout_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> FaultFeeder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def count(self) -> int:
        return sum(self.injected.values())

    def _run(self) -> None:
        while not self._stop.is_set() and self.count < self.total:
            accepted = len(_texts_with(self.emulator, self.marker))
            if not self.emulator.pending_faults() and self.count < self.share / (1 - self.share) * accepted + 1:
                kind = dict(next(self._kinds))
                if kind["mode"] == "timeout":
                    kind["seconds"] = self._timeout + 1  # longer than the client waits
                self.emulator.add_fault(parse_fault(kind))
                self.injected[f"{kind['mode']} {kind.get('status', '')}{' record' if kind.get('record') else ''}"] += 1
            self._stop.wait(0.02)


def _create_all(stack: Reliability, attachment_id: str, marker: str, n: int, **extra) -> dict[int, str]:
    """Create n messages concurrently through the API (each with its own Idempotency-Key); id by index."""
    headers = stack.headers()
    local = threading.local()

    def create(i: int) -> tuple[int, str]:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        body = _payload(attachment_id, f"Reliability {marker} #{i:04d}.", _mobile(i), **extra)
        reply = session.post(
            f"{stack.host.base_url}/api/v1/messages",
            json=body,
            headers={**headers, "Idempotency-Key": f"{marker}-{i}"},
            timeout=60,
        )
        assert reply.status_code == 202, reply.text
        return i, reply.json()["id"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(create, range(n)))


def _statuses(stack: Reliability, ids: dict[int, str]) -> dict[int, dict]:
    headers = stack.headers()

    def get(item: tuple[int, str]) -> tuple[int, dict]:
        i, message_id = item
        reply = requests.get(f"{stack.host.base_url}/api/v1/messages/{message_id}", headers=headers, timeout=30)
        assert reply.status_code == 200, reply.text
        return i, reply.json()

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(get, ids.items()))


def _wait_for_texts(stack: Reliability, marker: str, n: int, timeout: float, stall: float = 45) -> None:
    """Until n texts arrived, or none arrived for `stall` seconds (the statuses then say why)."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while (count := len(_texts_with(stack.emulator, marker))) < n:
        now = time.monotonic()
        if count != last:
            last, since = count, now
        if now - since > stall or now > deadline:
            return
        time.sleep(0.25)


def _assert_exactly_once(stack: Reliability, marker: str, ids: dict[int, str], timeout: float) -> dict[int, dict]:
    """Every message's text arrived exactly once, to its own number, and every message is sent or delivered."""
    n = len(ids)
    _wait_for_texts(stack, marker, n, timeout)
    deadline = time.monotonic() + 60
    while True:  # delivery reports may still be on their way
        statuses = _statuses(stack, ids)
        pending = {i: doc for i, doc in statuses.items() if doc["status"] not in FINAL}
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(2)
    reasons = Counter(doc["failureReason"] for doc in pending.values())
    assert not pending, f"{len(pending)} messages not sent: {Counter(d['status'] for d in pending.values())}, {reasons}"
    texts = _texts_with(stack.emulator, marker)
    by_index = Counter(int(re.search(r"#(\d{4})\.", t["message"]).group(1)) for t in texts)
    twice = {i: c for i, c in by_index.items() if c > 1}
    assert not twice, f"{len(twice)} messages were texted more than once"
    assert len(texts) == n and set(by_index) == set(ids)
    for text in texts:
        i = int(re.search(r"#(\d{4})\.", text["message"]).group(1))
        assert text["to"] == _e164(i)
        assert re.fullmatch(
            rf"Reliability {marker} #{i:04d}\.\nhttp://127\.0\.0\.1:\d+/p/[A-Za-z0-9_-]+", text["message"]
        )
    return statuses


# -- the API's side of sending ----------------------------------------------------------------------


def test_the_same_idempotency_key_at_the_same_moment_makes_one_message_and_one_text(
    sms_stack: Reliability, attachment_id: str
) -> None:
    marker = uuid.uuid4().hex[:8]
    body = _payload(attachment_id, f"Idempotent {marker}", "07700 900321")
    headers = {**sms_stack.headers(), "Idempotency-Key": f"key-{marker}"}
    barrier = threading.Barrier(6)

    def post(_: int) -> requests.Response:
        barrier.wait()
        return requests.post(f"{sms_stack.host.base_url}/api/v1/messages", json=body, headers=headers, timeout=60)

    with ThreadPoolExecutor(max_workers=6) as pool:
        replies = list(pool.map(post, range(6)))
    assert {r.status_code for r in replies} == {202}
    assert len({r.json()["id"] for r in replies}) == 1
    _wait_until(lambda: _texts_with(sms_stack.emulator, marker), 60, "the text")
    time.sleep(1)  # room for a second text, were there one
    assert len(_texts_with(sms_stack.emulator, marker)) == 1
    other = requests.post(
        f"{sms_stack.host.base_url}/api/v1/messages",
        json={**body, "body": "Something else"},
        headers=headers,
        timeout=60,
    )
    assert other.status_code == 422


def test_numbers_in_common_forms_are_texted_in_e164_and_others_refused(
    sms_stack: Reliability, attachment_id: str
) -> None:
    marker = uuid.uuid4().hex[:8]
    sent = requests.post(
        f"{sms_stack.host.base_url}/api/v1/messages",
        headers=sms_stack.headers(),
        timeout=60,
        json=_payload(attachment_id, f"Forms {marker}", "(07700) 900–654"),
    )
    assert sent.status_code == 202, sent.text
    _wait_until(lambda: _texts_with(sms_stack.emulator, marker), 60, "the text")
    assert _texts_with(sms_stack.emulator, marker)[0]["to"] == "+447700900654"
    for refused in ("020 7946 0000", "0909 879 0000", "+33 6 12 34 56 78", "7700 900654"):
        reply = requests.post(
            f"{sms_stack.host.base_url}/api/v1/messages",
            headers=sms_stack.headers(),
            timeout=60,
            json=_payload(attachment_id, "x", refused),
        )
        assert reply.status_code == 422, refused
        assert [e["field"] for e in reply.json()["errors"]] == ["patient.mobile"]


def test_segments_and_encoding_are_reported_and_too_long_is_a_422(sms_stack: Reliability, attachment_id: str) -> None:
    url, headers = f"{sms_stack.host.base_url}/api/v1/messages", sms_stack.headers()
    gsm = requests.post(
        url, headers=headers, timeout=60, json=_payload(attachment_id, "Your letter {€}", "07700900001")
    )
    assert (gsm.json()["encoding"], gsm.json()["segments"]) == ("GSM-7", 1)
    ucs2 = requests.post(
        url,
        headers=headers,
        timeout=60,
        json=_payload(attachment_id, "Your letter is ready \u2013 see the link. " * 2, "07700900002"),
    )
    assert (ucs2.json()["encoding"], ucs2.json()["segments"]) == ("UCS-2", 2)
    too_long = requests.post(
        url, headers=headers, timeout=60, json=_payload(attachment_id, "\u00ea" * 400, "07700900003")
    )
    assert too_long.status_code == 422
    assert [e["field"] for e in too_long.json()["errors"]] == ["body"]
    for accepted in (gsm, ucs2):  # let both go before the next test changes the emulator
        assert sms_stack.host.wait_message(accepted.json()["id"], FINAL)["status"] in FINAL


def test_a_failed_delivery_report_fails_the_message_with_the_reason(sms_stack: Reliability, attachment_id: str) -> None:
    failed = parse_delivery_override({"status": "Failed", "details": "Unknown subscriber"})
    sms_stack.emulator.add_delivery_outcome(failed)
    reply = requests.post(
        f"{sms_stack.host.base_url}/api/v1/messages",
        headers=sms_stack.headers(),
        timeout=60,
        json=_payload(attachment_id, f"Report {uuid.uuid4().hex[:8]}", "07700 900777"),
    )
    doc = sms_stack.host.wait_message(reply.json()["id"], {"failed"})
    assert doc["status"] == "failed"
    assert doc["failureReason"] == "The phone network could not deliver the text (Failed: Unknown subscriber)"
    assert doc["sentAt"] and [e["type"] for e in doc["events"]][-1] == "delivery_failed"


# -- scheduling -------------------------------------------------------------------------------------


def test_a_scheduled_message_goes_at_its_time_and_a_revoked_one_never(
    sms_stack: Reliability, attachment_id: str
) -> None:
    marker = uuid.uuid4().hex[:8]
    url, headers = f"{sms_stack.host.base_url}/api/v1/messages", sms_stack.headers()
    soon = clock.now() + timedelta(seconds=4)

    def schedule(label: str, at) -> str:
        reply = requests.post(
            url,
            headers=headers,
            timeout=60,
            json=_payload(attachment_id, f"Scheduled {marker} {label}", "07700 900888", sendAt=clock.iso(at)),
        )
        assert reply.status_code == 202 and reply.json()["status"] == "scheduled", reply.text
        return reply.json()["id"]

    kept = schedule("kept", soon)
    revoked = schedule("revoked", soon)
    schedule("later", soon + timedelta(seconds=2))
    assert requests.post(f"{url}/{revoked}/revoke", headers=headers, timeout=30).json()["status"] == "revoked"

    _wait_until(lambda: _texts_with(sms_stack.emulator, f"{marker} later"), 60, "the later text")
    [text] = _texts_with(sms_stack.emulator, f"{marker} kept")
    assert clock.parse_iso(text["receivedAt"]) >= soon  # not before its time
    assert _texts_with(sms_stack.emulator, f"{marker} revoked") == []  # its time passed: never sent
    assert sms_stack.host.message(kept)["status"] in FINAL
    assert sms_stack.host.message(revoked)["status"] == "revoked"


# -- proof under load and faults ----------------------------------------------------------------------


@pytest.mark.slow
def test_a_thousand_messages_with_a_fifth_of_sends_failing_arrive_exactly_once(
    sms_stack: Reliability, attachment_id: str
) -> None:
    n, marker = 1000, uuid.uuid4().hex[:8]
    with FaultFeeder(
        sms_stack.emulator, marker, total=n // 5, share=0.2, timeout_seconds=sms_stack.timeout_seconds
    ) as feeder:
        ids = _create_all(sms_stack, attachment_id, marker, n)
        _wait_until(lambda: feeder.count >= feeder.total, 240, "every fault to be injected")
        _wait_until(lambda: not sms_stack.emulator.pending_faults(), 120, "every fault to be used")
    assert feeder.count == n // 5 and len(feeder.injected) == len(FAULT_KINDS), feeder.injected
    statuses = _assert_exactly_once(sms_stack, marker, ids, timeout=240)
    retried = sum(1 for doc in statuses.values() if "send_retry" in [e["type"] for e in doc["events"]])
    assert retried >= n // 10  # the faults really hit sends, and were retried


@pytest.mark.slow
def test_killing_the_host_mid_dispatch_loses_and_duplicates_nothing(sms_stack: Reliability, attachment_id: str) -> None:
    n, marker = 300, uuid.uuid4().hex[:8]
    host = sms_stack.host
    # All due at one moment shortly after they are all created, so the kill lands mid-dispatch.
    send_at = clock.iso(clock.now() + timedelta(seconds=25))
    with FaultFeeder(sms_stack.emulator, marker, total=n // 5, share=0.2, timeout_seconds=sms_stack.timeout_seconds):
        ids = _create_all(sms_stack, attachment_id, marker, n, sendAt=send_at)
        _wait_until(
            lambda: len(_texts_with(sms_stack.emulator, marker)) >= n // 3, 120, "a third of the texts", interval=0.05
        )
        host.stop(signal.SIGKILL)  # the whole host process group, no clean-up
        killed_at = len(_texts_with(sms_stack.emulator, marker))
        assert killed_at < n, "the kill came too late to prove anything"
        log_before_restart = Path(host.log_path).read_text()
        host.start()  # the same ports, the same storage
        _assert_exactly_once(sms_stack, marker, ids, timeout=240)
    # Entries the killed host was working on came back to the new one (as the real host does after
    # a crash, once their invisibility ran out): the kill really caught sends in flight.
    after_restart = Path(host.log_path).read_text()[len(log_before_restart) :]
    assert re.search(r"dispatch_queued_message.*dequeueCount=[2-9]", after_restart)
