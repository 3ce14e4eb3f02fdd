"""Local ports, each overridable by an environment variable (see the README's settings table)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class Ports:
    """The ports of one local stack."""

    functions: int = 7071
    blob: int = 10000
    queue: int = 10001
    table: int = 10002
    sms_api: int = 7443
    sms_inbox: int = 7072

    @classmethod
    def from_env(cls) -> Ports:
        """Defaults from the contract, overridden by ENCLOSE_*_PORT variables."""
        d = cls()
        get = lambda name, default: int(os.environ.get(name) or default)  # noqa: E731
        return cls(
            functions=get("ENCLOSE_FUNCTIONS_PORT", d.functions),
            blob=get("ENCLOSE_BLOB_PORT", d.blob),
            queue=get("ENCLOSE_QUEUE_PORT", d.queue),
            table=get("ENCLOSE_TABLE_PORT", d.table),
            sms_api=get("ENCLOSE_SMS_PORT", d.sms_api),
            sms_inbox=get("ENCLOSE_SMS_INBOX_PORT", d.sms_inbox),
        )

    @classmethod
    def free(cls) -> Ports:
        """Six free ports, for tests that start a whole stack beside a running one."""
        socks = [socket.socket() for _ in range(6)]
        try:
            for s in socks:
                s.bind(("127.0.0.1", 0))
            return cls(*(s.getsockname()[1] for s in socks))
        finally:
            for s in socks:
                s.close()

    def env(self) -> dict[str, str]:
        """These ports as the ENCLOSE_*_PORT variables."""
        return {
            "ENCLOSE_FUNCTIONS_PORT": str(self.functions),
            "ENCLOSE_BLOB_PORT": str(self.blob),
            "ENCLOSE_QUEUE_PORT": str(self.queue),
            "ENCLOSE_TABLE_PORT": str(self.table),
            "ENCLOSE_SMS_PORT": str(self.sms_api),
            "ENCLOSE_SMS_INBOX_PORT": str(self.sms_inbox),
        }


def wait_for_port(port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
    """Block until something accepts TCP connections on the port, or raise TimeoutError."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s") from None
            time.sleep(0.05)
