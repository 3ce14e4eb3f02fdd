"""A Blueprint whose every function runs inside an invocation span (`shared_code.telemetry`)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import azure.functions as func

from shared_code.telemetry import traced_invocation


class TracedBlueprint(func.Blueprint):
    """`func.Blueprint`, with each trigger decorator the app uses wrapping the function it decorates.

    A function registered through any other decorator (`schedule`, `generic_trigger`...) is not
    traced; tests/unit/functions/test_tracing.py fails for it, so add its trigger here first.
    """

    def route(self, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        # The template the host matched, as written (`p/{token}`): the span never sees the URL.
        route = kwargs["route"] if "route" in kwargs else (args[0] if args else None)
        return _traced(super().route(*args, **kwargs), "http", route)

    def queue_trigger(self, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        return _traced(super().queue_trigger(*args, **kwargs), "queue")

    def blob_trigger(self, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        return _traced(super().blob_trigger(*args, **kwargs), "blob")

    def timer_trigger(self, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        return _traced(super().timer_trigger(*args, **kwargs), "timer")

    def event_grid_trigger(self, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        return _traced(super().event_grid_trigger(*args, **kwargs), "eventgrid")


def _traced(decorate: Callable[..., Any], trigger: str, route: str | None = None) -> Callable[..., Any]:
    def apply(handler: Any) -> Any:
        if not inspect.isfunction(handler):
            # Only the plain function can be wrapped: the trigger decorator goes next to the `def`.
            raise TypeError(f"put the {trigger} trigger decorator directly above the function's def")
        return decorate(traced_invocation(handler, trigger=trigger, route=route))

    return apply
