"""`configure_telemetry` as Azure runs it: the portal path scrubber in the global tracer provider,
invocation spans through it, and no log exporter (the host forwards the worker's logs itself);
and what the Azure Monitor exporter actually sends for invocations, caught by a local endpoint.

Runs in a child process (the global tracer provider can be set once per process), with every
endpoint the exporters and the managed identity would call pointed at a closed port on 127.0.0.1,
so nothing leaves the machine.
"""

from __future__ import annotations

import gzip
import http.server
import json
import os
import secrets
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

_CHILD = """
import json, logging, secrets, types
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from shared_code.settings import load_settings
from shared_code.telemetry import configure_telemetry, traced_invocation

token = secrets.token_urlsafe(18)
configured = configure_telemetry(load_settings())
provider = trace.get_tracer_provider()
seen = InMemorySpanExporter()
provider.add_span_processor(SimpleSpanProcessor(seen))
tracer = trace.get_tracer("test")
with tracer.start_as_current_span("GET /p/" + token, attributes={"url.path": "/p/" + token + "/documents"}):
    pass
(span,) = seen.get_finished_spans()

# One invocation as the worker makes it: the token in the URL, the host's trace context in `context`.
request = types.SimpleNamespace(method="GET", url="https://x.example/p/" + token, route_params={"token": token})
host = types.SimpleNamespace(trace_parent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", trace_state="")
context = types.SimpleNamespace(function_name="portal_link", invocation_id="i-1", trace_context=host)
portal_link = traced_invocation(lambda req: types.SimpleNamespace(status_code=404), trigger="http", route="p/{token}")
portal_link(request, context=context)
(_, invocation) = seen.get_finished_spans()

print(json.dumps({
    "configured": configured,
    "provider": type(provider).__module__,
    "name": span.name,
    "path": span.attributes["url.path"],
    "leaked": token in span.to_json() or token in invocation.to_json(),
    "invocation": [invocation.name, format(invocation.context.trace_id, "032x")],
    "log_handlers": [type(h).__module__ for h in logging.getLogger().handlers],
}))
"""


def test_the_configured_tracer_provider_scrubs_portal_paths(tmp_path: Path) -> None:
    closed = "http://127.0.0.1:9"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "APPLICATIONINSIGHTS_CONNECTION_STRING": (
            "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
            f"IngestionEndpoint={closed}/;LiveEndpoint={closed}/"
        ),
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
        # ManagedIdentityCredential asks this endpoint (App Service's) instead of the VM metadata address.
        "IDENTITY_ENDPOINT": f"{closed}/msi/token",
        "IDENTITY_HEADER": "test",
        "TMPDIR": str(tmp_path),  # the exporter's offline retry files
    }
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["configured"] is True
    assert got["provider"].startswith("opentelemetry.sdk.trace")
    # A processor added next to ours sees the span as our scrubber left it at start.
    assert got["name"] == "GET /p/{token}"
    assert got["path"] == "/p/{token}/documents"
    assert got["leaked"] is False
    # Invocation spans go through the same pipeline, under the host's request.
    assert got["invocation"] == ["GET /p/{token}", "4bf92f3577b34da6a3ce929d0e0e4736"]
    # No log exporter: the host sends the worker's log lines to `traces` already.
    assert not [module for module in got["log_handlers"] if module.startswith("opentelemetry")]


# -- what the exporter sends ------------------------------------------------------------------------

_SEND = """
import json, secrets, sys, types
from azure.monitor.opentelemetry.exporter import AzureMonitorTraceExporter
from shared_code.telemetry import build_tracer_provider, trace_invocations_with, traced_invocation

port, token = int(sys.argv[1]), sys.argv[2]
exporter = AzureMonitorTraceExporter(
    connection_string=f"InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:{port}/",
    disable_offline_storage=True,
)
provider = build_tracer_provider(exporter, batch=False)
trace_invocations_with(provider)

def context(name, span_id):
    host = types.SimpleNamespace(trace_parent=f"00-0af7651916cd43dd8448eb211c80319c-{span_id}-00", trace_state="")
    return types.SimpleNamespace(function_name=name, invocation_id="inv-" + name, trace_context=host)

def portal_link(req):
    raise RuntimeError("while serving " + req.url)  # a failure whose message quotes the URL

request = types.SimpleNamespace(method="POST", url="https://x.example/p/" + token, route_params={"token": token})
traced = traced_invocation(portal_link, trigger="http", route="p/{token}")
try:
    traced(request, context=context("portal_link", "00f067aa0ba902b7"))
except RuntimeError:
    pass
traced_invocation(lambda timer: None, trigger="timer")("t", context=context("retention", "00f067aa0ba902b8"))
provider.shutdown()
"""


class _Ingestion(http.server.BaseHTTPRequestHandler):
    """Application Insights' track endpoint, keeping what it is sent."""

    received: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802 - the handler's method name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        type(self).received.append(body)
        items = (
            len([line for line in body.splitlines() if line.strip()])
            if not body.startswith(b"[")
            else len(json.loads(body))
        )
        answer = json.dumps({"itemsReceived": items, "itemsAccepted": items, "errors": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        return None


def _envelopes(received: list[bytes]) -> list[dict]:
    found = []
    for body in received:
        found += (
            json.loads(body)
            if body.startswith(b"[")
            else [json.loads(line) for line in body.splitlines() if line.strip()]
        )
    return found


def test_what_reaches_application_insights_names_each_invocation_and_holds_no_token(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ingestion)
    _Ingestion.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    token = secrets.token_urlsafe(18)
    try:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
            "TMPDIR": str(tmp_path),
        }
        proc = subprocess.run(
            [sys.executable, "-c", _SEND, str(server.server_address[1]), token],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    finally:
        server.shutdown()
        server.server_close()

    sent = _envelopes(_Ingestion.received)
    assert token not in json.dumps(sent)
    spans = {e["data"]["baseData"]["name"]: e for e in sent if e["data"]["baseType"] == "RemoteDependencyData"}
    assert set(spans) == {"POST /p/{token}", "retention"}
    portal = spans["POST /p/{token}"]
    data = portal["data"]["baseData"]
    assert data["type"] == "InProc"
    assert data["success"] is False  # the failure is visible
    assert data["properties"]["enclose.http.route"] == "/p/{token}"
    assert data["properties"]["faas.invocation_id"] == "inv-portal_link"
    # Under the host's request: its operation id, its request as the parent.
    assert portal["tags"]["ai.operation.id"] == "0af7651916cd43dd8448eb211c80319c"
    assert portal["tags"]["ai.operation.parentId"] == "00f067aa0ba902b7"
    # The exception is sent too, its message (which quoted the URL) scrubbed.
    (exception,) = [e for e in sent if e["data"]["baseType"] == "ExceptionData"]
    assert "while serving https://x.example/p/{token}" in json.dumps(exception)
    timer = spans["retention"]["data"]["baseData"]
    assert timer["success"] is True and timer["properties"]["faas.trigger"] == "timer"
