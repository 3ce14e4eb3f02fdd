"""Checks of the Bicep in infra/, read with pycep-parser (the Bicep CLI cannot be installed
here): every file parses, the security properties the design asks for hold, every setting
the code reads is set in Azure, and every call the code makes is covered by a role grant.

These tests only read files. Checkov runs in tests/integration/infra/test_checkov.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import pytest

from shared_code import storage as app_storage
from shared_code.settings import ENVIRONMENT_NAMES

ROOT = Path(__file__).resolve().parents[3]
INFRA = ROOT / "infra"
MODULES = INFRA / "modules"

try:
    from pycep import BicepParser
except ImportError:  # pragma: no cover - depends on the machine
    BicepParser = None


def _require_pycep() -> None:
    reason = "pycep-parser is not installed (it is in requirements-dev.txt)"
    if BicepParser is None:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


# ---------------------------------------------------------------------------------------
# Reading the parsed Bicep
# ---------------------------------------------------------------------------------------


@cache
def parsed(path: Path) -> dict[str, Any]:
    """The pycep parse of one .bicep file."""
    _require_pycep()
    return BicepParser().parse(file_path=path)


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@dataclass(frozen=True)
class Resource:
    """One declared resource: its file, symbolic name, type and body (loops unwrapped)."""

    file: Path
    symbol: str
    type: str
    existing: bool
    body: dict[str, Any]

    @property
    def properties(self) -> dict[str, Any]:
        return self.body.get("properties") or {}


def _unwrap(config: dict[str, Any]) -> dict[str, Any]:
    # Conditional resources and loops wrap the body in {"condition"/"loop_type", "config"}.
    while "config" in config and ("condition" in config or "loop_type" in config):
        config = config["config"]
    return config


def resources(type_: str | None = None, path: Path | None = None) -> list[Resource]:
    """Declared (not `existing`) resources of a type, in one file or all of infra/."""
    found = []
    for file in [path] if path else bicep_files():
        for symbol, res in (parsed(file).get("resources") or {}).items():
            if type_ is not None and res["type"] != type_:
                continue
            found.append(Resource(file, symbol, res["type"], bool(res["existing"]), _unwrap(res["config"])))
    return [r for r in found if not r.existing]


def resource(path: Path, symbol: str) -> Resource:
    res = parsed(path)["resources"][symbol]
    return Resource(path, symbol, res["type"], bool(res["existing"]), _unwrap(res["config"]))


def the_one(type_: str, path: Path | None = None) -> Resource:
    found = resources(type_, path)
    assert len(found) == 1, f"expected one {type_}, found {[r.symbol for r in found]}"
    return found[0]


def accessor(node: Any) -> list[Any]:
    """`a.b.c` as ['a', 'b', 'c']; anything else as [node]."""
    if isinstance(node, dict) and node.get("operator", {}).get("type") == "property_accessor":
        operands = node["operator"]["operands"]
        return accessor(operands["operand_1"]) + accessor(operands["operand_2"])
    return [node]


def function(node: Any) -> tuple[str, dict[str, Any]] | None:
    if isinstance(node, dict) and "function" in node:
        return node["function"]["type"], node["function"].get("parameters") or {}
    return None


def walk(node: Any) -> Iterator[Any]:
    """Every node of an expression or object tree."""
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def params(path: Path) -> dict[str, Any]:
    return parsed(path).get("parameters") or {}


def variables(path: Path) -> dict[str, Any]:
    return {name: var["value"] for name, var in (parsed(path).get("variables") or {}).items()}


def resolve(path: Path, node: Any) -> Any:
    """Follow a bare name to its variable's value or its parameter's default."""
    seen = set()
    while isinstance(node, str) and node not in seen:
        seen.add(node)
        if node in variables(path):
            node = variables(path)[node]
        elif node in params(path) and "default" in params(path)[node]:
            node = params(path)[node]["default"]
        else:
            break
    return node


def evaluate_int(path: Path, node: Any, overrides: dict[str, int]) -> int:
    """An integer expression of literals, parameters, + and max()."""
    if isinstance(node, bool):
        raise TypeError("boolean where an integer was expected")
    if isinstance(node, int):
        return node
    if isinstance(node, str):
        if node in overrides:
            return overrides[node]
        value = resolve(path, node)
        if value is node:
            raise KeyError(f"{node} has no value in {path.name}")
        return evaluate_int(path, value, overrides)
    fn = function(node)
    if fn and fn[0] == "max":
        return max(evaluate_int(path, arg, overrides) for arg in fn[1].values())
    operator = node["operator"]
    if operator["type"] == "add":
        operands = operator["operands"]
        return evaluate_int(path, operands["operand_1"], overrides) + evaluate_int(
            path, operands["operand_2"], overrides
        )
    raise ValueError(f"cannot evaluate {operator['type']}")


def module(name: str) -> dict[str, Any]:
    return parsed(INFRA / "main.bicep")["modules"][name]


def module_file(name: str) -> Path:
    return INFRA / module(name)["detail"]["path"]


def module_param(name: str, param: str) -> Any:
    return module(name)["config"]["params"][param]


def module_output(path: Path, output: str) -> Any:
    return parsed(path)["outputs"][output]["value"]


# ---------------------------------------------------------------------------------------
# Every file parses
# ---------------------------------------------------------------------------------------


def test_infra_has_main_and_modules() -> None:
    names = {p.relative_to(INFRA).as_posix() for p in bicep_files()}
    assert "main.bicep" in names
    assert {"modules/storage.bicep", "modules/functionapp.bicep", "modules/access.bicep"} <= names


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_every_bicep_file_parses(path: Path) -> None:
    result = parsed(path)
    assert result.get("resources") or result.get("modules"), f"{path.name} declares nothing"


def test_main_modules_exist() -> None:
    for name, mod in parsed(INFRA / "main.bicep")["modules"].items():
        assert mod["type"] == "local", name
        assert (INFRA / mod["detail"]["path"]).is_file(), name


def test_main_parameters_file_names_only_real_parameters() -> None:
    data = json.loads((INFRA / "main.parameters.json").read_text())
    unknown = set(data["parameters"]) - set(params(INFRA / "main.bicep"))
    assert not unknown, f"main.parameters.json sets parameters main.bicep does not have: {unknown}"


# ---------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------


def test_storage_account_is_locked_down() -> None:
    accounts = resources("Microsoft.Storage/storageAccounts")
    assert accounts, "no storage account declared"
    for account in accounts:
        props = account.properties
        assert props["allowBlobPublicAccess"] is False
        assert props["allowSharedKeyAccess"] is False
        assert props["supportsHttpsTrafficOnly"] is True
        assert props["minimumTlsVersion"] == "TLS1_2"
        assert props["defaultToOAuthAuthentication"] is True
        assert props["allowCrossTenantReplication"] is False


def test_every_container_is_private() -> None:
    containers = resources("Microsoft.Storage/storageAccounts/blobServices/containers")
    assert containers
    for container in containers:
        assert container.properties.get("publicAccess") == "None", container.symbol


def test_app_containers_tables_and_queues_exist() -> None:
    # The names shared_code/storage.py uses, so the app never creates what the Bicep forgot.
    path = MODULES / "storage.bicep"
    assert set(resolve(path, "appContainers")) == set(app_storage.ALL_CONTAINERS)
    assert set(resolve(path, "appTables")) == set(app_storage.ALL_TABLES)
    assert set(resolve(path, "appQueues")) == {
        *app_storage.ALL_QUEUES,
        *(q + "-poison" for q in app_storage.ALL_QUEUES),
    }
    for type_, names in [
        ("Microsoft.Storage/storageAccounts/blobServices/containers", "appContainers"),
        ("Microsoft.Storage/storageAccounts/tableServices/tables", "appTables"),
        ("Microsoft.Storage/storageAccounts/queueServices/queues", "appQueues"),
    ]:
        loops = [parsed(path)["resources"][r.symbol]["config"].get("loop_type") for r in resources(type_, path)]
        assert any(loop and loop["detail"]["array_name"] == names for loop in loops), f"no {type_} for {names}"


def _lifecycle_rules() -> dict[str, dict[str, Any]]:
    policy = the_one("Microsoft.Storage/storageAccounts/managementPolicies")
    rules = {}
    for rule in policy.properties["policy"]["rules"]:
        assert rule["enabled"] is True, rule["name"]
        (prefix,) = rule["definition"]["filters"]["prefixMatch"]
        rules[prefix] = rule["definition"]["actions"]["baseBlob"]["delete"]
    return rules


def _main_default(name: str) -> int:
    return params(INFRA / "main.bicep")[name]["default"]


def test_lifecycle_deletes_documents_after_the_link_lifetime() -> None:
    rules = _lifecycle_rules()
    storage = MODULES / "storage.bicep"
    assert module_param("storage", "linkTtlDays") == "linkTtlDays"
    main_values = {
        "linkTtlDays": _main_default("linkTtlDays"),
        "documentSafetyMarginDays": _main_default("documentSafetyMarginDays"),
    }
    days = evaluate_int(storage, rules["documents/"]["daysAfterModificationGreaterThan"], main_values)
    assert days > main_values["linkTtlDays"]
    # A longer link lifetime moves the safety net with it.
    longer = dict(main_values, linkTtlDays=90)
    assert evaluate_int(storage, rules["documents/"]["daysAfterModificationGreaterThan"], longer) > 90


def test_lifecycle_clears_uploads_and_quarantine_within_a_week() -> None:
    rules = _lifecycle_rules()
    storage = MODULES / "storage.bicep"
    main_values = {
        "uploadsRetentionDays": _main_default("uploadsRetentionDays"),
        "quarantineRetentionDays": _main_default("quarantineRetentionDays"),
    }
    for prefix in ("uploads/", "quarantine/"):
        days = evaluate_int(storage, rules[prefix]["daysAfterModificationGreaterThan"], main_values)
        assert 1 <= days <= 7, prefix


def test_template_documents_are_kept_and_rescan_copies_cleared() -> None:
    # A template keeps its documents for as long as it uses them: no rule may delete them.
    rules = _lifecycle_rules()
    assert not [prefix for prefix in rules if f"{app_storage.TEMPLATE_DOCUMENTS}/x".startswith(prefix)]
    assert rules[f"{app_storage.RESCANS}/"]["daysAfterModificationGreaterThan"] == 1


def test_dead_lettered_delivery_reports_are_kept_days_not_a_month() -> None:
    # They carry patients' numbers. The rule's container is the one Event Grid dead-letters into.
    assert module_param("storage", "deadLetterContainerName") == "deadLetterContainerName"
    assert module_param("eventing", "deadLetterContainerName") == "deadLetterContainerName"
    days = _lifecycle_rules()["${deadLetterContainerName}/"]["daysAfterModificationGreaterThan"]
    assert 1 <= days <= 7


def test_blob_soft_delete_is_off_so_revoked_documents_are_gone() -> None:
    service = the_one("Microsoft.Storage/storageAccounts/blobServices")
    assert service.properties["deleteRetentionPolicy"]["enabled"] is False
    assert service.properties["isVersioningEnabled"] is False


# ---------------------------------------------------------------------------------------
# Key Vault
# ---------------------------------------------------------------------------------------


def test_key_vault_uses_rbac_soft_delete_and_purge_protection() -> None:
    vault = the_one("Microsoft.KeyVault/vaults")
    props = vault.properties
    assert props["enableRbacAuthorization"] is True
    assert props["enableSoftDelete"] is True
    assert props["enablePurgeProtection"] is True
    assert props["softDeleteRetentionInDays"] >= 7
    assert "accessPolicies" not in props


def test_no_secret_values_in_bicep() -> None:
    # The secrets are made by infra/hooks/postprovision.sh, never by a template: a template
    # would put the value in deployment history and replace it on every deployment.
    assert resources("Microsoft.KeyVault/vaults/secrets") == []
    for path in bicep_files():
        for name, param in params(path).items():
            assert "default" not in param or not any(
                function(node) and function(node)[0] == "new_guid" for node in walk(param["default"])
            ), f"{path.name}: {name} defaults to newGuid()"


# ---------------------------------------------------------------------------------------
# Function App
# ---------------------------------------------------------------------------------------

FUNCTIONAPP = MODULES / "functionapp.bicep"


def test_function_app_is_flex_consumption_python_311_with_system_identity() -> None:
    plan = the_one("Microsoft.Web/serverfarms", FUNCTIONAPP)
    assert plan.body["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    site = the_one("Microsoft.Web/sites", FUNCTIONAPP)
    assert site.body["identity"] == {"type": "SystemAssigned"}
    assert site.body["kind"] == "functionapp,linux"
    props = site.properties
    assert props["httpsOnly"] is True
    assert props["siteConfig"]["minTlsVersion"] == "1.2"
    assert props["siteConfig"]["ftpsState"] == "Disabled"
    config = props["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"] == {"type": "SystemAssignedIdentity"}


def test_publishing_with_passwords_is_off() -> None:
    policies = {
        r.body["name"]: r.properties["allow"]
        for r in resources("Microsoft.Web/sites/basicPublishingCredentialsPolicies", FUNCTIONAPP)
    }
    assert policies == {"ftp": False, "scm": False}


def app_settings() -> dict[str, Any]:
    settings = [r for r in resources("Microsoft.Web/sites/config", FUNCTIONAPP) if r.body["name"] == "appsettings"]
    assert len(settings) == 1
    return settings[0].properties


# Settings the code reads that have no place in Azure, and why.
LOCAL_ONLY = {
    # A connection string carries the account key; in Azure the identity-based
    # AzureWebJobsStorage__accountName is set instead.
    "AzureWebJobsStorage": "connection string with a key (Azurite only)",
    # Same for ACS: ACS_ENDPOINT plus the managed identity.
    "ACS_CONNECTION_STRING": "connection string with an access key (SMS emulator only)",
    # Trusts the SMS emulator's self-signed certificate.
    "ACS_CA_BUNDLE": "SMS emulator certificate",
    # ClamAV runs only on the local stack; Azure uses Defender for Storage (SCANNER=defender).
    "CLAMD_ADDRESS": "local ClamAV",
    "CLAMD_TIMEOUT_SECONDS": "local ClamAV",
    "CLAMD_STARTUP_WAIT_SECONDS": "local ClamAV",
}

# Settings for the platform rather than the app's code.
PLATFORM_SETTINGS = {
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    # The Python worker's own Azure Monitor set-up, kept off (shared_code/telemetry.py).
    "PYTHON_ENABLE_OPENTELEMETRY",
    "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY",
    # The host's request body limit (the app's code never reads it; the local host honours it too).
    "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT",
    # The host's id, fixed because the blob trigger's queue (and the role on it) is named after it.
    "AzureFunctionsWebHost__hostid",
}


# Platform settings the code reads, left to the platform's default in Azure.
PLATFORM_DEFAULTS = {
    # One Python worker process per instance (the default); the app divides the SMS rate by it.
    "FUNCTIONS_WORKER_PROCESS_COUNT",
}


# App settings whose code default is the right value in Azure too (shared_code/settings.py), so the
# Bicep leaves them out; an operator sets one only to change it.
APP_DEFAULTS = {
    "ORG_SMS_PER_MINUTE": "per-organisation sending rate",
    "ORG_DAILY_SMS_QUOTA": "per-organisation daily quota",
    "ALLOWED_LINK_DOMAINS": "nhs.uk and gov.uk",
    "TEMPLATE_RESCAN_SCHEDULE": "daily at 02:30 UTC",
}


def test_every_setting_the_code_reads_is_set_in_azure() -> None:
    set_in_azure = set(app_settings())
    assert set(APP_DEFAULTS) <= set(ENVIRONMENT_NAMES), "APP_DEFAULTS names a setting the code does not read"
    missing = set(ENVIRONMENT_NAMES) - set_in_azure - set(LOCAL_ONLY) - PLATFORM_DEFAULTS - set(APP_DEFAULTS)
    assert not missing, f"settings the code reads but the Bicep does not set: {sorted(missing)}"


def test_local_only_settings_are_not_set_in_azure() -> None:
    assert not set(LOCAL_ONLY) & set(app_settings())


def test_local_only_list_has_no_stale_names() -> None:
    assert set(LOCAL_ONLY) <= set(ENVIRONMENT_NAMES)


def test_no_unknown_app_settings() -> None:
    unknown = set(app_settings()) - set(ENVIRONMENT_NAMES) - PLATFORM_SETTINGS - PLATFORM_DEFAULTS
    assert not unknown, f"app settings the code does not read (typo?): {sorted(unknown)}"


def test_app_settings_hold_no_keys_or_connection_strings() -> None:
    for name, value in app_settings().items():
        for node in walk(value):
            fn = function(node)
            assert not (fn and fn[0] == "list_func"), f"{name} reads keys with {fn[1]['func_name']}"
            if isinstance(node, str):
                lowered = node.lower()
                for marker in ("accountkey=", "accesskey=", "sharedaccesssignature", "sig=", "password"):
                    assert marker not in lowered, f"{name} contains {marker}"
    assert app_settings()["AzureWebJobsStorage__accountName"] == "storageAccountName"
    assert module_param("functionApp", "storageAccountName") == module_output_ref("storage", "name")


def test_the_host_refuses_a_body_bigger_than_the_largest_upload_plus_multipart_overhead() -> None:
    from devstack.localsecrets import MULTIPART_OVERHEAD_BYTES, request_body_limit
    from shared_code.settings import Settings

    value = app_settings()["FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"]
    fn = function(value)
    assert fn and fn[0] == "string", "the limit is string(<integer expression>)"
    expression = fn[1]["value_to_convert"]
    # Derived from the upload limits' own parameters, so raising one raises the other: the larger
    # MAX_UPLOAD_BYTES (a PDF or picture, then made to fit), never below MAX_ATTACHMENT_BYTES.
    assert {"maxAttachmentBytes", "maxUploadBytes"} <= walk_names(expression)
    limit = evaluate_int(FUNCTIONAPP, expression, {})
    assert limit == Settings().upload_limit + MULTIPART_OVERHEAD_BYTES == request_body_limit()
    assert limit == 20 * 1024 * 1024 + 65536
    assert evaluate_int(FUNCTIONAPP, expression, {"maxUploadBytes": 10_000_000}) == 10_000_000 + 65536
    assert evaluate_int(FUNCTIONAPP, expression, {"maxAttachmentBytes": 30_000_000}) == 30_000_000 + 65536
    for name, parameter in (("MAX_ATTACHMENT_BYTES", "maxAttachmentBytes"), ("MAX_UPLOAD_BYTES", "maxUploadBytes")):
        assert app_settings()[name] == {"function": {"type": "string", "parameters": {"value_to_convert": parameter}}}


def walk_names(node: Any) -> set[str]:
    """Every bare name (parameter or variable) in an expression."""
    return {n for n in walk(node) if isinstance(n, str)}


def module_output_ref(module_name: str, output: str) -> dict[str, Any]:
    """The parsed form of `<module>.outputs.<output>`."""
    return {
        "operator": {
            "type": "property_accessor",
            "operands": {
                "operand_1": module_name,
                "operand_2": {
                    "operator": {
                        "type": "property_accessor",
                        "operands": {"operand_1": "outputs", "operand_2": output},
                    }
                },
            },
        }
    }


def test_secrets_are_key_vault_references() -> None:
    settings = app_settings()
    for name, secret in (("DOB_HASH_KEY", "dob-hash-key"), ("SESSION_KEY", "session-key")):
        value = settings[name]
        assert isinstance(value, str)
        assert value.startswith("@Microsoft.KeyVault(") and value.endswith(")")
        assert "VaultName=${keyVaultName}" in value and f"SecretName={secret}" in value
    assert module_param("functionApp", "keyVaultName") == module_output_ref("keyVault", "name")
    hook = (INFRA / "hooks" / "postprovision.sh").read_text().splitlines()
    assert "ensure_secret dob-hash-key" in hook and "ensure_secret session-key" in hook


def test_azure_values_of_behaviour_settings() -> None:
    settings = app_settings()
    assert settings["SCANNER"] == "defender"
    assert settings["BLOB_TRIGGER_SOURCE"] == "EventGrid"
    assert settings["ALLOW_DRAMA_NUMBERS"] == "false"
    assert settings["SMS_DELIVERY_REPORTS"] == "true"
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "Authorization=AAD"
    assert settings["ACS_ENDPOINT"] == "acsEndpoint"
    assert module_param("functionApp", "acsEndpoint") == module_output_ref("communication", "endpoint")
    assert module_output(module_file("communication"), "endpoint") == "https://${communication.properties.hostName}"
    # One parameter drives both the links' lifetime and the documents' lifecycle rule.
    assert function(settings["LINK_TTL_DAYS"]) == ("string", {"value_to_convert": "linkTtlDays"})
    assert module_param("functionApp", "linkTtlDays") == "linkTtlDays"


def test_portal_base_url_is_https() -> None:
    assert app_settings()["PORTAL_BASE_URL"] == "portalBaseUrl"
    value = variables(FUNCTIONAPP)["portalBaseUrl"]["operator"]
    assert value["type"] == "conditional"
    for branch in ("true_value", "false_value"):
        assert value["operands"][branch].startswith("https://")


def test_auth_settings_default_to_the_tenants_entra_id() -> None:
    main = INFRA / "main.bicep"
    assert resolve(main, "tenantIssuer") == "https://login.microsoftonline.com/${tenant().tenantId}/v2.0"
    assert resolve(main, "tenantJwks") == "https://login.microsoftonline.com/${tenant().tenantId}/discovery/v2.0/keys"


# ---------------------------------------------------------------------------------------
# Roles: every data-plane call is covered at the narrowest scope, and nothing else is granted
# ---------------------------------------------------------------------------------------

OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"

BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
BLOB_DELEGATOR = "db58b8e5-c6ad-4a2a-8342-4190687cbf4a"
QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
COMMUNICATION_SERVICE_OWNER = "09976791-48a7-449e-bb21-39d1a415f350"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"

# The blob data actions of every role the app may hold (Azure built-in roles reference). A role
# not listed here fails test_the_app_cannot_write_blob_index_tags until someone looks it up.
BLOB_DATA_ACTIONS: dict[str, set[str]] = {
    BLOB_DATA_CONTRIBUTOR: {"blobs/read", "blobs/write", "blobs/delete", "blobs/move/action", "blobs/add/action"},
    BLOB_DELEGATOR: set(),
    QUEUE_DATA_CONTRIBUTOR: set(),
    TABLE_DATA_CONTRIBUTOR: set(),
    KEY_VAULT_SECRETS_USER: set(),
    COMMUNICATION_SERVICE_OWNER: set(),
    MONITORING_METRICS_PUBLISHER: set(),
}

STORAGE = "Microsoft.Storage/storageAccounts"
ACCESS = MODULES / "access.bicep"
STORAGE_BICEP = MODULES / "storage.bicep"


@dataclass(frozen=True)
class Scope:
    """Where a role applies: the storage account, one container or queue, the table service, one
    table, or a whole resource of another type."""

    kind: str
    name: str | None = None

    def covers(self, other: Scope) -> bool:
        if self == other or (self.kind == "account" and other.kind in {"container", "queue", "tables", "table"}):
            return True
        return self.kind == "tables" and other.kind == "table"


def container(name: str) -> Scope:
    return Scope("container", name)


def queue(name: str) -> Scope:
    return Scope("queue", name)


@dataclass(frozen=True)
class Call:
    """A data-plane call made with the app's identity: by the app's code, the Functions host or
    the platform, and the roles that allow it."""

    who: str
    what: str
    scope: Scope
    roles: frozenset[str]


def _interpolate(path: Path, text: str, values: dict[str, str]) -> str:
    """`'a-${name}'` with `name` resolved (to a literal, or left as `${...}` of its own value)."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values:
            return values[name]
        value = resolve(path, name)
        return value if isinstance(value, str) and value != name else match.group(0)

    return re.sub(r"\$\{(\w+)\}", one, text)


