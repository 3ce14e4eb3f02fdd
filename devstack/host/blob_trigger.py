"""The blob trigger: container polling, receipts in `azure-webjobs-hosts`, and `webjobs-blobtrigger-poison`."""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
from typing import TYPE_CHECKING, Any

from azure.functions.meta import Datum

from devstack.host.config import (
    BLOB_IDLE_AFTER,
    BLOB_IDLE_POLL,
    BLOB_POISON_QUEUE,
    BLOB_POLL,
    HOSTS_CONTAINER,
    resolve_setting,
)
from devstack.host.discovery import FunctionSpec, convert
from devstack.host.invocation import log_outcome
from devstack.host.storage import blob_service, create_if_missing, queue_client

if TYPE_CHECKING:
    from devstack.host.localhost import LocalHost

# One logger for the whole package, under the name the host has always logged as: a worker's lines
# read "[worker N] devstack.host: ...", and tests and people filter on that name.
log = logging.getLogger("devstack.host")


class BlobListener:
    """Polls one container for new or changed blobs matching the trigger's path; keeps receipts."""

    def __init__(self, host: LocalHost, spec: FunctionSpec) -> None:
        self.host = host
        self.spec = spec
        path = resolve_setting(spec.trigger.path)
        self.container_name, _, pattern = path.partition("/")
        self.prefix = pattern.split("{", 1)[0]
        regex = ""
        for tok in re.split(r"(\{[^{}]+\})", pattern):
            regex += "(.+)" if tok.startswith("{") else re.escape(tok)
        self.regex = re.compile(regex or ".+")
        conn = host._connection(spec.trigger.connection)
        self.container = blob_service(conn).get_container_client(self.container_name)
        self.receipts = blob_service(host._host_storage(conn)).get_container_client(HOSTS_CONTAINER)
        self.poison = queue_client(host._host_storage(conn), BLOB_POISON_QUEUE)
        self.receipt_prefix = f"blobreceipts/{host.host_id}/{spec.full_name}/"
        self.limit = max(1, host.config.batch_size)
        self.lock = threading.Lock()
        self.done: dict[str, set[str]] = {}  # blob name -> ETags with a receipt
        self.busy: set[str] = set()
        self.failures: dict[tuple[str, str], int] = {}
        self.retry_at: dict[tuple[str, str], float] = {}
        self.thread = threading.Thread(target=self._run, name=f"blob-{spec.name}", daemon=True)

    def start(self) -> None:
        create_if_missing(self.container.create_container)
        create_if_missing(self.receipts.create_container)
        for b in self.receipts.list_blobs(name_starts_with=self.receipt_prefix):
            etag, _, rest = b.name[len(self.receipt_prefix) :].partition("/")
            container, _, name = rest.partition("/")
            if container == self.container_name:
                self.done.setdefault(name, set()).add(etag)
        self.thread.start()

    def _run(self) -> None:
        failing = False
        last_seen = time.monotonic()  # when the container last held a matching blob
        while not self.host._stopping.is_set():
            try:
                if self._scan():
                    last_seen = time.monotonic()
                failing = False
            except Exception as exc:  # noqa: BLE001 - storage down: keep trying, say so once
                if not failing:
                    log.warning("blob trigger %s: scan failed (%s); retrying", self.spec.name, type(exc).__name__)
                failing = True
            idle = time.monotonic() - last_seen > BLOB_IDLE_AFTER
            self.host._stopping.wait(BLOB_IDLE_POLL if idle else BLOB_POLL)

    def _scan(self) -> bool:
        """Start the blobs that are new or changed; returns whether the container held any blob."""
        listed = {
            b.name: b
            for b in self.container.list_blobs(name_starts_with=self.prefix or None, include=["metadata"])
            if self.regex.fullmatch(b.name)
        }
        now = time.monotonic()
        with self.lock:
            for name in [n for n in self.done if n not in listed]:
                del self.done[name]  # deleted blobs: keep memory bounded
            for key in [k for k in self.failures if k[0] not in listed]:
                self.failures.pop(key, None)
                self.retry_at.pop(key, None)
            for name, props in listed.items():
                etag = props.etag.strip('"')
                key = (name, etag)
                if etag in self.done.get(name, ()) or name in self.busy or self.retry_at.get(key, 0) > now:
                    continue
                if len(self.busy) >= self.limit or self.host._stopping.is_set():
                    break
                self.busy.add(name)
                self.host._host_pool.submit(self._handle, props, etag)
        return bool(listed)

    def _handle(self, props: Any, etag: str) -> None:
        try:
            self._process(props, etag)
        except Exception:
            log.exception(
                "blob trigger %s: blob %s/%s could not be completed", self.spec.name, self.container_name, props.name
            )
        finally:
            with self.lock:
                self.busy.discard(props.name)

    def _process(self, props: Any, etag: str) -> None:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        if self.host._stopping.is_set():
            return
        blob = self.container.get_blob_client(props.name)
        try:
            data = blob.download_blob(etag=props.etag, match_condition=MatchConditions.IfNotModified).readall()
        except (ResourceNotFoundError, ResourceModifiedError):
            return  # gone or changed since the listing: the next scan decides
        properties = {
            "Length": props.size,
            "ContentLength": props.size,
            "ETag": props.etag,
            "ContentType": props.content_settings.content_type,
            "BlobType": "BlockBlob",
            "LastModified": props.last_modified.isoformat() if props.last_modified else None,
            "CreatedOn": props.creation_time.isoformat() if props.creation_time else None,
        }
        metadata = {
            "BlobTrigger": Datum(f"{self.container_name}/{props.name}", "string"),
            "Uri": Datum(blob.url, "string"),
            "Properties": Datum(json.dumps(properties), "json"),
            "Metadata": Datum(json.dumps(props.metadata or {}), "json"),
        }
        arg = convert(self.spec, Datum(data, "bytes"), metadata)
        outcome = self.host._invoker.run(self.spec, arg)
        log_outcome(self.spec, outcome, f"blob={self.container_name}/{props.name}")
        key = (props.name, etag)
        if outcome.ok:
            self._receipt(props.name, etag)
            return
        with self.lock:
            tries = self.failures[key] = self.failures.get(key, 0) + 1
            self.retry_at[key] = time.monotonic() + self.host.config.visibility_timeout
        if tries >= self.host.config.max_dequeue_count:
            message = json.dumps(
                {
                    "Type": "BlobTrigger",
                    "FunctionId": self.spec.full_name,
                    "BlobType": "BlockBlob",
                    "ContainerName": self.container_name,
                    "BlobName": props.name,
                    "ETag": props.etag,
                }
            )
            create_if_missing(self.poison.create_queue)
            self.poison.send_message(base64.b64encode(message.encode()).decode())
            log.warning(
                "blob trigger %s: blob %s/%s failed %d times; sent to %s",
                self.spec.name,
                self.container_name,
                props.name,
                tries,
                BLOB_POISON_QUEUE,
            )
            self._receipt(props.name, etag)

    def _receipt(self, name: str, etag: str) -> None:
        # Written only after the function finished (or was poisoned): a crash mid-run means a re-run.
        self.receipts.upload_blob(f"{self.receipt_prefix}{etag}/{self.container_name}/{name}", b"", overwrite=True)
        with self.lock:
            self.done.setdefault(name, set()).add(etag)
            self.failures.pop((name, etag), None)
            self.retry_at.pop((name, etag), None)
