"""A small Functions app (its own FunctionApp and blueprints) that exercises every trigger the local host serves.

Each function records what it received in `calls`, so tests can wait for and inspect invocations.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections import defaultdict
from typing import Any

import azure.functions as func

STORAGE = "AzureWebJobsStorage"
QUEUE = "hostwork"
CONTAINER = "hostuploads"


class Calls:
    """Thread-safe record of invocations, keyed by function name."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._calls: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def add(self, function: str, **record: Any) -> None:
        with self._cond:
            self._calls[function].append(record)
            self._cond.notify_all()

    def of(self, function: str, **match: Any) -> list[dict[str, Any]]:
        with self._cond:
            return [r for r in self._calls[function] if all(r.get(k) == v for k, v in match.items())]

    def wait(self, function: str, count: int = 1, timeout: float = 15.0, **match: Any) -> list[dict[str, Any]]:
        """Block until `count` matching calls were recorded; fail the test (not hang) otherwise."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(found := self.of(function, **match)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{function}: {len(found)} of {count} calls matching {match}")
                self._cond.wait(left)
        return found


calls = Calls()

http_bp = func.Blueprint()
triggers_bp = func.Blueprint()


def _json(obj: Any, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(obj), status_code=status, mimetype="application/json")


@http_bp.route(route="v1/items/{id}", methods=["GET"])
def get_item(req: func.HttpRequest) -> func.HttpResponse:
    return _json(
        {
            "route": dict(req.route_params),
            "params": dict(req.params),
            "method": req.method,
            "url": req.url,
            "header": req.headers.get("x-sample"),
        }
    )


@http_bp.route(route="v1/items", methods=["POST"])
def post_item(req: func.HttpRequest) -> func.HttpResponse:
    body = req.get_body()
    return _json({"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}, status=201)


@http_bp.route(route="v1/items/special", methods=["GET"])
def special_item(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"special": True})


@http_bp.route(route="v1/docs/{id:guid}", methods=["GET", "DELETE"])
def doc(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"route": dict(req.route_params), "method": req.method})


@http_bp.route(route="v1/nums/{n:int}", methods=["GET"])
def get_num(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"n": int(req.route_params["n"])})


@http_bp.route(route="v1/greet/{name?}", methods=["GET"])
def greet(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"route": dict(req.route_params)})


@http_bp.route(route="files/{*rest}", methods=["GET"])
def files(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"rest": req.route_params.get("rest")})


@http_bp.route(route="v1/problem", methods=["GET"])
def problem(req: func.HttpRequest) -> func.HttpResponse:
    body = {
        "type": "about:blank",
        "title": "Unprocessable",
        "status": 422,
        "detail": "bad",
        "errors": [{"field": "patient.mobile", "message": "not a mobile"}],
    }
    return func.HttpResponse(json.dumps(body), status_code=422, mimetype="application/problem+json")


@http_bp.route(route="p/{token}", methods=["POST"])
def portal_post(req: func.HttpRequest) -> func.HttpResponse:
    resp = func.HttpResponse(status_code=303, headers={"Location": f"/p/{req.route_params['token']}/documents"})
    resp.headers.add("Set-Cookie", "session=abc; Path=/p/tok; HttpOnly; SameSite=Strict; Max-Age=900")
    resp.headers.add("Set-Cookie", "other=1; Path=/")
    return resp


@http_bp.route(route="v1/async", methods=["GET"])
async def slow_async(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(0.01)
    return _json({"async": True})


@http_bp.route(route="v1/sleep", methods=["GET"])
def sleepy(req: func.HttpRequest) -> func.HttpResponse:
    time.sleep(min(float(req.params.get("s", "0")), 10))
    return _json({"slept": True})


@http_bp.route(route="v1/boom", methods=["GET"])
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("boom-secret-detail")


@http_bp.route(route="v1/context", methods=["GET"])
def with_context(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _json({"function": context.function_name, "invocation": context.invocation_id})


@triggers_bp.queue_trigger(arg_name="msg", queue_name=QUEUE, connection=STORAGE)
def work(msg: func.QueueMessage) -> None:
    body = msg.get_body().decode()
    calls.add("work", body=body, dequeue_count=msg.dequeue_count, id=msg.id, inserted=msg.insertion_time is not None)
    if body.startswith("slow-"):
        time.sleep(0.5)
        calls.add("work_done", body=body)
    if body.startswith("fail-"):
        raise ValueError("refusing this message")


@triggers_bp.blob_trigger(
    arg_name="blob", path=CONTAINER + "/{org}/{id}", connection=STORAGE, source=func.BlobSource.EVENT_GRID
)
def scan(blob: func.InputStream) -> None:
    data = blob.read()
    calls.add("scan", name=blob.name, data=data, length=blob.length, uri=blob.uri)
    if data.startswith(b"fail"):
        raise ValueError("refusing this blob")


@triggers_bp.timer_trigger(arg_name="timer", schedule="* * * * * *", run_on_startup=False)
def tick(timer: func.TimerRequest) -> None:
    calls.add("tick", past_due=timer.past_due)


@triggers_bp.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *", run_on_startup=True)
def yearly(timer: func.TimerRequest) -> None:
    calls.add("yearly", past_due=timer.past_due)


@triggers_bp.function_name("delivery_report")
@triggers_bp.event_grid_trigger(arg_name="event")
def delivery(event: func.EventGridEvent) -> None:
    data = event.get_json()
    if isinstance(event, func.CloudEvent):  # the worker hands CloudEvents-schema events over as such
        calls.add(
            "delivery_report",
            id=event.id,
            type=event.type,
            subject=event.subject,
            topic=event.source,
            time=event.time,
            data=data,
            schema="cloudevents",
        )
    else:
        calls.add(
            "delivery_report",
            id=event.id,
            type=event.event_type,
            subject=event.subject,
            topic=event.topic,
            time=event.event_time,
            data=data,
            schema="eventgrid",
        )
    if isinstance(data, dict) and data.get("fail"):
        raise ValueError("refusing this event")


app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(http_bp)
app.register_functions(triggers_bp)
FUNCTIONS = app.get_functions()  # once per app object, as the worker does