def host_id() -> str:
    """The host id main.bicep gives the Functions host (an expression of the deployment token)."""
    return resolve(INFRA / "main.bicep", "hostId")


def storage_names(variable: str) -> list[str]:
    """A list of names in storage.bicep, `${hostId}` filled in with main.bicep's host id."""
    assert module_param("storage", "hostId") == "hostId"
    return [_interpolate(STORAGE_BICEP, n, {"hostId": host_id()}) for n in resolve(STORAGE_BICEP, variable)]


def access_names(param: str) -> list[str]:
    """The names main.bicep passes to access.bicep's `param`, followed back to storage.bicep."""
    value = module_param("access", param)
    if isinstance(value, str):
        resolved = resolve(INFRA / "main.bicep", value)
        return [resolved] if isinstance(resolved, str) else list(resolved)
    module_name, outputs, output = accessor(value)
    assert (module_name, outputs) == ("storage", "outputs"), f"access.{param} comes from {value}"
    return storage_names(module_output(STORAGE_BICEP, output))


def _call_table() -> list[Call]:
    data = frozenset({BLOB_DATA_CONTRIBUTOR})
    queues = frozenset({QUEUE_DATA_CONTRIBUTOR})
    tables = frozenset({TABLE_DATA_CONTRIBUTOR})
    calls = [
        Call("app", f"read, write, copy and delete blobs in {name}", container(name), data)
        for name in app_storage.ALL_CONTAINERS
    ]
    calls.append(
        Call("app", "get a user delegation key (portal download SAS)", Scope("account"), frozenset({BLOB_DELEGATOR}))
    )
    calls += [Call("app", f"send to and receive from {name}", queue(name), queues) for name in app_storage.ALL_QUEUES]
    calls += [
        Call("host", f"move a message that failed five times to {name}-poison", queue(f"{name}-poison"), queues)
        for name in app_storage.ALL_QUEUES
    ]
    calls += [
        Call("app", f"rows of {name} (and creating it)", Scope("table", name), tables)
        for name in app_storage.ALL_TABLES
    ]
    calls += [
        # azure-functions-host: DiagnosticEventTableStorageRepository, a table per month.
        Call("host", "diagnostic events (AzureFunctionsDiagnosticEventsYYYYMM)", Scope("tables"), tables),
        Call("host", "locks, host id, timer schedules and blob receipts", container("azure-webjobs-hosts"), data),
        Call(
            "host",
            "function and system keys (the blobs_extension key Event Grid calls with)",
            container("azure-webjobs-secrets"),
            data,
        ),
        Call(
            "host",
            "the blob trigger's queue (its Event Grid webhook enqueues each upload)",
            queue(f"azure-webjobs-blobtrigger-{host_id()}"),
            queues,
        ),
        Call("host", "the blob trigger's poison queue", queue("webjobs-blobtrigger-poison"), queues),
        Call(
            "platform",
            "store and run the Flex Consumption package",
            container(resolve(INFRA / "main.bicep", "deploymentContainerName")),
            data,
        ),
        Call(
            "platform",
            "read DOB_HASH_KEY and SESSION_KEY (Key Vault references)",
            Scope("Microsoft.KeyVault/vaults"),
            frozenset({KEY_VAULT_SECRETS_USER}),
        ),
        Call(
            "app",
            "send SMS with Entra ID",
            Scope("Microsoft.Communication/communicationServices"),
            frozenset({COMMUNICATION_SERVICE_OWNER}),
        ),
        Call(
            "app",
            "send telemetry with Entra ID (local auth off)",
            Scope("Microsoft.Insights/components"),
            frozenset({MONITORING_METRICS_PUBLISHER}),
        ),
    ]
    return calls


