"""Route templates as the Functions host matches them: `{id:guid}`, `{x?}`, `{x=default}`, `{*rest}`, `{a}.{b}`."""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from dataclasses import dataclass

_CONSTRAINTS = {
    "int",
    "long",
    "guid",
    "alpha",
    "bool",
    "minlength",
    "maxlength",
    "length",
    "min",
    "max",
    "range",
    "regex",
    "datetime",
    "decimal",
    "double",
    "float",
    "required",
}


def _split_constraints(text: str) -> list[tuple[str, str | None]]:
    """`int:min(1)` -> [("int", None), ("min", "1")], keeping ':' inside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == ":" and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    parts.append(cur)
    out: list[tuple[str, str | None]] = []
    for p in parts:
        m = re.fullmatch(r"(\w+)(?:\((.*)\))?", p, re.S)
        if not m or m.group(1).lower() not in _CONSTRAINTS:
            raise ValueError(f"unsupported route constraint {p!r}")
        out.append((m.group(1).lower(), m.group(2)))
    return out


def _constraint_ok(kind: str, arg: str | None, value: str) -> bool:
    try:
        if kind in ("int", "long"):
            bits = 31 if kind == "int" else 63
            return re.fullmatch(r"[-+]?\d+", value) is not None and -(2**bits) <= int(value) < 2**bits
        if kind == "guid":
            uuid.UUID(value)
            return True
        if kind == "alpha":
            return value.isascii() and value.isalpha()
        if kind == "bool":
            return value.lower() in ("true", "false")
        if kind in ("minlength", "maxlength", "length", "min", "max", "range"):
            nums = [int(x) for x in (arg or "").split(",")]
            n = len(value) if "length" in kind else int(value)
            lo, hi = {
                "minlength": (nums[0], math.inf),
                "maxlength": (-math.inf, nums[0]),
                "min": (nums[0], math.inf),
                "max": (-math.inf, nums[0]),
            }.get(kind, (nums[0], nums[-1]))
            return lo <= n <= hi
        if kind == "regex":
            return re.search(arg or "", value, re.IGNORECASE) is not None
        if kind == "datetime":
            dt.datetime.fromisoformat(value)
            return True
        if kind in ("decimal", "double", "float"):
            float(value)
            return True
        return value != ""  # required
    except ValueError:
        return False


@dataclass(frozen=True)
class _Param:
    name: str
    group: str
    constraints: tuple[tuple[str, str | None], ...]
    default: str | None


class RouteTemplate:
    """An ASP.NET Core route template as the Functions host uses it (literals match case-insensitively)."""

    def __init__(self, template: str) -> None:
        self.template = template
        self.params: list[_Param] = []
        segments = template.strip("/").split("/") if template.strip("/") else []
        parts: list[str] = []
        for i, seg in enumerate(segments):
            tokens = re.split(r"(\{[^{}]+\})", seg)
            tokens = [t for t in tokens if t]
            specs = [t for t in tokens if t.startswith("{")]
            if not specs:
                parts.append("/" + re.escape(seg))
                continue
            if len(tokens) == 1:
                spec = specs[0][1:-1]
                catch_all = spec.startswith("*")
                spec = spec.lstrip("*")
                optional = spec.endswith("?")
                spec = spec.rstrip("?")
                spec, _, default = spec.partition("=")
                name, _, cons = spec.partition(":")
                param = self._add(name, cons, default or None)
                if catch_all:
                    if i != len(segments) - 1:
                        raise ValueError(f"{template!r}: a catch-all parameter must be last")
                    parts.append(f"(?:/(?P<{param.group}>.*))?")
                elif optional or param.default is not None:
                    parts.append(f"(?:/(?P<{param.group}>[^/]+))?")
                else:
                    parts.append(f"/(?P<{param.group}>[^/]+)")
                continue
            # A complex segment such as `{name}.{ext}`.
            regex = "/"
            for j, tok in enumerate(tokens):
                if tok.startswith("{"):
                    name, _, cons = tok[1:-1].rstrip("?").partition(":")
                    param = self._add(name, cons, None)
                    lazy = "" if j == len(tokens) - 1 else "?"
                    regex += f"(?P<{param.group}>[^/]+{lazy})"
                else:
                    regex += re.escape(tok)
            parts.append(regex)
        self.regex = re.compile("^" + "".join(parts) + "/?$", re.IGNORECASE)

    def _add(self, name: str, constraints: str, default: str | None) -> _Param:
        if not name:
            raise ValueError(f"{self.template!r}: empty route parameter name")
        param = _Param(
            name=name,
            group=f"p{len(self.params)}",
            constraints=tuple(_split_constraints(constraints)) if constraints else (),
            default=default,
        )
        self.params.append(param)
        return param

    def match(self, path: str) -> dict[str, str] | None:
        """Route values for a decoded path starting with '/', or None if it does not match."""
        m = self.regex.match(path)
        if m is None:
            return None
        values: dict[str, str] = {}
        for p in self.params:
            value = m.group(p.group)
            if value is None or value == "":
                if p.default is None:
                    continue
                value = p.default
            if not all(_constraint_ok(kind, arg, value) for kind, arg in p.constraints):
                return None
            values[p.name] = value
        return values
