"""Delivery reports: the Event Grid event ACS sends for a message, and posting it to the Functions host with retries."""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import urllib3

from devstack.sms_emulator.auth import utc_now
from devstack.sms_emulator.controls import DeliveryOverride

# The emulator has always logged as "devstack.sms_emulator": every module keeps that one name.
log = logging.getLogger("devstack.sms_emulator")


DELIVERY_EVENT_TYPE = "Microsoft.Communication.SMSDeliveryReportReceived"
TOPIC = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/enclose-local"
    "/providers/microsoft.communication/communicationservices/sms-emulator"
)


def event_grid_url(functions_port: int, host: str = "127.0.0.1") -> str:
    """Where the local Functions host takes the `delivery_report` Event Grid trigger."""
    return f"http://{host}:{functions_port}/runtime/webhooks/eventgrid?functionName=delivery_report"


#: How the event's `data` fields are spelled. Event Grid's schema and its example event use camelCase
#: (`AcsSmsDeliveryReportReceivedEventData` and examples/event-grid-schema/sms_delivery_report_received.json
#: in azure-rest-api-specs, specification/eventgrid/data-plane/Microsoft.Communication/stable/2018-01-01);
#: Microsoft's Event Grid page and older events use PascalCase; "mixed" is camelCase with a PascalCase `Tag`.
REPORT_CASINGS = ("camel", "pascal", "mixed")


def _segments(text: str) -> int:
    from shared_code.sms_text import measure

    return measure(text).segments


def event_time(moment: datetime) -> str:
    """A time as Event Grid writes it: UTC with seven fractional digits (100 ns ticks) and `Z`."""
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond * 10:07d}Z"


def _spelled(data: dict[str, Any], casing: str) -> dict[str, Any]:
    """`data` (PascalCase) with its field names spelled as `casing` says, nested ones too."""
    if casing == "pascal":
        return data

    def camel(name: str) -> str:
        return name if casing == "mixed" and name == "Tag" else name[0].lower() + name[1:]

    return {
        camel(name): [_spelled(item, casing) for item in value] if isinstance(value, list) else value
        for name, value in data.items()
    }


def delivery_event(
    message_id: str,
    sender: str,
    to: str,
    text: str,
    tag: str | None,
    outcome: tuple[str, str],
    delay: float,
    *,
    casing: str = "camel",
    event_id: str | None = None,
) -> dict[str, Any]:
    """The `SMSDeliveryReportReceived` event for one accepted message, reported `delay` seconds from now."""
    if casing not in REPORT_CASINGS:
        raise ValueError(f"casing must be one of {', '.join(REPORT_CASINGS)}")
    status, details = outcome
    reported = utc_now() + timedelta(seconds=delay)
    segments = _segments(text)
    delivered = status == "Delivered"
    attempts = (
        []
        if status == "Pending"
        else [
            {
                "Timestamp": event_time(reported - timedelta(milliseconds=50)),
                "SegmentsSucceeded": segments if delivered else 0,
                "SegmentsFailed": 0 if delivered else segments,
            }
        ]
    )
    data: dict[str, Any] = {
        "MessageId": message_id,
        # ACS's sample events give From without the '+' and To with it.
        "From": sender.lstrip("+"),
        "To": to,
        "DeliveryStatus": status,
        "DeliveryStatusDetails": details,
        "ReceivedTimestamp": event_time(reported),
        "DeliveryAttempts": attempts,
    }
    if tag is not None:
        data["Tag"] = tag
    return {
        # The sample events use the message id as the event id; a Pending report needs its own.
        "id": event_id or message_id,
        "topic": TOPIC,
        "subject": f"/phonenumber/{sender.lstrip('+')}",
        "data": _spelled(data, casing),
        "eventType": DELIVERY_EVENT_TYPE,
        "dataVersion": "1.0",
        "metadataVersion": "1",
        "eventTime": event_time(reported),
    }


def report_field(data: dict[str, Any], name: str) -> Any:
    """A field of an event's `data` whatever its casing (for logs and tests)."""
    for key, value in data.items():
        if key.lower() == name.lower():
            return value
    return None