CALLS = {f"{c.who}: {c.what}": c for c in _call_table()}


@dataclass(frozen=True)
class Grant:
    file: str
    symbol: str
    principal: Any
    role: str
    scope_type: str
    scopes: tuple[Scope, ...] = ()


_SCOPE_KINDS = {
    STORAGE: "account",
    "Microsoft.Storage/storageAccounts/blobServices/containers": "container",
    "Microsoft.Storage/storageAccounts/queueServices/queues": "queue",
    "Microsoft.Storage/storageAccounts/tableServices": "tables",
}


def _grant_scopes(path: Path, symbol: str, scope: Any) -> tuple[str, tuple[Scope, ...]]:
    """The scope resource's type, and the scopes a role assignment (or a loop of them) covers."""
    loop = parsed(path)["resources"][symbol]["config"].get("loop_type")
    if isinstance(scope, str):
        target = parsed(path)["resources"][scope]
        kind = _SCOPE_KINDS.get(target["type"], target["type"])
        name = None
        if kind in {"container", "queue"}:
            raw = _unwrap(target["config"])["name"]
            name = access_names(raw)[0] if path == ACCESS and raw in params(path) else resolve(path, raw)
        return target["type"], (Scope(kind, name),)
    # scope: someScopes[i], where someScopes loops over a parameter of names
    operands = scope["operator"]["operands"]
    assert scope["operator"]["type"] == "index_accessor" and loop, f"{symbol}: unexpected scope {scope}"
    target = parsed(path)["resources"][operands["operand_1"]]
    array = target["config"]["loop_type"]["detail"]["array_name"]
    assert loop["detail"]["array_name"] == array, f"{symbol} and its scopes loop over different arrays"
    kind = _SCOPE_KINDS[target["type"]]
    return target["type"], tuple(Scope(kind, name) for name in access_names(array))


