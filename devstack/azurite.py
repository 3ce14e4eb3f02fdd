"""Start Azurite (installed from package.json) with its data under a folder of ours."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from devstack.ports import Ports, wait_for_port
from devstack.process import die_with_parent

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key: public, documented, and only ever valid against the emulator.
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_binary() -> str | None:
    """The Azurite launcher from node_modules, or one on PATH, or None."""
    local = ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    return shutil.which("azurite")


def connection_string(ports: Ports, host: str = "127.0.0.1") -> str:
    """The storage connection string for an Azurite on these ports."""
    return (
        "DefaultEndpointsProtocol=http;"
        f"AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://{host}:{ports.blob}/{ACCOUNT};"
        f"QueueEndpoint=http://{host}:{ports.queue}/{ACCOUNT};"
        f"TableEndpoint=http://{host}:{ports.table}/{ACCOUNT};"
    )


def start_azurite(location: Path, ports: Ports, *, quiet: bool = True) -> subprocess.Popen:
    """Start Azurite keeping its files in `location`; returns once all three services listen."""
    binary = azurite_binary()
    if binary is None:
        raise FileNotFoundError("Azurite is not installed: run `npm install` (make does this)")
    location.mkdir(parents=True, exist_ok=True)
    args = [
        binary,
        "--location",
        str(location),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(ports.blob),
        "--queueHost",
        "127.0.0.1",
        "--queuePort",
        str(ports.queue),
        "--tableHost",
        "127.0.0.1",
        "--tablePort",
        str(ports.table),
        # The Python SDKs are newer than the emulator's API version list.
        "--skipApiVersionCheck",
        # Nothing leaves this machine (and its network is closed anyway).
        "--disableTelemetry",
        "--silent",
    ]
    log = open(location / "azurite.log", "ab")  # noqa: SIM115 - owned by the child process
    proc = subprocess.Popen(
        args,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=die_with_parent,
        env={**os.environ},
    )
    try:
        for port in (ports.blob, ports.queue, ports.table):
            wait_for_port(port, timeout=60)
    except TimeoutError:
        proc.kill()
        raise
    return proc
