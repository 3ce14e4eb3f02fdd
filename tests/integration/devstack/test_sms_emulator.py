"""The SMS emulator, driven by the real azure-communication-sms client over https."""

from __future__ import annotations

import http.client
import json
import logging
import queue
import re
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from azure.communication.sms import SmsClient
from azure.communication.sms._generated.models import (
    SendMessageRequest,
    SmsRecipient,
    SmsSendOptions,
    SmsSendResponseItem,
)
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ServiceResponseError
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.identity import ManagedIdentityCredential

from devstack.identity import ACS_RESOURCE, IdentityEndpoint, identity_key, issue_token
from devstack.localsecrets import LocalSecrets, ensure_local_secrets
from devstack.ports import Ports
from devstack.sms_emulator import SmsEmulator, event_grid_url, report_field
from tests.support.emulator import start_emulator

SENDER = "Enclose"
# Ofcom's drama range: never a real person's number.
MOBILE = "+447700900123"
OTHER_MOBILE = "+447700900456"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# --- fixtures and helpers ----------------------------------------------------------------------


class EventReceiver:
    """A tiny stand-in for the Functions host's Event Grid webhook: records every POST."""

    def __init__(self, port: int = 0) -> None:
        self.posts: queue.Queue[tuple[dict[str, str], Any]] = queue.Queue()
        self.fail_next = 0  # answer 503 to this many posts first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.put(({k.lower(): v for k, v in self.headers.items()}, json.loads(body)))
                failing = receiver.fail_next > 0
                receiver.fail_next -= failing
                self.send_response(503 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.url = event_grid_url(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def next_post(self) -> tuple[dict[str, str], Any]:
        return self.posts.get(timeout=10)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def local_secrets(tmp_path_factory: pytest.TempPathFactory) -> LocalSecrets:
    return ensure_local_secrets(tmp_path_factory.mktemp("stack") / ".local")


@pytest.fixture
def receiver() -> Iterator[EventReceiver]:
    r = EventReceiver()
    yield r
    r.close()


@pytest.fixture
def emulator(local_secrets: LocalSecrets, receiver: EventReceiver) -> Iterator[SmsEmulator]:
    emu = start_emulator(local_secrets.root, event_grid_url=receiver.url, delivery_delay_seconds=0.05)
    yield emu
    emu.stop()


def make_client(emu: SmsEmulator, secrets: LocalSecrets, *, access_key: str | None = None, **kwargs: Any) -> SmsClient:
    """The real SDK client, trusting the emulator's certificate; no retries unless asked."""
    conn = emu.connection_string if access_key is None else f"endpoint={emu.api_url}/;accesskey={access_key}"
    kwargs.setdefault("retry_total", 0)
    return SmsClient.from_connection_string(conn, connection_verify=str(secrets.sms_cert), **kwargs)


def send_with_id(
    client: SmsClient,
    *,
    request_id: str,
    first_sent: datetime,
    to: str = MOBILE,
    message: str = "Hello",
    delivery_report: bool = False,
    tag: str | None = None,
) -> SmsSendResponseItem:
    """Send through the SDK with our own repeatability id (`SmsClient.send` makes a new one per call).

    The generated client under `SmsClient` takes the request model as is, so the id and its
    first-sent time stay the same on every attempt; the SDK still signs and retries it.
    """
    request = SendMessageRequest(
        from_property=SENDER,
        sms_recipients=[
            SmsRecipient(
                to=to,
                repeatability_request_id=request_id,
                repeatability_first_sent=format_datetime(first_sent, usegmt=True),
            )
        ],
        message=message,
        sms_send_options=SmsSendOptions(enable_delivery_report=delivery_report, tag=tag),
    )
    [item] = client._sms_service_client.sms.send(request).value
    return item


def inbox(
    emu: SmsEmulator, method: str = "GET", path: str = "/messages", body: Any = None
) -> tuple[int, dict[str, str], bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(emu.inbox_url + path, data=data, method=method)
    try:
        with _NO_PROXY.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def inbox_json(emu: SmsEmulator, path: str = "/messages") -> Any:
    status, _, body = inbox(emu, path=path)
    assert status == 200
    return json.loads(body)


def add_fault(emu: SmsEmulator, spec: dict[str, Any]) -> dict[str, Any]:
    status, _, body = inbox(emu, "POST", "/control/faults", spec)
    assert status == 201, body
    return json.loads(body)


def raw_post(emu: SmsEmulator, secrets: LocalSecrets, headers: dict[str, str], body: bytes) -> int:
    """POST /sms without the SDK; returns the status."""
    context = ssl.create_default_context(cafile=str(secrets.sms_cert))
    port = int(emu.api_url.rsplit(":", 1)[1])
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        conn.request("POST", "/sms?api-version=2021-03-07", body=body, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


class TamperBody(SansIOHTTPPolicy):
    """Runs after the SDK has signed: swaps the body for another of the same length."""

    def on_request(self, request: Any) -> None:
        request.http_request.data = request.http_request.body.replace("Hello", "Jello")


# --- sending --------------------------------------------------------------------------------------


def test_send_is_accepted_and_shown_in_the_inbox_json_and_page(
    emulator: SmsEmulator, local_secrets: LocalSecrets
) -> None:
    client = make_client(emulator, local_secrets)
    text = "Dear Jo <b>&</b> café ✓, see https://127.0.0.1:7071/p/tok_EN?a=1&b=2."

    [result] = client.send(from_=SENDER, to=MOBILE, message=text)

    assert result.successful and result.http_status_code == 202
    assert result.message_id.startswith("Outgoing_")
    [entry] = inbox_json(emulator)
    assert entry == {
        "id": result.message_id,
        "from": SENDER,
        "to": MOBILE,
        "message": text,
        "receivedAt": entry["receivedAt"],
    }
    assert entry["receivedAt"].endswith("Z")
    assert emulator.messages == [entry]

    status, headers, page = inbox(emulator, path="/")
    html = page.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert '<a href="https://127.0.0.1:7071/p/tok_EN?a=1&amp;b=2" rel="noreferrer">' in html
    assert "Dear Jo &lt;b&gt;&amp;&lt;/b&gt; café ✓" in html
    assert "<b>" not in html
    assert result.message_id in html


def test_inbox_lists_newest_last_and_can_be_cleared(emulator: SmsEmulator, local_secrets: LocalSecrets) -> None:
    client = make_client(emulator, local_secrets)
    first = client.send(from_=SENDER, to=MOBILE, message="one")[0].message_id
    second = client.send(from_=SENDER, to=OTHER_MOBILE, message="two")[0].message_id

    assert [m["id"] for m in inbox_json(emulator)] == [first, second]
    status, _, _ = inbox(emulator, "DELETE", "/messages")
    assert status == 204
    assert inbox_json(emulator) == []


def test_an_invalid_number_gets_its_own_error_like_acs(emulator: SmsEmulator, local_secrets: LocalSecrets) -> None:
    client = make_client(emulator, local_secrets)

    good, bad = client.send(from_=SENDER, to=[MOBILE, "07700900123"], message="Hello")

    assert good.successful and good.http_status_code == 202
    assert not bad.successful and bad.http_status_code == 400
    assert bad.message_id is None and bad.error_message == "Invalid To phone number format."
    assert [m["id"] for m in inbox_json(emulator)] == [good.message_id]


def test_a_malformed_request_is_400(emulator: SmsEmulator, local_secrets: LocalSecrets) -> None:
    client = make_client(emulator, local_secrets)

    with pytest.raises(HttpResponseError) as caught:
        client.send(from_="not a valid sender", to=MOBILE, message="Hello")

    assert caught.value.status_code == 400
    # ACS's own shape for a malformed From (the SDK's recorded session test_send_sms_fake_from_phone_number).
    assert json.loads(caught.value.response.text()) == {"From": ["Invalid From phone number format"]}
    assert inbox_json(emulator) == []


# --- authentication -------------------------------------------------------------------------------


def test_a_wrong_access_key_is_401(emulator: SmsEmulator, local_secrets: LocalSecrets) -> None:
    client = make_client(emulator, local_secrets, access_key="d3JvbmcgYnV0IHdlbGwgZm9ybWVk")

    with pytest.raises(HttpResponseError) as caught:
        client.send(from_=SENDER, to=MOBILE, message="Hello")

    assert caught.value.status_code == 401
    assert inbox_json(emulator) == []


def test_a_body_changed_after_signing_is_401(emulator: SmsEmulator, local_secrets: LocalSecrets) -> None:
    client = make_client(emulator, local_secrets, per_retry_policies=[TamperBody()])

    with pytest.raises(HttpResponseError) as caught:
        client.send(from_=SENDER, to=MOBILE, message="Hello")

    assert caught.value.status_code == 401
    assert inbox_json(emulator) == []


def test_an_unsigned_request_is_401(emulator: SmsEmulator, local_secrets: LocalSecrets) -> None:
    body = json.dumps({"from": SENDER, "smsRecipients": [{"to": MOBILE}], "message": "Hello"}).encode()

    status = raw_post(emulator, local_secrets, {"Content-Type": "application/json"}, body)

    assert status == 401
    assert inbox_json(emulator) == []


def test_a_signature_with_a_stale_date_is_401(
    emulator: SmsEmulator, local_secrets: LocalSecrets, monkeypatch: pytest.MonkeyPatch
) -> None:
    import azure.communication.sms._shared.policy as sdk_policy

    stale = format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    monkeypatch.setattr(sdk_policy, "get_current_utc_time", lambda: stale)
    client = make_client(emulator, local_secrets)

    with pytest.raises(HttpResponseError) as caught:
        client.send(from_=SENDER, to=MOBILE, message="Hello")

    assert caught.value.status_code == 401


# --- Microsoft Entra ID: bearer tokens from the local managed-identity endpoint --------------------


class StaticToken:
    """A token credential that hands out one given token (a forged or stale one)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.fixture
def identity(local_secrets: LocalSecrets, monkeypatch: pytest.MonkeyPatch) -> Iterator[IdentityEndpoint]:
    """The local managed-identity endpoint, with the settings App Service would give the app."""
    with IdentityEndpoint(identity_key(local_secrets.root)) as endpoint:
        for name, value in endpoint.environ.items():
            monkeypatch.setenv(name, value)
        yield endpoint


def _token_client(emu: SmsEmulator, secrets: LocalSecrets, credential: Any) -> SmsClient:
    return SmsClient(emu.api_url, credential, connection_verify=str(secrets.sms_cert), retry_total=0)


@pytest.fixture
def token_emulator(local_secrets: LocalSecrets) -> Iterator[SmsEmulator]:
    """An emulator that takes the local identity endpoint's tokens (as the local stack's does)."""
    emu = start_emulator(local_secrets.root, identity_key=identity_key(local_secrets.root))
    yield emu
    emu.stop()


def test_a_managed_identitys_token_is_accepted(
    token_emulator: SmsEmulator, local_secrets: LocalSecrets, identity: IdentityEndpoint
) -> None:
    client = _token_client(token_emulator, local_secrets, ManagedIdentityCredential())

    [result] = client.send(from_=SENDER, to=MOBILE, message="Hello")

    assert result.successful
    assert identity.tokens_issued == 1
    assert inbox_json(token_emulator, "/control/identity")["bearerSends"] == 1


@pytest.mark.parametrize(
    "forge",
    [
        lambda key, principal: issue_token(b"a key that is not the endpoint's" * 2, ACS_RESOURCE, principal, "c"),
        lambda key, principal: issue_token(key, "https://storage.azure.com/", principal, "c"),
        lambda key, principal: issue_token(key, ACS_RESOURCE, principal, "c", now=time.time() - 7200),
        lambda key, principal: "not.a.token",
    ],
    ids=["another issuer's key", "another resource", "expired", "garbage"],
)
def test_any_other_token_is_refused(token_emulator: SmsEmulator, local_secrets: LocalSecrets, forge: Any) -> None:
    token = forge(identity_key(local_secrets.root), "some-principal")
    client = _token_client(token_emulator, local_secrets, StaticToken(token))

    with pytest.raises(HttpResponseError) as caught:
        client.send(from_=SENDER, to=MOBILE, message="Hello")

    assert caught.value.status_code == 401
    assert inbox_json(token_emulator) == []


def test_a_principal_without_a_role_on_the_resource_is_forbidden_until_given_one(
    token_emulator: SmsEmulator, local_secrets: LocalSecrets, identity: IdentityEndpoint
) -> None:
    status, _, _ = inbox(token_emulator, "POST", "/control/identity", {"allowedPrincipals": ["someone-else"]})
    assert status == 200
    client = _token_client(token_emulator, local_secrets, ManagedIdentityCredential())

    with pytest.raises(HttpResponseError) as caught:
        client.send(from_=SENDER, to=MOBILE, message="Hello")
    assert caught.value.status_code == 403
    inbox(token_emulator, "POST", "/control/identity", {"allowedPrincipals": [identity.principal_id]})
    assert client.send(from_=SENDER, to=MOBILE, message="Hello")[0].successful


def test_an_emulator_without_the_identity_key_takes_no_tokens(
    emulator: SmsEmulator, local_secrets: LocalSecrets, identity: IdentityEndpoint
) -> None:
    with pytest.raises(HttpResponseError) as caught:
        _token_client(emulator, local_secrets, ManagedIdentityCredential()).send(
            from_=SENDER, to=MOBILE, message="Hello"
        )
    assert caught.value.status_code == 401
    assert inbox_json(emulator, "/control/identity")["acceptsTokens"] is False


# --- repeatability --------------------------------------------------------------------------------


def test_the_same_repeatability_id_delivers_once_and_repeats_the_first_answer(
    emulator: SmsEmulator, local_secrets: LocalSecrets
) -> None:
    client = make_client(emulator, local_secrets)
    request_id, first_sent = str(uuid.uuid4()), datetime.now(UTC)

    first = send_with_id(client, request_id=request_id, first_sent=first_sent)
    again = send_with_id(client, request_id=request_id, first_sent=first_sent)

    assert first.successful and first.repeatability_result == "accepted"
    assert (again.message_id, again.http_status_code, again.successful, again.repeatability_result) == (
        first.message_id,
        202,
        True,
        "accepted",
    )
    assert [m["id"] for m in inbox_json(emulator)] == [first.message_id]


def test_a_repeatability_id_reused_for_another_request_is_rejected(
    emulator: SmsEmulator, local_secrets: LocalSecrets
) -> None:
    client = make_client(emulator, local_secrets)
    request_id, first_sent = str(uuid.uuid4()), datetime.now(UTC)
    first = send_with_id(client, request_id=request_id, first_sent=first_sent, message="Hello")

    other = send_with_id(client, request_id=request_id, first_sent=first_sent, message="Goodbye")

    assert not other.successful and other.http_status_code == 400
    assert other.repeatability_result == "rejected"
    assert [m["id"] for m in inbox_json(emulator)] == [first.message_id]


def test_a_first_sent_time_outside_the_tracked_window_is_412_and_not_sent(
    emulator: SmsEmulator, local_secrets: LocalSecrets
) -> None:
    client = make_client(emulator, local_secrets)

    item = send_with_id(client, request_id=str(uuid.uuid4()), first_sent=datetime.now(UTC) - timedelta(minutes=6))

    assert not item.successful and item.http_status_code == 412
    assert item.repeatability_result == "rejected"
    assert inbox_json(emulator) == []


def test_a_repeatability_id_that_is_not_a_guid_is_rejected(emulator: SmsEmulator, local_secrets: LocalSecrets) -> None:
    client = make_client(emulator, local_secrets)

    item = send_with_id(client, request_id="message-123", first_sent=datetime.now(UTC))

    assert not item.successful and item.http_status_code == 400
    assert inbox_json(emulator) == []


# --- faults ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_status_fault_answers_that_status_count_times(
    emulator: SmsEmulator, local_secrets: LocalSecrets, status: int
) -> None:
    client = make_client(emulator, local_secrets)
    fault = add_fault(emulator, {"status": status, "count": 2})
    assert [(f["id"], f["remaining"]) for f in inbox_json(emulator, "/control/faults")] == [(fault["id"], 2)]

    for _ in range(2):
        with pytest.raises(HttpResponseError) as caught:
            client.send(from_=SENDER, to=MOBILE, message="Hello")
        assert caught.value.status_code == status
        assert ("Retry-After" in caught.value.response.headers) == (status == 429)
    [result] = client.send(from_=SENDER, to=MOBILE, message="Hello")

    assert result.successful
    assert inbox_json(emulator, "/control/faults") == []
    assert [m["id"] for m in inbox_json(emulator)] == [result.message_id]


def test_faults_are_used_exactly_count_times_by_concurrent_sends(
    emulator: SmsEmulator, local_secrets: LocalSecrets
) -> None:
    add_fault(emulator, {"status": 500, "count": 5})

    def send(_: int) -> int:
        client = make_client(emulator, local_secrets)
        try:
            return client.send(from_=SENDER, to=MOBILE, message="Hello")[0].http_status_code
        except HttpResponseError as exc:
            return exc.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(send, range(20)))

    assert sorted(statuses) == [202] * 15 + [500] * 5
    assert len(inbox_json(emulator)) == 15


def test_a_timeout_fault_holds_the_request_and_sends_nothing(
    emulator: SmsEmulator, local_secrets: LocalSecrets
) -> None:
    add_fault(emulator, {"mode": "timeout", "count": 1, "seconds": 5})
    client = make_client(emulator, local_secrets, read_timeout=0.3)

    with pytest.raises(ServiceResponseError):
        client.send(from_=SENDER, to=MOBILE, message="Hello")

    assert inbox_json(emulator) == []
    assert inbox_json(emulator, "/control/faults") == []


def test_a_timeout_fault_closes_the_connection_after_its_seconds(
    emulator: SmsEmulator, local_secrets: LocalSecrets
) -> None:
    add_fault(emulator, {"mode": "timeout", "count": 1, "seconds": 0.2})
    client = make_client(emulator, local_secrets)  # default read timeout: far longer than the hold

    with pytest.raises(ServiceResponseError):
        client.send(from_=SENDER, to=MOBILE, message="Hello")

    assert inbox_json(emulator) == []


def test_a_drop_fault_closes_the_connection_before_recording(
    emulator: SmsEmulator, local_secrets: LocalSecrets
) -> None:
    add_fault(emulator, {"mode": "drop", "count": 1})
    client = make_client(emulator, local_secrets)

    with pytest.raises(ServiceResponseError):
        client.send(from_=SENDER, to=MOBILE, message="Hello")

    assert inbox_json(emulator) == []
    [result] = client.send(from_=SENDER, to=MOBILE, message="Hello")
    assert [m["id"] for m in inbox_json(emulator)] == [result.message_id]


@pytest.mark.parametrize(
    ("fault", "answered"),
    [
        ({"mode": "accept_then_status", "status": 500}, 500),
        # The 202 broken off half-way: the SDK cannot read it, and there is no HTTP status.
        ({"mode": "accept_then_cut"}, None),
    ],
)
def test_a_fault_after_recording_keeps_the_message_and_a_repeat_gets_the_original_answer(
    emulator: SmsEmulator, local_secrets: LocalSecrets, fault: dict, answered: int | None
) -> None:
    add_fault(emulator, {**fault, "count": 1})
    client = make_client(emulator, local_secrets)
    request_id, first_sent = str(uuid.uuid4()), datetime.now(UTC)

    with pytest.raises(HttpResponseError) as caught:
        send_with_id(client, request_id=request_id, first_sent=first_sent)
    assert (caught.value.status_code or None) == answered
    [recorded] = inbox_json(emulator)

    retry = send_with_id(client, request_id=request_id, first_sent=first_sent)

    assert retry.successful and retry.message_id == recorded["id"]
    assert len(inbox_json(emulator)) == 1


def test_the_sdks_own_retry_after_accept_then_500_still_delivers_once(
    emulator: SmsEmulator, local_secrets: LocalSecrets
) -> None:
    add_fault(emulator, {"mode": "accept_then_status", "status": 500, "count": 1})
    client = make_client(emulator, local_secrets, retry_total=3, retry_backoff_factor=0.01)

    [result] = client.send(from_=SENDER, to=MOBILE, message="Hello")

    assert result.successful
    assert [m["id"] for m in inbox_json(emulator)] == [result.message_id]


def test_a_drop_after_recording_then_a_repeat_gets_the_original_answer(
    emulator: SmsEmulator, local_secrets: LocalSecrets
) -> None:
    add_fault(emulator, {"mode": "drop", "record": True, "count": 1})
    client = make_client(emulator, local_secrets)
    request_id, first_sent = str(uuid.uuid4()), datetime.now(UTC)

    with pytest.raises(ServiceResponseError):
        send_with_id(client, request_id=request_id, first_sent=first_sent)
    retry = send_with_id(client, request_id=request_id, first_sent=first_sent)

    assert [m["id"] for m in inbox_json(emulator)] == [retry.message_id]


@pytest.mark.parametrize(
    ("body", "status", "answer"),
    [
        (
            "InternalError",
            401,
            {"error": {"code": "InternalError", "message": "The server encountered an internal error."}},
        ),
        ("Unauthorized", 401, {"error": {"code": "Unauthorized", "message": ""}}),
        ("Forbidden", 403, {"error": {"code": "Forbidden", "message": ""}}),
        ("From", 400, {"From": ["Invalid From phone number format"]}),
        ("empty", 404, None),
    ],
)
def test_a_status_fault_answers_in_the_shapes_acs_does(
    emulator: SmsEmulator, local_secrets: LocalSecrets, body: str, status: int, answer: Any
) -> None:
    add_fault(emulator, {"status": status, "body": body})

    with pytest.raises(HttpResponseError) as caught:
        make_client(emulator, local_secrets).send(from_=SENDER, to=MOBILE, message="Hello")

    assert caught.value.status_code == status
    response = caught.value.response
    assert (json.loads(response.text()) if answer is not None else response.text()) == (
        answer if answer is not None else ""
    )
    assert inbox_json(emulator) == []


@pytest.mark.parametrize("status", [409, 429, 503])
def test_an_item_status_fault_fails_the_recipient_inside_a_202(
    emulator: SmsEmulator, local_secrets: LocalSecrets, status: int
) -> None:
    add_fault(emulator, {"mode": "item_status", "status": status})
    client = make_client(emulator, local_secrets)

    item = send_with_id(client, request_id=str(uuid.uuid4()), first_sent=datetime.now(UTC))

    assert (item.successful, item.http_status_code, item.message_id) == (False, status, None)
    assert inbox_json(emulator) == []


# --- repeats: replayed, re-executed, or in progress ---------------------------------------------------


def test_in_reexecute_mode_a_repeat_of_a_request_answered_500_sends_the_text_again(
    emulator: SmsEmulator, local_secrets: LocalSecrets
) -> None:
    # Microsoft's repeatable-requests page: a repeat of a request whose status was 5xx is re-executed.
    status, _, body = inbox(emulator, "POST", "/control/repeats", {"mode": "reexecute"})
    assert status == 200 and json.loads(body)["mode"] == "reexecute"
    add_fault(emulator, {"mode": "accept_then_status", "status": 500})
    client = make_client(emulator, local_secrets)
    request_id, first_sent = str(uuid.uuid4()), datetime.now(UTC)

    with pytest.raises(HttpResponseError):
        send_with_id(client, request_id=request_id, first_sent=first_sent)
    again = send_with_id(client, request_id=request_id, first_sent=first_sent)
    third = send_with_id(client, request_id=request_id, first_sent=first_sent)

    first, second = inbox_json(emulator)
    assert again.successful and again.message_id == second["id"] != first["id"]  # two texts
    assert third.message_id == again.message_id  # the re-execution was answered 202: replayed from then on
    assert {k: emulator.repeats()[k] for k in ("reexecuted", "replayed")} == {"reexecuted": 1, "replayed": 1}


@pytest.mark.parametrize(
    "fault", [{"mode": "accept_then_cut"}, {"mode": "drop", "record": True}, {"mode": "status", "status": 500}]
)
def test_in_reexecute_mode_a_request_answered_202_or_never_recorded_is_not_sent_twice(
    emulator: SmsEmulator, local_secrets: LocalSecrets, fault: dict[str, Any]
) -> None:
    emulator.configure_repeats("reexecute")
    add_fault(emulator, fault)
    client = make_client(emulator, local_secrets)
    request_id, first_sent = str(uuid.uuid4()), datetime.now(UTC)

    with pytest.raises((HttpResponseError, ServiceResponseError)):
        send_with_id(client, request_id=request_id, first_sent=first_sent)
    retry = send_with_id(client, request_id=request_id, first_sent=first_sent)

    assert [m["id"] for m in inbox_json(emulator)] == [retry.message_id]
    assert emulator.repeats()["reexecuted"] == 0


def test_a_repeat_while_the_first_is_still_in_progress_gets_409_and_later_the_first_answer(
    emulator: SmsEmulator, local_secrets: LocalSecrets
) -> None:
    emulator.configure_repeats("replay", in_progress_seconds=600)
    add_fault(emulator, {"mode": "drop", "record": True})
    client = make_client(emulator, local_secrets)
    request_id, first_sent = str(uuid.uuid4()), datetime.now(UTC)

    with pytest.raises(ServiceResponseError):
        send_with_id(client, request_id=request_id, first_sent=first_sent)
    busy = send_with_id(client, request_id=request_id, first_sent=first_sent)
    emulator.configure_repeats("replay", in_progress_seconds=0)
    done = send_with_id(client, request_id=request_id, first_sent=first_sent)

    assert (busy.successful, busy.http_status_code, busy.repeatability_result) == (False, 409, "accepted")
    [recorded] = inbox_json(emulator)
    assert done.successful and done.message_id == recorded["id"]
    assert {k: emulator.repeats()[k] for k in ("inProgress", "replayed")} == {"inProgress": 1, "replayed": 1}


def test_a_repeat_while_a_time_out_still_holds_the_first_gets_409(
    emulator: SmsEmulator, local_secrets: LocalSecrets
) -> None:
    add_fault(emulator, {"mode": "timeout", "record": True, "seconds": 30})
    client = make_client(emulator, local_secrets, read_timeout=0.5)
    request_id, first_sent = str(uuid.uuid4()), datetime.now(UTC)

    with pytest.raises(ServiceResponseError):
        send_with_id(client, request_id=request_id, first_sent=first_sent)
    busy = send_with_id(client, request_id=request_id, first_sent=first_sent)

    assert (busy.successful, busy.http_status_code) == (False, 409)
    assert len(inbox_json(emulator)) == 1


@pytest.mark.parametrize("spec", [{"mode": "sometimes"}, {}, {"mode": "replay", "inProgressSeconds": -1}, ["replay"]])
def test_malformed_repeat_settings_are_400(emulator: SmsEmulator, spec: Any) -> None:
    status, _, _ = inbox(emulator, "POST", "/control/repeats", spec)
    assert status == 400
    assert inbox_json(emulator, "/control/repeats")["mode"] == "replay"


def test_repeat_counts_can_be_read_and_reset(emulator: SmsEmulator, local_secrets: LocalSecrets) -> None:
    client = make_client(emulator, local_secrets)
    request_id, first_sent = str(uuid.uuid4()), datetime.now(UTC)
    for _ in range(2):
        send_with_id(client, request_id=request_id, first_sent=first_sent)
    assert inbox_json(emulator, "/control/repeats")["replayed"] == 1
    status, _, _ = inbox(emulator, "DELETE", "/control/repeats")
    assert status == 204 and inbox_json(emulator, "/control/repeats")["replayed"] == 0


def test_a_share_of_reports_can_come_late(local_secrets: LocalSecrets, receiver: EventReceiver) -> None:
    emu = start_emulator(
        local_secrets.root,
        event_grid_url=receiver.url,
        delivery_delay_seconds=0.0,
        late_report_share=1.0,
        late_report_seconds=1.5,
    )
    try:
        make_client(emu, local_secrets).send(from_=SENDER, to=MOBILE, message="Hello", enable_delivery_report=True)
        _, [event] = receiver.next_post()
        sent_at = datetime.fromisoformat(emu.messages[0]["receivedAt"])
        assert emu.repeats()["lateReports"] == 1
    finally:
        emu.stop()
    assert datetime.fromisoformat(event["data"]["receivedTimestamp"]) - sent_at >= timedelta(seconds=1.5)


@pytest.mark.parametrize(
    "spec",
    [
        {"count": 1},
        {"status": 200, "count": 1},
        {"status": 500, "count": 0},
        {"status": "500", "count": 1},
        {"mode": "explode", "count": 1},
        {"mode": "timeout", "seconds": -1},
        {"mode": "drop", "seconds": 3},
        {"status": 500, "cuont": 2},
        {"mode": "item_status"},
        {"mode": "item_status", "status": 503, "retryAfter": 1},
        {"status": 401, "body": "Nonsense"},
        {"mode": "accept_then_status", "status": 500, "body": "From"},
        ["status", 500],
    ],
)
def test_malformed_fault_specs_are_400(emulator: SmsEmulator, spec: Any) -> None:
    status, _, _ = inbox(emulator, "POST", "/control/faults", spec)

    assert status == 400
    assert inbox_json(emulator, "/control/faults") == []


def test_faults_can_be_cleared(emulator: SmsEmulator, local_secrets: LocalSecrets) -> None:
    add_fault(emulator, {"status": 503, "count": 3})
    add_fault(emulator, {"mode": "drop"})

    status, _, _ = inbox(emulator, "DELETE", "/control/faults")

    assert status == 204
    assert inbox_json(emulator, "/control/faults") == []
    assert make_client(emulator, local_secrets).send(from_=SENDER, to=MOBILE, message="Hello")[0].successful


# --- delivery reports -----------------------------------------------------------------------------


def test_a_delivery_report_is_posted_as_an_event_grid_event(
    emulator: SmsEmulator, local_secrets: LocalSecrets, receiver: EventReceiver
) -> None:
    client = make_client(emulator, local_secrets)

    [result] = client.send(from_=SENDER, to=MOBILE, message="Hello", enable_delivery_report=True, tag="msg-42")
    headers, body = receiver.next_post()

    assert headers["aeg-event-type"] == "Notification"
    assert headers["content-type"].startswith("application/json")
    [event] = body
    assert set(event) == {"id", "topic", "subject", "data", "eventType", "eventTime", "dataVersion", "metadataVersion"}
    assert event["eventType"] == "Microsoft.Communication.SMSDeliveryReportReceived"
    assert (event["dataVersion"], event["metadataVersion"]) == ("1.0", "1")
    # camelCase, as Event Grid's schema and example event (azure-rest-api-specs) spell it.
    data = event["data"]
    assert data["messageId"] == result.message_id
    assert (data["from"], data["to"], data["tag"]) == (SENDER, MOBILE, "msg-42")
    assert (data["deliveryStatus"], data["deliveryStatusDetails"]) == ("Delivered", "No error.")
    assert data["deliveryAttempts"] == [
        {
            "timestamp": data["deliveryAttempts"][0]["timestamp"],
            "segmentsSucceeded": 1,
            "segmentsFailed": 0,
        }
    ]
    # Seven fractional digits, as Event Grid writes times.
    for stamp in (data["receivedTimestamp"], data["deliveryAttempts"][0]["timestamp"], event["eventTime"]):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z", stamp), stamp
    received_at = datetime.fromisoformat(inbox_json(emulator)[-1]["receivedAt"])
    assert datetime.fromisoformat(data["receivedTimestamp"]) >= received_at
    assert datetime.fromisoformat(event["eventTime"]) >= received_at


@pytest.mark.parametrize(
    ("casing", "names"),
    [
        ("pascal", {"MessageId", "From", "To", "DeliveryStatus", "DeliveryStatusDetails", "ReceivedTimestamp", "Tag"}),
        ("mixed", {"messageId", "from", "to", "deliveryStatus", "deliveryStatusDetails", "receivedTimestamp", "Tag"}),
    ],
)
def test_reports_can_be_spelled_in_pascal_or_mixed_case(
    local_secrets: LocalSecrets, receiver: EventReceiver, casing: str, names: set[str]
) -> None:
    emu = start_emulator(
        local_secrets.root, event_grid_url=receiver.url, delivery_delay_seconds=0.05, report_casing=casing
    )
    try:
        make_client(emu, local_secrets).send(
            from_=SENDER, to=MOBILE, message="Hello", enable_delivery_report=True, tag="t"
        )
        _, [event] = receiver.next_post()
    finally:
        emu.stop()
    assert names < set(event["data"])
    assert report_field(event["data"], "deliveryattempts")[0]


def test_a_report_can_be_posted_twice_late_and_after_a_pending_one_out_of_order(
    emulator: SmsEmulator, local_secrets: LocalSecrets, receiver: EventReceiver
) -> None:
    status, _, body = inbox(
        emulator,
        "POST",
        "/control/delivery",
        {"status": "Delivered", "copies": 2, "delaySeconds": 0.5, "pending": True, "outOfOrder": True},
    )
    assert status == 201, body
    assert json.loads(body)["copies"] == 2
    client = make_client(emulator, local_secrets)

    [result] = client.send(from_=SENDER, to=MOBILE, message="Hello", enable_delivery_report=True)
    posts = [receiver.next_post()[1][0] for _ in range(3)]

    assert {e["data"]["messageId"] for e in posts} == {result.message_id}
    assert [e["data"]["deliveryStatus"] for e in posts] == ["Delivered", "Delivered", "Pending"]
    assert posts[0] == posts[1]  # Event Grid's at-least-once: the same event twice
    pending, final = posts[2]["data"], posts[0]["data"]
    assert pending["receivedTimestamp"] < final["receivedTimestamp"]  # received first, arrives last
    assert pending["deliveryAttempts"] == [] and posts[2]["id"] != posts[0]["id"]


@pytest.mark.parametrize(
    "spec",
    [
        {"status": "Sent"},
        {"status": "Delivered", "copies": 0},
        {"status": "Delivered", "delaySeconds": -1},
        {"status": "Delivered", "outOfOrder": True},
        {"status": "Delivered", "pending": "yes"},
    ],
)
def test_malformed_delivery_outcomes_are_400(emulator: SmsEmulator, spec: dict[str, Any]) -> None:
    status, _, _ = inbox(emulator, "POST", "/control/delivery", spec)
    assert status == 400
    assert inbox_json(emulator, "/control/delivery") == []


def test_a_report_is_posted_only_when_asked_for(
    emulator: SmsEmulator, local_secrets: LocalSecrets, receiver: EventReceiver
) -> None:
    client = make_client(emulator, local_secrets)

    client.send(from_=SENDER, to=MOBILE, message="no report please")
    [asked] = client.send(from_=SENDER, to=MOBILE, message="report please", enable_delivery_report=True)

    _, [event] = receiver.next_post()
    assert event["data"]["messageId"] == asked.message_id


def test_the_delivery_control_makes_the_next_reports_failures(
    emulator: SmsEmulator, local_secrets: LocalSecrets, receiver: EventReceiver
) -> None:
    status, _, _ = inbox(
        emulator, "POST", "/control/delivery", {"status": "Failed", "details": "Handset unreachable", "count": 1}
    )
    assert status == 201
    client = make_client(emulator, local_secrets)

    [failed] = client.send(from_=SENDER, to=MOBILE, message="Hello", enable_delivery_report=True)
    _, [first] = receiver.next_post()
    [delivered] = client.send(from_=SENDER, to=MOBILE, message="Hello", enable_delivery_report=True)
    _, [second] = receiver.next_post()

    assert first["data"]["messageId"] == failed.message_id
    assert (first["data"]["deliveryStatus"], first["data"]["deliveryStatusDetails"]) == (
        "Failed",
        "Handset unreachable",
    )
    assert first["data"]["deliveryAttempts"][0]["segmentsFailed"] == 1
    assert second["data"]["messageId"] == delivered.message_id
    assert second["data"]["deliveryStatus"] == "Delivered"
    assert inbox_json(emulator, "/control/delivery") == []


def test_a_report_the_receiver_does_not_take_is_posted_again(
    emulator: SmsEmulator, local_secrets: LocalSecrets, receiver: EventReceiver
) -> None:
    receiver.fail_next = 1
    client = make_client(emulator, local_secrets)

    [result] = client.send(from_=SENDER, to=MOBILE, message="Hello", enable_delivery_report=True)
    first_headers, [first] = receiver.next_post()
    second_headers, [second] = receiver.next_post()

    assert first["data"]["messageId"] == second["data"]["messageId"] == result.message_id
    assert first["id"] == second["id"]
    assert (first_headers["aeg-delivery-count"], second_headers["aeg-delivery-count"]) == ("0", "1")


def test_a_report_to_a_receiver_that_is_not_up_yet_arrives_once_it_is(local_secrets: LocalSecrets) -> None:
    ports = Ports.free()  # ports.functions: where the Functions host will be
    emu = SmsEmulator(
        api_port=ports.sms_api,
        inbox_port=ports.sms_inbox,
        access_key=local_secrets.value("sms-access-key"),
        cert_file=local_secrets.sms_cert,
        key_file=local_secrets.sms_key,
        event_grid_url=event_grid_url(ports.functions),
        delivery_delay_seconds=0.0,
    )
    with emu:
        # A host still starting: it takes the connection and drops it without an answer.
        with socket.create_server(("127.0.0.1", ports.functions)) as starting:
            starting.settimeout(10)
            [result] = make_client(emu, local_secrets).send(
                from_=SENDER, to=MOBILE, message="Hello", enable_delivery_report=True
            )
            conn, _ = starting.accept()
            conn.close()
        host = EventReceiver(port=ports.functions)
        try:
            headers, [event] = host.next_post()
        finally:
            host.close()

    assert event["data"]["messageId"] == result.message_id
    assert int(headers["aeg-delivery-count"]) >= 1


# --- logs -----------------------------------------------------------------------------------------


def test_logs_carry_message_ids_but_never_numbers_or_text(
    emulator: SmsEmulator,
    local_secrets: LocalSecrets,
    receiver: EventReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="devstack.sms_emulator")
    client = make_client(emulator, local_secrets)
    text = "Secret appointment text"

    [result] = client.send(from_=SENDER, to=MOBILE, message=text, enable_delivery_report=True)
    receiver.next_post()
    inbox(emulator, path="/")

    assert result.message_id in caplog.text
    assert MOBILE not in caplog.text and MOBILE.lstrip("+") not in caplog.text
    assert text not in caplog.text
