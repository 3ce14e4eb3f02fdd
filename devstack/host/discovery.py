"""Function discovery and binding: a v2 app's `Function` objects checked into specs, and trigger arguments built."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from azure.functions.meta import Datum

from devstack.host.config import SUPPORTED_TRIGGERS


@dataclass
class FunctionSpec:
    """One registered function, as the host sees it."""

    name: str
    func: Callable[..., Any]
    trigger_type: str
    trigger: Any
    trigger_param: str
    annotation: Any
    context_param: str | None
    is_async: bool

    @property
    def full_name(self) -> str:
        """The name the host uses for ids and receipts."""
        return f"Host.Functions.{self.name}"


def _annotation(param: inspect.Parameter) -> Any:
    ann = param.annotation
    if ann is inspect.Parameter.empty:
        return None
    if isinstance(ann, str):  # unresolvable forward reference: judge by name
        return {"str": str, "bytes": bytes}.get(ann.rsplit(".", 1)[-1])
    return ann


def discover(functions: list[Any]) -> list[FunctionSpec]:
    """Specs for `app.get_functions()`, checked the way the Python worker checks them at indexing."""
    specs = []
    for f in functions:
        trigger = f.get_trigger()
        name = f.get_function_name()
        if trigger is None:
            raise ValueError(f"function {name!r} has no trigger")
        ttype = trigger.type
        if ttype not in SUPPORTED_TRIGGERS:
            raise ValueError(f"function {name!r}: trigger {ttype!r} is not supported by the local host")
        user_fn = f.get_user_function()
        for b in f.get_bindings():
            if b is trigger or (b.name == "$return" and b.type == "http"):
                continue
            raise ValueError(f"function {name!r}: binding {b.type!r} ({b.name!r}) is not supported by the local host")
        try:
            sig = inspect.signature(user_fn, eval_str=True)
        except (NameError, TypeError, AttributeError):
            sig = inspect.signature(user_fn)
        context_param = None
        trigger_param = None
        annotation = None
        for pname, param in sig.parameters.items():
            if pname == trigger.name:
                trigger_param = pname
                annotation = _annotation(param)
            elif pname == "context":
                context_param = pname
            else:
                raise ValueError(f"function {name!r}: parameter {pname!r} has no binding")
        if trigger_param is None:
            raise ValueError(f"function {name!r}: no parameter named {trigger.name!r} for its trigger")
        specs.append(
            FunctionSpec(
                name=name,
                func=user_fn,
                trigger_type=ttype,
                trigger=trigger,
                trigger_param=trigger_param,
                annotation=annotation,
                context_param=context_param,
                is_async=inspect.iscoroutinefunction(user_fn),
            )
        )
    names = [s.name.lower() for s in specs]
    if len(set(names)) != len(names):
        raise ValueError("function names must be unique")
    return specs


def convert(spec: FunctionSpec, data: Datum, metadata: Mapping[str, Datum] | None = None) -> Any:
    """The trigger argument, built by the worker's own converter (or raw str/bytes when annotated so)."""
    ann = spec.annotation
    if ann in (str, bytes) and data.type in ("bytes", "string"):
        raw = data.value
        if ann is str:
            return raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return raw.encode("utf-8") if isinstance(raw, str) else raw
    converter = func.get_binding_registry().get(spec.trigger_type)
    return converter.decode(data, trigger_metadata=metadata or {})