def grants() -> list[Grant]:
    found = []
    for assignment in resources("Microsoft.Authorization/roleAssignments"):
        props = assignment.properties
        fn = function(props["roleDefinitionId"])
        assert fn and fn[0] == "subscription_resource_id", assignment.symbol
        role = resolve(assignment.file, fn[1]["resource_name_1"])
        scope_type, scopes = (
            _grant_scopes(assignment.file, assignment.symbol, assignment.body["scope"])
            if assignment.file == ACCESS
            else (parsed(assignment.file)["resources"][assignment.body["scope"]]["type"], ())
        )
        found.append(Grant(assignment.file.name, assignment.symbol, props["principalId"], role, scope_type, scopes))
    return found


def app_grants() -> list[Grant]:
    return [g for g in grants() if g.file == "access.bicep" and g.principal == "appPrincipalId"]


def test_access_module_is_given_the_function_apps_identity() -> None:
    assert module_param("access", "appPrincipalId") == module_output_ref("functionApp", "principalId")
    principal = accessor(module_output(FUNCTIONAPP, "principalId"))
    assert principal == ["site", "identity", "principalId"]
    assert resource(FUNCTIONAPP, "site").type == "Microsoft.Web/sites"


@pytest.mark.parametrize("call", sorted(CALLS))
def test_every_data_plane_call_is_covered_by_a_role(call: str) -> None:
    wanted = CALLS[call]
    assert any(g.role in wanted.roles and any(s.covers(wanted.scope) for s in g.scopes) for g in app_grants()), (
        f"nothing grants the app: {call} on {wanted.scope}"
    )


