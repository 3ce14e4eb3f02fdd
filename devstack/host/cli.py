"""The command line: `python -m devstack.host` serves the app until Ctrl-C, or supervises `--processes N` workers."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from devstack.host.config import ROOT, HostConfig, load_local_settings
from devstack.host.localhost import LocalHost
from devstack.host.supervisor import Supervisor

# One logger for the whole package, under the name the host has always logged as: a worker's lines
# read "[worker N] devstack.host: ...", and tests and people filter on that name.
log = logging.getLogger("devstack.host")


def _find_app(module: Any) -> Any:
    from azure.functions.decorators.function_app import FunctionRegister

    for value in vars(module).values():
        if isinstance(value, FunctionRegister):
            return value
    raise RuntimeError(f"{module.__name__} defines no FunctionApp")


MAX_PROCESSES = 10  # the real host's ceiling for FUNCTIONS_WORKER_PROCESS_COUNT
LOG_FORMAT = "%(asctime)s %(levelname)s {tag}%(name)s: %(message)s"


def _process_count(text: str) -> int:
    """A worker process count, 1 to MAX_PROCESSES (argparse type; also checks the environment's value)."""
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_PROCESSES:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_PROCESSES}, not {text!r}")
    return count


def _description() -> str:
    """The first line of the package's docstring, as `--help` has always shown it."""
    import devstack.host

    return (devstack.host.__doc__ or "").splitlines()[0]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devstack.host", description=_description())
    parser.add_argument("--port", type=int, default=None, help="HTTP port (default ENCLOSE_FUNCTIONS_PORT or 7071)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--app", default="function_app", help="module holding the FunctionApp")
    parser.add_argument("--settings", type=Path, default=ROOT / "local.settings.json")
    parser.add_argument("--host-json", type=Path, default=ROOT / "host.json")
    parser.add_argument(
        "--processes",
        type=_process_count,
        default=None,
        metavar="N",
        help=f"worker processes sharing the port, 1 to {MAX_PROCESSES} "
        "(default FUNCTIONS_WORKER_PROCESS_COUNT, else 1)",
    )
    # Set by the supervisor of a multi-process host on the workers it starts; not for people.
    parser.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """`python -m devstack.host`: serve function_app with local.settings.json until Ctrl-C.

    With `--processes N` (N > 1) this process becomes a supervisor of N workers, each this command
    with `--worker-index`, as FUNCTIONS_WORKER_PROCESS_COUNT gives the real host N Python workers.
    """
    from devstack.ports import Ports

    parser = _parser()
    args = parser.parse_args(argv)
    # Like Core Tools: local.settings.json fills in what the environment does not already set.
    for key, value in load_local_settings(args.settings).items():
        os.environ.setdefault(key, value)
    port = args.port if args.port is not None else Ports.from_env().functions
    processes = args.processes
    if processes is None:
        configured = os.environ.get("FUNCTIONS_WORKER_PROCESS_COUNT") or "1"
        try:
            processes = _process_count(configured)
        except argparse.ArgumentTypeError as exc:
            parser.error(f"FUNCTIONS_WORKER_PROCESS_COUNT {exc}")

    if args.worker_index is not None:
        tag = f"[worker {args.worker_index}] "  # several workers share one log: say whose line it is
    elif processes > 1:
        tag = "[supervisor] "
    else:
        tag = ""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT.format(tag=tag))
    logging.getLogger("azure").setLevel(logging.WARNING)  # the SDK logs every request at INFO
    if args.worker_index is None and processes > 1:
        if port == 0:
            port = _free_port(args.host)  # the workers must agree on one port
        command = [
            sys.executable,
            "-m",
            "devstack.host",
            "--port",
            str(port),
            "--host",
            args.host,
            "--app",
            args.app,
            "--settings",
            str(args.settings.resolve()),
            "--host-json",
            str(args.host_json.resolve()),
        ]
        stop_timeout = 2 * HostConfig.load(args.host_json).function_timeout + 30
        return Supervisor(command, processes, f"http://{args.host}:{port}", stop_timeout).run()
    return _serve(args, port)


def _serve(args: argparse.Namespace, port: int) -> int:
    """Run one LocalHost until SIGINT or SIGTERM: the whole host, or one worker of a multi-process host."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    worker = args.worker_index
    app = _find_app(importlib.import_module(args.app))
    host = LocalHost(
        app.get_functions(),
        port=port,
        host=args.host,
        host_json=args.host_json,
        singletons=worker is None or worker == 0,
        reuse_port=worker is not None,
        exit_on_timeout=worker is not None,
    )
    # The handler only appends to a list: it runs between two bytecodes of the main thread, and a
    # second signal (os.killpg on the group, then the supervisor forwarding its own) must not find a
    # lock held, as Event.set() would inside Event.wait() and deadlock.
    requested: list[int] = []
    # Set both explicitly: a process started in the background by a shell inherits SIGINT ignored.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: requested.append(signum))
    host.start()
    if args.ready_fd is None:
        print(f"Functions host ready at {host.base_url}", flush=True)
    else:
        # A worker tells only its supervisor, which prints the one ready line once all listen.
        os.write(args.ready_fd, b"1")
        os.close(args.ready_fd)
    while not requested:
        time.sleep(0.2)
    log.info("Stopping: waiting for running invocations")
    host.stop()
    return 0


def _free_port(host: str) -> int:
    # For `--port 0`: the supervisor picks the port the workers share. Another process could take it
    # before the workers bind; then they fail to start and the host says so, which is fine locally.
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
