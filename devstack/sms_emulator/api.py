"""The ACS SMS API's shapes: what makes a send request malformed, and the answers (items, errors, faults) it gives."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from devstack.sms_emulator.controls import Fault

MAX_RECIPIENTS = 100
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
# An alphanumeric sender ID: up to 11 letters, digits and spaces, at least one letter.
_ALPHA_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
#: The problem a malformed From is; answered in ACS's own shape (`MALFORMED_FROM`).
FROM_PROBLEM = "Invalid From phone number format."


@dataclass
class Reply:
    """An answer: status, JSON body and extra headers."""

    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class Cut:
    """Start the 202 answer, then break it off half-way through the body."""

    body: bytes


@dataclass
class Hangup:
    """Answer nothing: wait `seconds`, then close the connection."""

    seconds: float = 0.0


def error(code: str, message: str) -> dict[str, Any]:
    """An error body in ACS's shape."""
    return {"error": {"code": code, "message": message}}


def failed_item(to: Any, status: int, message: str, repeatability: str | None = None) -> dict[str, Any]:
    """The answer item for one recipient that was not sent."""
    return {
        "to": to if isinstance(to, str) else "",
        "messageId": None,
        "httpStatusCode": status,
        "errorMessage": message,
        "repeatabilityResult": repeatability,
        "successful": False,
    }


#: The body ACS gives a malformed From (the SDK's recorded session test_send_sms_fake_from_phone_number, 2021).
MALFORMED_FROM = {"From": ["Invalid From phone number format"]}


def fault_reply(fault: Fault) -> Reply:
    """The error answer a `status` or `accept_then_status` fault gives."""
    assert fault.status is not None
    headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
    body: Any
    if fault.body == "From":
        body = MALFORMED_FROM
    elif fault.body == "empty":
        body = None
    elif fault.body == "InternalError":
        body = error("InternalError", "The server encountered an internal error.")
    elif fault.body in ("Unauthorized", "Forbidden"):
        body = error(fault.body, "")
    else:
        code = "TooManyRequests" if fault.status == 429 else "ServiceError"
        body = error(code, f"Emulated failure (fault {fault.id}).")
    return Reply(fault.status, body, headers)


def request_problem(request: Any) -> str | None:
    """What makes a send request malformed as a whole (ACS answers 400), or None."""
    if not isinstance(request, dict):
        return "The request body must be a JSON object."
    sender = request.get("from")
    if not isinstance(sender, str) or not (E164.match(sender) or _ALPHA_SENDER.match(sender)):
        return FROM_PROBLEM
    message = request.get("message")
    if not isinstance(message, str) or not message:
        return "Message is required."
    recipients = request.get("smsRecipients")
    if not isinstance(recipients, list) or not recipients or not all(isinstance(r, dict) for r in recipients):
        return "smsRecipients must list at least one recipient."
    if len(recipients) > MAX_RECIPIENTS:
        return f"At most {MAX_RECIPIENTS} recipients are allowed."
    options = request.get("smsSendOptions")
    if options is not None:
        if not isinstance(options, dict):
            return "smsSendOptions must be an object."
        if not isinstance(options.get("enableDeliveryReport", False), bool):
            return "enableDeliveryReport must be true or false."
        if options.get("tag") is not None and not isinstance(options["tag"], str):
            return "tag must be a string."
    return None
