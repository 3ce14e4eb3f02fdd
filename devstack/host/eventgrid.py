"""The Event Grid webhook: `/runtime/webhooks/eventgrid?functionName=NAME`, with its validation handshakes."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from azure.functions.meta import Datum

from devstack.host.discovery import FunctionSpec, convert
from devstack.host.http_server import HttpAnswer, json_answer
from devstack.host.invocation import Invoker, log_outcome


def eventgrid_webhook(
    specs: list[FunctionSpec], invoker: Invoker, method: str, query: str, headers: Any, body: bytes
) -> HttpAnswer:
    """One request to `/runtime/webhooks/eventgrid?functionName=NAME`: validation, or events to run."""
    if method == "OPTIONS":  # CloudEvents webhook validation (abuse protection)
        origin = headers.get("WebHook-Request-Origin")
        if not origin:
            return HttpAnswer(400)
        return HttpAnswer(200, [("WebHook-Allowed-Origin", origin), ("WebHook-Allowed-Rate", "*")])
    if method != "POST":
        return HttpAnswer(404)
    name = dict(urllib.parse.parse_qsl(query)).get("functionName", "")
    spec = next(
        (s for s in specs if s.trigger_type == "eventGridTrigger" and s.name.lower() == name.lower()),
        None,
    )
    if spec is None:
        return HttpAnswer(404)
    try:
        events = json.loads(body)
    except ValueError:
        return HttpAnswer(400)
    if isinstance(events, dict):
        events = [events]
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        return HttpAnswer(400)
    # Azure's Event Grid extension (HttpRequestProcessor in azure-sdk-for-net's
    # Microsoft.Azure.WebJobs.Extensions.EventGrid) acts only on an `aeg-event-type` of
    # SubscriptionValidation, Notification or Unsubscribe and answers 400 to anything else,
    # a missing header included; Event Grid itself always sends it.
    kind = (headers.get("aeg-event-type") or "").lower()
    if kind == "subscriptionvalidation":
        for event in events:
            if event.get("eventType") == "Microsoft.EventGrid.SubscriptionValidationEvent":
                code = (event.get("data") or {}).get("validationCode")
                return json_answer(200, {"validationResponse": code})
        return HttpAnswer(400)
    if kind == "unsubscribe":
        return HttpAnswer(202)
    if kind != "notification":
        return HttpAnswer(400)
    failed = False
    for event in events:
        try:
            arg = convert(spec, Datum(json.dumps(event), "json"))
        except (ValueError, TypeError, KeyError):
            return HttpAnswer(400)
        outcome = invoker.run(spec, arg)
        log_outcome(spec, outcome, f"eventgrid event={event.get('id')}")
        failed = failed or not outcome.ok
    return HttpAnswer(500 if failed else 202)  # 500 makes Event Grid retry
