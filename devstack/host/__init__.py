"""A small local Azure Functions host: runs the app's registered functions as the real host would.

Azure Functions Core Tools cannot be installed everywhere, so this package reads the `Function` objects
of a Python v2 programming-model app (`app.get_functions()`) and serves them:

- HTTP triggers on one port, with the host's route templates (`{id:guid}`, `{x?}`, `{*rest}`),
  `extensions.http.routePrefix` from host.json (default `api`) and method filters (a wrong method
  answers 404, as the real host does);
- queue triggers polling Azure Storage (Azurite) with visibility timeouts, dequeue counts and a
  `<queue>-poison` queue after `maxDequeueCount` tries;
- blob triggers polling a container, with receipts in `azure-webjobs-hosts` so that a restart does
  not run a blob twice, and `webjobs-blobtrigger-poison` after `maxDequeueCount` failures;
- timer triggers on their NCRONTAB schedules (six fields, seconds first);
- Event Grid triggers at `/runtime/webhooks/eventgrid?functionName=NAME`.

Arguments are built with the `azure.functions` converters the real Python worker uses, so a function
sees the same objects here as in Azure. Sync functions run in a thread pool sized like the worker's
(`PYTHON_THREADPOOL_THREAD_COUNT`), `async def` functions on one event loop.

One Python process is bound by one core (the GIL). As the real host runs several Python workers per
instance (FUNCTIONS_WORKER_PROCESS_COUNT) and scales out to several instances, `--processes N` runs
N worker processes: all serve HTTP on the one port (SO_REUSEPORT: the kernel spreads connections)
and all consume the queues (competing consumers, like scaled-out instances); blob and timer triggers
run in worker 0 only. A small supervisor starts them, restarts one that crashes, and stops them all.

Logs carry function names, invocation ids, route templates, message and blob ids: never URLs (a portal
URL holds a token), headers or bodies.

Modules, in the order a request or message meets them:

- `config`: constants, local.settings.json, host.json (`HostConfig`) and `%SETTING%` lookups;
- `discovery`: the app's functions checked into `FunctionSpec`s, and trigger arguments built;
- `routes`: route templates;
- `invocation`: running a function as the worker does, and logging its outcome;
- `http_server`: HTTP/1.1 parsing and framing;
- `storage`: the storage clients the triggers share;
- `queue_trigger`, `blob_trigger`, `timer_trigger`, `eventgrid`: one module per trigger;
- `localhost`: `LocalHost`, which starts all of that and routes requests;
- `supervisor`: the workers of a multi-process host;
- `cli`: `python -m devstack.host` (`__main__` calls `cli.main`).
"""

from devstack.host.cli import main
from devstack.host.config import HostConfig, load_local_settings
from devstack.host.discovery import FunctionSpec, discover
from devstack.host.http_server import HttpAnswer
from devstack.host.invocation import Outcome
from devstack.host.localhost import LocalHost
from devstack.host.routes import RouteTemplate

__all__ = [
    "FunctionSpec",
    "HostConfig",
    "HttpAnswer",
    "LocalHost",
    "Outcome",
    "RouteTemplate",
    "discover",
    "load_local_settings",
    "main",
]
