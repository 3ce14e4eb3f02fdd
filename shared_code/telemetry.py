"""Telemetry to Azure Monitor, in Azure only, with no portal token in any of it.

A portal link is `/p/{token}...`: whoever reads the telemetry must not be able to open it.
Where each piece comes from (the README's "What appears where" says it for operators):

- The Functions host (a .NET process) records one request per invocation of every trigger. It
  runs in its classic Application Insights mode (host.json sets no `telemetryMode`) with
  `httpAutoCollectionOptions.enableHttpTriggerExtendedInfoCollection` off: ASP.NET Core request
  tracking is then off, and the WebJobs logger starts each request itself from the function's
  name alone, with no URL (azure-webjobs-sdk, Logging.ApplicationInsights/ApplicationInsightsLogger.cs,
  StartTelemetryIfFunctionInvocation; Initializers/WebJobsTelemetryInitializer.cs touches the URL
  only when one is set). Its OpenTelemetry mode is not used: there the host's ASP.NET Core
  instrumentation records each request's `url.path`, token included, with no hook to rewrite it
  (azure-functions-host, Diagnostics/OpenTelemetry/OpenTelemetryConfigurationExtensions.cs; its
  ActivitySanitizingProcessor cleans credentials out of `url.full` and `url.query`, not paths),
  and queue, timer and Event Grid invocations go thin. The worker's log lines reach `traces`
  through the host, so this process exports no logs (that would record every line twice).
- This process exports spans: one per invocation (`traced_invocation`), a child of the host's
  request, with the Azure SDK's calls beneath it. Every span passes `portal_path_scrubber`
  before the exporter sees it. Our log lines carry ids only (never a number, date, name, text or
  token), and no HTTP client instrumentation is on, so no outgoing URL is recorded beyond what
  the Azure SDK puts on its spans (query values redacted by azure-core).
- The Python worker's own Azure Monitor set-up stays off in Azure (PYTHON_ENABLE_OPENTELEMETRY and
  PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY are false): depending on the worker's version one or
  the other runs the distro's `configure_azure_monitor` (azure-functions-python-worker,
  dispatcher.py, initialize_azure_monitor), whose pipeline has no place for the scrubber, whose
  HTTP client instrumentations and live metrics send URLs as they are, and whose tracer provider
  would be installed before ours.

The scrubber rewrites every string attribute (`url.full`, `url.path`, `url.query`, `http.target`,
`http.url`, `http.route`, a Referer header...), event and span name to the route template
(`/p/{token}`, `/p/{token}/documents`, `/p/{token}/documents/{attachmentId}`) and drops the query
string of a portal URL. Nothing is loaded unless APPLICATIONINSIGHTS_CONNECTION_STRING is set, so
local start-up pays nothing, and an invocation runs without a span.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import re
from collections.abc import Callable, Iterator
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from shared_code.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer

_configured = False
# Where invocation spans go: None until telemetry is configured (locally, always).
_invocation_tracer: Tracer | None = None

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
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    # Every span, whatever its parent's sampled flag: the traceparent the host hands an invocation
    # need not carry it (its request is kept regardless: host.json never samples requests away),
    # and the SDK's default sampler would drop the invocation's span with it.
    provider = TracerProvider(resource=resource or Resource.create(), sampler=ALWAYS_ON)
    inner = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(portal_path_scrubber(inner))
    return provider


# The OpenTelemetry FaaS conventions' `faas.trigger` for each trigger the app uses.
FAAS_TRIGGERS = {"http": "http", "queue": "pubsub", "eventgrid": "pubsub", "blob": "datasource", "timer": "timer"}
_TRACED = "_enclose_traced_trigger"
_Handler = TypeVar("_Handler", bound=Callable[..., Any])


def trace_invocations_with(provider: TracerProvider | None) -> None:
    """Give invocation spans to `provider` from now on (None: invocations run without a span)."""
    global _invocation_tracer
    _invocation_tracer = None if provider is None else provider.get_tracer(__name__)


def traced_trigger(handler: Callable[..., Any]) -> str | None:
    """The trigger `traced_invocation` wrapped `handler` for, or None if it is not wrapped."""
    return getattr(handler, _TRACED, None)


def traced_invocation(handler: _Handler, *, trigger: str, route: str | None = None) -> _Handler:
    """`handler` (a function's body) run inside one span per invocation.

    The span is named `METHOD /route` for HTTP, with the route template (never the URL, which holds
    a portal token) and the answer's status, and by the function's name otherwise; it carries the
    invocation id the host's request has too. Its parent is the host's invocation, read from the
    `context` argument the Python worker passes to a function that declares one; the wrapper
    declares it when `handler` does not, so the span shares the host request's operation id
    whatever the worker's own OpenTelemetry settings. An exception (which goes on up) or a 5xx
    answer marks the span failed. Without a tracer `handler` runs bare, importing nothing.
    """
    if trigger not in FAAS_TRIGGERS:
        raise ValueError(f"unknown trigger {trigger!r}")
    if (trigger == "http") != (route is not None):
        raise ValueError("an HTTP trigger needs its route template, and no other trigger has one")
    if inspect.iscoroutinefunction(handler):
        raise TypeError(f"{handler.__name__}: async functions are not traced yet")
    signature = inspect.signature(handler, eval_str=True)
    declares_context = "context" in signature.parameters
    trigger_param = next(name for name in signature.parameters if name != "context")

    @functools.wraps(handler)
    def invoke(*args: Any, **kwargs: Any) -> Any:
        context = kwargs.get("context") if declares_context else kwargs.pop("context", None)
        tracer = _invocation_tracer
        if tracer is None:
            return handler(*args, **kwargs)
        trigger_arg = args[0] if args else kwargs.get(trigger_param)
        with _invocation_span(tracer, handler.__name__, trigger, route, context, trigger_arg) as answered:
            result = handler(*args, **kwargs)
            answered(result)
            return result

    if not declares_context:
        # The worker (and the local host) pass `context` only to a function whose signature names it.
        extra = inspect.Parameter("context", inspect.Parameter.POSITIONAL_OR_KEYWORD)
        invoke.__signature__ = signature.replace(parameters=[*signature.parameters.values(), extra])
    setattr(invoke, _TRACED, trigger)
    return invoke


@contextlib.contextmanager
def _invocation_span(
    tracer: Tracer, name: str, trigger: str, route: str | None, context: Any, trigger_arg: Any
) -> Iterator[Callable[[Any], None]]:
    from opentelemetry.trace import SpanKind, Status, StatusCode

    function_name = getattr(context, "function_name", None) or name
    attributes: dict[str, Any] = {"faas.trigger": FAAS_TRIGGERS[trigger], "faas.name": function_name}
    invocation_id = getattr(context, "invocation_id", None)
    if invocation_id:
        attributes["faas.invocation_id"] = str(invocation_id)
    span_name = function_name
    if route is not None:
        method = str(getattr(trigger_arg, "method", "") or "").upper()
        template = "/" + route.lstrip("/")
        # Not the `http.*` keys: Azure Monitor's exporter drops them from an in-process span's
        # customDimensions (azure-monitor-opentelemetry-exporter, export/trace/_exporter.py,
        # _is_standard_attribute), and an operator needs the status there.
        attributes.update({"enclose.http.method": method, "enclose.http.route": template})
        span_name = f"{method} {template}".strip()
    # INTERNAL, not SERVER: the host's request is the invocation's one row in `requests`; this
    # span is a dependency beneath it.
    with tracer.start_as_current_span(
        span_name, context=_host_invocation(context), kind=SpanKind.INTERNAL, attributes=attributes
    ) as span:

        def answered(result: Any) -> None:
            status = getattr(result, "status_code", None)
            if route is not None and isinstance(status, int):
                span.set_attribute("enclose.http.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))

        yield answered


def _host_invocation(context: Any) -> Context | None:
    """The host's invocation as a parent context, from the worker's `context.trace_context`."""
    trace_context = getattr(context, "trace_context", None)
    traceparent = getattr(trace_context, "trace_parent", "") or ""
    if not traceparent:
        return None  # the current context, if any
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier = {"traceparent": traceparent, "tracestate": getattr(trace_context, "trace_state", "") or ""}
    return TraceContextTextMapPropagator().extract(carrier)


def configure_telemetry(settings: Settings) -> bool:
    """Send this process's spans to Application Insights when configured; True if it did."""
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
    from azure.monitor.opentelemetry.exporter import AzureMonitorTraceExporter
    from opentelemetry import trace
    from opentelemetry.resource.detector.azure import AzureAppServiceResourceDetector, AzureFunctionsResourceDetector
    from opentelemetry.sdk.resources import get_aggregated_resources

    # Not azure-monitor-opentelemetry's configure_azure_monitor: its trace pipeline has no place
    # between the span processors and the exporter (a processor cannot change an ended span), and it
    # honours no switch to leave tracing to us. This is the same exporter, wired by hand.
    # Application Insights has local (key) auth switched off: Entra ID only.
    exporter = AzureMonitorTraceExporter(
        connection_string=settings.applicationinsights_connection_string, credential=ManagedIdentityCredential()
    )
    # The app's name and instance as Application Insights' cloud role, from the platform's variables.
    resource = get_aggregated_resources([AzureAppServiceResourceDetector(), AzureFunctionsResourceDetector()])
    provider = build_tracer_provider(exporter, resource=resource)
    # Invocation spans use this provider even if another was made global first (a worker that ran
    # the distro despite the settings), so they always pass the scrubber.
    trace_invocations_with(provider)
    trace.set_tracer_provider(provider)
    # Azure SDK calls (storage, ACS) as dependency spans, through the global provider.
    azure_core_settings.tracing_implementation = OpenTelemetrySpan
