"""Real invocations leave their spans: a portal request, a queue message, a timer run, an Event Grid event.

Each function runs as the Python worker runs it (its handler called with the trigger's object and
the worker's `context`), against the session's Azurite, in a child process (the app's settings and
storage are read once per process). Spans go through the app's own pipeline, scrubber included, into
an in-memory exporter.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"

_CHILD = """
import json, sys, types
from datetime import datetime, timezone

import azure.functions as func
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import function_app
from shared_code.telemetry import build_tracer_provider, trace_invocations_with

token, trace_id = sys.argv[1], sys.argv[2]
exporter = InMemorySpanExporter()
trace_invocations_with(build_tracer_provider(exporter, batch=False))
handlers = {f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}


def context(name, n):
    host = types.SimpleNamespace(trace_parent=f"00-{trace_id}-{n:016x}-01", trace_state="", attributes={})
    return types.SimpleNamespace(function_name=name, invocation_id=f"invocation-{n}", trace_context=host)


def invoke(name, n, trigger_object):
    try:
        answer = handlers[name](trigger_object, context=context(name, n))
        return getattr(answer, "status_code", None)
    except Exception as exc:
        return type(exc).__name__


outcomes = {
    "portal_link": invoke("portal_link", 1, func.HttpRequest(
        "GET", "http://127.0.0.1:7071/p/" + token, headers={}, route_params={"token": token}, body=b"")),
    "dispatch_queued_message": invoke("dispatch_queued_message", 2, func.QueueMessage(id="m-1", body=b"not json")),
    "retention": invoke("retention", 3, types.SimpleNamespace(past_due=False)),
    "delivery_report": invoke("delivery_report", 4, func.EventGridEvent(
        id="e-1", data={}, topic="t", subject="s", event_type="Microsoft.Communication.Other",
        event_time=datetime.now(timezone.utc), data_version="1.0")),
}
spans = [json.loads(s.to_json()) for s in exporter.get_finished_spans()]
print(json.dumps({"outcomes": outcomes, "spans": spans}))
"""


@pytest.fixture(scope="module")
def run(base_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    token = secrets.token_urlsafe(18)
    env = {
        **{k: v for k, v in os.environ.items() if k != "APPLICATIONINSIGHTS_CONNECTION_STRING"},
        **base_env,
        "PYTHONPATH": str(ROOT),
        "CLAMD_ADDRESS": "tcp://127.0.0.1:9",
        "CLAMD_STARTUP_WAIT_SECONDS": "0",
    }
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, token, TRACE_ID], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["token"] = token
    result["spans"] = {span["attributes"]["faas.name"]: span for span in result["spans"]}
    return result


def test_a_portal_request_is_named_by_its_route_template_and_never_carries_the_token(run: dict[str, Any]) -> None:
    assert run["outcomes"]["portal_link"] == 404  # an unknown link
    span = run["spans"]["portal_link"]
    assert span["name"] == "GET /p/{token}"
    assert span["attributes"]["enclose.http.route"] == "/p/{token}"
    assert span["attributes"]["enclose.http.status_code"] == 404
    assert run["token"] not in json.dumps(run["spans"])


@pytest.mark.parametrize(
    ("name", "trigger"),
    [("dispatch_queued_message", "pubsub"), ("retention", "timer"), ("delivery_report", "pubsub")],
)
def test_a_queue_timer_or_event_grid_invocation_leaves_a_span(run: dict[str, Any], name: str, trigger: str) -> None:
    span = run["spans"][name]
    assert span["name"] == name
    assert span["attributes"]["faas.trigger"] == trigger
    # Each ran to its end (an unreadable entry to the poison queue, an event type that is not a
    # delivery report ignored), so none is a failure; tests/unit/shared_code/test_telemetry.py
    # shows a raised exception marking the span failed.
    assert run["outcomes"][name] is None
    assert span["status"]["status_code"] == "UNSET"


def test_each_span_is_under_its_host_invocation(run: dict[str, Any]) -> None:
    for n, name in enumerate(["portal_link", "dispatch_queued_message", "retention", "delivery_report"], start=1):
        span = run["spans"][name]
        assert span["context"]["trace_id"] == "0x" + TRACE_ID, name
        assert span["parent_id"] == f"0x{n:016x}", name
        assert span["attributes"]["faas.invocation_id"] == f"invocation-{n}", name
