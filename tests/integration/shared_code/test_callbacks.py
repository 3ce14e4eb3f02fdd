"""Status callbacks against real Azurite and a real receiver: a tiny HTTP server on 127.0.0.1 that
checks the signature of every POST and fails its first answers, so retries, give-up, time-outs and
redirects are the service's own behaviour, not a mock's."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared_code import callbacks
from shared_code.callbacks import announce_batch_done, announce_test, deliver, read_registration, register
from shared_code.errors import Unprocessable
from shared_code.message_store import find_message, transition
from shared_code.storage import CALLBACK_QUEUE
from tests.support.records import mark_sent, new_message


@dataclass
class Receiver:
    """What the receiver was sent, and the answers it gives (then 200)."""

    secret: str = ""
    answers: list[int] = field(default_factory=list)
    delay: float = 0.0
    received: list[dict] = field(default_factory=list)
    bad_signatures: int = 0
    url: str = ""


def _verify(secret: str, header: str, body: bytes) -> bool:
    # What the README tells a receiver to do.
    parts = dict(p.split("=", 1) for p in header.split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", "")) and abs(time.time() - int(parts["t"])) < 300


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if not _verify(state.secret, self.headers.get("Enclose-Signature", ""), body):
                state.bad_signatures += 1
            state.received.append({"path": self.path, **json.loads(body)})
            if state.delay:
                time.sleep(state.delay)
            status = state.answers.pop(0) if state.answers else 200
            self.send_response(status)
            if status in (301, 302, 307, 308):
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def local(settings):
    callbacks.clear_cache()
    return replace(settings, callback_allow_local=True)


def _org() -> str:
    return "C" + uuid.uuid4().hex[:5].upper()


def _registered(storage, local, receiver: Receiver) -> str:
    org = _org()
    answer = register(storage, local, org, {"url": receiver.url})
    receiver.secret = answer["secret"]
    assert answer["secret"].startswith("whsec_") and answer["url"] == receiver.url
    return org


def _entries(storage, org: str, wait: float = 30.0) -> list[bytes]:
    """This organisation's queued entries once visible (taken off the queue)."""
    queue = storage.queue(CALLBACK_QUEUE)
    found: list[bytes] = []
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        for message in queue.receive_messages(max_messages=32, visibility_timeout=60):
            if json.loads(message.content)["org"] == org:
                found.append(message.content)
                queue.delete_message(message)
        if found:
            return found
        time.sleep(0.2)
    return found


def test_the_secret_is_shown_once_and_the_url_must_be_allowed(storage, settings, local, receiver) -> None:
    org = _registered(storage, local, receiver)
    shown = read_registration(storage, org)
    assert shown == {"url": receiver.url, "createdAt": shown["createdAt"], "lastDeliveredAt": None, "lastFailure": None}
    assert receiver.secret not in json.dumps(shown)
    with pytest.raises(Unprocessable):  # strict, as in Azure: no http, no loopback
        register(storage, replace(settings, callback_allow_local=False), _org(), {"url": receiver.url})


