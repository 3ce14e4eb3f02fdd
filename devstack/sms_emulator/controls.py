"""The controls tests drive: faults for the next sends, and the outcome of the next delivery reports."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

# The delivery statuses ACS reports (`DeliveryReport.deliveryStatus` in azure-rest-api-specs,
# specification/communication/data-plane/Sms/preview/2025-08-01-preview): Pending and Unknown
# are not final; only Delivered and Failed are.
DELIVERY_STATUSES = ("Delivered", "Failed", "Pending", "Unknown")
# status: answer an error; timeout: answer nothing for a while; drop: close the connection;
# accept_then_status / accept_then_cut: record the text, then answer an error / break the 202
# answer off half-way (timeout and drop record it first with "record": true); item_status: answer
# 202 with the recipient's item failed with that status (a per-recipient 429 or 503), nothing sent.
FAULT_MODES = ("status", "timeout", "accept_then_status", "drop", "accept_then_cut", "item_status")
# The body of a `status` answer, as recorded sessions of the SDK show ACS answering
# (azure-sdk-for-python, sdk/communication/azure-communication-sms/tests/recordings):
# "error": {"error": {"code": "ServiceError" or "TooManyRequests"}}; "InternalError": the 401 for a
# From number the resource does not own (test_send_sms_fake_from_phone_number); "Unauthorized": the
# 401 of a refused credential; "Forbidden": a 403; "From": the 400 for a malformed From
# ({"From": ["Invalid From phone number format"]}); "empty": no body (the 404 of
# test_send_sms_unauthorized_from_phone_number, 2021).
FAULT_BODIES = ("error", "InternalError", "Unauthorized", "Forbidden", "From", "empty")


@dataclass
class Fault:
    """One pending fault: how the next `remaining` sends misbehave."""

    id: str
    mode: str
    count: int
    remaining: int
    status: int | None = None
    seconds: float | None = None
    record: bool = False
    retry_after: int | None = None
    body: str = "error"

    def as_json(self) -> dict[str, Any]:
        """The fault as `GET /control/faults` shows it."""
        return {
            "id": self.id,
            "mode": self.mode,
            "status": self.status,
            "count": self.count,
            "remaining": self.remaining,
            "seconds": self.seconds,
            "record": self.record,
            "retryAfter": self.retry_after,
            "body": self.body,
        }


def _int_field(spec: dict[str, Any], name: str, default: int | None, low: int, high: int) -> int | None:
    value = spec.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}")
    return value


def parse_fault(spec: Any) -> Fault:
    """A `Fault` from a `POST /control/faults` body; ValueError says what is wrong with it."""
    if not isinstance(spec, dict):
        raise ValueError("a fault is a JSON object")
    unknown = set(spec) - {"mode", "status", "count", "seconds", "record", "retryAfter", "body"}
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    mode = spec.get("mode", "status")
    if mode not in FAULT_MODES:
        raise ValueError(f"mode must be one of {', '.join(FAULT_MODES)}")
    count = _int_field(spec, "count", 1, 1, 1_000_000)
    assert count is not None
    fault = Fault(id=uuid.uuid4().hex, mode=mode, count=count, remaining=count)
    allowed = {"mode", "count"}
    if mode == "item_status":
        allowed |= {"status"}
        if "status" not in spec:
            raise ValueError("status is required")
        fault.status = _int_field(spec, "status", None, 400, 599)
    elif mode in ("status", "accept_then_status"):
        allowed |= {"status", "retryAfter"} | ({"body"} if mode == "status" else set())
        if mode == "status" and "status" not in spec:
            raise ValueError("status is required")
        fault.status = _int_field(spec, "status", 500, 400, 599)
        fault.retry_after = _int_field(spec, "retryAfter", 1 if fault.status == 429 else None, 0, 3600)
        body = spec.get("body", "error")
        if body not in FAULT_BODIES:
            raise ValueError(f"body must be one of {', '.join(FAULT_BODIES)}")
        fault.body = body
    else:
        allowed |= {"record"} | ({"seconds"} if mode == "timeout" else set())
        record = spec.get("record", False)
        if not isinstance(record, bool):
            raise ValueError("record must be true or false")
        fault.record = record
        if mode == "timeout":
            seconds = spec.get("seconds", 30)
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= 600:
                raise ValueError("seconds must be a number above 0 and at most 600")
            fault.seconds = float(seconds)
    extra = set(spec) - allowed
    if extra:
        raise ValueError(f"not used by mode {mode}: {', '.join(sorted(extra))}")
    return fault


@dataclass
class DeliveryOverride:
    """The outcome of the next `remaining` delivery reports, and how Event Grid brings them.

    `delay`: seconds until the report is posted (None: the emulator's own delay); `copies`: how
    many times it is posted (Event Grid delivers at least once, so duplicates happen); `pending`:
    a Pending report is posted first; `out_of_order`: ...and arrives after the final one.
    """

    status: str
    details: str
    count: int
    remaining: int
    delay: float | None = None
    copies: int = 1
    pending: bool = False
    out_of_order: bool = False

    def as_json(self) -> dict[str, Any]:
        """The override as `GET /control/delivery` shows it."""
        return {
            "status": self.status,
            "details": self.details,
            "count": self.count,
            "remaining": self.remaining,
            "delaySeconds": self.delay,
            "copies": self.copies,
            "pending": self.pending,
            "outOfOrder": self.out_of_order,
        }


def _flag(spec: dict[str, Any], name: str) -> bool:
    value = spec.get(name, False)
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false")
    return value


def parse_delivery_override(spec: Any) -> DeliveryOverride:
    """A `DeliveryOverride` from a `POST /control/delivery` body; ValueError if malformed."""
    if not isinstance(spec, dict):
        raise ValueError("a delivery outcome is a JSON object")
    unknown = set(spec) - {"status", "details", "count", "delaySeconds", "copies", "pending", "outOfOrder"}
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    status = spec.get("status")
    if status not in DELIVERY_STATUSES:
        raise ValueError(f"status must be one of {', '.join(DELIVERY_STATUSES)}")
    details = spec.get("details", "No error." if status == "Delivered" else "Delivery failed.")
    if not isinstance(details, str) or len(details) > 500:
        raise ValueError("details must be a string of at most 500 characters")
    count = _int_field(spec, "count", 1, 1, 1_000_000)
    copies = _int_field(spec, "copies", 1, 1, 10)
    assert count is not None and copies is not None
    delay = spec.get("delaySeconds")
    if delay is not None and (isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= 3600):
        raise ValueError("delaySeconds must be a number from 0 to 3600")
    pending, out_of_order = _flag(spec, "pending"), _flag(spec, "outOfOrder")
    if out_of_order and not pending:
        raise ValueError("outOfOrder needs pending: it is the Pending report that arrives last")
    return DeliveryOverride(
        status=status,
        details=details,
        count=count,
        remaining=count,
        delay=None if delay is None else float(delay),
        copies=copies,
        pending=pending,
        out_of_order=out_of_order,
    )


def parse_repeats(spec: Any) -> tuple[str, float]:
    """(mode, in-progress seconds) from a `POST /control/repeats` body; ValueError if malformed."""
    if not isinstance(spec, dict):
        raise ValueError("repeat settings are a JSON object")
    unknown = set(spec) - {"mode", "inProgressSeconds"}
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    mode = spec.get("mode")
    if not isinstance(mode, str):
        raise ValueError("mode is required")
    seconds = spec.get("inProgressSeconds", 0)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise ValueError("inProgressSeconds must be a number")
    return mode, float(seconds)


def parse_principals(spec: Any) -> list[str] | None:
    """The allowed principals from a `POST /control/identity` body (`null`: any); ValueError if malformed."""
    if not isinstance(spec, dict) or set(spec) != {"allowedPrincipals"}:
        raise ValueError('send {"allowedPrincipals": [ids] or null}')
    principals = spec["allowedPrincipals"]
    if principals is None:
        return None
    if not isinstance(principals, list) or not all(isinstance(p, str) and p for p in principals):
        raise ValueError("allowedPrincipals must be a list of ids, or null")
    return principals
