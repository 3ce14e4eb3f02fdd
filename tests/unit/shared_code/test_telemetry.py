"""The portal link token never reaches an exporter: spans are scrubbed in the telemetry pipeline.

Uses the OpenTelemetry SDK's in-memory exporter behind the same TracerProvider the app builds
for Azure Monitor (`build_tracer_provider`); nothing talks to Azure.
"""

from __future__ import annotations

import json
import secrets

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared_code.telemetry import build_tracer_provider, scrub_portal_paths

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
