"""Sending one SMS through Azure Communication Services with the real SDK.

`SmsClient.send()` (azure-communication-sms 1.1.0) makes a fresh repeatability id on
every call, which would let a retry deliver twice. We build the SDK's own request
model with the message's stored id and first-sent time, and send it through the
SDK's generated client (`_send_with_repeatability`, the app's one use of private SDK
parts), so ACS recognises a retry and never delivers it again.

Every failure says whether trying again may help (`retryable`) and whether ACS may
have accepted the text although we did not hear so (`may_have_sent`): a 5xx, a
time-out or a connection dropped after the request went out, or a 409 (ACS is still
handling an earlier try with the same id). The dispatcher needs the second to know
whether the repeatability window still protects the patient, and to wait for a delivery
report before it repeats a try that ACS may re-execute (see `shared_code.dispatch`).
A refusal of our sender or identity (401, 403, 404, a 400 naming `From`) is `misconfigured`:
no text can go until an operator fixes it, so it is no fault of the message.

What ACS answers, and where (the SMS API spec, azure-rest-api-specs
specification/communication/data-plane/Sms/stable/2021-03-07; the SDK's recorded sessions,
azure-sdk-for-python sdk/communication/azure-communication-sms/tests/recordings; Microsoft's
"Repeatability of requests" page for ACS): the request as a whole can fail (401 with an
`Unauthorized` or `InternalError` body for a credential or a From number it refuses, 404 for a
sender the resource does not own, 400 `{"From": [...]}` for a malformed one, 409 for a repeat of
a request still in progress, 412 for a first-sent time older than the 5 minutes ACS tracks, 429,
5xx); or it is a 202 whose item for our recipient carries its own `httpStatusCode` (the same
statuses, per recipient) and `repeatabilityResult` (`accepted`; `rejected` when ACS refused the
repeat: a first-sent time out of its window, or our id already used for another request).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from shared_code import clock
from shared_code.settings import Settings, SettingsError

log = logging.getLogger(__name__)

#: How long a send may take before it counts as timed out (ACS answers in well under a second).
CONNECT_TIMEOUT_SECONDS = 5

# An alphanumeric sender ID (UK networks' rule, which ACS follows): 1 to 11 letters, digits
# and spaces, at least one letter, no leading or trailing space. Or a number in E.164.
_ALPHANUMERIC_SENDER = re.compile(r"(?=[A-Za-z0-9 ]*[A-Za-z])[A-Za-z0-9](?:[A-Za-z0-9 ]{0,9}[A-Za-z0-9])?")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


class SmsError(Exception):
    """Sending failed. `retryable`: trying again may succeed. `may_have_sent`: ACS may
    have accepted the text even so (its answer was an error or never came)."""

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        may_have_sent: bool = False,
        throttled: bool = False,
        misconfigured: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.may_have_sent = may_have_sent
        self.throttled = throttled  # a 429: the sender's rate limit, not this message's fault
        # Our sender or identity was refused: every text would be, until an operator fixes it.
        self.misconfigured = misconfigured


class SmsUnconfirmed(SmsError):
    """ACS refused a repeat of a try it may have sent: the first try is older than the window
    it remembers (412), or it holds another request under our id (400, `rejected`). Whether
    that first try was delivered cannot be known from here."""

    def __init__(self, reason: str = "The SMS service no longer remembers the first attempt") -> None:
        super().__init__(reason, retryable=False, may_have_sent=True)


@dataclass(frozen=True)
class SmsAccepted:
    """ACS accepted the text; its id comes back in the delivery report."""

    acs_message_id: str


def validate_sender_id(sender: str) -> str:
    """The sender ID if ACS can send from it, else SettingsError (for `load_settings`).

    Alphanumeric: 1 to 11 letters, digits or spaces with at least one letter. Or an
    E.164 number (a toll-free or short-code number bought on the ACS resource).
    """
    if _E164.fullmatch(sender) or _ALPHANUMERIC_SENDER.fullmatch(sender):
        return sender
    raise SettingsError(
        "SMS_SENDER must be 1 to 11 letters, digits or spaces with at least one letter "
        "(an alphanumeric sender ID), or a phone number in E.164 form such as +447700900123"
    )


def first_sent_header(moment: datetime) -> str:
    """`repeatabilityFirstSent` as ACS wants it: an IMF-fixdate in GMT, locale-independent."""
    return format_datetime(moment.astimezone(timezone.utc), usegmt=True)


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from `retry-after-ms`, `x-ms-retry-after-ms` or `Retry-After`
    (seconds or an HTTP date); None when absent or unreadable."""
    if headers is None:
        return None
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) / 1000)
            except ValueError:
                pass
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - clock.now()).total_seconds())


_client_lock = threading.Lock()
_clients: dict[tuple, Any] = {}

#: The SDK release whose private request model and operation `_send_with_repeatability` uses.
PINNED_SDK_VERSION = "1.1.0"