def test_every_app_grant_is_needed_at_exactly_its_scope() -> None:
    # No grant is broader than the calls under it: each scope it names is the scope of a call
    # that needs that very role there.
    needed = {(c.scope, role) for c in CALLS.values() for role in c.roles}
    for grant in app_grants():
        assert grant.scopes, grant
        extra = [s for s in grant.scopes if (s, grant.role) not in needed]
        assert not extra, f"{grant.symbol} grants a role no call needs at {extra}"
    assert all(g.principal == "appPrincipalId" for g in grants() if g.file == "access.bicep")


def test_no_storage_data_role_on_the_whole_account() -> None:
    on_account = {g.role for g in app_grants() if Scope("account") in g.scopes}
    assert on_account == {BLOB_DELEGATOR}, "only the user delegation key is account-wide"
    assert BLOB_DATA_ACTIONS[BLOB_DELEGATOR] == set()


def test_the_app_cannot_write_blob_index_tags() -> None:
    # Defender's verdict could be faked by writing its tags; the app's roles carry no tags/*
    # data action (Storage Blob Data Owner does, through blobs/*).
    for grant in app_grants():
        assert grant.role in BLOB_DATA_ACTIONS, f"{grant.symbol}: look up the data actions of {grant.role}"
        assert not any(a.startswith(("tags/", "blobs/tags", "blobs/*")) for a in BLOB_DATA_ACTIONS[grant.role])
    assert BLOB_DATA_OWNER not in {g.role for g in app_grants()}


