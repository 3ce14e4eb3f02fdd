"""Every setting the app reads, read once, with the defaults the contract names.

Settings come from the environment: App Settings in Azure (secrets as Key Vault
references, which the platform resolves before the process starts) and
`local.settings.json` locally (the devstack host and Core Tools both load it).
Nothing else in the code reads `os.environ` for app behaviour.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache


class SettingsError(ValueError):
    """A setting is present but unusable; raised at start-up, never per request."""


def _flag(value: str | None, default: bool, name: str = "flag") -> bool:
    if value is None or value.strip() == "":
        return default
    text = value.strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false")


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "")
    if raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a whole number") from exc
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}")
    return value


@dataclass(frozen=True)
class Settings:
    """The app's configuration. Field names match the environment variable names below."""

    # Storage: a connection string (Azurite locally) or, in Azure, just the account name
    # with the managed identity (AzureWebJobsStorage__accountName).
    storage_connection_string: str = ""
    storage_account_name: str = ""
    # Azure Communication Services: connection string locally (emulator), endpoint + identity in Azure.
    acs_connection_string: str = ""
    acs_endpoint: str = ""
    acs_ca_bundle: str = ""  # a CA file to trust for ACS (the emulator's self-signed certificate)
    sms_sender: str = "Enclose"
    sms_delivery_reports: bool = True
    sms_rate_per_minute: int = 600
    #: Python worker processes per host (the platform's FUNCTIONS_WORKER_PROCESS_COUNT): each
    #: has its own pacer, so each takes its share of the sender's rate.
    worker_process_count: int = 1
    sms_max_attempts: int = 5
    sms_timeout_seconds: int = 10
    portal_base_url: str = "http://127.0.0.1:7071"
    # Bearer tokens
    auth_issuer: str = ""
    auth_audience: str = "api://enclose"
    auth_jwks_url: str = ""
    # Secrets (Key Vault references in Azure, `.local/` locally)
    dob_hash_key: bytes = field(default=b"", repr=False)
    session_key: bytes = field(default=b"", repr=False)
    # Limits
    max_attachment_bytes: int = 3145728
    max_segments: int = 6
    max_attachments: int = 5
    max_dob_attempts: int = 5
    link_ttl_days: int = 28
    sas_ttl_seconds: int = 60
    session_ttl_seconds: int = 900
    idempotency_ttl_hours: int = 24
    # Numbers
    allow_drama_numbers: bool = False
    allowed_countries: tuple[str, ...] = ("GB",)
    # Scanning
    scanner: str = "clamav"
    clamd_address: str = "tcp://127.0.0.1:3310"
    clamd_timeout_seconds: int = 30
    #: How long a scan waits for a clamd that is not listening yet (starting or restarting) before it
    #: counts as a failed attempt; well under host.json's functionTimeout (5 minutes).
    clamd_startup_wait_seconds: int = 120
    defender_verdict_timeout_seconds: int = 300
    # How the upload blob trigger learns of new blobs: Event Grid in Azure (Flex Consumption
    # supports nothing else), container polling under a local host or Core Tools.
    blob_trigger_source: str = "EventGrid"
    # Telemetry (Azure Monitor through OpenTelemetry); empty locally, so nothing is loaded.
    applicationinsights_connection_string: str = field(default="", repr=False)

    @property
    def sms_rate_per_process(self) -> int:
        """This process's share of SMS_RATE_PER_MINUTE: rounded down so together they stay under it
        (but at least one a minute each)."""
        return max(1, self.sms_rate_per_minute // self.worker_process_count)

    @property
    def uses_azurite(self) -> bool:
        """True when storage is the local emulator (account-key SAS is allowed only then)."""
        cs = self.storage_connection_string.lower()
        return "usedevelopmentstorage=true" in cs or "devstoreaccount1" in cs


#: environment variable → Settings field. The Bicep sets each of these in Azure, except the
#: local-only ones and FUNCTIONS_WORKER_PROCESS_COUNT, which is the platform's (default 1).
ENVIRONMENT_NAMES: dict[str, str] = {
    "AzureWebJobsStorage": "storage_connection_string",
    "AzureWebJobsStorage__accountName": "storage_account_name",
    "ACS_CONNECTION_STRING": "acs_connection_string",
    "ACS_ENDPOINT": "acs_endpoint",
    "ACS_CA_BUNDLE": "acs_ca_bundle",
    "SMS_SENDER": "sms_sender",
    "SMS_DELIVERY_REPORTS": "sms_delivery_reports",
    "SMS_RATE_PER_MINUTE": "sms_rate_per_minute",
    "FUNCTIONS_WORKER_PROCESS_COUNT": "worker_process_count",
    "SMS_MAX_ATTEMPTS": "sms_max_attempts",
    "SMS_TIMEOUT_SECONDS": "sms_timeout_seconds",
    "PORTAL_BASE_URL": "portal_base_url",
    "AUTH_ISSUER": "auth_issuer",
    "AUTH_AUDIENCE": "auth_audience",
    "AUTH_JWKS_URL": "auth_jwks_url",
    "DOB_HASH_KEY": "dob_hash_key",
    "SESSION_KEY": "session_key",
    "MAX_ATTACHMENT_BYTES": "max_attachment_bytes",
    "MAX_SEGMENTS": "max_segments",
    "MAX_ATTACHMENTS": "max_attachments",
    "MAX_DOB_ATTEMPTS": "max_dob_attempts",
    "LINK_TTL_DAYS": "link_ttl_days",
    "SAS_TTL_SECONDS": "sas_ttl_seconds",
    "SESSION_TTL_SECONDS": "session_ttl_seconds",
    "IDEMPOTENCY_TTL_HOURS": "idempotency_ttl_hours",
    "ALLOW_DRAMA_NUMBERS": "allow_drama_numbers",
    "ALLOWED_COUNTRIES": "allowed_countries",
    "SCANNER": "scanner",
    "CLAMD_ADDRESS": "clamd_address",
    "CLAMD_TIMEOUT_SECONDS": "clamd_timeout_seconds",
    "CLAMD_STARTUP_WAIT_SECONDS": "clamd_startup_wait_seconds",
    "DEFENDER_VERDICT_TIMEOUT_SECONDS": "defender_verdict_timeout_seconds",
    "BLOB_TRIGGER_SOURCE": "blob_trigger_source",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "applicationinsights_connection_string",
}


#: A secret shorter than this is refused: it could be guessed, and there are only ~45,000 dates of birth.
MIN_SECRET_CHARS = 32


def _secret(env: Mapping[str, str], name: str) -> bytes:
    # Secrets are text (hex or base64 from Key Vault); the text's bytes are the HMAC key.
    value = env.get(name, "").strip()
    if value.startswith("@Microsoft.KeyVault("):
        # The platform passes the reference itself through when it cannot resolve it.
        raise SettingsError(f"{name} is an unresolved Key Vault reference: check the app's access to the vault")
    if value and len(value) < MIN_SECRET_CHARS:
        raise SettingsError(f"{name} must be at least {MIN_SECRET_CHARS} characters")
    return value.encode()


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from an environment mapping (the process environment by default)."""
    env = os.environ if env is None else env
    d = Settings()
    text = lambda name, default: env.get(name, "").strip() or default  # noqa: E731
    settings = Settings(
        storage_connection_string=text("AzureWebJobsStorage", ""),
        storage_account_name=text("AzureWebJobsStorage__accountName", ""),
        acs_connection_string=text("ACS_CONNECTION_STRING", ""),
        acs_endpoint=text("ACS_ENDPOINT", ""),
        acs_ca_bundle=text("ACS_CA_BUNDLE", ""),
        sms_sender=text("SMS_SENDER", d.sms_sender),
        sms_delivery_reports=_flag(env.get("SMS_DELIVERY_REPORTS"), d.sms_delivery_reports, "SMS_DELIVERY_REPORTS"),
        sms_rate_per_minute=_int(env, "SMS_RATE_PER_MINUTE", d.sms_rate_per_minute, 1),
        worker_process_count=_int(env, "FUNCTIONS_WORKER_PROCESS_COUNT", d.worker_process_count, 1),
        sms_max_attempts=_int(env, "SMS_MAX_ATTEMPTS", d.sms_max_attempts, 1),
        sms_timeout_seconds=_int(env, "SMS_TIMEOUT_SECONDS", d.sms_timeout_seconds, 1),
        portal_base_url=text("PORTAL_BASE_URL", d.portal_base_url).rstrip("/"),
        auth_issuer=text("AUTH_ISSUER", ""),
        auth_audience=text("AUTH_AUDIENCE", d.auth_audience),
        auth_jwks_url=text("AUTH_JWKS_URL", ""),
        dob_hash_key=_secret(env, "DOB_HASH_KEY"),
        session_key=_secret(env, "SESSION_KEY"),
        max_attachment_bytes=_int(env, "MAX_ATTACHMENT_BYTES", d.max_attachment_bytes, 1),
        max_segments=_int(env, "MAX_SEGMENTS", d.max_segments, 1),
        max_attachments=_int(env, "MAX_ATTACHMENTS", d.max_attachments, 1),
        max_dob_attempts=_int(env, "MAX_DOB_ATTEMPTS", d.max_dob_attempts, 1),
        link_ttl_days=_int(env, "LINK_TTL_DAYS", d.link_ttl_days, 1),
        sas_ttl_seconds=_int(env, "SAS_TTL_SECONDS", d.sas_ttl_seconds, 1),
        session_ttl_seconds=min(_int(env, "SESSION_TTL_SECONDS", d.session_ttl_seconds, 1), 900),
        idempotency_ttl_hours=_int(env, "IDEMPOTENCY_TTL_HOURS", d.idempotency_ttl_hours, 1),
        allow_drama_numbers=_flag(env.get("ALLOW_DRAMA_NUMBERS"), d.allow_drama_numbers, "ALLOW_DRAMA_NUMBERS"),
        allowed_countries=tuple(c.strip().upper() for c in text("ALLOWED_COUNTRIES", "GB").split(",") if c.strip()),
        scanner=text("SCANNER", d.scanner).lower(),
        clamd_address=text("CLAMD_ADDRESS", d.clamd_address),
        clamd_timeout_seconds=_int(env, "CLAMD_TIMEOUT_SECONDS", d.clamd_timeout_seconds, 1),
        clamd_startup_wait_seconds=_int(env, "CLAMD_STARTUP_WAIT_SECONDS", d.clamd_startup_wait_seconds, 0),
        defender_verdict_timeout_seconds=_int(
            env, "DEFENDER_VERDICT_TIMEOUT_SECONDS", d.defender_verdict_timeout_seconds, 1
        ),
        blob_trigger_source=text("BLOB_TRIGGER_SOURCE", d.blob_trigger_source),
        applicationinsights_connection_string=text("APPLICATIONINSIGHTS_CONNECTION_STRING", ""),
    )
    from shared_code.sms import validate_sender_id  # here: sms imports this module

    validate_sender_id(settings.sms_sender)
    if settings.scanner not in {"clamav", "defender"}:
        raise SettingsError("SCANNER must be 'clamav' or 'defender'")
    if settings.blob_trigger_source not in {"EventGrid", "LogsAndContainerScan"}:
        raise SettingsError("BLOB_TRIGGER_SOURCE must be 'EventGrid' or 'LogsAndContainerScan'")
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return load_settings()
