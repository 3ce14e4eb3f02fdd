"""The command line: `python -m devstack.sms_emulator` runs the emulator on the local stack's ports."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from devstack.sms_emulator.emulator import SmsEmulator
from devstack.sms_emulator.repeats import REPEAT_MODES


def _description() -> str:
    """The first line of the package's docstring, as `--help` has always shown it."""
    import devstack.sms_emulator

    return (devstack.sms_emulator.__doc__ or "").splitlines()[0]


def main(argv: list[str] | None = None) -> int:
    """Run the emulator in the foreground on the local stack's ports until Ctrl-C or SIGTERM."""
    import argparse
    import signal

    from devstack.localsecrets import DEFAULT_LOCAL_DIR, ensure_local_secrets
    from devstack.ports import Ports

    parser = argparse.ArgumentParser(prog="python -m devstack.sms_emulator", description=_description())
    parser.add_argument("--local-dir", type=Path, default=DEFAULT_LOCAL_DIR, help="where the local secrets live")
    parser.add_argument("--delivery-delay", type=float, default=0.2, help="seconds before a delivery report")
    parser.add_argument(
        "--repeat-mode",
        choices=REPEAT_MODES,
        default="replay",
        help="a repeat of a request answered 5xx: its recorded answer (replay) or sent again (reexecute)",
    )
    parser.add_argument(
        "--in-progress-seconds", type=float, default=0.0, help="how long a repeat of a request gets 409 (in progress)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    ports = Ports.from_env()
    secrets = ensure_local_secrets(args.local_dir)
    emulator = SmsEmulator.for_local_stack(
        secrets,
        ports,
        delivery_delay_seconds=args.delivery_delay,
        repeat_mode=args.repeat_mode,
        in_progress_seconds=args.in_progress_seconds,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    emulator.start()
    print(f"SMS emulator API (ACS):  {emulator.api_url}", flush=True)
    print(f"SMS emulator inbox:      {emulator.inbox_url}/", flush=True)
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0
