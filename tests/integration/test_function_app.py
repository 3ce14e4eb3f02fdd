"""The app without its secrets (issue 19): it indexes, and through the local host it answers what
needs no secret and a 503 where one is needed.

In Azure, DOB_HASH_KEY and SESSION_KEY are Key Vault references; until App Service resolves one it
passes the literal `@Microsoft.KeyVault(...)` text through. Each case runs with the two settings
unset and with that literal text. The host runs as `python -m devstack.host` in a child process,
on an Azurite of this module's own (its timers, queue and blob pollers must not touch the
session's), with a live link made beforehand by a run of the rules that had the secrets.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from devstack.azurite import azurite_binary, connection_string, start_azurite
from devstack.devtoken import make_token
from devstack.localsecrets import ensure_local_secrets, local_settings
from devstack.ports import Ports, wait_for_port
from tests.support.components import missing
from tests.support.openapi import response_problems

ROOT = Path(__file__).resolve().parents[2]
SECRETS = ("DOB_HASH_KEY", "SESSION_KEY")
CLOSED = "http://127.0.0.1:9"  # nothing listens: telemetry and identity calls fail at once, locally


def _reference(name: str) -> str:
    return f"@Microsoft.KeyVault(VaultName=kv-enclose-test;SecretName={name.lower().replace('_', '-')})"


def _secret_settings(case: str) -> dict[str, str]:
    """The two secrets as the case has them: absent (`{}`), or App Service's unresolved reference text."""
    return {} if case == "missing" else {name: _reference(name) for name in SECRETS}


def _without_secrets(env: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in env.items() if key not in SECRETS}


# -- indexing -------------------------------------------------------------------------------------

_INDEX = """
import json, os, sys
import function_app
from shared_code.settings import get_settings
from shared_code.telemetry import configure_telemetry
names = sorted(f.get_function_name() for f in function_app.app.get_functions())
# True when the import configured it already (a second call does nothing more).
print(json.dumps({"functions": names, "telemetry": configure_telemetry(get_settings())}))
sys.stdout.flush()
os._exit(0)  # the exporters' exit-time flush would only try the closed endpoint
"""


