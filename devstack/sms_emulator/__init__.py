"""A local stand-in for Azure Communication Services SMS, for the local stack and the tests.

Two listeners:

* the ACS SMS REST API (`POST /sms?api-version=...`) over https with the self-signed
  certificate from `.local/`, checking the HMAC-SHA256 signature `azure-communication-sms`
  sends or a bearer token from the local managed-identity endpoint (`devstack.identity`),
  honouring each recipient's `repeatabilityRequestId`, answering in ACS's shape;
* an inbox on plain http: `GET /messages` (JSON, newest last), `GET /` (the same as a page),
  `DELETE /messages`, and the controls `/control/faults`, `/control/delivery`,
  `/control/repeats` (how a repeat of a recorded request is answered: `REPEAT_MODES`, and the
  in-progress window that answers 409) and `/control/identity` (which principals hold a role).

When a send asks for delivery reports, a `Microsoft.Communication.SMSDeliveryReportReceived`
Event Grid event is posted to the configured URL shortly afterwards, off the request thread.

Logs carry message ids only: never a number or a message text.
Run it alone with `python -m devstack.sms_emulator`.

Modules: `emulator` (`SmsEmulator`: state, life cycle, the send and its repeatability ids),
`auth` (the HMAC signature), `api` (request checks and answers), `controls` (faults and
delivery outcomes), `delivery` (the Event Grid report and its posting), `server` (the two
listeners' handlers), `inbox` (the inbox page) and `cli` (`python -m devstack.sms_emulator`).
"""

from devstack.sms_emulator.api import MAX_RECIPIENTS
from devstack.sms_emulator.auth import MAX_CLOCK_SKEW, REQUIRED_SIGNED_HEADERS, check_signature
from devstack.sms_emulator.cli import main
from devstack.sms_emulator.controls import (
    DELIVERY_STATUSES,
    FAULT_MODES,
    DeliveryOverride,
    Fault,
    parse_delivery_override,
    parse_fault,
)
from devstack.sms_emulator.delivery import (
    DELIVERY_EVENT_TYPE,
    REPORT_CASINGS,
    TOPIC,
    event_grid_url,
    event_time,
    report_field,
)
from devstack.sms_emulator.emulator import SmsEmulator
from devstack.sms_emulator.repeats import REPEAT_MODES
from devstack.sms_emulator.server import MAX_BODY_BYTES

__all__ = [
    "DELIVERY_EVENT_TYPE",
    "DELIVERY_STATUSES",
    "FAULT_MODES",
    "MAX_BODY_BYTES",
    "MAX_CLOCK_SKEW",
    "MAX_RECIPIENTS",
    "REPEAT_MODES",
    "REPORT_CASINGS",
    "REQUIRED_SIGNED_HEADERS",
    "TOPIC",
    "DeliveryOverride",
    "Fault",
    "SmsEmulator",
    "check_signature",
    "event_grid_url",
    "event_time",
    "main",
    "parse_delivery_override",
    "parse_fault",
    "report_field",
]
