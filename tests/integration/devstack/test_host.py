"""The local Functions host against a real Azurite, serving the sample app in sample_app.py."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import importlib.util
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import azure.functions as func
import pytest
import requests
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient

from devstack.host import LocalHost, load_local_settings, main
from devstack.ports import Ports, wait_for_port


def _sample_app() -> ModuleType:
    # Loaded by path under a fixed name so it works in any pytest import mode, and is built (and its
    # get_functions() called) once.
    name = "enclose_devstack_host_sample_app"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("sample_app.py"))
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


sample = _sample_app()
calls = sample.calls


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _eventually(check: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    """Poll until check() returns something truthy; fail with `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def storage(azurite: Any) -> str:
    """The session's Azurite (tests/conftest.py): this file's queues and containers have their own names."""
    return azurite.connection_string


@pytest.fixture(scope="module")
def host_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostjson") / "host.json"
    path.write_text(
        json.dumps(
            {
                "version": "2.0",
                "extensions": {
                    "http": {"routePrefix": ""},
                    "queues": {
                        "maxDequeueCount": 5,
                        "visibilityTimeout": "00:00:00",
                        "batchSize": 16,
                        "maxPollingInterval": "00:00:01",
                    },
                },
            }
        )
    )
    return path


def _new_host(storage: str, host_json: Path) -> LocalHost:
    return LocalHost(
        sample.FUNCTIONS,
        port=0,
        host_json=host_json,
        environ={"AzureWebJobsStorage": storage, "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT": "1048576"},
    )


@pytest.fixture
def host(storage: str, host_json: Path) -> Iterator[LocalHost]:
    h = _new_host(storage, host_json)
    h.start()
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture
def queue(storage: str) -> QueueClient:
    return QueueClient.from_connection_string(storage, sample.QUEUE)


def _poison_messages(storage: str, name: str) -> list[str]:
    client = QueueClient.from_connection_string(storage, name)
    try:
        return [m.content for m in client.peek_messages(max_messages=32)]
    except Exception:  # the queue does not exist yet
        return []


# ------------------------------------------------------------------ HTTP


def test_route_params_query_and_headers_reach_the_function(host: LocalHost) -> None:
    r = requests.get(f"{host.base_url}/v1/items/abc-1?a=1&b=two", headers={"X-Sample": "yes"}, timeout=5)
    assert r.status_code == 200
    got = r.json()
    assert got["route"] == {"id": "abc-1"}
    assert got["params"] == {"a": "1", "b": "two"}
    assert got["method"] == "GET"
    assert got["url"].endswith("/v1/items/abc-1?a=1&b=two")
    assert got["header"] == "yes"


def test_routes_are_tried_in_registration_order_as_in_azure(host: LocalHost) -> None:
    # `v1/items/{id}` is registered before `v1/items/special`: like Azure's host, the first route
    # that matches takes the request, even where ASP.NET Core's precedence would pick the literal.
    assert requests.get(f"{host.base_url}/v1/items/special", timeout=5).json()["route"] == {"id": "special"}
    assert requests.get(f"{host.base_url}/V1/Items/Special", timeout=5).json()["route"] == {"id": "Special"}


def test_constraints_optional_and_catch_all_parameters(host: LocalHost) -> None:
    base = host.base_url
    doc_id = str(uuid.uuid4())
    assert requests.get(f"{base}/v1/docs/{doc_id}", timeout=5).json()["route"] == {"id": doc_id}
    assert requests.get(f"{base}/v1/docs/not-a-guid", timeout=5).status_code == 404
    assert requests.get(f"{base}/v1/nums/42", timeout=5).json() == {"n": 42}
    assert requests.get(f"{base}/v1/nums/4x", timeout=5).status_code == 404
    assert requests.get(f"{base}/v1/greet", timeout=5).json() == {"route": {}}
    assert requests.get(f"{base}/v1/greet/jo", timeout=5).json() == {"route": {"name": "jo"}}
    assert requests.get(f"{base}/files/a/b/c.txt", timeout=5).json() == {"rest": "a/b/c.txt"}
    assert requests.get(f"{base}/files", timeout=5).json() == {"rest": None}


def test_wrong_method_and_unknown_route_answer_404_like_the_real_host(host: LocalHost) -> None:
    base = host.base_url
    assert requests.delete(f"{base}/v1/items/abc", timeout=5).status_code == 404
    assert requests.post(f"{base}/v1/nums/1", timeout=5).status_code == 404
    assert requests.get(f"{base}/nowhere", timeout=5).status_code == 404
    assert requests.get(f"{base}/api/v1/nums/1", timeout=5).status_code == 404  # routePrefix is ""
    # Methods http.server has no handler for still reach the router (its 404), never a 501.
    for method in ("TRACE", "PROPFIND", "FOO"):
        assert requests.request(method, f"{base}/v1/items/abc", timeout=5).status_code == 404
    assert requests.delete(f"{base}/v1/docs/{uuid.uuid4()}", timeout=5).json()["method"] == "DELETE"


def test_problem_json_passes_through_unchanged(host: LocalHost) -> None:
    r = requests.get(f"{host.base_url}/v1/problem", timeout=5)
    assert r.status_code == 422
    assert r.headers["Content-Type"] == "application/problem+json"
    assert r.json()["errors"] == [{"field": "patient.mobile", "message": "not a mobile"}]


def test_redirect_with_several_set_cookie_headers(host: LocalHost) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", host.port, timeout=5)
    conn.request("POST", "/p/tok-123", body=b"dob-day=1")
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 303
    assert resp.getheader("Location") == "/p/tok-123/documents"
    cookies = resp.msg.get_all("Set-Cookie")
    assert len(cookies) == 2
    session = next(c for c in cookies if c.startswith("session=abc"))
    assert "httponly" in session.lower() and "samesite=strict" in session.lower()
    assert "path=/p/tok" in session.lower() and "max-age=900" in session.lower()
    conn.close()


def test_async_function_and_context_argument(host: LocalHost) -> None:
    assert requests.get(f"{host.base_url}/v1/async", timeout=5).json() == {"async": True}
    got = requests.get(f"{host.base_url}/v1/context", timeout=5).json()
    assert got["function"] == "with_context"
    assert uuid.UUID(got["invocation"])


def test_an_unhandled_exception_is_a_bare_500_and_is_logged(host: LocalHost, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="devstack.host")
    r = requests.get(f"{host.base_url}/v1/boom?token=secret-query", timeout=5)
    assert r.status_code == 500
    assert "boom-secret-detail" not in r.text and "Traceback" not in r.text
    failed = [rec for rec in caplog.records if rec.exc_info and isinstance(rec.exc_info[1], RuntimeError)]
    assert failed, "the exception was not logged"
    assert "secret-query" not in caplog.text  # the URL's query string is never logged


def test_a_chunked_body_reaches_the_function_empty_as_in_azure(host: LocalHost) -> None:
    payload = os.urandom(300_000)
    digest = hashlib.sha256(payload).hexdigest()
    conn = http.client.HTTPConnection("127.0.0.1", host.port, timeout=5)
    conn.request("POST", "/v1/items", body=payload)
    first = conn.getresponse()
    assert first.status == 201 and json.loads(first.read())["sha256"] == digest
    sock = conn.sock
    chunks = (payload[i : i + 65536] for i in range(0, len(payload), 65536))
    conn.request("POST", "/v1/items", body=chunks, encode_chunked=True)
    second = conn.getresponse()
    # Azure's host gives an out-of-process worker no body for a chunked request.
    assert second.status == 201 and json.loads(second.read()) == {"size": 0, "sha256": hashlib.sha256().hexdigest()}
    conn.request("POST", "/v1/items", body=payload)  # the chunks were consumed: framing holds
    third = conn.getresponse()
    assert third.status == 201 and json.loads(third.read())["sha256"] == digest
    assert conn.sock is sock, "the connection was not kept alive"
    conn.close()


def test_a_body_over_the_limit_is_refused_with_413(host: LocalHost) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", host.port, timeout=5)
    conn.putrequest("POST", "/v1/items")
    conn.putheader("Content-Length", str(2 * 1048576))
    conn.endheaders()
    assert conn.getresponse().status == 413
    conn.close()


@pytest.fixture
def app_limit_host(storage: str, host_json: Path) -> Iterator[LocalHost]:
    """A host with the body limit `make run` gives it (devstack/localsecrets.py), as Azure's Bicep does."""
    from devstack.localsecrets import request_body_limit

    h = LocalHost(
        sample.FUNCTIONS,
        port=0,
        host_json=host_json,
        environ={"AzureWebJobsStorage": storage, "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT": str(request_body_limit())},
    )
    h.start()
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture
def short_timeout_host(storage: str, tmp_path: Path) -> Iterator[LocalHost]:
    """A host whose host.json sets `functionTimeout` to one second."""
    path = tmp_path / "host.json"
    path.write_text(
        json.dumps({"version": "2.0", "functionTimeout": "00:00:01", "extensions": {"http": {"routePrefix": ""}}})
    )
    h = LocalHost(sample.FUNCTIONS, port=0, host_json=path, environ={"AzureWebJobsStorage": storage})
    h.start()
    try:
        yield h
    finally:
        h.stop()


def test_an_invocation_past_function_timeout_fails_as_in_azure(
    short_timeout_host: LocalHost, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="devstack.host")
    assert requests.get(f"{short_timeout_host.base_url}/v1/sleep?s=0", timeout=10).status_code == 200
    assert requests.get(f"{short_timeout_host.base_url}/v1/sleep?s=4", timeout=10).status_code == 500
    assert "Timeout value of 00:00:01 exceeded by function 'Functions.sleepy'" in caplog.text


def test_a_content_length_over_the_app_limit_is_413_before_any_body_is_sent(app_limit_host: LocalHost) -> None:
    from devstack.localsecrets import request_body_limit

    limit = request_body_limit()
    assert limit == 20 * 1024 * 1024 + 64 * 1024  # MAX_UPLOAD_BYTES (a PDF or picture, made to fit) + framing
    for extra_headers in ([], [("Expect", "100-continue")]):
        conn = http.client.HTTPConnection("127.0.0.1", app_limit_host.port, timeout=5)
        conn.putrequest("POST", "/v1/items")
        conn.putheader("Content-Length", str(limit + 1))
        for name, value in extra_headers:
            conn.putheader(name, value)
        started = time.monotonic()
        conn.endheaders()  # headers only: not one byte of the body is sent
        answer = conn.getresponse()
        assert answer.status == 413
        assert time.monotonic() - started < 2.0, "the host waited for a body it should refuse"
        assert answer.getheader("Connection") == "close"  # the unread body must not be parsed as a request
        answer.read()
        conn.close()


def test_a_body_of_exactly_the_app_limit_reaches_the_function(app_limit_host: LocalHost) -> None:
    from devstack.localsecrets import request_body_limit

    payload = os.urandom(request_body_limit())
    r = requests.post(f"{app_limit_host.base_url}/v1/items", data=payload, timeout=30)
    assert r.status_code == 201
    assert r.json() == {"size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}


# ------------------------------------------------------------------ queue trigger


def test_a_queue_message_is_processed_once_then_deleted(storage: str, host_json: Path, queue: QueueClient) -> None:
    h = _new_host(storage, host_json)
    h.start()
    body = f"hello-{uuid.uuid4()}"
    try:
        queue.send_message(_b64(body))
        [call] = calls.wait("work", body=body)
        assert call["dequeue_count"] == 1 and call["inserted"]
    finally:
        h.stop()  # waits for the in-flight message to be completed
    assert queue.get_queue_properties().approximate_message_count == 0
    assert len(calls.of("work", body=body)) == 1


def test_a_failing_message_is_retried_then_moved_to_poison(storage: str, host_json: Path, queue: QueueClient) -> None:
    h = _new_host(storage, host_json)
    h.start()
    body = f"fail-{uuid.uuid4()}"
    try:
        queue.send_message(_b64(body))
        _eventually(lambda: _b64(body) in _poison_messages(storage, f"{sample.QUEUE}-poison"), "poison message")
    finally:
        h.stop()
    assert [c["dequeue_count"] for c in calls.of("work", body=body)] == [1, 2, 3, 4, 5]


def test_an_undecodable_message_goes_to_poison_without_a_call(
    host: LocalHost, queue: QueueClient, storage: str
) -> None:
    raw = f"not base64 !! {uuid.uuid4()}"
    queue.send_message(raw)
    _eventually(lambda: raw in _poison_messages(storage, f"{sample.QUEUE}-poison"), "poison message")
    assert not [c for c in calls.of("work") if raw in c["body"]]


def test_stop_lets_an_in_flight_message_finish_and_commit(storage: str, host_json: Path, queue: QueueClient) -> None:
    h = _new_host(storage, host_json)
    h.start()
    body = f"slow-{uuid.uuid4()}"
    try:
        queue.send_message(_b64(body))
        calls.wait("work", body=body)
    finally:
        h.stop()
    assert calls.of("work_done", body=body), "stop() did not wait for the running invocation"
    assert queue.get_queue_properties().approximate_message_count == 0


# ------------------------------------------------------------------ blob trigger


def test_blob_trigger_runs_once_per_blob_version_across_restarts(storage: str, host_json: Path) -> None:
    container = BlobServiceClient.from_connection_string(storage).get_container_client(sample.CONTAINER)
    first, second, third = (f"A12345/{uuid.uuid4()}" for _ in range(3))
    name = lambda blob: f"{sample.CONTAINER}/{blob}"  # noqa: E731

    a = _new_host(storage, host_json)
    a.start()
    try:
        container.upload_blob(first, b"one")
        [call] = calls.wait("scan", name=name(first))
        assert call["data"] == b"one" and call["length"] == 3
        assert call["uri"].endswith(f"/{sample.CONTAINER}/{first}")
        container.upload_blob(second, b"two")
        calls.wait("scan", name=name(second))
    finally:
        a.stop()

    b = _new_host(storage, host_json)
    b.start()
    try:
        container.upload_blob(third, b"three")
        calls.wait("scan", name=name(third))  # b has scanned the container, first and second included
        assert len(calls.of("scan", name=name(first))) == 1
        assert len(calls.of("scan", name=name(second))) == 1
        container.upload_blob(first, b"changed", overwrite=True)
        calls.wait("scan", 2, name=name(first))
        assert [c["data"] for c in calls.of("scan", name=name(first))] == [b"one", b"changed"]
    finally:
        b.stop()
    receipts = BlobServiceClient.from_connection_string(storage).get_container_client("azure-webjobs-hosts")
    assert [r.name for r in receipts.list_blobs(name_starts_with="blobreceipts/") if r.name.endswith(third)]


def test_a_failing_blob_is_tried_five_times_then_poisoned(host: LocalHost, storage: str) -> None:
    container = BlobServiceClient.from_connection_string(storage).get_container_client(sample.CONTAINER)
    blob = f"A12345/{uuid.uuid4()}"
    container.upload_blob(blob, b"fail please")

    def poisoned() -> bool:
        for content in _poison_messages(storage, "webjobs-blobtrigger-poison"):
            message = json.loads(base64.b64decode(content))
            if message["BlobName"] == blob:
                assert message["ContainerName"] == sample.CONTAINER
                assert message["FunctionId"] == "Host.Functions.scan"
                return True
        return False

    _eventually(poisoned, "blob poison message")
    host.stop()
    assert len(calls.of("scan", name=f"{sample.CONTAINER}/{blob}")) == 5


# ------------------------------------------------------------------ timer trigger


def test_timers_fire_on_schedule_and_on_startup(host: LocalHost) -> None:
    before = len(calls.of("tick"))
    ticks = calls.wait("tick", before + 2)
    assert all(t["past_due"] is False for t in ticks[before:])
    assert calls.wait("yearly")[0]["past_due"] is False


# ------------------------------------------------------------------ Event Grid trigger


def _grid(host: LocalHost, body: Any, function: str = "delivery_report", kind: str = "Notification") -> Any:
    return requests.post(
        f"{host.base_url}/runtime/webhooks/eventgrid?functionName={function}",
        data=json.dumps(body),
        headers={"aeg-event-type": kind, "Content-Type": "application/json"},
        timeout=5,
    )


def _event(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "topic": "/subscriptions/x/resourceGroups/y",
        "subject": "sms/1",
        "eventType": "Microsoft.Communication.SMSDeliveryReportReceived",
        "eventTime": "2026-01-02T03:04:05.1234567Z",
        "dataVersion": "1.0",
        "data": data,
    }


def test_event_grid_validation_handshake(host: LocalHost) -> None:
    validation = _event({"validationCode": "code-123"})
    validation["eventType"] = "Microsoft.EventGrid.SubscriptionValidationEvent"
    r = _grid(host, [validation], kind="SubscriptionValidation")
    assert r.status_code == 200 and r.json() == {"validationResponse": "code-123"}
    assert not calls.of("delivery_report", id=validation["id"])


def test_event_grid_events_are_delivered_one_call_each(host: LocalHost) -> None:
    events = [_event({"messageId": "m1"}), _event({"messageId": "m2"})]
    assert _grid(host, events).status_code == 202
    for event in events:
        [call] = calls.of("delivery_report", id=event["id"])
        assert call["type"] == "Microsoft.Communication.SMSDeliveryReportReceived"
        assert call["data"] == event["data"] and call["subject"] == "sms/1" and call["schema"] == "eventgrid"
        assert call["time"].year == 2026 and call["topic"] == event["topic"]
    cloud = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/acs", "type": "T", "data": {"k": 1}}
    assert _grid(host, cloud).status_code == 202
    assert calls.of("delivery_report", id=cloud["id"])[0]["schema"] == "cloudevents"


def test_an_event_grid_request_without_its_event_type_header_is_400_as_in_azure(host: LocalHost) -> None:
    event = _event({"messageId": "m3"})
    url = f"{host.base_url}/runtime/webhooks/eventgrid?functionName=delivery_report"
    r = requests.post(url, data=json.dumps([event]), headers={"Content-Type": "application/json"}, timeout=5)
    assert r.status_code == 400
    assert _grid(host, [event], kind="Surprise").status_code == 400
    assert not calls.of("delivery_report", id=event["id"])


def test_event_grid_failure_is_500_and_unknown_function_404(host: LocalHost) -> None:
    assert _grid(host, [_event({"fail": True})]).status_code == 500
    assert _grid(host, [_event({})], function="nope").status_code == 404


# ------------------------------------------------------------------ settings and indexing


def test_load_local_settings_reads_values_as_strings(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": {"A": "x", "B": True, "C": 3}}))
    assert load_local_settings(path) == {"A": "x", "B": "true", "C": "3"}
    assert load_local_settings(tmp_path / "absent.json") == {}


def test_functions_the_host_cannot_serve_are_refused_at_start_up() -> None:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="x")
    def stray(req: func.HttpRequest, other: str) -> func.HttpResponse:
        return func.HttpResponse("")

    with pytest.raises(ValueError, match="'other' has no binding"):
        LocalHost(app.get_functions())


def test_admin_endpoints_report_status_and_run_a_timer_now(host: LocalHost) -> None:
    assert requests.get(f"{host.base_url}/admin/host/status", timeout=5).json()["state"] == "Running"
    before = len(calls.of("yearly"))
    assert requests.post(f"{host.base_url}/admin/functions/yearly", json={}, timeout=5).status_code == 202
    calls.wait("yearly", before + 1)
    assert requests.post(f"{host.base_url}/admin/functions/nope", json={}, timeout=5).status_code == 404


TINY_APP = """
import os
import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="hello", methods=["GET"])
def hello(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(os.environ["GREETING"])
"""


def test_command_line_serves_an_app_with_its_local_settings_until_sigterm(tmp_path: Path) -> None:
    (tmp_path / "tinyapp.py").write_text(TINY_APP)
    (tmp_path / "local.settings.json").write_text(json.dumps({"Values": {"GREETING": "hello from settings"}}))
    (tmp_path / "host.json").write_text(json.dumps({"version": "2.0", "extensions": {"http": {"routePrefix": ""}}}))
    port = Ports.free().functions
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("GREETING", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devstack.host",
            "--app",
            "tinyapp",
            "--port",
            str(port),
            "--settings",
            str(tmp_path / "local.settings.json"),
            "--host-json",
            str(tmp_path / "host.json"),
        ],
        cwd=Path(__file__).resolve().parents[3],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, timeout=30)
        r = requests.get(f"http://127.0.0.1:{port}/hello", timeout=5)
        assert r.status_code == 200 and r.text == "hello from settings"
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, output
    assert "Executed 'Functions.hello' (Succeeded" in output


# ------------------------------------------------------------------ several worker processes (--processes)

ROOT = Path(__file__).resolve().parents[3]

# Each function leaves its trace in files, since the workers are other processes: one file per
# invocation, named by what was handled and the pid that handled it, so a duplicate shows up.
MULTI_APP = r"""
import os
import time
import uuid
from pathlib import Path

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
OUT = Path(os.environ["MULTI_OUT"])


@app.route(route="sleep", methods=["GET"])
def sleepy(req: func.HttpRequest) -> func.HttpResponse:
    time.sleep(min(float(req.params.get("s", "0")), 10))
    return func.HttpResponse(str(os.getpid()))


@app.route(route="pid", methods=["GET"])
def pid(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(str(os.getpid()))


@app.queue_trigger(arg_name="msg", queue_name="%MULTI_QUEUE%", connection="AzureWebJobsStorage")
def work(msg: func.QueueMessage) -> None:
    body = msg.get_body().decode()
    if body == "slow":
        (OUT / "slow-started").touch()
        time.sleep(1)
    (OUT / "queue" / f"{msg.id}.{os.getpid()}.{uuid.uuid4().hex}").write_text(body)


@app.blob_trigger(arg_name="blob", path="%MULTI_CONTAINER%/{name}", connection="AzureWebJobsStorage")
def scan(blob: func.InputStream) -> None:
    name = blob.name.rsplit("/", 1)[-1]
    (OUT / "blobs" / f"{name}.{os.getpid()}.{uuid.uuid4().hex}").touch()


@app.timer_trigger(arg_name="timer", schedule="* * * * * *", run_on_startup=False)
def tick(timer: func.TimerRequest) -> None:
    with open(OUT / "ticks", "a") as f:
        f.write(f"{os.getpid()}\n")
"""


@dataclass
class MultiHost:
    """`python -m devstack.host --processes 2` serving MULTI_APP, with its output collected."""

    proc: subprocess.Popen[bytes]
    port: int
    out: Path
    queue: QueueClient
    container: str
    lines: list[str]
    reader: threading.Thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return "".join(self.lines)

    def handled(self, kind: str) -> list[tuple[str, int]]:
        """(what, pid) for each invocation that wrote a file under `kind`."""
        out = []
        for f in (self.out / kind).iterdir():
            what, pid, _ = f.name.rsplit(".", 2)
            out.append((what, int(pid)))
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own group: only what this test started
                self.proc.wait(timeout=10)
        self.reader.join(timeout=10)


def _start_multi(tmp_path: Path, storage: str, function_timeout: str = "00:05:00") -> MultiHost:
    out = tmp_path / "out"
    (out / "queue").mkdir(parents=True)
    (out / "blobs").mkdir()
    (tmp_path / "multiapp.py").write_text(MULTI_APP)
    (tmp_path / "host.json").write_text(
        json.dumps(
            {
                "version": "2.0",
                "functionTimeout": function_timeout,
                "extensions": {
                    "http": {"routePrefix": ""},
                    "queues": {"visibilityTimeout": "00:00:00", "maxPollingInterval": "00:00:01"},
                },
            }
        )
    )
    suffix = uuid.uuid4().hex[:12]
    port = Ports.free().functions
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path),
        "AzureWebJobsStorage": storage,
        "MULTI_OUT": str(out),
        "MULTI_QUEUE": f"multi{suffix}",
        "MULTI_CONTAINER": f"multi{suffix}",
    }
    env.pop("FUNCTIONS_WORKER_PROCESS_COUNT", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devstack.host",
            "--app",
            "multiapp",
            "--port",
            str(port),
            "--processes",
            "2",
            "--settings",
            str(tmp_path / "absent.json"),
            "--host-json",
            str(tmp_path / "host.json"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines.append(raw.decode(errors="replace"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    host = MultiHost(
        proc, port, out, QueueClient.from_connection_string(storage, f"multi{suffix}"), f"multi{suffix}", lines, reader
    )
    try:
        _eventually(
            lambda: "Functions host ready at" in host.output() or proc.poll() is not None, "the ready line", timeout=30
        )
        assert proc.poll() is None, host.output()
    except BaseException:
        host.close()
        raise
    return host


def _worker_pids(host: MultiHost, count: int = 2) -> set[int]:
    """The pids answering on the port: each request opens a new connection, which the kernel may give
    to any worker, so 50 of them all landing on one of two workers would take a broken balance."""
    seen: set[int] = set()
    for _ in range(50):
        r = requests.get(f"{host.url}/pid", timeout=5)  # no session: a fresh connection each time
        assert r.status_code == 200
        seen.add(int(r.text))
        if len(seen) == count:
            return seen
    raise AssertionError(f"only {len(seen)} of {count} workers answered 50 new connections")


def _gone(pid: int) -> bool:
    """The process has exited: absent, or a zombie waiting for its parent, with no thread still running.

    Every thread counts: the main thread of a killed process is a zombie as soon as it is done, while
    other threads may still be exiting, and the process's sockets stay open until the last one is.
    """
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return True
    for task in tasks:
        try:
            state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            continue  # this thread just went
        if state not in ("Z", "X"):
            return False
    return True


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory, storage: str) -> Iterator[MultiHost]:
    host = _start_multi(tmp_path_factory.mktemp("multi"), storage)
    try:
        yield host
    finally:
        host.close()


def test_processes_2_answers_http_from_both_workers_and_announces_once(multi: MultiHost) -> None:
    assert len(_worker_pids(multi)) == 2
    output = multi.output()
    assert output.count("Functions host ready at") == 1
    assert "[worker 0] devstack.host: Functions host listening" in output
    assert "[worker 1] devstack.host: Functions host listening" in output


def test_processes_2_queue_messages_are_each_handled_exactly_once(multi: MultiHost) -> None:
    sent = {multi.queue.send_message(_b64(f"message-{i}")).id for i in range(40)}
    _eventually(lambda: sent <= {what for what, _ in multi.handled("queue")}, "40 messages handled")
    _eventually(lambda: multi.queue.get_queue_properties().approximate_message_count == 0, "an empty queue")
    time.sleep(0.5)  # a message taken twice would be handled twice by now (they take milliseconds)
    handled = [what for what, _ in multi.handled("queue") if what in sent]
    assert len(handled) == 40 and set(handled) == sent


def test_processes_2_timers_and_blob_triggers_run_in_worker_0_only(multi: MultiHost, storage: str) -> None:
    ticks = multi.out / "ticks"
    lines = lambda: ticks.read_text().split() if ticks.exists() else []  # noqa: E731
    before = len(lines())
    container = BlobServiceClient.from_connection_string(storage).get_container_client(multi.container)
    names = {f"doc-{i}-{uuid.uuid4().hex[:8]}" for i in range(3)}
    for name in names:
        container.upload_blob(name, b"x")
    _eventually(lambda: names <= {what for what, _ in multi.handled("blobs")}, "3 blobs handled")
    _eventually(lambda: len(lines()) >= before + 3, "3 timer ticks")  # one a second
    time.sleep(0.5)  # a second blob listener polls every 30 ms: it would have run the blobs by now
    tick_pids = {int(pid) for pid in lines()[before:]}
    blob_runs = [(what, pid) for what, pid in multi.handled("blobs") if what in names]
    assert len(tick_pids) == 1, "the timer ran in more than one process"
    assert sorted(what for what, _ in blob_runs) == sorted(names), "a blob was handled twice"
    assert {pid for _, pid in blob_runs} == tick_pids
    assert tick_pids <= _worker_pids(multi)
    assert "[worker 1] devstack.host:   tick: timerTrigger (not in this process" in multi.output()


def test_processes_2_a_killed_worker_is_restarted_while_the_port_keeps_answering(multi: MultiHost) -> None:
    before = _worker_pids(multi)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    # Reaped by the supervisor (so all its threads are gone, and its listening socket is closed).
    _eventually(
        lambda: f"(pid {victim}) exited unexpectedly (signal SIGKILL)" in multi.output(),
        "the supervisor to see the killed worker exit",
    )
    # Every request is answered, by the surviving worker until the new one listens too.
    deadline = time.monotonic() + 20
    seen: set[int] = set()
    while not seen - before:
        assert time.monotonic() < deadline, f"no new worker answered; output:\n{multi.output()[-3000:]}"
        r = requests.get(f"{multi.url}/pid", timeout=5)
        assert r.status_code == 200
        seen.add(int(r.text))
        time.sleep(0.02)
    assert victim not in seen
    assert f"(pid {victim}) exited unexpectedly (signal SIGKILL); restarting it in 1s" in multi.output()
    assert multi.output().count("Functions host ready at") == 1
    assert multi.proc.poll() is None


def test_processes_2_a_worker_past_function_timeout_is_restarted_as_in_azure(tmp_path: Path, storage: str) -> None:
    host = _start_multi(tmp_path, storage, function_timeout="00:00:01")
    try:
        before = _worker_pids(host)
        # The request's worker ends with every invocation in it; the caller sees the connection drop.
        with contextlib.suppress(requests.RequestException):
            requests.get(f"{host.url}/sleep?s=5", timeout=10)
        _eventually(
            lambda: "Timeout value of 00:00:01 exceeded by function 'Functions.sleepy'" in host.output(), "the timeout"
        )
        _eventually(lambda: "exited unexpectedly (exit code 75)" in host.output(), "the worker to exit")

        def new_worker() -> set[int]:
            try:
                return _worker_pids(host) - before
            except AssertionError:  # one worker answering alone while the other restarts
                return set()

        _eventually(new_worker, "a new worker", timeout=30)
    finally:
        host.close()


@pytest.mark.parametrize("target", ["supervisor", "group"])
def test_processes_2_sigterm_waits_for_in_flight_invocations_then_exits_0(
    target: str, tmp_path: Path, storage: str
) -> None:
    host = _start_multi(tmp_path, storage)
    try:
        pids = _worker_pids(host)
        slow_id = host.queue.send_message(_b64("slow")).id
        _eventually(lambda: (host.out / "slow-started").exists(), "the slow message to start")
        if target == "supervisor":
            host.proc.send_signal(signal.SIGTERM)  # it forwards the signal to its workers
        else:
            os.killpg(host.proc.pid, signal.SIGTERM)  # as callers stop it: each worker gets two
        assert host.proc.wait(timeout=30) == 0, host.output()
    finally:
        host.close()
    assert slow_id in {what for what, _ in host.handled("queue")}, "the in-flight invocation was cut off"
    assert host.queue.get_queue_properties().approximate_message_count == 0
    assert all(_gone(pid) for pid in pids)
    assert _refused(host.port)


def test_processes_2_workers_die_with_a_killed_supervisor(tmp_path: Path, storage: str) -> None:
    host = _start_multi(tmp_path, storage)
    try:
        pids = _worker_pids(host)
        host.proc.kill()
        host.proc.wait(timeout=10)
        _eventually(lambda: all(_gone(pid) for pid in pids), "the workers to exit", timeout=10)
        assert _refused(host.port)
    finally:
        host.close()
        for pid in pids:  # only if the test failed: the workers this test started
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_processes_2_gives_up_on_workers_that_cannot_start(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "devstack.host",
            "--app",
            "no_such_app",
            "--port",
            str(Ports.free().functions),
            "--processes",
            "2",
            "--settings",
            str(tmp_path / "absent.json"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        timeout=60,
        start_new_session=True,
    )
    output = done.stdout.decode(errors="replace")
    assert done.returncode == 1, output
    assert "Functions host ready" not in output
    assert "exited before listening 3 times in a row (exit code 1); giving up" in output


@pytest.mark.parametrize("value", ["0", "11", "two"])
def test_process_count_is_checked_on_the_command_line_and_in_the_environment(
    value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    absent = str(tmp_path / "absent.json")
    with pytest.raises(SystemExit) as exc:
        main(["--processes", value, "--settings", absent])
    assert exc.value.code == 2
    assert "--processes: must be a whole number from 1 to 10" in capsys.readouterr().err
    monkeypatch.setenv("FUNCTIONS_WORKER_PROCESS_COUNT", value)
    with pytest.raises(SystemExit) as exc:
        main(["--settings", absent])
    assert exc.value.code == 2
    assert "FUNCTIONS_WORKER_PROCESS_COUNT must be a whole number from 1 to 10" in capsys.readouterr().err
