"""Run the whole local stack in the foreground: `python -m devstack.run` (what `make run` does).

Starts Azurite (data under `.local/azurite`, kept across restarts), ClamAV's clamd when
it is installed (or uses CLAMD_ADDRESS when set), the SMS emulator, and the local
Functions host with the app. Ctrl-C (or SIGTERM) stops everything.
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
    local_settings,
    write_local_settings_json,
)
from devstack.ports import Ports

ROOT = Path(__file__).resolve().parent.parent


class Stack:
    """Every local service of Enclose, started and stopped together."""

    def __init__(self, ports: Ports, local_dir: Path, *, write_settings_json: bool = True) -> None:
        self.ports = ports
        self.local_dir = local_dir
        self.write_settings_json = write_settings_json
        self._stoppers: list[Any] = []
        self.settings: dict[str, str] = {}

    def start(self) -> None:
        """Start everything; returns when every service answers."""
        secrets = ensure_local_secrets(self.local_dir)
        values = local_settings(secrets, self.ports)
        clamd_address = os.environ.get("CLAMD_ADDRESS")
        if not clamd_address:
            clamd_address = self._start_clamd()
        if clamd_address:
            values["CLAMD_ADDRESS"] = clamd_address
        self.settings = values
        if self.write_settings_json:
            write_local_settings_json(values)

        azurite = start_azurite(secrets.azurite_dir, self.ports)
        self._stoppers.append(lambda: _terminate(azurite))

        from devstack.sms_emulator import SmsEmulator

        emulator = SmsEmulator(
            api_port=self.ports.sms_api,
            inbox_port=self.ports.sms_inbox,
            access_key=secrets.value("sms-access-key"),
            cert_file=secrets.sms_cert,
            key_file=secrets.sms_key,
            event_grid_url=(
                f"http://127.0.0.1:{self.ports.functions}/runtime/webhooks/eventgrid?functionName=delivery_report"
            ),
        )
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

    def _start_clamd(self) -> str | None:
        from devstack.clamd import clamd_available, start_clamd

        if not clamd_available():
            print(
                "warning: ClamAV (clamd) is not installed, so uploads cannot be scanned and will be "
                "rejected. Install it with: apt-get install clamav-daemon",
                file=sys.stderr,
            )
            return None
        clamd = start_clamd(self.local_dir / "clamd")
        self._stoppers.append(clamd.stop)
        return clamd.address

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
    local_dir = Path(os.environ.get("ENCLOSE_LOCAL_DIR") or DEFAULT_LOCAL_DIR)
    stack = Stack(ports, local_dir, write_settings_json=local_dir == DEFAULT_LOCAL_DIR)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    try:
        stack.start()
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
        print("Stopping…", flush=True)
        stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
