"""The portal link token never reaches an exporter, and every invocation leaves one span.

Spans are scrubbed in the telemetry pipeline; `traced_invocation` gives each invocation a span
named by its route template or function, under the host's request. Uses the OpenTelemetry SDK's
in-memory exporter behind the same TracerProvider the app builds for Azure Monitor
(`build_tracer_provider`); nothing talks to Azure.
"""

from __future__ import annotations

import inspect
import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from shared_code.telemetry import (
    build_tracer_provider,
    scrub_portal_paths,
    trace_invocations_with,
    traced_invocation,
    traced_trigger,
)

ROOT = Path(__file__).resolve().parents[3]

TOKEN = secrets.token_urlsafe(18)
ATTACHMENT = "3f2b9c1e-8d4a-4c6b-9e7f-0a1b2c3d4e5f"

CASES = [
    (f"/p/{TOKEN}", "/p/{token}"),
    (f"/p/{TOKEN}/documents", "/p/{token}/documents"),
    (f"/p/{TOKEN}/documents/{ATTACHMENT}", "/p/{token}/documents/{attachmentId}"),
]


@pytest.mark.parametrize(("path", "template"), CASES)
def test_every_attribute_and_the_name_carry_the_template_only(path: str, template: str) -> None:
    exporter = InMemorySpanExporter()
    provider = build_tracer_provider(exporter, batch=False)
    tracer = provider.get_tracer("test")
    start_attributes = {
        "url.full": f"https://documents.example.nhs.uk{path}?x=1",
        "url.path": path,
        "http.target": f"{path}?session=abc",
        "http.url": f"https://documents.example.nhs.uk{path}",
        "http.route": path.lstrip("/"),
    }
    with tracer.start_as_current_span(f"GET {path.lstrip('/')}", attributes=start_attributes) as span:
        # Set after start, as instrumentations do once routing is done.
        span.set_attribute("url.query", "t=1")
        span.set_attribute("http.request.header.referer", (f"https://documents.example.nhs.uk{path}",))
        span.set_attribute("enclose.later", f"http://127.0.0.1:7071{path}")
        span.add_event("exception", {"exception.message": f"while serving {path}"})
        span.update_name(f"GET {path}")
    provider.shutdown()

    (exported,) = exporter.get_finished_spans()
    text = json.loads(exported.to_json())
    assert TOKEN not in json.dumps(text)
    assert ATTACHMENT not in json.dumps(text)
    attrs = exported.attributes
    assert attrs["url.full"] == f"https://documents.example.nhs.uk{template}"
    assert attrs["url.path"] == template
    assert attrs["http.target"] == template
    assert attrs["http.url"] == f"https://documents.example.nhs.uk{template}"
    assert attrs["http.route"] == template.lstrip("/")
    assert attrs["http.request.header.referer"] == (f"https://documents.example.nhs.uk{template}",)
    assert attrs["enclose.later"] == f"http://127.0.0.1:7071{template}"
    assert attrs["url.query"] == "t=1"  # no portal path in it: left alone
    assert exported.name == f"GET {template}"
    assert exported.events[0].attributes["exception.message"] == f"while serving {template}"


def test_a_span_started_with_the_token_is_scrubbed_for_processors_too() -> None:
    exporter = InMemorySpanExporter()
    provider = build_tracer_provider(exporter, batch=False)
    with provider.get_tracer("test").start_as_current_span(
        f"GET /p/{TOKEN}", attributes={"url.path": f"/p/{TOKEN}"}
    ) as span:
        assert span.name == "GET /p/{token}"
        assert span.attributes["url.path"] == "/p/{token}"
    provider.shutdown()


