"""The SMS adapter's pure parts: sender IDs, Retry-After, the first-sent header, and the one private SDK use.

`_send_with_repeatability` relies on azure-communication-sms internals; the tests below fail if the pinned
SDK changes them, and check the request it builds (through a transport that records it, with no I/O).
"""

from __future__ import annotations

import base64
import importlib.metadata
import inspect
import json
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest
import requests
from azure.core.exceptions import ServiceRequestError, ServiceRequestTimeoutError
from azure.core.pipeline.transport import HttpResponse, HttpTransport
from urllib3.exceptions import NewConnectionError, ReadTimeoutError

from shared_code import clock
from shared_code.settings import SettingsError
from shared_code.sms import (
    PINNED_SDK_VERSION,
    SmsError,
    SmsUnconfirmed,
    _never_connected,
    _send_with_repeatability,
    first_sent_header,
    parse_retry_after,
    validate_sender_id,
)


@pytest.mark.parametrize(
    "sender",
    ["Enclose", "A", "GP Surgery", "Surgery123", "ABCDEFGHIJK", "1A", "NHS 111 GP", "+447700900123", "+18005550123"],
)
def test_valid_sender_ids(sender: str) -> None:
    assert validate_sender_id(sender) == sender


@pytest.mark.parametrize(
    "sender",
    [
        "",
        " ",
        "ABCDEFGHIJKL",  # empty, blank, 12 characters
        "12345",
        "123 456",  # no letter: networks take it for a number
        " Enclose",
        "Enclose ",  # leading or trailing space
        "Dr. Smith",
        "GP-Surgery",
        "Café",
        "Surgery!",  # characters networks do not carry
        "+44",
        "07700900123",
        "+0447700900123",
        "+4477009001234567",  # not E.164
    ],
)
def test_invalid_sender_ids(sender: str) -> None:
    with pytest.raises(SettingsError) as error:
        validate_sender_id(sender)
    assert "SMS_SENDER" in str(error.value)


class Headers(dict):
    """Case-insensitive enough for the header names used here."""

    def get(self, key: str, default=None):
        for name, value in self.items():
            if name.lower() == key.lower():
                return value
        return default


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "0"}, 0.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"x-ms-retry-after-ms": "1200", "Retry-After": "9"}, 1.2),
        ({"Retry-After": "-3"}, 0.0),
        ({}, None),
        ({"Retry-After": "soon"}, None),
    ],
)
def test_retry_after(headers: dict, seconds: float | None) -> None:
    assert parse_retry_after(Headers(headers)) == seconds


def test_retry_after_as_an_http_date() -> None:
    when = format_datetime(clock.now() + timedelta(seconds=30), usegmt=True)
    assert 28 <= parse_retry_after(Headers({"Retry-After": when})) <= 30
    past = format_datetime(clock.now() - timedelta(hours=1), usegmt=True)
    assert parse_retry_after(Headers({"Retry-After": past})) == 0.0


def test_retry_after_without_headers() -> None:
    assert parse_retry_after(None) is None


def test_first_sent_is_an_imf_fixdate_in_gmt() -> None:
    moment = datetime(2019, 4, 1, 7, 22, 3, 456000, tzinfo=timezone(timedelta(hours=1)))
    assert first_sent_header(moment) == "Mon, 01 Apr 2019 06:22:03 GMT"


def test_unconfirmed_is_final_and_may_have_sent() -> None:
    error = SmsUnconfirmed()
    assert isinstance(error, SmsError)
    assert not error.retryable and error.may_have_sent


# -- the one private SDK use ---------------------------------------------------------------------------

ACCESS_KEY = base64.b64encode(b"unit-test-key-of-32-bytes-length").decode()
ENDPOINT = "https://sms.test.invalid/"


class RecordingTransport(HttpTransport):
    """azure-core transport that keeps each request and answers 202 with ACS's body; no network."""

    def __init__(self) -> None:
        self.requests: list[Any] = []

    def __enter__(self) -> RecordingTransport:
        return self

    def __exit__(self, *args: Any) -> None:
        pass

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def send(self, request: Any, **kwargs: Any) -> Any:
        self.requests.append(request)
        recipient = json.loads(request.body)["smsRecipients"][0]
        answer = {
            "value": [
                {
                    "to": recipient["to"],
                    "messageId": "Outgoing_unit",
                    "httpStatusCode": 202,
                    "successful": True,
                    "repeatabilityResult": "accepted",
                }
            ]
        }
        return CannedResponse(request, 202, json.dumps(answer).encode())