def test_every_named_container_and_queue_is_made_by_the_template() -> None:
    # A role assignment needs its scope to exist, so the host's containers and queues are made
    # by storage.bicep rather than on the host's first start.
    containers = {
        *storage_names("appContainers"),
        *storage_names("hostContainers"),
        resolve(INFRA / "main.bicep", "deploymentContainerName"),
    }
    queues = {*storage_names("appQueues"), *storage_names("hostQueues")}
    for grant in app_grants():
        for scope in grant.scopes:
            if scope.kind == "container":
                assert scope.name in containers, grant
            if scope.kind == "queue":
                assert scope.name in queues, grant
    for type_, names in [
        ("Microsoft.Storage/storageAccounts/blobServices/containers", "hostContainers"),
        ("Microsoft.Storage/storageAccounts/queueServices/queues", "hostQueues"),
    ]:
        loops = [
            parsed(STORAGE_BICEP)["resources"][r.symbol]["config"].get("loop_type")
            for r in resources(type_, STORAGE_BICEP)
        ]
        assert any(loop and loop["detail"]["array_name"] == names for loop in loops), f"no {type_} for {names}"


def test_the_host_id_is_fixed_and_valid() -> None:
    # The blob trigger's queue is named after it, so the app setting and the queue's name must
    # come from the same value, and it must be one the host accepts.
    assert app_settings()["AzureFunctionsWebHost__hostid"] == "hostId"
    assert module_param("functionApp", "hostId") == "hostId"
    assert module_param("storage", "hostId") == "hostId"
    value = host_id()
    assert value == "enclose-${token}"
    token = resolve(INFRA / "main.bicep", "token")
    assert function(token)[0] == "to_lower"  # uniqueString(...): 13 lower-case letters and digits
    literal = value.replace("${token}", "a" * 13)
    assert re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?", literal)


def test_no_broad_roles_anywhere() -> None:
    for grant in grants():
        assert grant.role not in {OWNER, CONTRIBUTOR, USER_ACCESS_ADMINISTRATOR}, grant


def test_role_assignments_name_their_principal_type() -> None:
    # Without it a new identity that Entra ID has not replicated yet fails the assignment.
    for assignment in resources("Microsoft.Authorization/roleAssignments"):
        assert assignment.properties.get("principalType"), assignment.symbol


# ---------------------------------------------------------------------------------------
# Defender, Event Grid, ACS, monitoring
# ---------------------------------------------------------------------------------------

EVENTING = MODULES / "eventing.bicep"
EVENTS = MODULES / "events.bicep"


def test_defender_scans_every_upload_and_reports_to_a_custom_topic() -> None:
    defender = the_one("Microsoft.Security/defenderForStorageSettings")
    assert defender.body["name"] == "current"
    scope = parsed(defender.file)["resources"][defender.body["scope"]]
    assert scope["type"] == STORAGE
    props = defender.properties
    assert props["isEnabled"] is True
    assert props["overrideSubscriptionLevelSettings"] is True
    scanning = props["malwareScanning"]
    assert scanning["onUpload"]["isEnabled"] is True
    # The API's enum (azure-rest-api-specs, Microsoft.Security stable 2025-06-01,
    # defenderForStorageSettings.json): "blobIndexTags" or "None", nothing else.
    assert scanning["blobScanResultsOptions"] in {"blobIndexTags", "None"}
    topic_symbol, _ = accessor(scanning["scanResultsEventGridTopicResourceId"])
    assert resource(defender.file, topic_symbol).type == "Microsoft.EventGrid/topics"


