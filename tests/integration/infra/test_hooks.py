"""The deployment hooks (infra/hooks/*.sh) run by bash against a stand-in `az`.

Azure cannot be reached from the test machine, so a small script plays the Azure CLI: it
keeps Key Vault's secrets, the app's Key Vault references, its role assignments and the
deployment's outputs in a JSON file and records every call. That is enough to hold the hooks
to what matters: every call names azd's subscription; nothing is done signed in as another
principal than the one granted Key Vault access; the date-of-birth hash key is created once
and never replaced, and secret values never appear on a command line or in the output; the
app's Key Vault references are refreshed until both resolve; roles granted moments ago are
waited for, within bounds; and the Event Grid subscriptions are deployed with the
deployment's names.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
HOOKS = ROOT / "infra" / "hooks"

SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"
DEPLOYER = "aaaaaaaa-0000-0000-0000-000000000001"
APP_PRINCIPAL = "bbbbbbbb-0000-0000-0000-000000000002"
STORAGE_ID = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-enclose-test/providers/Microsoft.Storage/storageAccounts/sttest"
)

FAKE_AZ = r'''#!PYTHON
"""Plays the few Azure CLI commands the hooks use; state in $FAKE_AZ_STATE."""
import json, os, re, sys

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


def principal_in_query():
    found = re.search(r"principalId=='([^']+)'", opt("--query") or "")
    return found.group(1) if found else None


login = state["login"]
if opt("--subscription") not in state["subscriptions"]:
    fail("ERROR: The subscription of '%s' doesn't exist in cloud 'AzureCloud'." % opt("--subscription"))
if args[:2] == ["account", "show"]:
    query = opt("--query")
    print({"user.type": login["type"], "user.name": login["name"]}.get(query, "tester@example.org"))
elif args[:3] == ["ad", "signed-in-user", "show"]:
    if login["type"] != "user":
        fail("ERROR: /me request is only valid with delegated authentication flow.")
    print(login["object_id"])
elif args[:3] == ["ad", "sp", "show"]:
    print(state["service_principals"][opt("--id")])
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
elif args[:1] == ["rest"]:
    uri = opt("--uri")
    site = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Web/sites/%s" % (
        state["subscriptions"][0], "rg-enclose-test", state["outputs"]["AZURE_FUNCTION_APP_NAME"])
    base = site + "/config/configreferences/appsettings/"
    if not uri.startswith(base):
        fail("fake az does not know the uri " + uri)
    rest = uri[len(base):].split("?")[0]
    if opt("--method") == "post" and rest == "refresh":
        state["refreshes"] += 1
    elif opt("--method") == "get" and rest in ("DOB_HASH_KEY", "SESSION_KEY"):
        secret = {"DOB_HASH_KEY": "dob-hash-key", "SESSION_KEY": "session-key"}[rest]
        # A reference resolves on a refresh after its secret exists, once the app's role applies.
        ok = secret in state["secrets"] and state["refreshes"] >= state["resolve_after_refreshes"]
        print("Resolved" if ok else state["unresolved_status"])
    else:
        fail("fake az does not know: " + " ".join(args))
elif args[:3] == ["role", "assignment", "list"]:
    mine = [a for a in state["assignments"] if a["principalId"] == principal_in_query()]
    if "--all" in args:
        print("\n".join(a["createdOn"] for a in mine))
    else:
        print("\n".join("\t".join((a["id"], a["scope"], a["roleDefinitionId"])) for a in mine))
elif args[:3] == ["role", "assignment", "delete"]:
    state["assignments"] = [a for a in state["assignments"] if a["id"] != opt("--ids")]
    state["deleted_assignments"].append(opt("--ids"))
else:
    fail("fake az does not know: " + " ".join(args))
save()
'''

OUTPUTS = {
    "AZURE_KEY_VAULT_NAME": "kvtest",
    "AZURE_FUNCTION_APP_NAME": "func-enclose-test",
    "AZURE_FUNCTION_APP_PRINCIPAL_ID": APP_PRINCIPAL,
    "AZURE_STORAGE_ACCOUNT_NAME": "sttest",
    "DEPLOYER_PRINCIPAL_ID": DEPLOYER,
    "STORAGE_SYSTEM_TOPIC_NAME": "evgt-storage",
    "ACS_SYSTEM_TOPIC_NAME": "evgt-acs",
    "SCAN_RESULTS_TOPIC_NAME": "evgt-scans",
    "EVENTGRID_DEADLETTER_CONTAINER": "eventgrid-deadletter",
}

BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
BLOB_DELEGATOR = "db58b8e5-c6ad-4a2a-8342-4190687cbf4a"
QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"


def assignment(name: str, scope: str, role: str, principal: str = APP_PRINCIPAL, age: timedelta | None = None) -> dict:
    created = datetime.now(timezone.utc) - (age if age is not None else timedelta(days=3))
    return {
        "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
        "scope": scope,
        "roleDefinitionId": f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/{role}",
        "principalId": principal,
        "createdOn": created.isoformat(),
    }


class FakeAzure:
    """The stand-in CLI's state and a way to run a hook against it."""

    def __init__(self, tmp_path: Path) -> None:
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        az = self.bin / "az"
        az.write_text(FAKE_AZ.replace("#!PYTHON", "#!" + sys.executable))
        az.chmod(0o755)
        # `sleep` only notes how long it was asked to wait, so no test waits for real.
        self.sleeps_path = tmp_path / "sleeps"
        sleep = self.bin / "sleep"
        sleep.write_text(f'#!/bin/sh\necho "$1" >> "{self.sleeps_path}"\n')
        sleep.chmod(0o755)
        self.state_path = tmp_path / "state.json"
        self.state: dict[str, Any] = {
            "calls": [],
            "subscriptions": [SUBSCRIPTION],
            "login": {"type": "user", "name": "tester@example.org", "object_id": DEPLOYER},
            "service_principals": {},
            "outputs": dict(OUTPUTS),
            "secrets": {},
            "deleted": {},
            "secret_files": [],
            "forbidden_lists": 0,
            "create_failures": 0,
            "refreshes": 0,
            "resolve_after_refreshes": 1,
            "unresolved_status": "AccessToKeyVaultDenied",
            "assignments": [],
            "deleted_assignments": [],
        }

    def run(self, hook: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        self.state_path.write_text(json.dumps(self.state))
        base = {
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "HOME": str(self.bin.parent),
            "FAKE_AZ_STATE": str(self.state_path),
            "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
            "AZURE_RESOURCE_GROUP": "rg-enclose-test",
            "HOOK_RETRY_INTERVAL": "0",
            "HOOK_RETRY_TRIES": "4",
            "HOOK_ROLE_SETTLE_SECONDS": "0",
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

    def sleeps(self) -> list[float]:
        """Every wait the hooks asked for, in seconds, in order."""
        text = self.sleeps_path.read_text() if self.sleeps_path.exists() else ""
        return [float(line) for line in text.split()]

    def calls(self, *prefix: str) -> list[list[str]]:
        return [c for c in self.state["calls"] if c[: len(prefix)] == list(prefix)]

    def index(self, *prefix: str) -> list[int]:
        return [i for i, c in enumerate(self.state["calls"]) if c[: len(prefix)] == list(prefix)]


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


# -- the secrets ---------------------------------------------------------------------------


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
    # Each wait says what it waits for.
    assert proc.stderr.count("Key Vault Secrets Officer role on kvtest") == 2
    assert "not yet (try 1 of 4)" in proc.stderr


def test_postprovision_gives_up_with_a_reason(azure: FakeAzure) -> None:
    azure.state["forbidden_lists"] = 100
    proc = azure.run("postprovision.sh", azd_env())
    assert proc.returncode != 0
    assert "Key Vault Secrets Officer" in proc.stderr and "run this script again" in proc.stderr
    assert len(azure.calls("keyvault", "secret", "list")) == 4  # bounded: HOOK_RETRY_TRIES
    assert azure.state["secrets"] == {}


def test_hooks_read_outputs_from_the_deployment_without_azd(azure: FakeAzure) -> None:
    proc = azure.run("postprovision.sh")
    assert proc.returncode == 0, proc.stderr
    shows = azure.calls("deployment", "group", "show")
    assert shows
    for show in shows:
        assert show[show.index("--name") + 1] == "main"
        assert show[show.index("--resource-group") + 1] == "rg-enclose-test"
    assert set(azure.state["secrets"]) == {"dob-hash-key", "session-key"}


def test_hooks_need_the_resource_group(azure: FakeAzure) -> None:
    proc = azure.run("postdeploy.sh", {"AZURE_RESOURCE_GROUP": ""})
    assert proc.returncode != 0
    assert "AZURE_RESOURCE_GROUP" in proc.stderr
    assert azure.state["calls"] == []


# -- the subscription and the principal ----------------------------------------------------


@pytest.mark.parametrize("hook", ["postprovision.sh", "postdeploy.sh"])
@pytest.mark.parametrize("with_azd", [True, False], ids=["azd", "by-hand"])
def test_every_az_call_names_the_deployments_subscription(azure: FakeAzure, hook: str, with_azd: bool) -> None:
    azure.state["subscriptions"] = [SUBSCRIPTION, "99999999-0000-0000-0000-000000000000"]
    proc = azure.run(hook, azd_env() if with_azd else None)
    assert proc.returncode == 0, proc.stderr
    assert azure.state["calls"]
    for call in azure.state["calls"]:
        assert call.count("--subscription") == 1, call
        assert call[call.index("--subscription") + 1] == SUBSCRIPTION, call


def test_hooks_need_the_subscription(azure: FakeAzure) -> None:
    for hook in ("postprovision.sh", "postdeploy.sh"):
        proc = azure.run(hook, {**azd_env(), "AZURE_SUBSCRIPTION_ID": ""})
        assert proc.returncode != 0
        assert "set AZURE_SUBSCRIPTION_ID" in proc.stderr
    assert azure.state["calls"] == []


def test_a_subscription_the_cli_cannot_use_is_a_plain_error(azure: FakeAzure) -> None:
    azure.state["subscriptions"] = ["99999999-0000-0000-0000-000000000000"]
    proc = azure.run("postprovision.sh", azd_env())
    assert proc.returncode != 0
    assert f"cannot use subscription {SUBSCRIPTION}" in proc.stderr and "az login" in proc.stderr
    assert azure.calls("keyvault") == []


def test_postprovision_refuses_another_signed_in_user(azure: FakeAzure) -> None:
    other = "cccccccc-0000-0000-0000-000000000003"
    azure.state["login"]["object_id"] = other
    proc = azure.run("postprovision.sh", azd_env())
    assert proc.returncode != 0
    assert f"signed in as principal {other}" in proc.stderr
    assert f"granted to {DEPLOYER}" in proc.stderr and "az login" in proc.stderr
    assert azure.calls("keyvault") == [] and azure.calls("rest") == []
    assert azure.state["secrets"] == {}


def test_the_principal_check_ignores_the_case_of_the_id(azure: FakeAzure) -> None:
    azure.state["login"]["object_id"] = DEPLOYER.upper()
    proc = azure.run("postprovision.sh", azd_env())
    assert proc.returncode == 0, proc.stderr


def test_postprovision_matches_a_service_principal_by_its_object_id(azure: FakeAzure) -> None:
    azure.state["login"] = {"type": "servicePrincipal", "name": "app-id-of-the-pipeline", "object_id": ""}
    azure.state["service_principals"] = {"app-id-of-the-pipeline": DEPLOYER}
    proc = azure.run("postprovision.sh", azd_env())
    assert proc.returncode == 0, proc.stderr
    (show,) = azure.calls("ad", "sp", "show")
    assert show[show.index("--id") + 1] == "app-id-of-the-pipeline"
    azure.state["service_principals"] = {"app-id-of-the-pipeline": "dddddddd-0000-0000-0000-000000000004"}
    azure.state["secrets"] = {}
    proc = azure.run("postprovision.sh", azd_env())
    assert proc.returncode != 0 and "dddddddd-0000-0000-0000-000000000004" in proc.stderr


def test_postprovision_says_when_nobody_was_granted_the_vault(azure: FakeAzure) -> None:
    # azd's environment has no value, so the hook asks the deployment, which has none either.
    azure.state["outputs"]["DEPLOYER_PRINCIPAL_ID"] = ""
    proc = azure.run("postprovision.sh", {k: v for k, v in azd_env().items() if k != "DEPLOYER_PRINCIPAL_ID"})
    assert proc.returncode != 0
    assert "granted Key Vault Secrets Officer to nobody" in proc.stderr and "deployerPrincipalId" in proc.stderr
    assert azure.calls("keyvault") == []


# -- the Key Vault references --------------------------------------------------------------


def test_postprovision_refreshes_the_references_after_making_the_secrets_until_both_resolve(
    azure: FakeAzure,
) -> None:
    azure.state["resolve_after_refreshes"] = 3  # the app's Key Vault role is not in force at first
    proc = azure.run("postprovision.sh", azd_env())
    assert proc.returncode == 0, proc.stderr
    refreshes = [c for c in azure.calls("rest") if c[c.index("--method") + 1] == "post"]
    assert len(refreshes) == 3
    site = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-enclose-test/providers/Microsoft.Web/sites/func-enclose-test"
    )
    assert refreshes[0][refreshes[0].index("--uri") + 1] == (
        f"{site}/config/configreferences/appsettings/refresh?api-version=2022-03-01"
    )
    # Only once both secrets exist, and each try asks about both references.
    assert min(azure.index("rest")) > max(azure.index("keyvault", "secret", "set"))
    gets = [c[c.index("--uri") + 1] for c in azure.calls("rest") if c[c.index("--method") + 1] == "get"]
    assert gets.count(f"{site}/config/configreferences/appsettings/DOB_HASH_KEY?api-version=2022-03-01") == 3
    assert "resolved" in proc.stdout and "Key Vault Secrets User role may still be propagating" in proc.stderr


def test_postprovision_gives_up_on_unresolved_references_with_what_they_say(azure: FakeAzure) -> None:
    azure.state["resolve_after_refreshes"] = 100
    proc = azure.run("postprovision.sh", azd_env())
    assert proc.returncode != 0
    assert "DOB_HASH_KEY=AccessToKeyVaultDenied" in proc.stderr and "SESSION_KEY=AccessToKeyVaultDenied" in proc.stderr
    assert "run this script again" in proc.stderr
    assert len([c for c in azure.calls("rest") if c[c.index("--method") + 1] == "post"]) == 4  # bounded


# -- the app's roles -----------------------------------------------------------------------


def test_postprovision_removes_account_wide_data_roles_an_earlier_template_left(azure: FakeAzure) -> None:
    container = f"{STORAGE_ID}/blobServices/default/containers/uploads"
    azure.state["assignments"] = [
        assignment("stale-owner", STORAGE_ID, BLOB_DATA_OWNER),
        assignment(
            "stale-queues", STORAGE_ID.replace("Microsoft.Storage", "microsoft.storage"), QUEUE_DATA_CONTRIBUTOR
        ),
        assignment("delegator", STORAGE_ID, BLOB_DELEGATOR),
        assignment("scoped", container, BLOB_DATA_CONTRIBUTOR),
        assignment("scoped-owner-elsewhere", container, BLOB_DATA_OWNER),
        assignment("someone-else", STORAGE_ID, BLOB_DATA_OWNER, principal=DEPLOYER),
    ]
    proc = azure.run("postprovision.sh", azd_env())
    assert proc.returncode == 0, proc.stderr
    assert {a["id"].rsplit("/", 1)[-1] for a in azure.state["assignments"]} == {
        "delegator",
        "scoped",
        "scoped-owner-elsewhere",
        "someone-else",
    }
    assert len(azure.state["deleted_assignments"]) == 2


def test_postprovision_lets_roles_granted_moments_ago_take_effect_before_the_code_upload(azure: FakeAzure) -> None:
    package = f"{STORAGE_ID}/blobServices/default/containers/app-package"
    azure.state["assignments"] = [
        assignment("old", STORAGE_ID, BLOB_DELEGATOR),
        assignment("new", package, BLOB_DATA_CONTRIBUTOR, age=timedelta(seconds=100)),
    ]
    proc = azure.run("postprovision.sh", {**azd_env(), "HOOK_ROLE_SETTLE_SECONDS": "600"})
    assert proc.returncode == 0, proc.stderr
    said = re.search(r"The app's roles were granted (\d+) s ago; waiting (\d+) s", proc.stdout)
    assert said, proc.stdout
    granted, waited = int(said.group(1)), int(said.group(2))
    assert 100 <= granted < 400 and granted + waited == 600  # the newest grant, up to the bound
    assert azure.sleeps()[-1] == waited
    # Roles granted long ago (a later `azd provision`) are not waited for.
    azure.state["assignments"] = [assignment("old", STORAGE_ID, BLOB_DELEGATOR, age=timedelta(hours=1))]
    before = len(azure.sleeps())
    proc = azure.run("postprovision.sh", {**azd_env(), "HOOK_ROLE_SETTLE_SECONDS": "600"})
    assert proc.returncode == 0, proc.stderr
    assert "waiting" not in proc.stdout and len(azure.sleeps()) == before


# -- the Event Grid subscriptions ----------------------------------------------------------


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
    assert "the deployed functions" in proc.stderr
    call = creates[-1]
    assert Path(call[call.index("--template-file") + 1]).resolve() == ROOT / "infra" / "modules" / "events.bicep"
    assert call[call.index("--resource-group") + 1] == "rg-enclose-test"
    assert _parameters(call) == {
        "functionAppName": "func-enclose-test",
        "storageAccountName": "sttest",
        "storageSystemTopicName": "evgt-storage",
        "communicationSystemTopicName": "evgt-acs",
        "scanResultsTopicName": "evgt-scans",
        "deadLetterContainerName": "eventgrid-deadletter",
        "blobFunctionName": "scan_uploaded_blob",
        "deliveryFunctionName": "delivery_report",
        "verdictFunctionName": "record_scan_result",
    }


def test_postdeploy_fails_when_the_subscriptions_cannot_be_made(azure: FakeAzure) -> None:
    azure.state["create_failures"] = 100
    proc = azure.run("postdeploy.sh", azd_env())
    assert proc.returncode != 0
    assert "enclose-events" in proc.stderr
    assert len(azure.calls("deployment", "group", "create")) == 4  # bounded
