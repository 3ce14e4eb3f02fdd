"""The SMS emulator on free ports with fresh local secrets, for integration tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devstack.localsecrets import ensure_local_secrets
from devstack.ports import Ports
from devstack.sms_emulator import SmsEmulator


def start_emulator(local_dir: Path, **options: Any) -> SmsEmulator:
    """A started emulator; `emulator.cert` is the certificate a client must trust."""
    secrets = ensure_local_secrets(local_dir)
    ports = Ports.free()
    emulator = SmsEmulator(
        api_port=ports.sms_api,
        inbox_port=ports.sms_inbox,
        access_key=secrets.value("sms-access-key"),
        cert_file=secrets.sms_cert,
        key_file=secrets.sms_key,
        **options,
    )
    emulator.start()
    emulator.cert = secrets.sms_cert  # type: ignore[attr-defined]
    return emulator
