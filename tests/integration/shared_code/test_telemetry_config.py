"""`configure_telemetry` as Azure runs it: the portal path scrubber in the global tracer provider,
invocation spans through it, and no log exporter (the host forwards the worker's logs itself).

Runs in a child process (the global tracer provider can be set once per process), with every
endpoint the exporters and the managed identity would call pointed at a closed port on 127.0.0.1,
so nothing leaves the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
