"""`send_sms` through the real ACS SDK and azure-core's stock transport, against the SMS emulator.

What each way a send can fail is reported as: above all, that an answer lost or cut short after
the request went out is "may have been sent" (retried with the same repeatability id), never a
refusal and never "not sent". A few lines of socket server stand for the failures the emulator
cannot produce (nothing listening, an answer whose body stalls).
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from devstack.identity import IdentityEndpoint, identity_key
from devstack.localsecrets import ensure_local_secrets
from devstack.sms_emulator import SmsEmulator, parse_fault
from shared_code import clock
from shared_code.settings import Settings, load_settings
from shared_code.sms import SmsAccepted, SmsError, SmsUnconfirmed, send_sms
from tests.support.emulator import start_emulator

#: A short time-out, so that time-out cases cost a second or two (SMS_TIMEOUT_SECONDS).
TIMEOUT_SECONDS = 1


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmsEmulator]:
    emu = start_emulator(tmp_path_factory.mktemp("sms") / ".local")
    yield emu
    emu.stop()


def _settings(base_env: dict[str, str], connection_string: str, ca_bundle: str = "") -> Settings:
    return load_settings(
        {
            **base_env,
            "ACS_CONNECTION_STRING": connection_string,
            "ACS_CA_BUNDLE": ca_bundle,
            "SMS_SENDER": "Enclose",
            "SMS_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
            "SMS_DELIVERY_REPORTS": "false",
        }
    )


@pytest.fixture
def sms_settings(base_env: dict[str, str], emulator: SmsEmulator) -> Settings:
    emulator.clear_faults()
    return _settings(base_env, emulator.connection_string, str(emulator.cert))


def _send(settings: Settings, text: str, repeatability_id: str, *, age: timedelta = timedelta(0)) -> SmsAccepted:
    return send_sms(
        settings,
        to="+447700900123",
        text=text,
        repeatability_id=repeatability_id,
        first_sent=clock.now() - age,
        tag="org/sms-test",
    )


def _arrived(emulator: SmsEmulator, text: str) -> int:
    return sum(1 for m in emulator.messages if m["message"] == text)


def test_a_send_is_accepted_and_a_repeat_of_its_id_is_not_sent_again(sms_settings, emulator) -> None:
    text, repeatability_id = f"Once {uuid.uuid4()}", str(uuid.uuid4())
    first = _send(sms_settings, text, repeatability_id)
    again = _send(sms_settings, text, repeatability_id)
    assert first.acs_message_id and again == first  # ACS saw our id both times: one text
    assert _arrived(emulator, text) == 1
    other = _send(sms_settings, text, str(uuid.uuid4()))
    assert other != first and _arrived(emulator, text) == 2


def test_the_first_sent_time_reaches_acs(sms_settings) -> None:
    # The emulator remembers ids for 5 minutes: a first try 10 minutes ago is outside its window.
    with pytest.raises(SmsUnconfirmed):
        _send(sms_settings, "Too late", str(uuid.uuid4()), age=timedelta(minutes=10))


@pytest.mark.parametrize(
    "fault",
    [
        {"mode": "accept_then_cut"},  # ACS took it, then its answer broke off half-way
        {"mode": "drop", "record": True},  # ACS took it, then the connection closed unanswered
        {"mode": "drop"},  # closed before ACS took it: from here, the same as the line above
        {"mode": "timeout", "record": True, "seconds": TIMEOUT_SECONDS + 1},
        {"mode": "accept_then_status", "status": 500},
        {"mode": "status", "status": 503},
    ],
)
def test_a_lost_or_failed_answer_may_have_sent_and_a_retry_sends_once(sms_settings, emulator, fault) -> None:
    text, repeatability_id = f"Fault {uuid.uuid4()}", str(uuid.uuid4())
    emulator.add_fault(parse_fault(fault))
    with pytest.raises(SmsError) as raised:
        _send(sms_settings, text, repeatability_id)
    assert raised.value.retryable and raised.value.may_have_sent
    assert not isinstance(raised.value, SmsUnconfirmed)
    if fault["mode"] == "timeout":
        # ACS still holds the first request until its time-out ends: a repeat now is "in progress" (409).
        with pytest.raises(SmsError) as busy:
            _send(sms_settings, text, repeatability_id)
        assert "409" in busy.value.reason and busy.value.may_have_sent
        for _ in range(50):  # ...asked again later, once the hold is over
            try:
                _send(sms_settings, text, repeatability_id)
                break
            except SmsError as later:
                assert "409" in later.reason
                time.sleep(0.2)
    accepted = _send(sms_settings, text, repeatability_id)
    assert accepted.acs_message_id
    assert _arrived(emulator, text) == 1


def test_a_429_is_throttling_with_its_retry_after(sms_settings, emulator) -> None:
    emulator.add_fault(parse_fault({"mode": "status", "status": 429, "retryAfter": 3}))
    with pytest.raises(SmsError) as raised:
        _send(sms_settings, "Slow down", str(uuid.uuid4()))
    assert raised.value.retryable and raised.value.throttled and raised.value.retry_after == 3.0


def test_a_refusal_is_final_and_nothing_was_sent(sms_settings, emulator) -> None:
    emulator.add_fault(parse_fault({"mode": "status", "status": 400}))
    with pytest.raises(SmsError) as raised:
        _send(sms_settings, "Refused", str(uuid.uuid4()))
    assert not raised.value.retryable and not raised.value.may_have_sent


def test_a_wrong_key_is_refused_before_anything_is_sent(base_env, emulator) -> None:
    wrong = emulator.connection_string.rsplit("accesskey=", 1)[0] + "accesskey=" + "QUFBQQ==" * 8
    with pytest.raises(SmsError) as raised:
        _send(_settings(base_env, wrong, str(emulator.cert)), "Wrong key", str(uuid.uuid4()))
    assert raised.value.retryable and not raised.value.may_have_sent and raised.value.misconfigured


def test_a_409_means_an_earlier_try_is_still_in_progress_ask_again_later(sms_settings, emulator) -> None:
    # Microsoft's "Repeatability of requests": a repeat while the first is in progress gets 409.
    emulator.add_fault(parse_fault({"mode": "status", "status": 409}))
    with pytest.raises(SmsError) as raised:
        _send(sms_settings, "In progress", str(uuid.uuid4()))
    assert raised.value.retryable and raised.value.may_have_sent
    assert not isinstance(raised.value, SmsUnconfirmed) and not raised.value.misconfigured


def test_a_409_for_our_recipient_inside_a_202_is_the_same(sms_settings, emulator) -> None:
    emulator.add_fault(parse_fault({"mode": "item_status", "status": 409}))
    with pytest.raises(SmsError) as raised:
        _send(sms_settings, "In progress", str(uuid.uuid4()))
    assert raised.value.retryable and raised.value.may_have_sent


def test_a_412_for_the_whole_request_is_unconfirmed_as_the_recipients_is(sms_settings, emulator) -> None:
    emulator.add_fault(parse_fault({"mode": "status", "status": 412}))
    with pytest.raises(SmsUnconfirmed) as raised:
        _send(sms_settings, "Too late", str(uuid.uuid4()))
    assert not raised.value.retryable and raised.value.may_have_sent


def test_a_per_recipient_503_inside_a_202_may_have_sent_and_is_retried(sms_settings, emulator) -> None:
    text, repeatability_id = f"Item 503 {uuid.uuid4()}", str(uuid.uuid4())
    emulator.add_fault(parse_fault({"mode": "item_status", "status": 503}))
    with pytest.raises(SmsError) as raised:
        _send(sms_settings, text, repeatability_id)
    assert raised.value.retryable and raised.value.may_have_sent and not raised.value.throttled
    assert _arrived(emulator, text) == 0
    assert _send(sms_settings, text, repeatability_id).acs_message_id
    assert _arrived(emulator, text) == 1


def test_a_per_recipient_429_inside_a_202_is_throttling_and_nothing_was_sent(sms_settings, emulator) -> None:
    emulator.add_fault(parse_fault({"mode": "item_status", "status": 429}))
    with pytest.raises(SmsError) as raised:
        _send(sms_settings, "Item 429", str(uuid.uuid4()))
    assert raised.value.retryable and raised.value.throttled and not raised.value.may_have_sent


def test_a_repeat_acs_rejects_as_another_request_under_our_id_is_unconfirmed(sms_settings, emulator) -> None:
    # repeatabilityResult "rejected" with 400: ACS holds a different request under this id, which may have gone.
    repeatability_id = str(uuid.uuid4())
    _send(sms_settings, f"First {uuid.uuid4()}", repeatability_id)
    with pytest.raises(SmsUnconfirmed) as raised:
        _send(sms_settings, f"Changed {uuid.uuid4()}", repeatability_id)
    assert raised.value.may_have_sent and not raised.value.retryable


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 401, "body": "InternalError"},  # a From number the resource does not own (recorded, SDK 1.1.0)
        {"status": 401, "body": "Unauthorized"},
        {"status": 403, "body": "Forbidden"},  # the identity lacks its role on the resource
        {"status": 404, "body": "empty"},  # a sender the resource does not own (recorded, 2021)
        {"status": 400, "body": "From"},  # a malformed From: {"From": ["Invalid From phone number format"]}
    ],
)
def test_a_refused_sender_or_identity_is_misconfiguration_not_the_messages_fault(sms_settings, emulator, fault) -> None:
    emulator.add_fault(parse_fault({"mode": "status", **fault}))
    with pytest.raises(SmsError) as raised:
        _send(sms_settings, "Misconfigured", str(uuid.uuid4()))
    assert raised.value.misconfigured and not raised.value.may_have_sent
    assert str(fault["status"]) in raised.value.reason


def test_a_400_about_something_else_is_the_messages_own_refusal(sms_settings, emulator) -> None:
    emulator.add_fault(parse_fault({"mode": "status", "status": 400}))
    with pytest.raises(SmsError) as raised:
        _send(sms_settings, "Refused", str(uuid.uuid4()))
    assert not raised.value.misconfigured and not raised.value.retryable


# -- as in Azure: ACS_ENDPOINT and the managed identity, no connection string -------------------------


@pytest.fixture(scope="module")
def identity_acs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SmsEmulator, IdentityEndpoint]]:
    """An emulator that takes managed-identity tokens, and the identity endpoint App Service would offer,
    its IDENTITY_ENDPOINT and IDENTITY_HEADER set as the platform sets them."""
    local = tmp_path_factory.mktemp("identity") / ".local"
    key = identity_key(ensure_local_secrets(local).root)
    emu = start_emulator(local, identity_key=key)
    with IdentityEndpoint(key) as endpoint, pytest.MonkeyPatch.context() as env:
        for name, value in endpoint.environ.items():
            env.setenv(name, value)
        yield emu, endpoint
    emu.stop()


def _identity_settings(base_env: dict[str, str], emu: SmsEmulator, timeout: int = TIMEOUT_SECONDS) -> Settings:
    return load_settings(
        {
            **base_env,
            "ACS_CONNECTION_STRING": "",
            "ACS_ENDPOINT": emu.api_url + "/",
            "ACS_CA_BUNDLE": str(emu.cert),
            "SMS_SENDER": "Enclose",
            "SMS_TIMEOUT_SECONDS": str(timeout),
            "SMS_DELIVERY_REPORTS": "false",
        }
    )


def test_with_acs_endpoint_and_no_connection_string_the_managed_identity_sends(base_env, identity_acs) -> None:
    emu, endpoint = identity_acs
    emu.allow_principals([endpoint.principal_id])
    text = f"As in Azure {uuid.uuid4()}"
    accepted = _send(_identity_settings(base_env, emu), text, str(uuid.uuid4()))
    assert accepted.acs_message_id and _arrived(emu, text) == 1
    assert endpoint.tokens_issued >= 1
    assert (emu.identity()["bearerSends"], emu.identity()["keySends"]) == (1, 0)


def test_an_identity_without_its_role_on_the_resource_is_misconfiguration(base_env, identity_acs) -> None:
    emu, _ = identity_acs
    emu.allow_principals(["another-principal"])
    try:
        with pytest.raises(SmsError) as raised:
            _send(_identity_settings(base_env, emu), "No role", str(uuid.uuid4()))
    finally:
        emu.allow_principals(None)
    assert raised.value.misconfigured and not raised.value.may_have_sent and "(403)" in raised.value.reason


def test_an_identity_endpoint_that_gives_no_token_is_misconfiguration(
    base_env, identity_acs, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu, _ = identity_acs
    monkeypatch.setenv("IDENTITY_HEADER", "not the platform's secret")
    # A new client (another time-out), so a new credential that reads the changed setting.
    with pytest.raises(SmsError) as raised:
        _send(_identity_settings(base_env, emu, timeout=TIMEOUT_SECONDS + 1), "No token", str(uuid.uuid4()))
    assert raised.value.misconfigured and not raised.value.may_have_sent


# -- failures the emulator cannot produce, from a tiny HTTPS server ---------------------------------
# (The SDK makes every ACS endpoint https://, so the server speaks TLS with the emulator's certificate.)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, str]:
    """A server TLS context for 127.0.0.1, and the CA bundle a client must trust for it."""
    secrets = ensure_local_secrets(tmp_path_factory.mktemp("tls") / ".local")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(secrets.sms_cert, secrets.sms_key)
    return context, str(secrets.sms_cert)


def _server(tls: tuple[ssl.SSLContext, str], answer: Callable[[socket.socket], None]) -> Iterator[str]:
    """Read each request whole, then `answer` on its connection; yields an ACS connection string."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            raw.settimeout(5)
            try:
                conn = tls[0].wrap_socket(raw, server_side=True)
            except (OSError, ssl.SSLError):
                raw.close()
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                while len(body) < length:
                    body += conn.recv(65536)
                answer(conn)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"endpoint=https://127.0.0.1:{listener.getsockname()[1]}/;accesskey=" + "QUFBQQ==" * 8
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_an_answer_whose_body_stalls_may_have_sent(base_env, tls) -> None:
    # requests reports a read time-out inside the body as a ConnectionError, which azure-core's
    # RequestsTransport raises as ServiceRequestError: the request went out all the same.
    release, answered = threading.Event(), []

    def stall(conn: socket.socket) -> None:
        answered.append(True)  # the whole request arrived
        conn.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        release.wait(TIMEOUT_SECONDS + 3)

    for connection_string in _server(tls, stall):
        with pytest.raises(SmsError) as raised:
            _send(_settings(base_env, connection_string, tls[1]), "Stalled", str(uuid.uuid4()))
        release.set()
    assert answered and raised.value.retryable and raised.value.may_have_sent