def _declared_containers() -> set[str]:
    main = INFRA / "main.bicep"
    return {
        *storage_names("appContainers"),
        *storage_names("hostContainers"),
        resolve(main, "deploymentContainerName"),
        resolve(main, "deadLetterContainerName"),
    }


def _unscanned_prefixes() -> list[str]:
    defender = the_one("Microsoft.Security/defenderForStorageSettings")
    excluded = defender.properties["malwareScanning"]["onUpload"]["filters"]["excludeBlobsWithPrefix"]
    assert excluded == "defenderUnscannedPrefixes"
    assert module_param("eventing", "defenderUnscannedPrefixes") == "defenderUnscannedPrefixes"
    main = INFRA / "main.bicep"
    return [_interpolate(main, prefix, {}) for prefix in resolve(main, "defenderUnscannedPrefixes")]


def _excluded(blob_path: str, prefixes: list[str]) -> bool:
    # The filter's documented meaning: a blob whose "container/blob" path starts with a prefix.
    return any(blob_path.startswith(prefix) for prefix in prefixes)


def test_defender_scans_only_what_nobody_has_checked() -> None:
    # Every other GB scanned is billed and pointless: documents were scanned as uploads, and the
    # rest is the app's and the platform's own.
    prefixes = _unscanned_prefixes()
    assert all("${" not in p for p in prefixes), prefixes
    containers = _declared_containers()
    scanned = set(app_storage.SCANNED_BY_DEFENDER)
    assert app_storage.UPLOADS in scanned and scanned <= containers
    for name in containers - scanned:
        assert _excluded(f"{name}/x", prefixes), (
            f"Defender would scan {name}: exclude it in main.bicep, or add it to SCANNED_BY_DEFENDER"
        )
    for name in scanned:
        for blob in (f"{name}/A12345/0f8c", f"{name}/x"):
            assert not _excluded(blob, prefixes), f"{blob} would not be scanned"
    # And a container the template does not know yet is scanned (fails safe), unless the host's.
    assert not _excluded("newcontainer/x", prefixes)
    assert _excluded("azure-webjobs-eventhub/x", prefixes)


def test_scan_results_reach_the_apps_verdict_function() -> None:
    sub = _subscription("scanResults")
    assert resource(EVENTS, "scanResults").body["parent"] == "scanResultsTopic"
    assert resource(EVENTS, "scanResultsTopic").type == "Microsoft.EventGrid/topics"
    assert sub["filter"]["includedEventTypes"] == ["Microsoft.Security.MalwareScanningResult"]
    destination = sub["destination"]
    assert destination["endpointType"] == "AzureFunction"
    assert destination["properties"]["resourceId"] == "${site.id}/functions/${verdictFunctionName}"
    assert sub["deadLetterWithResourceIdentity"]["identity"] == {"type": "SystemAssigned"}
    # The topic's own identity may write the dead letters (and only there).
    writers = [g for g in grants() if g.file == "eventing.bicep" and g.symbol == "scanResultsDeadLetterWriter"]
    assert [g.scope_type for g in writers] == ["Microsoft.Storage/storageAccounts/blobServices/containers"]
    assert accessor(writers[0].principal) == ["scanResultsTopic", "identity", "principalId"]


def test_defender_shares_the_one_storage_system_topic() -> None:
    topics = [
        t
        for t in resources("Microsoft.EventGrid/systemTopics")
        if t.properties["topicType"] == "Microsoft.Storage.StorageAccounts"
    ]
    assert len(topics) == 1
    (topic,) = topics
    assert accessor(topic.properties["source"])[1:] == ["id"]
    assert resource(topic.file, accessor(topic.properties["source"])[0]).type == STORAGE
    defender = the_one("Microsoft.Security/defenderForStorageSettings")
    assert topic.symbol in defender.body["dependsOn"]


def test_acs_uses_entra_id_only_and_keeps_data_in_the_uk() -> None:
    acs = the_one("Microsoft.Communication/communicationServices")
    assert acs.properties["disableLocalAuth"] is True
    assert acs.properties["dataLocation"] == "dataLocation"
    assert module_param("communication", "dataLocation") == "acsDataLocation"
    assert _main_default("acsDataLocation") == "UK"


def test_acs_has_a_system_topic_for_delivery_reports() -> None:
    (topic,) = [
        t
        for t in resources("Microsoft.EventGrid/systemTopics")
        if t.properties["topicType"] == "Microsoft.Communication.CommunicationServices"
    ]
    assert resource(topic.file, accessor(topic.properties["source"])[0]).type == (
        "Microsoft.Communication/communicationServices"
    )


def _subscription(symbol: str) -> dict[str, Any]:
    return resource(EVENTS, symbol).properties


def test_uploads_reach_the_blob_trigger_through_event_grid() -> None:
    sub = _subscription("uploadsToScan")
    assert sub["filter"]["includedEventTypes"] == ["Microsoft.Storage.BlobCreated"]
    assert sub["filter"]["subjectBeginsWith"] == "/blobServices/default/containers/uploads/blobs/"
    destination = sub["destination"]
    assert destination["endpointType"] == "WebHook"
    url = destination["properties"]["endpointUrl"]
    assert url.startswith("https://${site.properties.defaultHostName}/runtime/webhooks/blobs?")
    assert "functionName=Host.Functions.${blobFunctionName}" in url and "code=${blobsExtensionKey}" in url
    key = accessor(variables(EVENTS)["blobsExtensionKey"])
    assert function(key[0])[1]["func_name"] == "listKeys"
    assert key[1:] == ["systemKeys", "blobs_extension"]