def _timeout(settings: Settings) -> float:
    return float(settings.sms_timeout_seconds)


def _client(settings: Settings) -> Any:
    """One `SmsClient` per configuration, kept for the process: it owns one `requests` session."""
    from azure.communication.sms import SmsClient
    from azure.core.pipeline.transport import RequestsTransport

    key = (settings.acs_connection_string, settings.acs_endpoint, settings.acs_ca_bundle, _timeout(settings))
    with _client_lock:
        client = _clients.get(key)
        if client is None:
            # azure-core's stock transport. ACS is reached directly, as storage is (no proxy
            # variables or ~/.netrc read per call); the emulator's CA bundle when one is set.
            transport_options: dict[str, Any] = {
                "use_env_settings": False,
                "connection_timeout": CONNECT_TIMEOUT_SECONDS,
                "read_timeout": _timeout(settings),
            }
            if settings.acs_ca_bundle:
                transport_options["connection_verify"] = settings.acs_ca_bundle
            options: dict[str, Any] = {
                "transport": RequestsTransport(**transport_options),
                # The dispatch queue owns retries (back-off, Retry-After, the attempt count);
                # the SDK only retries a connection that could not be opened, which never
                # reached ACS and so cannot send twice.
                "retry_total": 1,
                "retry_connect": 1,
                "retry_read": 0,
                "retry_status": 0,
                "retry_backoff_factor": 0.2,
            }
            if settings.acs_connection_string:
                client = SmsClient.from_connection_string(settings.acs_connection_string, **options)
            elif settings.acs_endpoint:
                from azure.identity import DefaultAzureCredential

                client = SmsClient(settings.acs_endpoint, DefaultAzureCredential(), **options)
            else:
                raise SmsError("SMS is not configured", retryable=False)
            _clients[key] = client
        return client


def _send_with_repeatability(
    client: Any,
    *,
    sender: str,
    to: str,
    text: str,
    repeatability_id: str,
    repeatability_first_sent: str,
    delivery_report: bool,
    tag: str,
) -> list[Any]:
    """POST /sms with our own repeatability id and first-sent time; the per-recipient results.

    The one use of the SDK's private parts in the app (checked against PINNED_SDK_VERSION by
    tests/unit/shared_code/test_sms.py): the public `SmsClient.send()` makes a new id on every
    call, so a retry of a send whose answer was lost would be a second text. The request model
    and the operation are the ones `send()` itself uses, so the body, the HMAC signature and the
    pipeline are the SDK's own.
    """
    from azure.communication.sms._generated.models import SendMessageRequest, SmsRecipient, SmsSendOptions

    request = SendMessageRequest(
        from_property=sender,
        sms_recipients=[
            SmsRecipient(
                to=to,
                repeatability_request_id=repeatability_id,
                repeatability_first_sent=repeatability_first_sent,
            )
        ],
        message=text,
        sms_send_options=SmsSendOptions(enable_delivery_report=delivery_report, tag=tag),
    )
    return client._sms_service_client.sms.send(request, cls=lambda _response, body, _headers: body.value)


def _never_connected(error: BaseException) -> bool:
    """Whether a failed request provably never reached the server: no connection was made.

    azure-core's RequestsTransport raises ServiceRequestError ("not sent") also when reading the
    answer's body times out or fails TLS (requests reports both as a ConnectionError), so the
    exception type alone does not prove the request stayed here. Only a connection that could
    not be opened (urllib3's NewConnectionError, which also covers a name that did not resolve),
    a connect time-out, or a server certificate refused during the TLS handshake (before any
    byte of the request is written) does.
    """
    import ssl

    from azure.core.exceptions import ServiceRequestTimeoutError
    from urllib3.exceptions import NewConnectionError

    if isinstance(error, ServiceRequestTimeoutError):
        return True
    seen: set[int] = set()
    pending: list[Any] = [error]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, (NewConnectionError, ssl.SSLCertVerificationError)):
            return True
        # azure-core keeps the transport's error as `inner_exception`; requests keeps urllib3's in args,
        # and urllib3's MaxRetryError its cause as `reason`.
        pending.extend(
            [getattr(current, "inner_exception", None), getattr(current, "reason", None), current.__cause__]
            + list(current.args)
        )
    return False