def test_other_paths_and_values_are_left_alone() -> None:
    exporter = InMemorySpanExporter()
    provider = build_tracer_provider(exporter, batch=False)
    attributes = {
        "url.path": "/api/v1/messages/abc",
        "http.route": "api/v1/messages/{id}",
        "http.status_code": 200,
        "url.full": "https://example.blob.core.windows.net/documents/pdf/p1",  # `pdf/p1` is not a portal path
    }
    with provider.get_tracer("test").start_as_current_span("GET api/v1/messages/{id}", attributes=attributes):
        pass
    provider.shutdown()
    (exported,) = exporter.get_finished_spans()
    assert dict(exported.attributes) == attributes
    assert exported.name == "GET api/v1/messages/{id}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"p/{TOKEN}", "p/{token}"),
        (f"/p/{TOKEN}/", "/p/{token}"),
        (f"/P/{TOKEN}/Documents", "/p/{token}/documents"),
        (f"/p/{TOKEN}#frag", "/p/{token}"),
        (f"GET /p/{TOKEN} then /p/{TOKEN}/documents", "GET /p/{token} then /p/{token}/documents"),
        ("/static/p.css", "/static/p.css"),
        ("/api/v1/attachments/abc", "/api/v1/attachments/abc"),
    ],
)
def test_scrub_portal_paths(text: str, expected: str) -> None:
    assert scrub_portal_paths(text) == expected


# -- one span per invocation ------------------------------------------------------------------------

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
HOST_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{HOST_SPAN_ID}-01"


@dataclass
class FakeTraceContext:
    trace_parent: str = TRACEPARENT
    trace_state: str = ""
    attributes: dict = field(default_factory=dict)


@dataclass
class FakeContext:
    """What the Python worker passes as `context`: the host's invocation id and trace context."""

    function_name: str
    invocation_id: str = "6f0c1e2a-1b2c-4d5e-8f90-a1b2c3d4e5f6"
    trace_context: FakeTraceContext = field(default_factory=FakeTraceContext)


@dataclass
class FakeRequest:
    method: str
    url: str
    route_params: dict


@dataclass
class FakeResponse:
    status_code: int


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """Invocation spans into memory through the app's pipeline (scrubber included), reset after."""
    memory = InMemorySpanExporter()
    provider = build_tracer_provider(memory, batch=False)
    trace_invocations_with(provider)
    try:
        yield memory
    finally:
        trace_invocations_with(None)
        provider.shutdown()


def test_an_http_invocation_is_one_span_named_by_its_route_template(exporter: InMemorySpanExporter) -> None:
    def portal_link(req: FakeRequest) -> FakeResponse:
        assert req.route_params["token"] == TOKEN
        return FakeResponse(404)

    traced = traced_invocation(portal_link, trigger="http", route="p/{token}/documents/{attachmentId}")
    request = FakeRequest("get", f"https://documents.example.nhs.uk/p/{TOKEN}/documents/{ATTACHMENT}?x=1", {})
    request.route_params.update(token=TOKEN, attachmentId=ATTACHMENT)
    answer = traced(request, context=FakeContext("portal_download"))

    assert answer.status_code == 404
    (span,) = exporter.get_finished_spans()
    assert span.name == "GET /p/{token}/documents/{attachmentId}"
    assert dict(span.attributes) == {
        "faas.trigger": "http",
        "faas.name": "portal_download",
        "faas.invocation_id": "6f0c1e2a-1b2c-4d5e-8f90-a1b2c3d4e5f6",
        "enclose.http.method": "GET",
        "enclose.http.route": "/p/{token}/documents/{attachmentId}",
        "enclose.http.status_code": 404,
    }
    assert span.kind is SpanKind.INTERNAL  # a dependency under the host's request, not a second request
    assert span.status.status_code is StatusCode.UNSET  # a 404 is an answer, not a failure
    # The host's request is its parent: the same operation id in Application Insights.
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert format(span.parent.span_id, "016x") == HOST_SPAN_ID
    assert TOKEN not in span.to_json() and ATTACHMENT not in span.to_json()


@pytest.mark.parametrize(
    ("trigger", "faas_trigger", "name"),
    [
        ("queue", "pubsub", "dispatch_queued_message"),
        ("timer", "timer", "retention"),
        ("blob", "datasource", "scan_uploaded_blob"),
        ("eventgrid", "pubsub", "delivery_report"),
    ],
)
def test_every_other_trigger_leaves_a_span_named_by_its_function(
    exporter: InMemorySpanExporter, trigger: str, faas_trigger: str, name: str
) -> None:
    calls = []
    traced = traced_invocation(lambda item: calls.append(item), trigger=trigger)
    traced("item", context=FakeContext(name))

    assert calls == ["item"]
    (span,) = exporter.get_finished_spans()
    assert span.name == name
    assert dict(span.attributes) == {
        "faas.trigger": faas_trigger,
        "faas.name": name,
        "faas.invocation_id": "6f0c1e2a-1b2c-4d5e-8f90-a1b2c3d4e5f6",
    }
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.status.status_code is StatusCode.UNSET
    assert span.end_time > span.start_time


