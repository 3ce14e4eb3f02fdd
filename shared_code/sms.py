"""Sending one SMS through Azure Communication Services with the real SDK.

`SmsClient.send()` (azure-communication-sms 1.1.0) makes a fresh repeatability id on
every call, which would let a retry deliver twice. We build the SDK's own request
model with the message's stored id and first-sent time, and send it through the
SDK's generated client, so ACS recognises a retry and never delivers it again.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared_code.settings import Settings

log = logging.getLogger(__name__)


class SmsError(Exception):
    """Sending failed. `retryable` says whether trying again may succeed."""

    def __init__(self, reason: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class SmsAccepted:
    """ACS accepted the text; its id comes back in the delivery report."""

    acs_message_id: str


_client_lock = threading.Lock()
_clients: dict[tuple, Any] = {}


def _client(settings: Settings) -> Any:
    from azure.communication.sms import SmsClient

    key = (settings.acs_connection_string, settings.acs_endpoint, settings.acs_ca_bundle)
    with _client_lock:
        client = _clients.get(key)
        if client is None:
            options: dict[str, Any] = {
                # Our queue retries with back-off; the SDK's own retries only for quick blips.
                "retry_total": 2, "retry_backoff_factor": 0.2,
                "connection_timeout": 5, "read_timeout": 20,
            }
            if settings.acs_ca_bundle:
                options["connection_verify"] = settings.acs_ca_bundle
            if settings.acs_connection_string:
                client = SmsClient.from_connection_string(settings.acs_connection_string, **options)
            elif settings.acs_endpoint:
                from azure.identity import DefaultAzureCredential

                client = SmsClient(settings.acs_endpoint, DefaultAzureCredential(), **options)
            else:
                raise SmsError("SMS is not configured", retryable=False)
            _clients[key] = client
        return client


def send_sms(settings: Settings, *, to: str, text: str, repeatability_id: str,
             first_sent: datetime, tag: str) -> SmsAccepted:
    """Send one text. Raises SmsError (retryable or not) when it was not accepted."""
    from azure.communication.sms._generated.models import (
        SendMessageRequest,
        SmsRecipient,
        SmsSendOptions,
    )
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    request = SendMessageRequest(
        from_property=settings.sms_sender,
        sms_recipients=[SmsRecipient(
            to=to, repeatability_request_id=repeatability_id,
            repeatability_first_sent=first_sent.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        )],
        message=text,
        sms_send_options=SmsSendOptions(enable_delivery_report=settings.sms_delivery_reports, tag=tag),
    )
    client = _client(settings)
    try:
        results = client._sms_service_client.sms.send(request, cls=lambda _p, r, _h: r.value)
    except ClientAuthenticationError:
        raise SmsError("The SMS service refused our credentials", retryable=True) from None
    except HttpResponseError as exc:
        status = exc.status_code or 0
        retry_after = None
        if exc.response is not None:
            try:
                retry_after = float(exc.response.headers.get("Retry-After", ""))
            except ValueError:
                retry_after = None
        if status == 429 or status >= 500 or status == 408:
            raise SmsError(f"The SMS service answered {status}", retryable=True,
                           retry_after=retry_after) from None
        raise SmsError(f"The SMS service refused the message ({status})", retryable=False) from None
    except (ServiceRequestError, ServiceResponseError):
        raise SmsError("The SMS service could not be reached", retryable=True) from None
    result = results[0]
    if not result.successful:
        status = result.http_status_code or 0
        retryable = status == 429 or status >= 500
        raise SmsError(f"The SMS service did not accept the message ({status})", retryable=retryable)
    return SmsAccepted(acs_message_id=result.message_id)