class CannedResponse(HttpResponse):
    """A whole answer in memory, in the (old-style) shape the generated SMS client reads."""

    def __init__(self, request: Any, status: int, body: bytes) -> None:
        super().__init__(request, None)
        self.status_code = status
        self.headers = {"Content-Type": "application/json"}
        self.content_type = "application/json"
        self.reason = "Accepted"
        self._body = body

    def body(self) -> bytes:
        return self._body


def test_the_installed_sdk_is_the_release_the_repeatability_send_was_written_for() -> None:
    # A new release may rename or reshape the private parts below: re-check them, then move the pin.
    assert importlib.metadata.version("azure-communication-sms") == PINNED_SDK_VERSION


@pytest.mark.parametrize(
    ("model", "parameters"),
    [
        ("SendMessageRequest", {"from_property", "sms_recipients", "message", "sms_send_options"}),
        ("SmsRecipient", {"to", "repeatability_request_id", "repeatability_first_sent"}),
        ("SmsSendOptions", {"enable_delivery_report", "tag"}),
    ],
)
def test_the_private_request_models_take_the_fields_we_set(model: str, parameters: set[str]) -> None:
    from azure.communication.sms._generated import models

    assert parameters <= inspect.signature(getattr(models, model)).parameters.keys()


def test_the_client_still_has_the_generated_send_operation() -> None:
    from azure.communication.sms import SmsClient

    client = SmsClient.from_connection_string(f"endpoint={ENDPOINT};accesskey={ACCESS_KEY}")
    send = client._sms_service_client.sms.send
    assert list(inspect.signature(send).parameters)[:1] == ["send_message_request"]
    assert send.metadata == {"url": "/sms"}


def test_the_request_carries_our_repeatability_id_and_first_sent_time() -> None:
    from azure.communication.sms import SmsClient

    transport = RecordingTransport()
    client = SmsClient.from_connection_string(f"endpoint={ENDPOINT};accesskey={ACCESS_KEY}", transport=transport)
    repeatability_id = "6f1e2d3c-4b5a-4968-8776-655443322110"
    first_sent = "Mon, 01 Apr 2019 06:22:03 GMT"
    for _ in range(2):  # a retry sends the same id and time, unlike SmsClient.send()
        results = _send_with_repeatability(
            client,
            sender="Enclose",
            to="+447700900123",
            text="Your letter",
            repeatability_id=repeatability_id,
            repeatability_first_sent=first_sent,
            delivery_report=True,
            tag="org/1",
        )
        assert [(r.message_id, r.successful, r.http_status_code) for r in results] == [("Outgoing_unit", True, 202)]
    assert len(transport.requests) == 2
    for request in transport.requests:
        assert request.method == "POST"
        assert request.url.startswith(ENDPOINT + "sms?api-version=")
        assert request.headers["Authorization"].startswith("HMAC-SHA256 ")  # signed by the SDK's own policy
        assert json.loads(request.body) == {
            "from": "Enclose",
            "smsRecipients": [
                {
                    "to": "+447700900123",
                    "repeatabilityRequestId": repeatability_id,
                    "repeatabilityFirstSent": first_sent,
                }
            ],
            "message": "Your letter",
            "smsSendOptions": {"enableDeliveryReport": True, "tag": "org/1"},
        }


# -- which transport errors prove that nothing went out --------------------------------------------


def test_a_connection_that_could_not_be_opened_proves_nothing_was_sent() -> None:
    refused = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")
    assert _never_connected(ServiceRequestError(refused, error=refused))
    assert _never_connected(ServiceRequestTimeoutError("connect timed out"))


def test_a_request_error_from_reading_the_answer_does_not_prove_it() -> None:
    # requests reports a read time-out in the answer's body as a ConnectionError, which azure-core's
    # RequestsTransport turns into a ServiceRequestError although the request went out.
    broken = requests.exceptions.ConnectionError(ReadTimeoutError(None, "/sms", "Read timed out."))
    assert not _never_connected(ServiceRequestError(broken, error=broken))
    assert not _never_connected(ServiceRequestError("no detail"))


def test_a_certificate_refused_in_the_handshake_proves_nothing_was_sent() -> None:
    # requests wraps it as SSLError(MaxRetryError(reason=SSLError(SSLCertVerificationError))).
    import ssl

    from urllib3.exceptions import MaxRetryError, SSLError

    refused = ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed certificate")
    wrapped = requests.exceptions.SSLError(MaxRetryError(None, "/sms", reason=SSLError(refused)))
    assert _never_connected(ServiceRequestError(wrapped, error=wrapped))
    # Any other TLS failure may come after the request went out.
    other = requests.exceptions.SSLError(MaxRetryError(None, "/sms", reason=SSLError("bad record mac")))
    assert not _never_connected(ServiceRequestError(other, error=other))