def test_a_failure_is_a_failed_span_and_the_exception_goes_on(exporter: InMemorySpanExporter) -> None:
    def dispatch_queued_message(msg: str) -> None:
        raise RuntimeError("storage said no")

    traced = traced_invocation(dispatch_queued_message, trigger="queue")
    with pytest.raises(RuntimeError, match="storage said no"):
        traced(msg="m", context=FakeContext("dispatch_queued_message"))
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "RuntimeError"


@pytest.mark.parametrize(("status", "failed"), [(499, False), (500, True), (503, True)])
def test_a_server_error_answer_is_a_failed_span(exporter: InMemorySpanExporter, status: int, failed: bool) -> None:
    traced = traced_invocation(lambda req: FakeResponse(status), trigger="http", route="api/v1/messages")
    traced(FakeRequest("POST", "http://127.0.0.1:7071/api/v1/messages", {}), context=FakeContext("messages_create"))
    (span,) = exporter.get_finished_spans()
    assert span.attributes["enclose.http.status_code"] == status
    assert (span.status.status_code is StatusCode.ERROR) is failed


def test_a_host_trace_context_not_marked_sampled_still_leaves_the_span(exporter: InMemorySpanExporter) -> None:
    # The host's request is never sampled away (host.json), but the traceparent it hands the worker
    # need not carry the sampled flag; the invocation's span must not be dropped for it.
    unsampled = FakeTraceContext(trace_parent=f"00-{TRACE_ID}-{HOST_SPAN_ID}-00")
    traced_invocation(lambda msg: None, trigger="queue")("m", context=FakeContext("q", trace_context=unsampled))
    (span,) = exporter.get_finished_spans()
    assert format(span.context.trace_id, "032x") == TRACE_ID


@pytest.mark.parametrize("traceparent", ["", "not-a-traceparent"])
def test_without_the_hosts_trace_context_the_span_starts_its_own_trace(
    exporter: InMemorySpanExporter, traceparent: str
) -> None:
    traced = traced_invocation(lambda timer: None, trigger="timer")
    traced("t", context=FakeContext("retention", trace_context=FakeTraceContext(trace_parent=traceparent)))
    (span,) = exporter.get_finished_spans()
    assert span.parent is None
    assert format(span.context.trace_id, "032x") != TRACE_ID


def test_a_handler_that_takes_context_gets_it_and_one_that_does_not_is_given_the_parameter() -> None:
    def with_context(msg: str, context: FakeContext) -> str:
        return context.function_name

    def without(msg: str) -> str:
        return msg

    assert traced_invocation(with_context, trigger="queue")("m", context=FakeContext("f")) == "f"
    traced = traced_invocation(without, trigger="queue")
    # The Python worker passes `context` only to a function whose signature names it
    # (azure-functions-python-worker, functions.py, is_context_required).
    assert list(inspect.signature(traced).parameters) == ["msg", "context"]
    assert traced("m", context=FakeContext("f")) == "m"
    assert traced("m") == "m"  # called directly, as tests do
    assert traced_trigger(traced) == "queue" and traced_trigger(without) is None


def test_with_no_tracer_the_handler_runs_bare_and_loads_no_opentelemetry() -> None:
    child = (
        "import sys\n"
        "from shared_code.telemetry import traced_invocation\n"
        "traced = traced_invocation(lambda req: 'ok', trigger='http', route='p/{token}')\n"
        "assert traced('req', context=None) == 'ok'\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", child], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_what_cannot_be_traced_is_refused() -> None:
    with pytest.raises(ValueError, match="route template"):
        traced_invocation(lambda req: None, trigger="http")
    with pytest.raises(ValueError, match="route template"):
        traced_invocation(lambda msg: None, trigger="queue", route="p/{token}")
    with pytest.raises(ValueError, match="unknown trigger"):
        traced_invocation(lambda msg: None, trigger="servicebus")

    async def handler(req: object) -> None:
        return None

    with pytest.raises(TypeError, match="async"):
        traced_invocation(handler, trigger="http", route="x")
