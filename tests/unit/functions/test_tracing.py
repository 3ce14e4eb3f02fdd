"""Every function the app registers runs inside an invocation span (functions/tracing.py).

The app is indexed in a child process, as the Functions host would index it (get_functions() may
be called once per app object), and each function is checked the way the Python worker checks it
(azure-functions-python-worker, azure_functions_worker/functions.py, add_indexed_function): the
parameters of `inspect.signature`, the types of `typing.get_type_hints`, and a `context` parameter
that no binding names, which is how the host's trace context reaches the span.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from functions import openapi
from functions.tracing import TracedBlueprint
from shared_code.telemetry import build_tracer_provider, trace_invocations_with

ROOT = Path(__file__).resolve().parents[3]

# The binding type of each trigger, and the kind of span it is traced as.
TRACED_AS = {
    "httpTrigger": "http",
    "queueTrigger": "queue",
    "blobTrigger": "blob",
    "timerTrigger": "timer",
    "eventGridTrigger": "eventgrid",
}

_INDEX = """
import inspect, json, typing
import function_app
from shared_code.telemetry import traced_trigger

found = []
for f in function_app.app.get_functions():
    handler = f.get_user_function()
    bindings = json.loads(f.get_function_json())["bindings"]
    (trigger,) = [b for b in bindings if b["type"].endswith("Trigger")]
    found.append({
        "name": f.get_function_name(),
        "trigger": trigger,
        "bound": sorted(b["name"] for b in bindings if b["name"] != "$return"),
        "parameters": list(inspect.signature(handler).parameters),
        "hints": sorted(typing.get_type_hints(handler)),
        "traced": traced_trigger(handler),
    })
print(json.dumps(found))
"""


@cache
def indexed() -> list[dict[str, Any]]:
    proc = subprocess.run([sys.executable, "-c", _INDEX], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_function_is_traced_as_its_trigger() -> None:
    functions = indexed()
    untraced = [f["name"] for f in functions if f["traced"] != TRACED_AS.get(f["trigger"]["type"])]
    assert not untraced, (
        f"not traced as their trigger: {untraced} (make the module's bp a functions.tracing.TracedBlueprint, "
        "and give TracedBlueprint the trigger if it is a new one)"
    )
    # Every trigger kind the README claims a span for is in the app.
    assert {f["traced"] for f in functions} == set(TRACED_AS.values())


def test_the_worker_passes_every_function_its_context() -> None:
    for f in indexed():
        # `context` is the one parameter no binding names; the rest are exactly the bindings.
        assert f["parameters"][-1] == "context", f["name"]
        assert sorted(f["parameters"][:-1]) == f["bound"], f["name"]
        # The trigger's annotation (HttpRequest, QueueMessage...) is still what the worker converts to.
        assert f["trigger"]["name"] in f["hints"], f["name"]


def test_http_spans_are_named_by_the_route_template_the_host_matched() -> None:
    routes = {f["name"]: f["trigger"]["route"] for f in indexed() if f["trigger"]["type"] == "httpTrigger"}
    assert routes["portal_link"] == "p/{token}"
    assert routes["portal_documents"] == "p/{token}/documents"
    assert routes["portal_download"] == "p/{token}/documents/{attachmentId}"


@dataclass
class _TraceContext:
    trace_parent: str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    trace_state: str = ""
    attributes: dict = field(default_factory=dict)


@dataclass
class _Context:
    function_name: str
    invocation_id: str = "b3f0a1c2-0000-4000-8000-000000000001"
    trace_context: _TraceContext = field(default_factory=_TraceContext)


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = build_tracer_provider(memory, batch=False)
    trace_invocations_with(provider)
    try:
        yield memory
    finally:
        trace_invocations_with(None)
        provider.shutdown()


def test_a_real_function_leaves_its_span(exporter: InMemorySpanExporter) -> None:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    app.register_functions(openapi.bp)
    (function,) = app.get_functions()
    request = func.HttpRequest("GET", "http://127.0.0.1:7071/api/v1/openapi.json", headers={}, body=b"")

    answer = function.get_user_function()(request, context=_Context("openapi_json"))

    assert answer.status_code == 200
    (span,) = exporter.get_finished_spans()
    assert span.name == "GET /api/v1/openapi.json"
    assert span.attributes["faas.name"] == "openapi_json"
    assert span.attributes["faas.invocation_id"] == "b3f0a1c2-0000-4000-8000-000000000001"
    assert span.attributes["enclose.http.status_code"] == 200
    assert format(span.context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_a_trigger_decorator_above_another_decorator_is_refused() -> None:
    bp = TracedBlueprint()
    with pytest.raises(TypeError, match="directly above"):

        @bp.queue_trigger(arg_name="msg", queue_name="q", connection="AzureWebJobsStorage")
        @bp.function_name("named")
        def handler(msg: func.QueueMessage) -> None:
            return None
