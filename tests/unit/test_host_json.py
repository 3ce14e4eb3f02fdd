"""host.json's telemetry: a request for every invocation, and no portal token in any of them.

What the settings do, from the sources (shared_code/telemetry.py says it at length):
- no `telemetryMode` is the host's classic Application Insights mode (azure-functions-host,
  src/WebJobs.Script/ScriptHostBuilderExtensions.cs, ConfigureTelemetry). `OpenTelemetry` would
  record each request's URL path, link token included, through ASP.NET Core's instrumentation.
- `enableHttpTriggerExtendedInfoCollection: false` turns ASP.NET Core request tracking off; the
  WebJobs logger then starts each invocation's request from the function's name, with no URL, for
  HTTP as for every other trigger (azure-webjobs-sdk, ApplicationInsightsLogger.cs,
  StartTelemetryIfFunctionInvocation).
- That request is completed by the `Host.Results` log entry, so that category must stay logged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def host() -> dict[str, Any]:
    return json.loads((ROOT / "host.json").read_text())


def test_the_host_runs_its_classic_application_insights_telemetry(host: dict[str, Any]) -> None:
    # The host parses the value case-insensitively; absent means ApplicationInsights.
    assert str(host.get("telemetryMode", "ApplicationInsights")).lower() == "applicationinsights"


def test_http_requests_are_recorded_without_their_url(host: dict[str, Any]) -> None:
    options = host["logging"]["applicationInsights"]["httpAutoCollectionOptions"]
    assert options["enableHttpTriggerExtendedInfoCollection"] is False
    # Query strings are never recorded either (the default, not switched on).
    assert host["logging"]["applicationInsights"].get("enableQueryStringTracing", False) is False


def test_every_invocation_and_every_failure_is_kept(host: dict[str, Any]) -> None:
    sampling = host["logging"]["applicationInsights"]["samplingSettings"]
    if sampling.get("isEnabled", True):
        excluded = {kind.strip() for kind in sampling["excludedTypes"].split(";")}
        assert {"Request", "Exception"} <= excluded
        assert "includedTypes" not in sampling


def _level_allows_information(level: str) -> bool:
    return level.lower() in {"trace", "debug", "information"}


def test_the_log_entry_that_completes_each_request_is_not_filtered(host: dict[str, Any]) -> None:
    # Pinned, so a quieter `default` or `Host` level later cannot drop requests: the longest
    # matching category decides.
    levels = {name.lower(): value for name, value in host["logging"]["logLevel"].items()}
    assert _level_allows_information(levels["host.results"])


def test_no_log_category_outside_the_functions_own_is_let_through(host: dict[str, Any]) -> None:
    # The host forwards only its own categories to Application Insights; a category rule for
    # others (Microsoft.AspNetCore's "Request starting ... /p/<token>") would let them in.
    for name in host["logging"].get("logLevel", {}):
        assert name == "default" or name.split(".")[0] in {"Function", "Host", "Worker"}, name
