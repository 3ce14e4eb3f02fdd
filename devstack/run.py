"""Run the whole local stack in the foreground: `python -m devstack.run` (what `make run` does).

Starts Azurite (data under `.local/azurite`, kept across restarts), ClamAV's clamd (or
uses the one at CLAMD_ADDRESS when set), a managed-identity endpoint (`devstack.identity`,
App Service's protocol), the SMS emulator, and the local Functions host with the app.
With `ENCLOSE_ACS_AUTH=identity` the app reaches the emulator as it reaches ACS in Azure:
`ACS_ENDPOINT` and the identity's bearer tokens, no connection string (`local.settings.json`
keeps the connection string, for `func start`). clamd loads its signatures while the
others start; "Enclose is running" is printed only once every service, clamd included,
answers. Without clamd (and no CLAMD_ADDRESS) it refuses to start, in one sentence saying
what to install, rather than run a stack that rejects every upload. Ctrl-C (or SIGTERM)
stops everything.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from devstack.azurite import start_azurite
from devstack.localsecrets import (
    DEFAULT_LOCAL_DIR,
    ensure_local_secrets,
    local_dir_from_env,
    local_settings,
    write_local_settings_json,
)
from devstack.ports import Ports

ROOT = Path(__file__).resolve().parent.parent
#: How long clamd may take to answer its first PING (loading a full signature set takes a while).
CLAMD_START_TIMEOUT = 300.0
#: How the app authenticates to the SMS emulator: "key" (the connection string) or "identity".
ACS_AUTH_MODES = ("key", "identity")


class StartupError(Exception):
    """The stack cannot start; the message is one plain sentence for the person running it."""


class Stack:
    """Every local service of Enclose, started and stopped together."""

    def __init__(self, ports: Ports, local_dir: Path, *, write_settings_json: bool = True) -> None:
        self.ports = ports
        self.local_dir = local_dir
        self.write_settings_json = write_settings_json
        self._stoppers: list[Any] = []
        self.settings: dict[str, str] = {}

    def start(self) -> None:
        """Start everything; returns when every service answers (StartupError if one cannot start)."""
        from devstack.clamd import NOT_INSTALLED, clamd_available

        clamd_address = os.environ.get("CLAMD_ADDRESS")
        if not clamd_address and not clamd_available():
            raise StartupError(NOT_INSTALLED)
        secrets = ensure_local_secrets(self.local_dir)
        values = local_settings(secrets, self.ports)
        # Launched first (from this thread, which outlives it) so it loads while the rest starts.
        clamd = None if clamd_address else self._launch_clamd()
        values["CLAMD_ADDRESS"] = clamd.address if clamd else clamd_address
        if self.write_settings_json:
            write_local_settings_json(values)
        values = {**values, **self._identity_settings(secrets)}
        self.settings = values

        azurite = start_azurite(secrets.azurite_dir, self.ports)
        self._stoppers.append(lambda: _terminate(azurite))

        from devstack.sms_emulator import SmsEmulator

        emulator = SmsEmulator.for_local_stack(secrets, self.ports)
        emulator.start()
        self._stoppers.append(emulator.stop)

        # The app reads its settings from the environment, as under the real host.
        os.environ.update(values)
        import function_app
        from devstack.host import LocalHost

        host = LocalHost(
            function_app.app.get_functions(), port=self.ports.functions, host_json=ROOT / "host.json", environ=values
        )
        host.start()
        self._stoppers.append(host.stop)
        # An upload made before this returns waits in the scan for clamd (CLAMD_STARTUP_WAIT_SECONDS).
        if clamd is not None:
            self._wait_for_own_clamd(clamd)
        else:
            self._wait_for_clamd_at(values["CLAMD_ADDRESS"])

    def _identity_settings(self, secrets: Any) -> dict[str, str]:
        """Start the managed-identity endpoint; the settings App Service would give the app, and in
        identity mode the ACS endpoint in place of the connection string."""
        from devstack.identity import IdentityEndpoint, identity_key

        mode = os.environ.get("ENCLOSE_ACS_AUTH", "key")
        if mode not in ACS_AUTH_MODES:
            raise StartupError(f"ENCLOSE_ACS_AUTH must be {' or '.join(ACS_AUTH_MODES)}, not {mode!r}.")
        identity = IdentityEndpoint(identity_key(secrets.root))
        identity.start()
        self._stoppers.append(identity.stop)
        settings = dict(identity.environ)
        if mode == "identity":
            settings["ACS_CONNECTION_STRING"] = ""
            settings["ACS_ENDPOINT"] = f"https://127.0.0.1:{self.ports.sms_api}/"
        return settings

    def _launch_clamd(self) -> Any:
        from devstack.clamd import free_port, launch_clamd

        clamd = launch_clamd(self.local_dir / "clamd", port=free_port())
        self._stoppers.append(clamd.stop)
        return clamd

    def _wait_for_own_clamd(self, clamd: Any) -> None:
        try:
            clamd.wait_until_ready(CLAMD_START_TIMEOUT)
        except (RuntimeError, TimeoutError) as exc:
            log_file = clamd.workdir / "clamd.out"
            how = "stopped" if isinstance(exc, RuntimeError) else f"did not answer within {CLAMD_START_TIMEOUT:g} s"
            raise StartupError(
                f"ClamAV (clamd) {how} at start-up, so Enclose cannot scan uploads: see {log_file}."
            ) from None

    def _wait_for_clamd_at(self, address: str) -> None:
        from shared_code.scanning import ClamAvScanner, ScanError

        scanner = ClamAvScanner(address, 5.0, startup_wait=CLAMD_START_TIMEOUT, poll_interval=0.1)
        try:
            scanner.wait_until_ready()
        except ScanError:
            raise StartupError(
                f"No clamd answered at CLAMD_ADDRESS ({address}) within {CLAMD_START_TIMEOUT:g} s, "
                "so Enclose cannot scan uploads: start it, or unset CLAMD_ADDRESS to use a local one."
            ) from None

    @property
    def has_services(self) -> bool:
        """Whether anything was started (and so needs stopping)."""
        return bool(self._stoppers)

    def stop(self) -> None:
        """Stop everything, the host first so no invocation is cut off mid-way."""
        while self._stoppers:
            stop = self._stoppers.pop()
            try:
                stop()
            except Exception as exc:  # noqa: BLE001 - stopping the rest matters more
                print(f"warning: a service did not stop cleanly: {type(exc).__name__}", file=sys.stderr)


def _terminate(proc: Any) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except Exception:  # noqa: BLE001
        proc.kill()


def main() -> int:
    """Start the stack, print its URLs, and run until Ctrl-C or SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)  # the SDKs log every request at INFO
    ports = Ports.from_env()
    local_dir = local_dir_from_env()
    stack = Stack(ports, local_dir, write_settings_json=local_dir == DEFAULT_LOCAL_DIR)
    done = threading.Event()
    starting = True

    def on_signal(*_: Any) -> None:
        done.set()
        if starting:
            raise KeyboardInterrupt  # stop waiting for a service; `finally` stops what started

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        try:
            stack.start()
        except StartupError as exc:
            print(exc, file=sys.stderr, flush=True)
            return 1
        except KeyboardInterrupt:
            return 130
        starting = False
        print(
            "Enclose is running.\n"
            f"  Toolbar API and portal  http://127.0.0.1:{ports.functions}\n"
            f"  SMS inbox               http://127.0.0.1:{ports.sms_inbox}/\n"
            f"  SMS API (ACS emulator)  https://127.0.0.1:{ports.sms_api}\n"
            f"  Azurite                 blob {ports.blob}, queue {ports.queue}, table {ports.table}\n"
            "  Get a token: .venv/bin/python -m devstack.devtoken --org A12345 --user gp1\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        done.wait()
    finally:
        starting = False
        if stack.has_services:
            print("Stopping…", flush=True)
            stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
