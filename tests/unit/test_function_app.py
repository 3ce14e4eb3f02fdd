"""The app as the Functions host indexes it: its HTTP routes are unambiguous in any order, and
indexing it loads only the adapters and the few modules their bindings need.

Azure's host tries routes in the order they were added, not by ASP.NET Core precedence, and
the order it adds a Python app's functions in is not documented. So no request may match two
of the app's routes (with a method in common): then every order routes it the same way.

Indexing is the cold start: every module `import function_app` loads is paid before the first
request of a new instance. The domain is imported by the handlers that use it (`bench startup`
measures the cost against `import azure.functions` alone).
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import uuid
from pathlib import Path

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


#: What indexing may load of our own: the adapters, settings, storage names, errors, telemetry and
#: the few light helpers the adapters use on every request.
INDEX_TIME = {
    "shared_code.errors",
    "shared_code.json_body",
    "shared_code.pages",
    "shared_code.portal_forms",
    "shared_code.request_framing",
    "shared_code.settings",
    "shared_code.storage",
    "shared_code.tables",
    "shared_code.telemetry",
}


def test_indexing_the_app_loads_no_domain_module_nor_any_heavy_library() -> None:
    code = "import json, sys, function_app; print(json.dumps(sorted(sys.modules)))"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    ours = {m for m in loaded if m.startswith("shared_code.")}
    assert ours <= INDEX_TIME, sorted(ours - INDEX_TIME)
    heavy = {"pikepdf", "PIL", "jinja2", "yaml", "phonenumbers", "jwt", "azure.storage.blob", "azure.data.tables"}
    assert not {m.split(".")[0] for m in loaded} & {h.split(".")[0] for h in heavy if "." not in h}
    assert not loaded & {h for h in heavy if "." in h}
