"""The storage transport: which path each request takes, what goes on the wire, and how failures map.

Against the session's real Azurite for the SDK calls the app makes, and against a few lines
of socket server for the failures Azurite cannot be made to produce (a hang, a cut answer).
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.core.exceptions import (
    IncompleteReadError,
    ServiceRequestError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline.transport import HttpRequest as OldStyleRequest
from azure.core.rest import HttpRequest

from shared_code import clock
from shared_code.settings import load_settings
from shared_code.sms import send_sms
from shared_code.storage import DOCUMENTS, Storage
from shared_code.transport import BufferedResponse, DirectTransport, LegacyBufferedResponse
from tests.support.emulator import start_emulator


@pytest.fixture
def counted(settings) -> Iterator[tuple[Storage, list[str]]]:
    """A Storage whose transports note every request that takes the stock (requests) path."""
    storage = Storage(settings)
    stock: list[str] = []
    original = DirectTransport.send

    def send(self: DirectTransport, request: Any, **kwargs: Any) -> Any:
        fallback_send = self._fallback.send

        def noted(req: Any, **kw: Any) -> Any:
            stock.append(f"{req.method} {req.url.split('?')[0].rsplit('/', 1)[-1]}")
            return fallback_send(req, **kw)

        self._fallback.send = noted
        try:
            return original(self, request, **kwargs)
        finally:
            self._fallback.send = fallback_send

    DirectTransport.send = send
    try:
        yield storage, stock
    finally:
        DirectTransport.send = original


def test_the_app_s_table_queue_and_blob_calls_take_the_direct_path(counted) -> None:
    storage, stock = counted
    table = storage.table("events")
    key = str(uuid.uuid4())
    table.create_entity({"PartitionKey": key, "RowKey": "1", "text": "Llythyr – café ✓"})
    assert table.get_entity(key, "1")["text"] == "Llythyr – café ✓"  # UTF-8 both ways
    table.update_entity({"PartitionKey": key, "RowKey": "1", "text": "changed"})
    assert [e["text"] for e in table.query_entities("PartitionKey eq @k", parameters={"k": key})] == ["changed"]

    queue = storage.queue("dispatch")
    queue.send_message(b"transport-test")
    blobs = storage.container(DOCUMENTS)
    source = blobs.get_blob_client(f"transport-test/{key}")
    source.upload_blob(b"%PDF-1.7 bytes", overwrite=True)
    copy = blobs.get_blob_client(f"transport-test/{key}-copy")
    assert copy.start_copy_from_url(source.url)["copy_status"] == "success"
    assert copy.get_blob_properties().size == len(b"%PDF-1.7 bytes")
    assert copy.exists()
    assert stock == []

    # A download streams: it goes the stock way, and arrives whole.
    assert copy.download_blob().readall() == b"%PDF-1.7 bytes"
    assert stock and all(s.startswith("GET ") for s in stock)


def test_an_sms_send_takes_the_direct_path(counted, base_env, tmp_path) -> None:
    _, stock = counted
    emulator = start_emulator(tmp_path / ".local")
    try:
        settings = load_settings(
            {
                **base_env,
                "ACS_CONNECTION_STRING": emulator.connection_string,
                "ACS_CA_BUNDLE": str(emulator.cert),
                "SMS_SENDER": "Enclose",
            }
        )
        accepted = send_sms(
            settings,
            to="+447700900123",
            text="Transport test",
            repeatability_id=str(uuid.uuid4()),
            first_sent=clock.now(),
            tag="org/transport-test",
        )
        assert accepted.acs_message_id
        assert [m["message"] for m in emulator.messages] == ["Transport test"]
        assert stock == []
    finally:
        emulator.stop()


def test_an_error_answer_is_returned_not_raised(counted) -> None:
    storage, _ = counted
    from azure.core.exceptions import ResourceNotFoundError

    with pytest.raises(ResourceNotFoundError):  # the SDK reads the 404 answer and raises its own error
        storage.table("events").get_entity("no-such-partition", "no-such-row")


# -- the wire and the failures, against a tiny server -----------------------------------------


def _server(answer: Callable[[socket.socket, bytes], None]) -> Iterator[str]:
    """Serve one behaviour per connection on a free port; yields the base URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                while len(body) < length:
                    body += conn.recv(65536)
                answer(conn, data[: len(head) + 4] + body)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


@pytest.fixture
def echo() -> Iterator[str]:
    def answer(conn: socket.socket, request: bytes) -> None:
        conn.sendall(
            b"HTTP/1.1 418 I'm a teapot\r\nContent-Type: application/octet-stream\r\n"
            b"X-Test: yes\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(request), request)
        )

    yield from _server(answer)