def test_delivery_reports_reach_delivery_report() -> None:
    sub = _subscription("deliveryReports")
    assert sub["filter"]["includedEventTypes"] == ["Microsoft.Communication.SMSDeliveryReportReceived"]
    destination = sub["destination"]
    assert destination["endpointType"] == "AzureFunction"
    assert destination["properties"]["resourceId"] == "${site.id}/functions/${deliveryFunctionName}"
    assert params(EVENTS)["deliveryFunctionName"]["default"] == "delivery_report"


def test_keys_are_read_only_for_the_blob_webhook() -> None:
    for path in bicep_files():
        for kind in ("outputs", "variables", "resources", "modules"):
            for name, node in (parsed(path).get(kind) or {}).items():
                uses = [n for n in walk(node) if function(n) and function(n)[0] == "list_func"]
                if uses:
                    assert (path, kind, name) == (EVENTS, "variables", "blobsExtensionKey")


def test_telemetry_needs_entra_id() -> None:
    component = the_one("Microsoft.Insights/components")
    assert component.properties["DisableLocalAuth"] is True
    workspace = the_one("Microsoft.OperationalInsights/workspaces")
    assert workspace.properties["features"]["disableLocalAuth"] is True


def test_telemetry_reaches_application_insights_with_no_portal_token() -> None:
    # Why each value, from the host's and the worker's sources: shared_code/telemetry.py.
    settings = app_settings()
    # The host and the app's span exporter send to the one component, with the identity.
    assert settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] == "applicationInsightsConnectionString"
    assert module_param("functionApp", "applicationInsightsConnectionString") == module_output_ref(
        "monitoring", "connectionString"
    )
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "Authorization=AAD"
    # Neither of the switches that make the Python worker run its own, unscrubbed Azure Monitor
    # pipeline is on (which one does it depends on the worker's version).
    assert settings["PYTHON_ENABLE_OPENTELEMETRY"] == "false"
    assert settings["PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"] == "false"
    # host.json's telemetry (classic mode, no URL on requests) is not overridden by an app setting.
    overrides = [
        name
        for name in settings
        if name.lower().startswith("azurefunctionsjobhost__")
        and any(key in name.lower() for key in ("telemetrymode", "logging"))
    ]
    assert not overrides


def test_hooks_named_by_azure_yaml_exist() -> None:
    runs = [
        line.split("run:", 1)[1].strip()
        for line in (ROOT / "azure.yaml").read_text().splitlines()
        if line.strip().startswith("run:")
    ]
    hooks = [word for run in runs for word in run.split() if word.startswith("infra/hooks/")]
    assert hooks == ["infra/hooks/postprovision.sh", "infra/hooks/postdeploy.sh"]
    for hook in hooks:
        assert (ROOT / hook).is_file(), hook


# ---------------------------------------------------------------------------------------
# The names Event Grid and the Bicep use are the app's own
# ---------------------------------------------------------------------------------------

_LIST_FUNCTIONS = """
import json, function_app
functions = []
for f in function_app.app.get_functions():
    functions.append({"name": f.get_function_name(), "bindings": json.loads(f.get_function_json())["bindings"]})
print(json.dumps(functions))
"""


@lru_cache(maxsize=1)
def registered_functions() -> list[dict[str, Any]]:
    """The app's functions as the Functions host would index them with the Azure settings."""
    if not (ROOT / "function_app.py").is_file():
        reason = "function_app.py is not there yet"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    env = {k: v for k, v in os.environ.items() if k not in ENVIRONMENT_NAMES}
    env.update({k: v for k, v in app_settings().items() if isinstance(v, str) and "${" not in v})
    # A separate process: get_functions() may be called only once per app object.
    proc = subprocess.run(
        [sys.executable, "-c", _LIST_FUNCTIONS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _trigger(function_: dict[str, Any]) -> dict[str, Any]:
    (trigger,) = [b for b in function_["bindings"] if b["type"].endswith("Trigger") or b["type"] == "httpTrigger"]
    return trigger


def test_event_grid_subscription_targets_the_apps_blob_trigger() -> None:
    blob_triggers = [f for f in registered_functions() if _trigger(f)["type"] == "blobTrigger"]
    assert len(blob_triggers) == 1
    (scan,) = blob_triggers
    trigger = _trigger(scan)
    assert trigger["path"].split("/", 1)[0] == "uploads"
    assert trigger["source"] == "EventGrid"
    assert params(EVENTS)["blobFunctionName"]["default"] == scan["name"]
    hook = (INFRA / "hooks" / "postdeploy.sh").read_text()
    assert "${BLOB_FUNCTION_NAME:-" + scan["name"] + "}" in hook


def test_event_grid_subscription_targets_the_apps_verdict_function() -> None:
    names = {f["name"] for f in registered_functions() if _trigger(f)["type"] == "eventGridTrigger"}
    default = params(EVENTS)["verdictFunctionName"]["default"]
    assert default in names
    hook = (INFRA / "hooks" / "postdeploy.sh").read_text()
    assert "${VERDICT_FUNCTION_NAME:-" + default + "}" in hook


def test_event_grid_subscription_targets_the_apps_delivery_report() -> None:
    names = {f["name"] for f in registered_functions() if _trigger(f)["type"] == "eventGridTrigger"}
    default = params(EVENTS)["deliveryFunctionName"]["default"]
    assert default in names
    hook = (INFRA / "hooks" / "postdeploy.sh").read_text()
    assert "${DELIVERY_FUNCTION_NAME:-" + default + "}" in hook


def test_triggers_use_the_identity_based_storage_and_existing_queues() -> None:
    storage = MODULES / "storage.bicep"
    for function_ in registered_functions():
        trigger = _trigger(function_)
        if trigger["type"] in {"blobTrigger", "queueTrigger"}:
            # "AzureWebJobsStorage" resolves to AzureWebJobsStorage__accountName + identity.
            assert trigger.get("connection", "AzureWebJobsStorage") == "AzureWebJobsStorage", function_["name"]
        if trigger["type"] == "queueTrigger":
            assert trigger["queueName"] in resolve(storage, "appQueues"), function_["name"]
