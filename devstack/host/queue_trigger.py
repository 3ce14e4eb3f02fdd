"""The queue trigger: polling, visibility renewal, dequeue counts and the `<queue>-poison` queue."""

from __future__ import annotations

import base64
import concurrent.futures
import logging
import math
import threading
import time
from typing import TYPE_CHECKING, Any

from azure.functions.meta import Datum

from devstack.host.config import PROCESSING_VISIBILITY, QUEUE_MIN_POLL, resolve_setting
from devstack.host.discovery import FunctionSpec, convert
from devstack.host.invocation import log_outcome, outcome_of
from devstack.host.storage import create_if_missing, queue_client

if TYPE_CHECKING:
    from devstack.host.localhost import LocalHost

# One logger for the whole package, under the name the host has always logged as: a worker's lines
# read "[worker N] devstack.host: ...", and tests and people filter on that name.
log = logging.getLogger("devstack.host")


class QueueListener:
    """Polls one queue; runs up to batchSize + newBatchThreshold messages at once, like the host."""

    def __init__(self, host: LocalHost, spec: FunctionSpec) -> None:
        self.host = host
        self.spec = spec
        cfg = host.config
        self.queue_name = resolve_setting(spec.trigger.queue_name).lower()
        conn = host._connection(spec.trigger.connection)
        self.client = queue_client(conn, self.queue_name)
        self.poison = queue_client(conn, f"{self.queue_name}-poison")
        self.batch = max(1, min(32, cfg.batch_size))  # 32 is the storage API's maximum
        self.threshold = max(0, cfg.new_batch_threshold)
        self.retry_delay = math.ceil(cfg.visibility_timeout)
        self.in_flight = 0
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, name=f"queue-{self.queue_name}", daemon=True)

    def start(self) -> None:
        create_if_missing(self.client.create_queue)
        self.thread.start()

    def _run(self) -> None:
        stopping = self.host._stopping
        interval = QUEUE_MIN_POLL
        failing = False
        while not stopping.is_set():
            with self.cond:
                while self.in_flight > self.threshold and not stopping.is_set():
                    self.cond.wait(0.5)
            if stopping.is_set():
                break
            try:
                messages = list(
                    self.client.receive_messages(
                        max_messages=self.batch,
                        messages_per_page=self.batch,
                        visibility_timeout=PROCESSING_VISIBILITY,
                    )
                )
                failing = False
            except Exception as exc:  # noqa: BLE001 - storage down: keep trying, say so once
                if not failing:
                    log.warning("queue %s: polling failed (%s); retrying", self.queue_name, type(exc).__name__)
                failing = True
                stopping.wait(self.host.config.max_polling_interval)
                continue
            if not messages:
                stopping.wait(interval)
                interval = min(interval * 2, self.host.config.max_polling_interval)
                continue
            interval = QUEUE_MIN_POLL
            for msg in messages:
                with self.cond:
                    self.in_flight += 1
                self.host._host_pool.submit(self._handle, msg)

    def _handle(self, msg: Any) -> None:
        try:
            self._process(msg)
        except Exception:
            log.exception("queue %s: message %s could not be completed", self.queue_name, msg.id)
        finally:
            with self.cond:
                self.in_flight -= 1
                self.cond.notify_all()

    def _process(self, msg: Any) -> None:
        max_count = self.host.config.max_dequeue_count
        if self.host._stopping.is_set():
            self._release(msg.id, msg.pop_receipt)
            return
        if msg.dequeue_count > max_count:
            self._to_poison(msg, msg.pop_receipt, "dequeue count over the limit")
            return
        try:
            body = self._decode(msg.content)
        except ValueError:
            self._to_poison(msg, msg.pop_receipt, "body cannot be decoded")
            return
        iso = lambda d: d.isoformat() if d else None  # noqa: E731
        metadata = {
            "Id": Datum(msg.id, "string"),
            "DequeueCount": Datum(msg.dequeue_count, "int"),
            "InsertionTime": Datum(iso(msg.inserted_on), "string"),
            "ExpirationTime": Datum(iso(msg.expires_on), "string"),
            "NextVisibleTime": Datum(iso(msg.next_visible_on), "string"),
            "PopReceipt": Datum(msg.pop_receipt, "string"),
        }
        arg = convert(self.spec, Datum(body, "bytes"), metadata)
        start = time.perf_counter()
        invocation_id, fut = self.host._invoker.submit(self.spec, arg)
        receipt = msg.pop_receipt
        renew_at = time.monotonic() + PROCESSING_VISIBILITY / 2
        # Wait without fut.result(timeout): a function raising TimeoutError must not look unfinished.
        timed_out = None
        while not concurrent.futures.wait([fut], timeout=0.25).done:
            if self.host._stopping.is_set() and not self.spec.is_async and fut.cancel():
                self._release(msg.id, receipt)  # never started: hand it back untouched
                return
            if self.host._invoker.past_timeout(start):
                timed_out = self.host._invoker.timed_out(self.spec, invocation_id, start)
                break
            if time.monotonic() >= renew_at:
                receipt = self._renew(msg.id, receipt)
                renew_at = time.monotonic() + PROCESSING_VISIBILITY / 2
        outcome = timed_out or outcome_of(invocation_id, fut, start)
        log_outcome(self.spec, outcome, f"queue={self.queue_name} message={msg.id} dequeueCount={msg.dequeue_count}")
        if outcome.ok:
            self.client.delete_message(msg.id, receipt)
        elif msg.dequeue_count >= max_count:
            self._to_poison(msg, receipt, f"failed {msg.dequeue_count} times")
        else:
            self.client.update_message(msg.id, receipt, visibility_timeout=self.retry_delay)

    def _decode(self, content: str | None) -> bytes:
        text = content or ""
        if self.host.config.message_encoding == "base64":
            try:
                return base64.b64decode(text, validate=True)
            except (ValueError, TypeError) as exc:
                raise ValueError("not base64") from exc
        return text.encode("utf-8")

    def _renew(self, msg_id: str, receipt: str) -> str:
        updated = self.client.update_message(msg_id, receipt, visibility_timeout=PROCESSING_VISIBILITY)
        return updated.pop_receipt

    def _release(self, msg_id: str, receipt: str) -> None:
        self.client.update_message(msg_id, receipt, visibility_timeout=0)

    def _to_poison(self, msg: Any, receipt: str, why: str) -> None:
        create_if_missing(self.poison.create_queue)
        self.poison.send_message(msg.content)  # as received: still in the queue's encoding
        self.client.delete_message(msg.id, receipt)
        log.warning("queue %s: message %s moved to %s-poison (%s)", self.queue_name, msg.id, self.queue_name, why)
