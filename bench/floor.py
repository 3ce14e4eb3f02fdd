"""The floor for `bench send`: the storage and SMS SDK calls one message needs, made bare, timed by CPU.

The calls are the app's, counted from the code for a message created without an Idempotency-Key
and with one clean attachment (the bench's messages), through the queue trigger, the send and the
delivery report. They go to the same Azurite and SMS emulator as the stack, through clients built
as the app builds them (azure-core's stock transport), but with none of the app around them: no
HTTP request to parse, no token to check, no message to validate, build or encrypt, no host.
Only this thread's CPU is counted (`time.thread_time`), so the emulator's threads in this process
and Azurite's own work are not.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

#: Per message, in order, with where the app makes each call (shared_code unless named).
CALLS_PER_MESSAGE: tuple[tuple[str, str], ...] = (
    ("table get_entity", "message_create.create_message: find_attachment"),
    ("blob start_copy_from_url", "message_store.copy_document"),
    ("table create_entity", "history.index_message: the organisation's history row"),
    ("table create_entity", "history.index_message: the patient's history row"),
    ("table create_entity", "message_create.create_message: the link row"),
    ("table create_entity", "message_create.create_message: the message row"),
    ("queue send_message", "dispatch_queue.enqueue_dispatch"),
    ("queue receive_messages, per 16", "the queue trigger's batch (the host's, batchSize 16)"),
    ("queue delete_message", "the queue trigger, after the function returns (the host's)"),
    ("table get_entity", "dispatch._dispatch: find_message"),
    ("table update_entity", "dispatch._dispatch: the send claimed (first-sent time)"),
    ("ACS send", "sms.send_sms"),
    ("table update_entity", "dispatch._record_sent"),
    ("table get_entity", "delivery.apply_delivery_report: transition reads"),
    ("table update_entity", "delivery.apply_delivery_report: transition writes"),
)
#: Messages per queue receive, as the host's batchSize (host.json).
BATCH = 16
#: The floor's own partition and queue, so the host under test never sees its rows or entries.
PARTITION = "BENCH-FLOOR"
QUEUE = "bench-floor"


def calls_per_message() -> float:
    """How many SDK calls one message makes (a queue receive serves a batch)."""
    return sum(1 / BATCH if "per 16" in call else 1 for call, _ in CALLS_PER_MESSAGE)


def measure_floor(
    storage: Any, sms_client: Any, *, sender: str, org: str, attachment_id: str, message_row: dict[str, Any], n: int
) -> float:
    """Make the calls of `n` messages (after a short warm-up) and time this thread's CPU.

    `storage`: a `shared_code.storage.Storage` on the stack's account. `sms_client`: an
    `SmsClient` on the stack's emulator, built as the app builds it. `message_row`: a message
    entity the stack stored, whose properties stand for a real row's size.
    """
    from azure.core import MatchConditions
    from azure.data.tables import UpdateMode

    # Bare TableClients from the app's own service client (same transport), not the app's table
    # adapter (`Storage.table`): the floor is the SDK calls alone. The stack made the tables.
    tables = storage.table_service
    messages, links = tables.get_table_client("messages"), tables.get_table_client("links")
    attachments, history = tables.get_table_client("attachments"), tables.get_table_client("history")
    documents, queue = storage.container("documents"), storage.queue(QUEUE)
    source_url = f"{documents.url}/{org}/{attachment_id}"
    template = {k: v for k, v in message_row.items() if k not in ("PartitionKey", "RowKey")}

    def save(entity: dict[str, Any], etag: str) -> str:
        meta = messages.update_entity(
            entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
        )
        return meta["etag"]

    def one_message(i: int) -> None:
        message_id = str(uuid.uuid4())
        attachments.get_entity(org, attachment_id)
        documents.get_blob_client(f"bench-floor/{message_id}").start_copy_from_url(source_url, requires_sync=None)
        for partition in (f"{PARTITION}|all", f"{PARTITION}|{uuid.uuid4().hex * 2}"):
            history.create_entity(
                {"PartitionKey": partition, "RowKey": f"{i:013d}|{message_id}", "messageId": message_id},
                headers={"Prefer": "return-no-content"},
            )
        links.create_entity(
            {"PartitionKey": uuid.uuid4().hex * 2, "RowKey": "", "org": org, "messageId": message_id},
            headers={"Prefer": "return-no-content"},
        )
        entity = {"PartitionKey": PARTITION, "RowKey": message_id, **template}
        messages.create_entity(entity, headers={"Prefer": "return-no-content"})
        queue.send_message(message_id.encode())
        row = messages.get_entity(PARTITION, message_id)
        etag = save(entity, row.metadata["etag"])
        results = sms_client.send(sender, "+447700900123", f"Floor {i}", enable_delivery_report=False)
        if not results[0].successful:
            raise RuntimeError("the emulator refused a floor send")
        save(entity, etag)
        row = messages.get_entity(PARTITION, message_id)
        save(entity, row.metadata["etag"])

    def drain(expected: int) -> None:
        taken = 0
        while taken < expected:  # one receive per batch, as the host makes
            page = list(queue.receive_messages(messages_per_page=BATCH, max_messages=BATCH, visibility_timeout=60))
            for entry in page:
                queue.delete_message(entry)
            taken += len(page)

    def run(count: int, start: int) -> None:
        for first in range(start, start + count, BATCH):
            batch = min(BATCH, start + count - first)
            for i in range(first, first + batch):
                one_message(i)
            drain(batch)

    run(BATCH * 2, 0)  # warm-up: imports, connections, the SDKs' first-call work
    cpu = time.thread_time()
    run(n, BATCH * 2)
    return (time.thread_time() - cpu) * 1000 / n