def test_the_request_goes_out_as_given_and_the_answer_comes_back_whole(echo) -> None:
    transport = DirectTransport()
    request = HttpRequest("PUT", f"{echo}/thing?x=1", headers={"x-ms-test": "1"}, content='{"name": "Siân"}')
    response = transport.send(request, read_timeout=5)
    assert isinstance(response, BufferedResponse)
    assert response.status_code == 418 and response.headers["x-test"] == "yes"
    sent = response.read()
    assert sent.startswith(b"PUT /thing?x=1 HTTP/1.1\r\n")
    assert b"\r\nx-ms-test: 1\r\n" in sent
    assert sent.endswith('{"name": "Siân"}'.encode())  # a text body goes as UTF-8
    assert b"".join(response.iter_bytes()) == sent == b"".join(response.iter_raw())


def test_each_origin_is_answered_by_its_own_server(echo) -> None:
    def named(conn: socket.socket, request: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(request), request))

    transport = DirectTransport()
    for other in _server(named):
        for _ in range(2):  # the second time round, from the pools found by origin
            assert transport.send(HttpRequest("GET", f"{echo}/one"), read_timeout=5).status_code == 418
            second = transport.send(HttpRequest("GET", f"{other}/two?x=%2F"), read_timeout=5)
            assert second.status_code == 200 and second.read().startswith(b"GET /two?x=%2F HTTP/1.1\r\n")
        bare = transport.send(HttpRequest("GET", other), read_timeout=5)  # no path at all: asks for /
        assert bare.read().startswith(b"GET / HTTP/1.1\r\n")
        query = transport.send(HttpRequest("GET", f"{other}?comp=list"), read_timeout=5)
        assert query.read().startswith(b"GET /?comp=list HTTP/1.1\r\n")


def test_an_old_style_request_is_sent_directly_and_answered_in_its_own_style(echo) -> None:
    # The ACS SMS SDK builds its requests this way.
    request = OldStyleRequest("POST", f"{echo}/sms?api-version=1", headers={"x-ms-test": "1"})
    request.set_json_body({"message": "Siân"})
    response = DirectTransport().send(request, read_timeout=5)
    assert isinstance(response, LegacyBufferedResponse)
    assert response.status_code == 418 and response.reason == "I'm a teapot"
    assert response.headers["x-test"] == "yes" and response.content_type == "application/octet-stream"
    sent = response.body()
    assert sent.startswith(b"POST /sms?api-version=1 HTTP/1.1\r\n") and b"\r\nx-ms-test: 1\r\n" in sent
    assert sent.endswith(b'{"message": "Si\\u00e2n"}')
    assert response.text() == sent.decode()
    assert b"".join(response.stream_download(None)) == sent


def test_streams_and_generated_bodies_take_the_stock_path(echo) -> None:
    transport = DirectTransport()
    streamed = transport.send(HttpRequest("GET", f"{echo}/a"), stream=True, read_timeout=5)
    assert not isinstance(streamed, BufferedResponse)
    assert b"".join(streamed.iter_bytes()).startswith(b"GET /a ")
    generated = transport.send(HttpRequest("PUT", f"{echo}/b", content=iter([b"one", b"two"])), read_timeout=5)
    assert not isinstance(generated, BufferedResponse)
    form = OldStyleRequest("POST", f"{echo}/c")
    form.set_formdata_body({"field": "value"})
    old = transport.send(form, read_timeout=5)
    assert not isinstance(old, LegacyBufferedResponse) and old.body().startswith(b"POST /c ")


def test_nothing_listening_is_a_request_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the request: nobody listens
    with pytest.raises(ServiceRequestError):
        DirectTransport().send(HttpRequest("GET", f"http://127.0.0.1:{port}/"), connection_timeout=2)


def test_an_answer_that_never_comes_is_a_response_time_out() -> None:
    hold = threading.Event()
    for base in _server(lambda conn, request: hold.wait(3)):
        with pytest.raises(ServiceResponseTimeoutError):
            DirectTransport().send(HttpRequest("GET", f"{base}/"), read_timeout=0.3)
        hold.set()


def test_a_connection_dropped_before_the_answer_is_a_response_error() -> None:
    # The request went out, so it may have been carried out: never reported as "not sent".
    for base in _server(lambda conn, request: None):
        with pytest.raises(ServiceResponseError) as raised:
            DirectTransport().send(HttpRequest("POST", f"{base}/", content=b"x"), read_timeout=5)
        assert not isinstance(raised.value, ServiceRequestError)


def test_an_answer_cut_short_is_an_incomplete_read() -> None:
    def cut(conn: socket.socket, request: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")

    for base in _server(cut):
        with pytest.raises(IncompleteReadError):
            DirectTransport().send(HttpRequest("GET", f"{base}/"), read_timeout=5)
