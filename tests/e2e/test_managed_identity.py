"""The Entra ID path, as in Azure: the whole local stack with `ENCLOSE_ACS_AUTH=identity`, so the app has
`ACS_ENDPOINT` and no connection string, and reaches the SMS emulator with tokens from the local
managed-identity endpoint (App Service's IDENTITY_ENDPOINT/IDENTITY_HEADER protocol)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import requests

from devstack.ports import Ports
from tests.support.stack import RunningStack, sample_pdf

FINAL = {"sent", "delivered"}


@pytest.fixture(scope="module")
def identity_stack(tmp_path_factory: pytest.TempPathFactory, clamd_address: str) -> Iterator[RunningStack]:
    ports = Ports.free()
    local_dir = tmp_path_factory.mktemp("identity") / ".local"
    env = {
        **os.environ,
        **ports.env(),
        "ENCLOSE_LOCAL_DIR": str(local_dir),
        "CLAMD_ADDRESS": clamd_address,
        "ENCLOSE_ACS_AUTH": "identity",
    }
    env.pop("ACS_CONNECTION_STRING", None)
    running = RunningStack(ports, local_dir, local_dir.parent / "identity-stack.log", env=env)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def _identity(stack: RunningStack, allowed: list[str] | None | str = "read") -> dict:
    if allowed == "read":
        return requests.get(f"{stack.inbox_url}/control/identity", timeout=10).json()
    reply = requests.post(f"{stack.inbox_url}/control/identity", json={"allowedPrincipals": allowed}, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()


def _health(stack: RunningStack) -> dict:
    reply = requests.get(f"{stack.base_url}/api/v1/health", headers=stack.auth(), timeout=30)
    assert reply.status_code == 200
    return reply.json()


def test_the_app_sends_with_its_managed_identity_and_no_connection_string(identity_stack: RunningStack) -> None:
    message_id, _, _ = identity_stack.send_clean(sample_pdf("Identity"))
    assert identity_stack.wait_message(message_id, FINAL)["status"] in FINAL
    counts = _identity(identity_stack)
    assert counts["acceptsTokens"] and counts["bearerSends"] >= 1
    assert counts["keySends"] == 0  # the app had no access key to sign with


def test_an_identity_without_its_role_pauses_sending_until_it_is_granted(identity_stack: RunningStack) -> None:
    _identity(identity_stack, ["a-principal-that-is-not-the-apps"])  # the role assignment is missing
    upload = identity_stack.upload(sample_pdf("No role yet"))
    attachment = identity_stack.wait_attachment(upload.json()["id"])
    sent = identity_stack.send(
        {
            "patient": {"nhsNumber": "9434765919", "dateOfBirth": "1970-01-31", "mobile": "07700 900432"},
            "body": "Your letter is ready.",
            "attachmentIds": [attachment["id"]],
        }
    )
    assert sent.status_code == 202, sent.text
    message_id = sent.json()["id"]
    paused = None
    for _ in range(120):
        paused = _health(identity_stack)
        if paused["sms"]["status"] == "paused":
            break
        identity_stack.wait_message(message_id, FINAL, timeout=0.5)
    assert paused["sms"]["reason"] == "The SMS service refused our sender or identity (403)"
    assert identity_stack.message(message_id)["status"] == "queued"  # held, not failed

    _identity(identity_stack, None)  # the operator assigns the role
    assert identity_stack.wait_message(message_id, FINAL, timeout=120)["status"] in FINAL
    assert _health(identity_stack)["sms"]["status"] == "sending"