def send_sms(
    settings: Settings, *, to: str, text: str, repeatability_id: str, first_sent: datetime, tag: str
) -> SmsAccepted:
    """Send one text with a stable repeatability id. Raises SmsError when it was not accepted."""
    from azure.core.exceptions import (
        AzureError,
        ClientAuthenticationError,
        DecodeError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    client = _client(settings)
    try:
        results = _send_with_repeatability(
            client,
            sender=settings.sms_sender,
            to=to,
            text=text,
            repeatability_id=repeatability_id,
            repeatability_first_sent=first_sent_header(first_sent),
            delivery_report=settings.sms_delivery_reports,
            tag=tag,
        )
    except ClientAuthenticationError as exc:
        # A 401, or no token from the managed identity: nothing was sent, and nothing will be
        # until the credential, the identity's role or the sender is fixed.
        status = exc.status_code
        raise SmsError(
            f"The SMS service refused our sender or identity ({status})"
            if status
            else "No token could be had for the SMS service (managed identity)",
            retryable=True,
            misconfigured=True,
        ) from None
    except DecodeError:
        # The answer broke off (IncompleteReadError: fewer bytes than announced) or could not
        # be read after the request went out: ACS may have the text.
        raise SmsError("The answer from the SMS service broke off", retryable=True, may_have_sent=True) from None
    except HttpResponseError as exc:
        status = exc.status_code or 0
        if status < 300:
            # No error status: the answer was lost or unreadable after the request went out
            # (a stream cut mid-chunk is an HttpResponseError with no status), so ACS may have it.
            raise SmsError("The answer from the SMS service broke off", retryable=True, may_have_sent=True) from None
        headers = exc.response.headers if exc.response is not None else None
        raise _request_failed(status, headers, _error_body(exc)) from None
    except ServiceRequestError as exc:
        if _never_connected(exc):
            raise SmsError("The SMS service could not be reached", retryable=True) from None
        raise SmsError("The answer from the SMS service broke off", retryable=True, may_have_sent=True) from None
    except ServiceResponseError:
        # The request went out and no whole answer came back (a time-out, a dropped connection).
        raise SmsError("The SMS service did not answer in time", retryable=True, may_have_sent=True) from None
    except AzureError:
        raise SmsError("The connection to the SMS service failed", retryable=True, may_have_sent=True) from None
    if not results:
        raise SmsError("The SMS service gave no result", retryable=True, may_have_sent=True)
    result = results[0]
    if result.successful and result.message_id:
        if (result.repeatability_result or "").lower() != "accepted":
            # Sent, but ACS did not say it honoured our id: a repeat might not be recognised.
            log.warning("ACS accepted %s without honouring its repeatability id", result.message_id)
        return SmsAccepted(acs_message_id=result.message_id)
    raise _recipient_failed(result.http_status_code or 0, (result.repeatability_result or "").lower())


def _error_body(exc: Any) -> Any:
    """The JSON body of an error answer, or None (never logged: it may quote the request)."""
    import json

    try:
        text = exc.response.text() if exc.response is not None else ""
        return json.loads(text) if text else None
    except (ValueError, TypeError, AttributeError):
        return None


def _names_from(body: Any) -> bool:
    """Whether a 400's body is about the From field (ACS: `{"From": ["Invalid From phone number format"]}`)."""
    if not isinstance(body, dict):
        return False
    if any(str(key).lower() == "from" for key in body):
        return True
    error = body.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    return isinstance(message, str) and "from" in message.lower().split()


def _request_failed(status: int, headers: Any, body: Any) -> SmsError:
    """What an error answer to the whole request means."""
    if status in (401, 403, 404) or (status == 400 and _names_from(body)):
        # The sender or the identity, not this message: ACS refused it before sending anything.
        return SmsError(
            f"The SMS service refused our sender or identity ({status})", retryable=True, misconfigured=True
        )
    if status == 409:
        # Microsoft's repeatable-requests rules: a repeat while the first try is still in progress.
        return SmsError(
            "The SMS service is still handling an earlier try (409)",
            retryable=True,
            retry_after=parse_retry_after(headers),
            may_have_sent=True,
        )
    if status == 412:
        return SmsUnconfirmed()
    if status == 429:
        return SmsError(
            "The SMS service asked us to slow down (429)",
            retryable=True,
            retry_after=parse_retry_after(headers),
            throttled=True,
        )
    if status >= 500 or status == 408:
        # ACS may have recorded the text before failing: only the repeatability id
        # keeps a retry from sending it twice.
        return SmsError(
            f"The SMS service answered {status}",
            retryable=True,
            retry_after=parse_retry_after(headers),
            may_have_sent=True,
        )
    return SmsError(f"The SMS service refused the message ({status})", retryable=False)


def _recipient_failed(status: int, repeatability: str) -> SmsError:
    """What a failed item for our recipient in a 202 means."""
    if status == 412:
        return SmsUnconfirmed()
    if status == 400 and repeatability == "rejected":
        # Our id is held for another request: a try with it may have gone, and repeating cannot tell.
        return SmsUnconfirmed("The SMS service holds another request under this message's repeatability id")
    if status == 409:
        return SmsError("The SMS service is still handling an earlier try (409)", retryable=True, may_have_sent=True)
    if status == 429:
        return SmsError("The SMS service asked us to slow down (429)", retryable=True, throttled=True)
    if status >= 500:
        return SmsError(f"The SMS service did not accept the message ({status})", retryable=True, may_have_sent=True)
    return SmsError(f"The SMS service did not accept the message ({status})", retryable=False)
