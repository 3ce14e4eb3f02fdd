"""The app as the Functions host indexes it: its HTTP routes are unambiguous in any order.

Azure's host tries routes in the order they were added, not by ASP.NET Core precedence, and
the order it adds a Python app's functions in is not documented. So no request may match two
of the app's routes (with a method in common): then every order routes it the same way.
"""

from __future__ import annotations

import itertools
import uuid

from devstack.host.routes import RouteTemplate
from tests.unit.infra.test_bicep import registered_functions

SAMPLE = {"guid": str(uuid.UUID(int=7)), "int": "7"}


def _http_routes() -> list[tuple[str, RouteTemplate, frozenset[str]]]:
    routes = []
    for function_ in registered_functions():
        for binding in function_["bindings"]:
            if binding["type"] == "httpTrigger":
                methods = frozenset(m.upper() for m in binding.get("methods") or ["GET", "POST", "PUT", "DELETE"])
                routes.append((function_["name"], RouteTemplate(binding["route"]), methods))
    return routes


def _sample_paths(template: str, words: set[str]) -> set[str]:
    """Paths the template matches: each parameter filled with a plain value and with every literal word."""
    paths: set[str] = set()
    segments = template.strip("/").split("/")
    choices = []
    for segment in segments:
        if segment.startswith("{"):
            constraint = segment.strip("{}*?").partition(":")[2]
            choices.append([SAMPLE.get(constraint, "x7"), *words] if not constraint else [SAMPLE[constraint]])
        else:
            choices.append([segment])
    for combination in itertools.product(*choices):
        paths.add("/" + "/".join(combination))
    return paths


def test_no_request_matches_two_routes() -> None:
    routes = _http_routes()
    assert len(routes) >= 10
    words = {seg for _, t, _ in routes for seg in t.template.split("/") if seg and not seg.startswith("{")}
    for name, template, methods in routes:
        for path in _sample_paths(template.template, words):
            others = [
                other
                for other, other_template, other_methods in routes
                if other != name and methods & other_methods and other_template.match(path) is not None
            ]
            assert not others, f"{path} matches {name} and {others}"