def test_an_answer_cut_short_may_have_sent(base_env, tls) -> None:
    answered = []

    def cut(conn: socket.socket) -> None:
        answered.append(True)  # the whole request arrived
        conn.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")

    for connection_string in _server(tls, cut):
        with pytest.raises(SmsError) as raised:
            _send(_settings(base_env, connection_string, tls[1]), "Cut", str(uuid.uuid4()))
    assert answered and raised.value.retryable and raised.value.may_have_sent


def test_a_server_certificate_refused_in_the_handshake_is_provably_not_sent(base_env, emulator, tls) -> None:
    # The emulator's certificate checked against another CA: the handshake fails before the request is written.
    text = f"Untrusted {uuid.uuid4()}"
    settings = _settings(base_env, emulator.connection_string, tls[1])
    with pytest.raises(SmsError) as raised:
        _send(settings, text, str(uuid.uuid4()))
    assert raised.value.retryable and not raised.value.may_have_sent
    assert _arrived(emulator, text) == 0


def test_a_send_accepted_without_honouring_our_repeatability_id_is_logged(
    base_env, tls, caplog: pytest.LogCaptureFixture
) -> None:
    def accept_without_repeatability(conn: socket.socket) -> None:
        item = {"to": "+447700900123", "messageId": "Outgoing_x", "httpStatusCode": 202, "successful": True}
        body = json.dumps({"value": [item]}).encode()
        conn.sendall(
            b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )

    for connection_string in _server(tls, accept_without_repeatability):
        accepted = _send(_settings(base_env, connection_string, tls[1]), "Not repeatable", str(uuid.uuid4()))
    assert accepted.acs_message_id == "Outgoing_x"
    assert "Outgoing_x without honouring its repeatability id" in caplog.text


def test_nothing_listening_is_retryable_and_provably_not_sent(base_env) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the send: nobody listens
    settings = _settings(base_env, f"endpoint=https://127.0.0.1:{port}/;accesskey=" + "QUFBQQ==" * 8)
    with pytest.raises(SmsError) as raised:
        _send(settings, "Nobody", str(uuid.uuid4()))
    assert raised.value.retryable and not raised.value.may_have_sent
