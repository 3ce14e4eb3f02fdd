"""The deployment hooks (infra/hooks/*.sh) run by bash against a stand-in `az`.

Azure cannot be reached from the test machine, so a small script plays the Azure CLI: it
keeps Key Vault's secrets and the deployment's outputs in a JSON file and records every
call. That is enough to hold the hooks to what matters: the date-of-birth hash key is
created once and never replaced, secret values never appear on a command line or in the
output, and the Event Grid subscriptions are deployed with the deployment's names.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
HOOKS = ROOT / "infra" / "hooks"

FAKE_AZ = r'''#!PYTHON
"""Plays the few Azure CLI commands the hooks use; state in $FAKE_AZ_STATE."""
import json, os, sys

path = os.environ["FAKE_AZ_STATE"]
with open(path) as f:
    state = json.load(f)
args = sys.argv[1:]
state["calls"].append(args)


def opt(name):
    return args[args.index(name) + 1] if name in args else None


def save():
    with open(path, "w") as f:
        json.dump(state, f)


def fail(message):
    save()
    print(message, file=sys.stderr)
    sys.exit(1)


if args[:2] == ["account", "show"]:
    print("tester@example.org")
elif args[:3] == ["deployment", "group", "show"]:
    name = opt("--query").split(".")[2]
    print(state["outputs"].get(name, ""))
elif args[:3] == ["deployment", "group", "create"]:
    if state["create_failures"] > 0:
        state["create_failures"] -= 1
        fail("ERROR: the function is not there yet")
elif args[:3] == ["keyvault", "secret", "list"]:
    if state["forbidden_lists"] > 0:
        state["forbidden_lists"] -= 1
        fail("ERROR: (Forbidden) Caller is not authorized")
    print("\n".join(state["secrets"]))
elif args[:3] == ["keyvault", "secret", "list-deleted"]:
    print("\n".join(state["deleted"]))
elif args[:3] == ["keyvault", "secret", "recover"]:
    name = opt("--name")
    state["secrets"][name] = state["deleted"].pop(name)
elif args[:3] == ["keyvault", "secret", "set"]:
    name = opt("--name")
    if name in state["secrets"]:
        fail("the hook must never overwrite " + name)
    with open(opt("--file")) as f:
        state["secrets"][name] = f.read()
    state["secret_files"].append(opt("--file"))
else:
    fail("fake az does not know: " + " ".join(args))
save()
'''

OUTPUTS = {
    "AZURE_KEY_VAULT_NAME": "kvtest",
    "AZURE_FUNCTION_APP_NAME": "func-enclose-test",
    "AZURE_STORAGE_ACCOUNT_NAME": "sttest",
    "STORAGE_SYSTEM_TOPIC_NAME": "evgt-storage",
    "ACS_SYSTEM_TOPIC_NAME": "evgt-acs",
    "EVENTGRID_DEADLETTER_CONTAINER": "eventgrid-deadletter",
}


class FakeAzure:
    """The stand-in CLI's state and a way to run a hook against it."""

    def __init__(self, tmp_path: Path) -> None:
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        az = self.bin / "az"
        az.write_text(FAKE_AZ.replace("#!PYTHON", "#!" + sys.executable))
        az.chmod(0o755)
        self.state_path = tmp_path / "state.json"
        self.state: dict[str, Any] = {
            "calls": [],
            "outputs": dict(OUTPUTS),
            "secrets": {},
            "deleted": {},
            "secret_files": [],
            "forbidden_lists": 0,
            "create_failures": 0,
        }

    def run(self, hook: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        self.state_path.write_text(json.dumps(self.state))
        base = {
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "HOME": str(self.bin.parent),
            "FAKE_AZ_STATE": str(self.state_path),
            "AZURE_RESOURCE_GROUP": "rg-enclose-test",
            "HOOK_RETRY_INTERVAL": "0",
            "HOOK_RETRY_TRIES": "4",
        }
        proc = subprocess.run(
            ["bash", str(HOOKS / hook)],
            env={**base, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.state = json.loads(self.state_path.read_text())
        return proc

    def calls(self, *prefix: str) -> list[list[str]]:
        return [c for c in self.state["calls"] if c[: len(prefix)] == list(prefix)]


@pytest.fixture
def azure(tmp_path: Path) -> FakeAzure:
    if shutil.which("bash") is None:  # pragma: no cover - bash is on every supported machine
        if os.environ.get("CI") == "true":
            pytest.fail("bash is needed to run the deployment hooks")
        pytest.skip("bash is needed to run the deployment hooks")
    return FakeAzure(tmp_path)


def azd_env() -> dict[str, str]:
    """What azd puts in a hook's environment: the deployment's outputs."""
    return dict(OUTPUTS)


def test_postprovision_creates_both_secrets_once(azure: FakeAzure) -> None:
    proc = azure.run("postprovision.sh", azd_env())
    assert proc.returncode == 0, proc.stderr
    secrets = azure.state["secrets"]
    assert set(secrets) == {"dob-hash-key", "session-key"}
    for value in secrets.values():
        assert re.fullmatch(r"[0-9a-f]{64}", value), "256 random bits, hex"
    assert secrets["dob-hash-key"] != secrets["session-key"]
    # The values never reach a command line, the output, or a file left behind.
    everything_said = json.dumps(azure.state["calls"]) + proc.stdout + proc.stderr
    for value in secrets.values():
        assert value not in everything_said
    for file in azure.state["secret_files"]:
        assert not Path(file).exists()
    assert all(c[c.index("--vault-name") + 1] == "kvtest" for c in azure.calls("keyvault"))


def test_postprovision_never_replaces_an_existing_key(azure: FakeAzure) -> None:
    azure.state["secrets"] = {"dob-hash-key": "a" * 64, "session-key": "b" * 64}
    proc = azure.run("postprovision.sh", azd_env())
    assert proc.returncode == 0, proc.stderr
    assert azure.state["secrets"] == {"dob-hash-key": "a" * 64, "session-key": "b" * 64}
    assert azure.calls("keyvault", "secret", "set") == []


def test_postprovision_recovers_a_deleted_key_instead_of_making_a_new_one(azure: FakeAzure) -> None:
    azure.state["secrets"] = {"session-key": "b" * 64}
    azure.state["deleted"] = {"dob-hash-key": "c" * 64}
    proc = azure.run("postprovision.sh", azd_env())
    assert proc.returncode == 0, proc.stderr
    assert azure.state["secrets"]["dob-hash-key"] == "c" * 64
    assert azure.calls("keyvault", "secret", "set") == []


def test_postprovision_waits_for_the_role_assignment(azure: FakeAzure) -> None:
    azure.state["forbidden_lists"] = 2
    proc = azure.run("postprovision.sh", azd_env())
    assert proc.returncode == 0, proc.stderr
    assert set(azure.state["secrets"]) == {"dob-hash-key", "session-key"}


def test_postprovision_gives_up_with_a_reason(azure: FakeAzure) -> None:
    azure.state["forbidden_lists"] = 100
    proc = azure.run("postprovision.sh", azd_env())
    assert proc.returncode != 0
    assert "Key Vault Secrets Officer" in proc.stderr
    assert azure.state["secrets"] == {}


def test_hooks_read_outputs_from_the_deployment_without_azd(azure: FakeAzure) -> None:
    proc = azure.run("postprovision.sh")
    assert proc.returncode == 0, proc.stderr
    (show,) = azure.calls("deployment", "group", "show")
    assert show[show.index("--name") + 1] == "main"
    assert show[show.index("--resource-group") + 1] == "rg-enclose-test"
    assert set(azure.state["secrets"]) == {"dob-hash-key", "session-key"}


def test_hooks_need_the_resource_group(azure: FakeAzure) -> None:
    proc = azure.run("postdeploy.sh", {"AZURE_RESOURCE_GROUP": ""})
    assert proc.returncode != 0
    assert "AZURE_RESOURCE_GROUP" in proc.stderr
    assert azure.state["calls"] == []


def _parameters(call: list[str]) -> dict[str, str]:
    start = call.index("--parameters") + 1
    pairs = []
    for arg in call[start:]:
        if arg.startswith("--"):
            break
        pairs.append(arg.split("=", 1))
    return dict(pairs)


def test_postdeploy_deploys_the_event_subscriptions(azure: FakeAzure) -> None:
    azure.state["create_failures"] = 1  # the freshly deployed functions are not indexed yet
    proc = azure.run("postdeploy.sh", azd_env())
    assert proc.returncode == 0, proc.stderr
    creates = azure.calls("deployment", "group", "create")
    assert len(creates) == 2
    call = creates[-1]
    assert Path(call[call.index("--template-file") + 1]).resolve() == ROOT / "infra" / "modules" / "events.bicep"
    assert call[call.index("--resource-group") + 1] == "rg-enclose-test"
    assert _parameters(call) == {
        "functionAppName": "func-enclose-test",
        "storageAccountName": "sttest",
        "storageSystemTopicName": "evgt-storage",
        "communicationSystemTopicName": "evgt-acs",
        "deadLetterContainerName": "eventgrid-deadletter",
        "blobFunctionName": "scan_uploaded_blob",
        "deliveryFunctionName": "delivery_report",
    }


def test_postdeploy_fails_when_the_subscriptions_cannot_be_made(azure: FakeAzure) -> None:
    azure.state["create_failures"] = 100
    proc = azure.run("postdeploy.sh", azd_env())
    assert proc.returncode != 0
    assert "enclose-events" in proc.stderr
