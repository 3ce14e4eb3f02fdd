"""Settings and host.json: the constants the host runs with, local.settings.json, and `%SETTING%` lookups."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository (this file is devstack/host/config.py)
DEFAULT_BODY_LIMIT = 104_857_600  # the real host's FUNCTIONS_REQUEST_BODY_SIZE_LIMIT default (100 MB)
HOSTS_CONTAINER = "azure-webjobs-hosts"
BLOB_POISON_QUEUE = "webjobs-blobtrigger-poison"
# Queue polling as Azure's queue listener does it (azure-webjobs-sdk, QueueListener with
# RandomizedExponentialBackoffStrategy): 100 ms after a message, doubling on each empty poll up
# to host.json's `queues.maxPollingInterval`, whose default is one minute. So a first message
# after a quiet spell waits here as long as it would in Azure, unless host.json says otherwise.
QUEUE_MIN_POLL = 0.1
QUEUE_DEFAULT_MAX_POLL = 60.0
# A listing of the container every 30 ms keeps the upload-to-verdict latency near what Event Grid
# gives in Azure (ENCLOSE_BLOB_POLL_SECONDS overrides it). Each listing costs a few ms of CPU in
# this process and in Azurite, so once the container has been empty for BLOB_IDLE_AFTER seconds
# the listing slows down to BLOB_IDLE_POLL: a first upload after a pause waits at most that long.
BLOB_POLL = float(os.environ.get("ENCLOSE_BLOB_POLL_SECONDS") or 0.03)
BLOB_IDLE_AFTER = 2.0
BLOB_IDLE_POLL = max(BLOB_POLL, 0.2)
# A message being processed stays invisible this long and is renewed at half of it (the real host
# uses 10 minutes; shorter here so a crashed local run hands its messages back quickly).
PROCESSING_VISIBILITY = 30
IDLE_CONNECTION_TIMEOUT = 130  # seconds, Kestrel's keep-alive timeout

SUPPORTED_TRIGGERS = {"httpTrigger", "queueTrigger", "blobTrigger", "timerTrigger", "eventGridTrigger"}


def load_local_settings(path: Path | str) -> dict[str, str]:
    """The `Values` of a local.settings.json file, as strings (an absent file gives `{}`)."""
    p = Path(path)
    if not p.exists():
        return {}
    data = json.loads(p.read_text(encoding="utf-8"))
    values = data.get("Values") or {}
    if not isinstance(values, dict):
        raise ValueError(f"{p}: 'Values' must be an object")
    out: dict[str, str] = {}
    for key, value in values.items():
        if value is None:
            continue
        # Core Tools accepts JSON booleans and numbers and passes their text on.
        out[str(key)] = json.dumps(value) if isinstance(value, bool) else str(value)
    return out


def timespan(text: str | int | float | None, default: float) -> float:
    """Seconds in a .NET TimeSpan string (`hh:mm:ss`, `d.hh:mm:ss.fff`)."""
    if text is None:
        return default
    if isinstance(text, (int, float)):
        return float(text)
    m = re.fullmatch(r"(?:(\d+)\.)?(\d+):(\d+):(\d+(?:\.\d+)?)", text.strip())
    if not m:
        raise ValueError(f"not a TimeSpan: {text!r}")
    days, hours, minutes, seconds = m.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@dataclass(frozen=True)
class HostConfig:
    """The parts of host.json this host honours."""

    route_prefix: str = "api"
    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0
    batch_size: int = 16
    new_batch_threshold: int = 8
    message_encoding: str = "base64"
    max_polling_interval: float = QUEUE_DEFAULT_MAX_POLL
    function_timeout: float = 300.0

    @classmethod
    def load(cls, path: Path | None) -> HostConfig:
        """Read host.json (or the real host's defaults when there is none)."""
        if path is None or not Path(path).exists():
            return cls()
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        ext = data.get("extensions") or {}
        http = ext.get("http") or {}
        queues = ext.get("queues") or {}
        blobs = ext.get("blobs") or {}
        batch = int(queues.get("batchSize", 16))
        return cls(
            route_prefix=str(http.get("routePrefix", "api")).strip("/"),
            max_dequeue_count=int(queues.get("maxDequeueCount", blobs.get("maxDequeueCount", 5))),
            visibility_timeout=timespan(queues.get("visibilityTimeout"), 0.0),
            batch_size=batch,
            new_batch_threshold=int(queues.get("newBatchThreshold", batch // 2)),
            message_encoding=str(queues.get("messageEncoding", "base64")).lower(),
            max_polling_interval=max(
                QUEUE_MIN_POLL, timespan(queues.get("maxPollingInterval"), QUEUE_DEFAULT_MAX_POLL)
            ),
            function_timeout=timespan(data.get("functionTimeout"), 300.0),
        )


def resolve_setting(value: str) -> str:
    """Replace `%SETTING%` with the app setting's value, as the host does in binding properties."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in os.environ:
            raise ValueError(f"binding refers to app setting {name!r}, which is not set")
        return os.environ[name]

    return re.sub(r"%([^%]+)%", sub, value)
