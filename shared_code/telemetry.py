"""Telemetry to Azure Monitor through OpenTelemetry, in Azure only.

Nothing is loaded unless APPLICATIONINSIGHTS_CONNECTION_STRING is set, so local start-up
pays nothing. Our log lines carry ids only (never a number, date, name, text or token),
and the HTTP client instrumentations are off so no outgoing URL is recorded.

A portal link is `/p/{token}...`: whoever reads the telemetry must not be able to open it.
This process's spans therefore go through `portal_path_scrubber` before any exporter sees
them: every string attribute (`url.full`, `url.path`, `url.query`, `http.target`, `http.url`,
`http.route`, a Referer header...) and the span name are rewritten to the route template
(`/p/{token}`, `/p/{token}/documents`, `/p/{token}/documents/{attachmentId}`), and the query
string of a portal URL is dropped. The exporters are wired by hand rather than through
`configure_azure_monitor`, whose trace pipeline gives no hook between the span processors and
the exporter (and whose live metrics would send request URLs too).

The request telemetry of the Functions host itself (a .NET process, `telemetryMode`
OpenTelemetry in host.json) never passes through this process, so nothing here can scrub it;
the host records `url.path` as it arrived (azure-functions-host's ActivitySanitizingProcessor
cleans only `url.full` and `url.query`, of credentials, not of path segments).
"""

from __future__ import annotations

import logging
import re
from functools import cache
from typing import TYPE_CHECKING, Any

from shared_code.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

_configured = False

# A portal path anywhere in a string: after a slash or at the start (the host's route template
# has no leading slash), then the token, optional `/documents` and attachment id, and any query
# or fragment (which belongs to the link, so it goes too).
_PORTAL_PATH = re.compile(
    r"(?P<lead>^|/)p/(?P<token>[^/?#\s]+)(?P<docs>/documents(?P<attachment>/[^/?#\s]+)?)?/?(?:[?#][^\s]*)?",
    re.IGNORECASE,
)
_TEMPLATES = {
    (False, False): "p/{token}",
    (True, False): "p/{token}/documents",
    (True, True): "p/{token}/documents/{attachmentId}",
}


def scrub_portal_paths(text: str) -> str:
    """`text` with every portal path replaced by its route template (other text unchanged)."""

    def template(m: re.Match[str]) -> str:
        return m.group("lead") + _TEMPLATES[(m.group("docs") is not None, m.group("attachment") is not None)]

    return _PORTAL_PATH.sub(template, text)


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_portal_paths(value)
    if isinstance(value, (tuple, list)) and any(isinstance(v, str) for v in value):
        return tuple(scrub_portal_paths(v) if isinstance(v, str) else v for v in value)
    return value


def _scrubbed_attributes(attributes: Any) -> dict[str, Any]:
    return {key: _scrub_value(value) for key, value in (attributes or {}).items()}


@cache
def _portal_processor_class() -> type:
    """The SpanProcessor class, built here so the OpenTelemetry SDK loads only when telemetry is on."""
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

    class _PortalPathScrubber(SpanProcessor):
        """Rewrites portal paths to their route template, then hands the span to `downstream`.

        At start the span is still writable, so it is scrubbed in place (later processors and
        child spans see the template too). Attributes set after start cannot be changed once the
        span has ended, so at the end a scrubbed copy is what `downstream` (the exporter) gets.
        """

        def __init__(self, downstream: SpanProcessor) -> None:
            self._downstream = downstream

        def on_start(self, span: Span, parent_context: Context | None = None) -> None:
            name = scrub_portal_paths(span.name)
            if name != span.name:
                span.update_name(name)
            for key, value in dict(span.attributes or {}).items():
                scrubbed = _scrub_value(value)
                if scrubbed != value:
                    span.set_attribute(key, scrubbed)
            self._downstream.on_start(span, parent_context=parent_context)

        def on_end(self, span: ReadableSpan) -> None:
            self._downstream.on_end(
                ReadableSpan(
                    name=scrub_portal_paths(span.name),
                    context=span.context,
                    parent=span.parent,
                    resource=span.resource,
                    attributes=_scrubbed_attributes(span.attributes),
                    events=[_scrubbed_event(event) for event in span.events],
                    links=span.links,
                    kind=span.kind,
                    status=span.status,
                    start_time=span.start_time,
                    end_time=span.end_time,
                    instrumentation_scope=span.instrumentation_scope,
                )
            )

        def shutdown(self) -> None:
            self._downstream.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return self._downstream.force_flush(timeout_millis)

    return _PortalPathScrubber


def _scrubbed_event(event: Any) -> Any:
    from opentelemetry.sdk.trace import Event

    # Exception events carry a message and a stack trace, either of which may quote a URL.
    return Event(scrub_portal_paths(event.name), _scrubbed_attributes(event.attributes), event.timestamp)


def portal_path_scrubber(downstream: SpanProcessor) -> SpanProcessor:
    """A SpanProcessor that scrubs portal paths from each span before `downstream` gets it."""
    return _portal_processor_class()(downstream)


def build_tracer_provider(
    exporter: SpanExporter, *, batch: bool = True, resource: Resource | None = None
) -> TracerProvider:
    """A TracerProvider whose every span reaches `exporter` only through the portal path scrubber."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=resource or Resource.create())
    inner = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(portal_path_scrubber(inner))
    return provider


def configure_telemetry(settings: Settings) -> bool:
    """Send logs and traces to Application Insights when configured; True if it did."""
    global _configured
    if _configured or not settings.applicationinsights_connection_string:
        return _configured
    try:
        _configure(settings)
    except Exception:  # noqa: BLE001 - telemetry must never stop the app from starting
        logging.getLogger(__name__).warning("telemetry could not be configured; continuing without it")
        return False
    _configured = True
    return True


def _configure(settings: Settings) -> None:
    from azure.core.settings import settings as azure_core_settings
    from azure.core.tracing.ext.opentelemetry_span import OpenTelemetrySpan
    from azure.identity import ManagedIdentityCredential
    from azure.monitor.opentelemetry.exporter import AzureMonitorLogExporter, AzureMonitorTraceExporter
    from opentelemetry import trace
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.instrumentation.logging.handler import LoggingHandler
    from opentelemetry.resource.detector.azure import AzureAppServiceResourceDetector, AzureFunctionsResourceDetector
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import get_aggregated_resources

    # Not azure-monitor-opentelemetry's configure_azure_monitor: its trace pipeline has no place
    # between the span processors and the exporter (a processor cannot change an ended span), and it
    # honours no switch to leave tracing to us. These are the same exporters, wired by hand.
    # Application Insights has local (key) auth switched off: Entra ID only.
    exporter_options = {
        "connection_string": settings.applicationinsights_connection_string,
        "credential": ManagedIdentityCredential(),
    }
    # The app's name and instance as Application Insights' cloud role, from the platform's variables.
    resource = get_aggregated_resources([AzureAppServiceResourceDetector(), AzureFunctionsResourceDetector()])
    trace.set_tracer_provider(build_tracer_provider(AzureMonitorTraceExporter(**exporter_options), resource=resource))
    logs = LoggerProvider(resource=resource)
    logs.add_log_record_processor(BatchLogRecordProcessor(AzureMonitorLogExporter(**exporter_options)))
    set_logger_provider(logs)
    logging.getLogger().addHandler(LoggingHandler(logger_provider=logs))
    # Azure SDK calls (storage, ACS) as dependency spans; no HTTP client instrumentation, so no
    # outgoing URL is recorded beyond what the Azure SDK puts on its spans.
    azure_core_settings.tracing_implementation = OpenTelemetrySpan
