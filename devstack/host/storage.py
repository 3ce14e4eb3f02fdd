"""Storage clients for the triggers: one shared connection pool, short retries, and create-if-missing."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any


def queue_client(conn: str, name: str) -> Any:
    """A `QueueClient` on the shared transport."""
    from azure.storage.queue import QueueClient

    return QueueClient.from_connection_string(conn, name, **_client_options())


def blob_service(conn: str) -> Any:
    """A `BlobServiceClient` on the shared transport."""
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(conn, **_client_options())


_TRANSPORT: Any = None
_TRANSPORT_LOCK = threading.Lock()


def _client_options() -> dict[str, Any]:
    """One shared connection pool large enough for a batch of handlers, and short retries so stop() is prompt."""
    global _TRANSPORT
    with _TRANSPORT_LOCK:
        if _TRANSPORT is None:
            # The SDKs' stock transport over one requests session that every client shares, so the
            # host's queue and blob polling reuse one connection pool (session_owner=False: closing
            # one client must not close the others' session).
            import requests
            from azure.core.pipeline.transport import RequestsTransport

            _TRANSPORT = RequestsTransport(
                session=requests.Session(), session_owner=False, connection_timeout=5, read_timeout=30
            )
    return {
        "transport": _TRANSPORT,
        "retry_total": 2,
        "initial_backoff": 0,
        "increment_base": 1,
        "random_jitter_range": 0,
    }


def create_if_missing(create: Callable[[], Any]) -> None:
    """Call a `create_queue`/`create_container`, taking "already exists" as success."""
    from azure.core.exceptions import ResourceExistsError

    with contextlib.suppress(ResourceExistsError):
        create()