def _index(case: str, tmp_path: Path) -> dict:
    """Import function_app in a fresh process, telemetry configured (against a closed endpoint)."""
    env = {
        **_without_secrets(dict(os.environ)),
        "PYTHONPATH": str(ROOT),
        "APPLICATIONINSIGHTS_CONNECTION_STRING": (
            f"InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint={CLOSED}/;LiveEndpoint={CLOSED}/"
        ),
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
        "IDENTITY_ENDPOINT": f"{CLOSED}/msi/token",
        "IDENTITY_HEADER": "test",
        "TMPDIR": str(tmp_path),
    }
    if case == "present":
        env.update({name: secrets.token_hex(32) for name in SECRETS})
    else:
        env.update(_secret_settings(case))
    proc = subprocess.run(
        [sys.executable, "-c", _INDEX], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", ["missing", "reference"])
def test_the_app_indexes_every_function_without_its_secrets(case: str, tmp_path: Path) -> None:
    with_secrets = _index("present", tmp_path / "present")
    without = _index(case, tmp_path / case)
    assert {"portal_link", "messages_create", "scan_uploaded_blob", "dispatch_queued_message"} <= set(
        with_secrets["functions"]
    )
    assert without["functions"] == with_secrets["functions"]
    # Telemetry is configured at import too, and needs no secret either.
    assert without["telemetry"] is True


# -- through the local host ------------------------------------------------------------------------


@dataclass(frozen=True)
class Live:
    """What exists before the secret-less host starts: its Azurite, a link that works, the local keys."""

    ports: Ports
    local_dir: Path
    token: str
    secret_values: tuple[str, ...]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A private Azurite holding one sent message, made by the rules with both secrets."""
    if azurite_binary() is None:
        missing("Azurite", "run `npm ci` (make test does)")
    from shared_code.crypto import unseal
    from shared_code.message_create import token_seal_key
    from shared_code.settings import load_settings
    from shared_code.storage import Storage
    from tests.support.records import mark_sent, new_message

    ports = Ports.free()
    proc = start_azurite(tmp_path_factory.mktemp("azurite"), ports)
    try:
        keys = {name: secrets.token_hex(32) for name in SECRETS}
        settings = load_settings(
            {"AzureWebJobsStorage": connection_string(ports), "ALLOW_DRAMA_NUMBERS": "true", **keys}
        )
        storage = Storage(settings)
        message = new_message(storage, settings)
        token = unseal(token_seal_key(settings), message.sealed_token)  # sending forgets it
        mark_sent(storage, message)
        yield Live(ports, tmp_path_factory.mktemp("local"), token, tuple(keys.values()))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@dataclass(frozen=True)
class Host:
    """A running `python -m devstack.host` without usable secrets."""

    case: str
    base_url: str
    log: Path
    bearer: dict[str, str]


@pytest.fixture(scope="module", params=["missing", "reference"])
def host(request: pytest.FixtureRequest, live: Live, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    case = request.param
    folder = tmp_path_factory.mktemp(f"host-{case}")
    values = _without_secrets(local_settings(ensure_local_secrets(live.local_dir), live.ports))
    values.update(
        {
            "AzureWebJobsStorage": connection_string(live.ports),
            # No scanner here: an upload left behind fails its scan at once instead of waiting.
            "CLAMD_ADDRESS": "tcp://127.0.0.1:9",
            "CLAMD_STARTUP_WAIT_SECONDS": "0",
            **_secret_settings(case),
        }
    )
    settings_file = folder / "local.settings.json"
    settings_file.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    log_path = folder / "host.log"
    port = Ports.free().functions
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "devstack.host", "--port", str(port), "--settings", str(settings_file)],
            cwd=ROOT,
            env=_without_secrets(dict(os.environ)),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        try:
            wait_for_port(port, timeout=120)
        except TimeoutError:
            raise AssertionError("the host did not start:\n" + log_path.read_text()[-4000:]) from None
        bearer = {"Authorization": f"Bearer {make_token('A12345', 'gp1', local_dir=live.local_dir)}"}
        yield Host(case, f"http://127.0.0.1:{port}", log_path, bearer)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _assert_portal_headers(answer: requests.Response) -> None:
    assert answer.headers["Content-Type"].startswith("text/html")
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]


def test_an_unknown_link_is_the_portals_404_page(host: Host) -> None:
    # The lookup is by the token's SHA-256, which needs no secret.
    answer = requests.get(f"{host.base_url}/p/{secrets.token_urlsafe(18)}", timeout=30)
    assert answer.status_code == 404
    assert "This link does not work" in answer.text
    _assert_portal_headers(answer)


def test_a_live_link_is_the_portals_unavailable_page_not_a_stack_trace(host: Host, live: Live) -> None:
    answer = requests.get(f"{host.base_url}/p/{live.token}", timeout=30)
    assert answer.status_code == 503
    assert "Sorry, the service is unavailable" in answer.text
    assert "Traceback" not in answer.text and "DOB_HASH_KEY" not in answer.text
    _assert_portal_headers(answer)


def test_sending_is_a_503_problem_as_the_openapi_document_describes(host: Host) -> None:
    body = {
        "patient": {"nhsNumber": "9434765919", "dateOfBirth": "1970-01-31", "mobile": "07700900123"},
        "body": "Your letter is ready.",
        "attachmentIds": [str(uuid.uuid4())],
    }
    answer = requests.post(f"{host.base_url}/api/v1/messages", json=body, headers=host.bearer, timeout=30)
    assert answer.status_code == 503
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["type"] == "https://enclose.nhs.example/problems/unavailable"
    assert "try again later" in problem["detail"].lower()
    assert response_problems(answer) == []


def test_what_needs_no_secret_still_answers(host: Host) -> None:
    unknown = requests.get(f"{host.base_url}/api/v1/attachments/{uuid.uuid4()}", headers=host.bearer, timeout=30)
    assert unknown.status_code == 404  # the token was checked and the table read: no secret involved
    assert requests.get(f"{host.base_url}/api/v1/messages/{uuid.uuid4()}", timeout=30).status_code == 401
    assert requests.get(f"{host.base_url}/api/v1/openapi.json", timeout=30).status_code == 200


def test_the_log_names_the_setting_and_never_its_value(host: Host, live: Live) -> None:
    requests.get(f"{host.base_url}/p/{live.token}", timeout=30)  # at least one use of a missing secret
    log = host.log.read_text()
    why = "is not set" if host.case == "missing" else "is an unresolved Key Vault reference"
    assert f"DOB_HASH_KEY {why}" in log
    assert "@Microsoft.KeyVault" not in log and "kv-enclose-test" not in log
    assert not any(value in log for value in live.secret_values)
    assert live.token not in log
