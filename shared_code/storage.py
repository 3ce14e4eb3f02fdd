"""Storage clients: blobs, tables and queues of the app's one storage account.

Locally (and wherever a connection string is set) clients come from
`AzureWebJobsStorage`; in Azure from `AzureWebJobsStorage__accountName` and the
managed identity (DefaultAzureCredential), so no account key is ever in settings.
Containers, tables and queues are created on first use in each process.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

from shared_code.settings import Settings, get_settings
from shared_code.tables import AzureTable

# Containers
UPLOADS = "uploads"  # unscanned; never readable from outside
DOCUMENTS = "documents"  # scanned clean; served only through a short SAS
QUARANTINE = "quarantine"  # rejected; kept briefly for the practice's support desk
TEMPLATE_DOCUMENTS = "template-documents"  # templates' own documents; never served, only copied to messages
RESCANS = "rescans"  # a template document's fresh copy while Defender re-scans it (deleted after)

# Tables
ATTACHMENTS = "attachments"
MESSAGES = "messages"
LINKS = "links"
EVENTS = "events"
IDEMPOTENCY = "idempotency"
PACING = "pacing"  # the app-wide SMS rate limit's one row (shared_code/pacing.py)
TEMPLATES = "templates"
SCAN_VERDICTS = "scanverdicts"  # Defender's verdicts, as its scan-result events bring them
HISTORY = "history"  # index rows of the messages by organisation and patient (shared_code/history.py)
CALLBACKS = "callbacks"  # each organisation's status callback endpoint (shared_code/callbacks.py)
BATCHES = "batches"  # batch CSVs: the batch, and its rows in sealed chunks (shared_code/batch_store.py)

# Queues
DISPATCH = "dispatch"
CALLBACK_QUEUE = "callbacks"  # events to POST to the practices' endpoints
BATCH_ROWS = "batch-rows"  # chunks of a batch's rows whose messages are to be made
BATCH_DISPATCH = "batch-dispatch"  # batch messages to send, after every single send (shared_code/batches.py)

ALL_CONTAINERS = (UPLOADS, DOCUMENTS, QUARANTINE, TEMPLATE_DOCUMENTS, RESCANS)
ALL_TABLES = (
    ATTACHMENTS,
    MESSAGES,
    LINKS,
    EVENTS,
    IDEMPOTENCY,
    PACING,
    SCAN_VERDICTS,
    TEMPLATES,
    HISTORY,
    CALLBACKS,
    BATCHES,
)
ALL_QUEUES = (DISPATCH, CALLBACK_QUEUE, BATCH_ROWS, BATCH_DISPATCH)

#: Containers holding bytes nobody has checked yet: Defender for Storage scans these in Azure and
#: nothing else (infra/main.bicep excludes the rest; tests/unit/infra/test_bicep.py holds it to this).
SCANNED_BY_DEFENDER = (UPLOADS, RESCANS)


class Storage:
    """Lazily built SDK clients for one storage account."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._ready: set[str] = set()
        self._blob = self._table = self._queue = self._credential = None
        self._cached_clients: dict[str, Any] = {}

    @staticmethod
    def _transport() -> Any:
        """azure-core's stock transport for one long-lived service client.

        Each service client owns one `requests` session (its table, container and queue clients
        share it), reused for the life of the process as Microsoft advises for Functions.
        `use_env_settings=False`: storage is reached directly (a private endpoint, or Azurite), and
        reading proxy variables and ~/.netrc on every call is a measurable share of a call's CPU.
        One session shared by the three service clients measured no better: each talks to its
        own endpoint, so they would share no connections anyway.
        """
        from azure.core.pipeline.transport import RequestsTransport

        return RequestsTransport(use_env_settings=False)

    # -- clients -----------------------------------------------------------------
    def _azure_credential(self) -> Any:
        if self._credential is None:
            from azure.identity import DefaultAzureCredential

            self._credential = DefaultAzureCredential()
        return self._credential

    def _endpoint(self, service: str) -> str:
        name = self._settings.storage_account_name
        if not name:
            raise RuntimeError("storage is not configured: set AzureWebJobsStorage")
        return f"https://{name}.{service}.core.windows.net"

    @property
    def blob_service(self) -> Any:
        """`azure.storage.blob.BlobServiceClient`."""
        if self._blob is None:
            from azure.storage.blob import BlobServiceClient

            cs = self._settings.storage_connection_string
            self._blob = (
                BlobServiceClient.from_connection_string(cs, transport=self._transport())
                if cs
                else BlobServiceClient(
                    self._endpoint("blob"), credential=self._azure_credential(), transport=self._transport()
                )
            )
        return self._blob

    @property
    def table_service(self) -> Any:
        """`azure.data.tables.TableServiceClient`."""
        if self._table is None:
            from azure.data.tables import TableServiceClient

            cs = self._settings.storage_connection_string
            self._table = (
                TableServiceClient.from_connection_string(cs, transport=self._transport())
                if cs
                else TableServiceClient(
                    self._endpoint("table"), credential=self._azure_credential(), transport=self._transport()
                )
            )
        return self._table

    @property
    def queue_service(self) -> Any:
        """`azure.storage.queue.QueueServiceClient` with base64 messages, as the Functions host expects."""
        if self._queue is None:
            from azure.storage.queue import (
                BinaryBase64DecodePolicy,
                BinaryBase64EncodePolicy,
                QueueServiceClient,
            )

            cs = self._settings.storage_connection_string
            policies = {
                "message_encode_policy": BinaryBase64EncodePolicy(),
                "message_decode_policy": BinaryBase64DecodePolicy(),
                "transport": self._transport(),
            }
            self._queue = (
                QueueServiceClient.from_connection_string(cs, **policies)
                if cs
                else QueueServiceClient(self._endpoint("queue"), credential=self._azure_credential(), **policies)
            )
        return self._queue

    # -- resources, created once per process ----------------------------------------
    def _once(self, key: str, create: Any) -> None:
        if key in self._ready:
            return
        from azure.core.exceptions import ResourceExistsError

        with self._lock:
            if key in self._ready:
                return
            try:
                create()
            except ResourceExistsError:
                pass
            self._ready.add(key)

    def table(self, name: str) -> AzureTable:
        """The table as a `shared_code.tables.Table`, created if missing."""
        self._once("t:" + name, lambda: self.table_service.create_table(name))
        # Clients are thread-safe; building one per call cost a pipeline each time.
        return self._cached_client("t:" + name, lambda: AzureTable(self.table_service.get_table_client(name)))

    def container(self, name: str) -> Any:
        """A `ContainerClient`, the container created (private) if missing."""
        self._once("c:" + name, lambda: self.blob_service.create_container(name))
        return self._cached_client("c:" + name, lambda: self.blob_service.get_container_client(name))

    def delete_blob(self, container: str, name: str) -> bool:
        """Delete one blob if it exists (a plain delete: the batch API costs a multipart round trip)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self.container(container).get_blob_client(name).delete_blob()
        except ResourceNotFoundError:
            return False
        return True

    def read_blob(self, container: str, name: str, *, limit: int) -> bytes | None:
        """A blob's bytes, or None when there is no such blob; at most `limit` bytes are read."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.container(container).get_blob_client(name).download_blob(offset=0, length=limit).readall()
        except ResourceNotFoundError:
            return None

    def queue(self, name: str) -> Any:
        """A `QueueClient` with base64 messages, the queue created if missing."""
        from azure.storage.queue import BinaryBase64DecodePolicy, BinaryBase64EncodePolicy

        self._once("q:" + name, lambda: self.queue_service.create_queue(name))
        # get_queue_client does not pass the service client's encode policies on.
        return self._cached_client(
            "q:" + name,
            lambda: self.queue_service.get_queue_client(
                name, message_encode_policy=BinaryBase64EncodePolicy(), message_decode_policy=BinaryBase64DecodePolicy()
            ),
        )

    def _cached_client(self, key: str, make: Any) -> Any:
        client = self._cached_clients.get(key)
        if client is None:
            with self._lock:
                client = self._cached_clients.get(key)
                if client is None:
                    client = self._cached_clients[key] = make()
        return client


@lru_cache(maxsize=1)
def get_storage() -> Storage:
    """The process-wide Storage for the configured account."""
    return Storage(get_settings())