class DeliveryReporter:
    """Posts delivery report events after a delay, retrying while the receiver is not up."""

    # Seconds before each retry; Event Grid retries too, on a longer schedule.
    RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0)
    # Event Grid does not retry these answers.
    FINAL_STATUSES = (400, 401, 403, 413)

    def __init__(self, url: str, delay: float) -> None:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError("the Event Grid URL must be http(s)")
        self._url = url
        self._delay = delay
        self._heap: list[tuple[float, int, dict[str, Any], int, list[tuple[dict[str, Any], float]]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sms-delivery")
        # Kept-alive connections, as Event Grid keeps them to a subscriber; never through a
        # proxy (urllib3 reads no proxy settings): the receiver is always local.
        self._http = urllib3.PoolManager(maxsize=4, retries=False, timeout=10)
        self._thread = threading.Thread(target=self._run, name="sms-delivery-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify_all()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def schedule(
        self,
        event: dict[str, Any],
        delay: float | None = None,
        attempt: int = 0,
        then: list[tuple[dict[str, Any], float]] | None = None,
    ) -> None:
        """Post `event` after `delay`; once it is taken (or given up on), post `then`, in turn, each
        its own delay after the one before (so a test can rely on the order they arrive in)."""
        due = time.monotonic() + (self._delay if delay is None else delay)
        with self._cond:
            if self._stopped:
                return
            heapq.heappush(self._heap, (due, next(self._seq), event, attempt, list(then or [])))
            self._cond.notify()

    def schedule_chain(self, posts: list[tuple[dict[str, Any], float]]) -> None:
        """Post each event in turn, each `delay` after the one before was taken."""
        if posts:
            (event, delay), *rest = posts
            self.schedule(event, delay, then=rest)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._cond.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                if self._stopped:
                    return
                _, _, event, attempt, then = heapq.heappop(self._heap)
            try:
                self._pool.submit(self._post, event, attempt, then)
            except RuntimeError:  # the pool was shut down by stop()
                return

    def _post(self, event: dict[str, Any], attempt: int, then: list[tuple[dict[str, Any], float]]) -> None:
        status: int | None
        try:
            response = self._http.request(
                "POST",
                self._url,
                body=json.dumps([event]).encode("utf-8"),
                headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "aeg-event-type": "Notification",
                    "aeg-subscription-name": "SMS-EMULATOR",
                    "aeg-delivery-count": str(attempt),
                    "aeg-data-version": event["dataVersion"],
                    "aeg-metadata-version": event["metadataVersion"],
                },
            )
            status = response.status
        except urllib3.exceptions.HTTPError:
            status = None
        message_id = report_field(event["data"], "MessageId")
        if status is not None and 200 <= status < 300:
            log.info("delivery report posted for %s (%s)", message_id, report_field(event["data"], "DeliveryStatus"))
            self.schedule_chain(then)
            return
        if status in self.FINAL_STATUSES or attempt >= len(self.RETRY_DELAYS):
            log.warning("delivery report for %s not taken (last answer %s); giving up", message_id, status)
            self.schedule_chain(then)
            return
        log.info("delivery report for %s not taken (answer %s); retrying", message_id, status)
        self.schedule(event, self.RETRY_DELAYS[attempt], attempt + 1, then)


def report_posts(
    message_id: str,
    sender: str,
    to: str,
    text: str,
    tag: str | None,
    outcome: DeliveryOverride,
    delay: float,
    casing: str,
) -> list[tuple[dict[str, Any], float]]:
    """The Event Grid posts one accepted text leads to, in the order they arrive, each with its
    delay after the one before (the first: `delay` after the send): the final report, its copies,
    and a Pending one before it (or after it, out of order) when `outcome` asks for one."""
    final = delivery_event(message_id, sender, to, text, tag, (outcome.status, outcome.details), delay, casing=casing)
    finals = [(final, delay)] + [(final, 0.0)] * (outcome.copies - 1)
    if not outcome.pending:
        return finals
    # Received (by its timestamp) before the final report; posted before it, or after it when out of order.
    pending = delivery_event(
        message_id,
        sender,
        to,
        text,
        tag,
        ("Pending", "Message sent to the carrier."),
        delay / 2,
        casing=casing,
        event_id=str(uuid.uuid4()),
    )
    if outcome.out_of_order:
        return [*finals, (pending, 0.0)]
    return [(pending, delay / 2), (final, delay / 2), *finals[1:]]