def test_an_event_is_queued_by_the_send_not_posted_by_it_and_retried_until_the_receiver_takes_it(
    storage, local, receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(callbacks, "BACKOFF", (1,))
    org = _registered(storage, local, receiver)
    receiver.answers = [503, 429]
    message = mark_sent(storage, new_message(storage, local, org))
    # The send is done and the event queued: the receiver has been sent nothing.
    assert receiver.received == []
    [entry] = _entries(storage, org)
    first = deliver(storage, local, entry)
    assert first.result == "retry" and receiver.received[-1]["type"] == "sent"
    [again] = _entries(storage, org)
    assert deliver(storage, local, again).result == "retry"
    [last] = _entries(storage, org)
    assert deliver(storage, local, last).result == "delivered"

    assert receiver.bad_signatures == 0 and len(receiver.received) == 3
    ids = {r["id"] for r in receiver.received}
    assert len(ids) == 1  # the same event each time: a receiver de-duplicates by id
    body = receiver.received[-1]
    assert body == {
        "path": "/hook",
        "id": body["id"],
        "type": "sent",
        "messageId": message.id,
        "batchId": None,
        "status": "sent",
        "at": body["at"],
    }
    assert read_registration(storage, org)["lastDeliveredAt"] is not None


def test_a_batch_message_s_events_name_its_batch(storage, local, receiver) -> None:
    org = _registered(storage, local, receiver)
    message = new_message(storage, local, org)
    transition(storage, org, message.id, lambda m: replace(m, batch_id="batch-7"))  # as the batch worker makes it
    mark_sent(storage, find_message(storage, org, message.id))
    [entry] = _entries(storage, org)
    assert deliver(storage, local, entry).result == "delivered"
    assert (receiver.received[-1]["type"], receiver.received[-1]["batchId"]) == ("sent", "batch-7")


def test_after_the_retry_period_the_failure_is_shown_to_the_practice(
    storage, local, receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    monkeypatch.setattr(callbacks, "RETRY_FOR", timedelta(0))
    org = _registered(storage, local, receiver)
    receiver.answers = [500]
    announce_test(storage, org)
    [entry] = _entries(storage, org)
    outcome = deliver(storage, local, entry)
    assert outcome.result == "gave_up"
    failure = read_registration(storage, org)["lastFailure"]
    assert failure["eventType"] == "test" and "500" in failure["reason"]
    assert _entries(storage, org, wait=1.0) == []


def test_a_slow_receiver_is_a_time_out_and_retried(storage, local, receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(callbacks, "READ_TIMEOUT_SECONDS", 0.3)
    monkeypatch.setattr(callbacks, "BACKOFF", (1,))
    org = _registered(storage, local, receiver)
    receiver.delay = 2.0
    announce_test(storage, org)
    [entry] = _entries(storage, org)
    outcome = deliver(storage, local, entry)
    assert outcome.result == "retry" and "No answer" in outcome.detail


def test_a_redirect_is_not_followed_and_not_retried(storage, local, receiver) -> None:
    org = _registered(storage, local, receiver)
    receiver.answers = [302]
    announce_test(storage, org)
    [entry] = _entries(storage, org)
    assert deliver(storage, local, entry).result == "gave_up"
    assert [r["path"] for r in receiver.received] == ["/hook"]
    assert "302" in read_registration(storage, org)["lastFailure"]["reason"]


def test_an_address_refused_at_delivery_is_never_contacted(storage, local, receiver) -> None:
    # Registered while allowed; the setting (or the name's address) changed since.
    org = _registered(storage, local, receiver)
    announce_test(storage, org)
    [entry] = _entries(storage, org)
    strict = replace(local, callback_allow_local=False)
    assert deliver(storage, strict, entry).result == "gave_up"
    assert receiver.received == []


def test_without_a_registration_nothing_is_queued(storage, local, receiver) -> None:
    org = _org()
    mark_sent(storage, new_message(storage, local, org))
    assert _entries(storage, org, wait=1.0) == []


def test_a_batch_done_event_carries_the_batch(storage, local, receiver) -> None:
    from shared_code import clock

    org = _registered(storage, local, receiver)
    announce_batch_done(storage, org, "batch-1", clock.now())
    [entry] = _entries(storage, org)
    assert deliver(storage, local, entry).result == "delivered"
    [body] = receiver.received
    assert (body["type"], body["batchId"], body["messageId"]) == ("done", "batch-1", None)


def test_slow_endpoints_hold_at_most_the_delivery_slots_and_the_rest_wait_their_turn(
    storage, local, receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The queue trigger shares the worker's thread pool with sending: a slow endpoint must not
    # take every thread. Two deliveries wait on an endpoint that does not answer; a third is
    # put back at once, without contacting it and without counting a try.
    monkeypatch.setattr(callbacks, "DEFER_SECONDS", 1)
    org = _registered(storage, local, receiver)
    for _ in range(3):
        announce_test(storage, org)
    entries: list[bytes] = []
    for _ in range(10):
        entries += _entries(storage, org)
        if len(entries) == 3:
            break
    assert len(entries) == 3
    release, started = threading.Event(), threading.Semaphore(0)
    posts: list[str] = []

    def hanging_post(url: str, address: str, body: bytes, signature: str) -> int:
        posts.append(json.loads(body)["id"])
        started.release()
        release.wait(30)
        return 204

    outcomes: list[str] = []
    held = [
        threading.Thread(target=lambda e=e: outcomes.append(deliver(storage, local, e, post=hanging_post).result))
        for e in entries[:2]
    ]
    for thread in held:
        thread.start()
    assert started.acquire(timeout=30) and started.acquire(timeout=30)
    third = deliver(storage, local, entries[2], post=hanging_post)
    assert third.result == "deferred" and len(posts) == 2
    release.set()
    for thread in held:
        thread.join(30)
    assert outcomes == ["delivered", "delivered"]
    [again] = _entries(storage, org)
    assert json.loads(again)["tries"] == 0
    assert deliver(storage, local, again, post=hanging_post).result == "delivered" and len(posts) == 3


def test_a_message_whose_attachment_is_rejected_is_told_as_failed(storage, local, receiver) -> None:
    from shared_code.attachments import REJECTED, _settle, find_attachment, upload_attachment
    from shared_code.message_create import on_attachment_scanned
    from tests.support.records import principal
    from tests.support.stack import sample_pdf

    org = _registered(storage, local, receiver)
    data = sample_pdf("x")
    attachment = upload_attachment(storage, local, principal(org), "x.pdf", data)
    message = new_message(storage, local, org, [attachment.id])
    rejected = replace(
        find_attachment(storage, org, attachment.id), status=REJECTED, reason="contains a virus", scan_engine="test"
    )
    _settle(storage, rejected, data)
    on_attachment_scanned(storage, local, org, attachment.id)
    [entry] = _entries(storage, org)
    assert deliver(storage, local, entry).result == "delivered"
    [body] = receiver.received
    assert (body["type"], body["messageId"], body["status"]) == ("failed", message.id, "failed")
