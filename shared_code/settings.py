"""Every setting the app reads, declared once and read once.

Each `Settings` field is declared with `setting(...)`: its environment variable, its default
(the contract's), the parser that checks and converts its text, and a one-line meaning.
`SETTINGS` is that table, `load_settings` builds `Settings` from it, and the README's
settings table is checked against it by a test.

Settings come from the environment: App Settings in Azure (secrets as Key Vault
references) and `local.settings.json` locally (the devstack host and Core Tools both load it).
Nothing else in the code reads `os.environ` for app behaviour.

A secret is loaded as a `Secret` and checked only where it is used (`Secret.reveal`): App
Service passes a Key Vault reference it cannot resolve yet through as its literal
`@Microsoft.KeyVault(...)` text (on a first deploy, before the app's vault role or the secrets
exist), and that must cost only the functions that need the secret a 503, not the whole app
its indexing. Any other unusable setting is a SettingsError at start-up.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from shared_code.errors import ServiceUnavailable

#: How a setting's text becomes its value: (environment name, stripped non-blank text) -> value.
Parser = Callable[[str, str], Any]

#: A secret shorter than this is refused: it could be guessed, and there are only ~45,000 dates of birth.
MIN_SECRET_CHARS = 32


log = logging.getLogger("enclose.settings")


class SettingsError(ValueError):
    """A setting is present but unusable; raised at start-up, never per request (secrets excepted)."""


class SecretUnavailable(ServiceUnavailable):
    """A secret setting is missing or not yet resolved from Key Vault, so what needs it cannot run.

    `setting` names it for the log (its value is never shown); the caller is only told to try
    again later (the `unavailable` problem), as the fix is the operator's.
    """

    def __init__(self, setting: str) -> None:
        self.setting = setting
        super().__init__("The service is not working at the moment. Please try again later.")


@dataclass(frozen=True)
class Secret:
    """A secret setting as loaded: its bytes, or why it cannot be used (`problem`).

    Read it with `reveal()` in the code that needs it, never at import.
    """

    env: str
    value: bytes = dataclasses.field(default=b"", repr=False)
    problem: str = "is not set"

    def reveal(self) -> bytes:
        """The secret's bytes; SecretUnavailable (a 503) when it cannot be used, logged with its name only."""
        if self.problem:
            log.error("%s %s; whatever needs it answers 503 until that is fixed", self.env, self.problem)
            raise SecretUnavailable(self.env)
        return self.value


# -- parsers: each gets the variable's name (for its error) and its stripped, non-blank text ------------


def text(name: str, value: str) -> str:
    """Text as given (already stripped)."""
    return value


def url(name: str, value: str) -> str:
    """A base URL without its trailing slash: links are built as base + "/p/..."."""
    return value.rstrip("/")


def flag(name: str, value: str) -> bool:
    """true/false, yes/no, on/off or 1/0, in any case."""
    lowered = value.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false")


def whole(minimum: int, cap: int | None = None) -> Parser:
    """A whole number of at least `minimum`; a value over `cap` is lowered to it (not refused)."""

    def parse(name: str, value: str) -> int:
        try:
            number = int(value)
        except ValueError as exc:
            raise SettingsError(f"{name} must be a whole number") from exc
        if number < minimum:
            raise SettingsError(f"{name} must be at least {minimum}")
        return number if cap is None else min(number, cap)

    return parse


def choice(*options: str, fold_case: bool = False) -> Parser:
    """One of `options`; with `fold_case` any case is accepted and the value is lower-cased."""

    def parse(name: str, value: str) -> str:
        value = value.lower() if fold_case else value
        if value not in options:
            quoted = " or ".join(f"'{option}'" for option in options)
            raise SettingsError(f"{name} must be {quoted}")
        return value

    return parse


def countries(name: str, value: str) -> tuple[str, ...]:
    """Comma-separated ISO country codes, upper-cased; empty items are ignored."""
    return tuple(code.strip().upper() for code in value.split(",") if code.strip())


def domains(name: str, value: str) -> tuple[str, ...]:
    """Comma-separated domain names, lower-cased, without a leading `*.` or dot; empty items are ignored."""
    found = []
    for item in value.split(","):
        domain = item.strip().lower().removeprefix("*.").strip(".")
        if not domain:
            continue
        if "." not in domain or any(c.isspace() or c in "/:@" for c in domain):
            raise SettingsError(f"{name} must list domain names such as nhs.uk, separated by commas")
        found.append(domain)
    return tuple(found)


def secret(name: str, value: str) -> Secret:
    """A secret's text (hex or base64 from Key Vault) as the bytes of a key; never raises (see `Secret`)."""
    if value.startswith("@Microsoft.KeyVault("):
        # App Service passes the reference itself through while it cannot resolve it.
        return Secret(
            name,
            problem="is an unresolved Key Vault reference: check the app's access to the vault and the secret, "
            "then refresh the app's Key Vault references",
        )
    if len(value) < MIN_SECRET_CHARS:
        return Secret(name, problem=f"is shorter than {MIN_SECRET_CHARS} characters")
    return Secret(name, value.encode(), problem="")


def sender_id(name: str, value: str) -> str:
    """An ACS sender: an alphanumeric sender ID or an E.164 number."""
    from shared_code.sms import validate_sender_id  # here: sms imports this module

    return validate_sender_id(value)


def ncrontab(name: str, value: str) -> str:
    """A timer's NCRONTAB schedule as Azure Functions reads it: six fields, seconds first."""
    fields = value.split()
    if len(fields) != 6 or not all(set(f) <= set("0123456789*/,-") for f in fields):
        raise SettingsError(f"{name} must be a six-field NCRONTAB schedule such as '0 30 2 * * *' (seconds first)")
    return " ".join(fields)


def setting(env: str, default: Any, parse: Parser, meaning: str, *, hidden: bool = False) -> Any:
    """Declare one `Settings` field: its environment variable, default, parser and meaning.

    `hidden` keeps the value out of `repr` (secrets, connection strings with keys).
    """
    return dataclasses.field(
        default=default, repr=not hidden, metadata={"env": env, "parse": parse, "meaning": meaning}
    )


@dataclass(frozen=True)
class Settings:
    """The app's configuration, one field per environment variable (see `SETTINGS`)."""

    storage_connection_string: str = setting(
        "AzureWebJobsStorage", "", text, "storage connection string (Azurite locally)"
    )
    storage_account_name: str = setting(
        "AzureWebJobsStorage__accountName", "", text, "in Azure: the storage account, reached with the managed identity"
    )
    acs_connection_string: str = setting(
        "ACS_CONNECTION_STRING", "", text, "SMS: connection string (the emulator locally)"
    )
    acs_endpoint: str = setting("ACS_ENDPOINT", "", text, "SMS in Azure: the ACS endpoint, reached with the identity")
    acs_ca_bundle: str = setting(
        "ACS_CA_BUNDLE", "", text, "a CA file to trust for ACS (the emulator's self-signed certificate)"
    )
    sms_sender: str = setting("SMS_SENDER", "Enclose", sender_id, "alphanumeric sender ID or number")
    sms_delivery_reports: bool = setting("SMS_DELIVERY_REPORTS", True, flag, "ask ACS for delivery reports")
    sms_rate_per_minute: int = setting(
        "SMS_RATE_PER_MINUTE", 600, whole(1), "the ACS resource's sending limit, for the whole app however it scales"
    )
    sms_max_attempts: int = setting("SMS_MAX_ATTEMPTS", 5, whole(1), "send attempts before a message fails")
    sms_timeout_seconds: int = setting("SMS_TIMEOUT_SECONDS", 10, whole(1), "how long one send waits for ACS")
    # Capped so that every try's wait still fits in the 5 minutes ACS remembers a repeatability id.
    sms_evidence_wait_seconds: int = setting(
        "SMS_EVIDENCE_WAIT_SECONDS",
        30,
        whole(0, cap=60),
        "how long a try that may have reached ACS waits for its delivery report before it is repeated",
    )
    portal_base_url: str = setting("PORTAL_BASE_URL", "http://127.0.0.1:7071", url, "start of the link in the SMS")
    auth_issuer: str = setting("AUTH_ISSUER", "", text, "who signs bearer tokens")
    auth_audience: str = setting("AUTH_AUDIENCE", "api://enclose", text, "the audience bearer tokens must name")
    auth_jwks_url: str = setting("AUTH_JWKS_URL", "", text, "where the issuer's signing keys are")
    # An Entra ID app role (the token's `roles` claim): a token for the API without it is 403.
    auth_required_role: str = setting(
        "AUTH_REQUIRED_ROLE", "Messages.Send", text, "the app role a bearer token must carry in `roles`"
    )
    dob_hash_key: Secret = setting(
        "DOB_HASH_KEY", Secret("DOB_HASH_KEY"), secret, "date-of-birth HMAC key", hidden=True
    )
    session_key: Secret = setting(
        "SESSION_KEY", Secret("SESSION_KEY"), secret, "portal session signing key", hidden=True
    )
    max_attachment_bytes: int = setting("MAX_ATTACHMENT_BYTES", 3145728, whole(1), "upload limit")
    # Phone photos and scans are often 4-8 MB: a PDF or picture up to this size is accepted and made
    # to fit MAX_ATTACHMENT_BYTES (shared_code/upload_fitting.py); the host's body limit follows it.
    max_upload_bytes: int = setting(
        "MAX_UPLOAD_BYTES", 20971520, whole(1), "largest PDF or picture accepted, then made to fit the upload limit"
    )
    max_segments: int = setting("MAX_SEGMENTS", 6, whole(1), "longest SMS, in segments")
    max_attachments: int = setting("MAX_ATTACHMENTS", 5, whole(1), "documents per message")
    # 60 a minute is far beyond a receptionist sending from the toolbar and a tenth of the shared ACS
    # rate; 2,000 a day is several times a large practice's busiest day of document texts.
    org_sms_per_minute: int = setting(
        "ORG_SMS_PER_MINUTE", 60, whole(1), "messages one organisation may send in a minute (429 beyond)"
    )
    org_daily_sms_quota: int = setting(
        "ORG_DAILY_SMS_QUOTA", 2000, whole(1), "messages one organisation may send in a UTC day (429 beyond)"
    )
    allowed_link_domains: tuple[str, ...] = setting(
        "ALLOWED_LINK_DOMAINS",
        ("nhs.uk", "gov.uk"),
        domains,
        "domains (and their subdomains) a message's text may link to",
    )
    max_dob_attempts: int = setting("MAX_DOB_ATTEMPTS", 5, whole(1), "wrong dates of birth before the link locks")
    link_ttl_days: int = setting("LINK_TTL_DAYS", 28, whole(1), "link lifetime")
    sas_ttl_seconds: int = setting("SAS_TTL_SECONDS", 60, whole(1), "lifetime of a download URL")
    # The contract caps a portal session at 15 minutes, whatever the setting says.
    session_ttl_seconds: int = setting("SESSION_TTL_SECONDS", 900, whole(1, cap=900), "portal session lifetime")
    idempotency_ttl_hours: int = setting(
        "IDEMPOTENCY_TTL_HOURS", 24, whole(1), "how long an Idempotency-Key is remembered"
    )
    allow_drama_numbers: bool = setting("ALLOW_DRAMA_NUMBERS", False, flag, "accept Ofcom's 07700 900xxx drama range")
    callback_allow_local: bool = setting(
        "CALLBACK_ALLOW_LOCAL", False, flag, "let a status callback URL be http(s) to 127.0.0.1 (the local stack)"
    )
    allowed_countries: tuple[str, ...] = setting(
        "ALLOWED_COUNTRIES", ("GB",), countries, "countries whose mobiles may be texted"
    )
    scanner: str = setting("SCANNER", "clamav", choice("clamav", "defender", fold_case=True), "malware scanner")
    clamd_address: str = setting("CLAMD_ADDRESS", "tcp://127.0.0.1:3310", text, "clamd, tcp://host:port or unix://")
    clamd_timeout_seconds: int = setting("CLAMD_TIMEOUT_SECONDS", 30, whole(1), "clamd time-out")
    # Well under host.json's functionTimeout (5 minutes).
    clamd_startup_wait_seconds: int = setting(
        "CLAMD_STARTUP_WAIT_SECONDS", 120, whole(0), "how long a scan waits for a clamd that is not listening yet"
    )
    defender_verdict_timeout_seconds: int = setting(
        "DEFENDER_VERDICT_TIMEOUT_SECONDS", 120, whole(1), "how long to wait for Defender's verdict"
    )
    # Event Grid in Azure (Flex Consumption supports nothing else), container polling locally.
    blob_trigger_source: str = setting(
        "BLOB_TRIGGER_SOURCE",
        "EventGrid",
        choice("EventGrid", "LogsAndContainerScan"),
        "how the upload blob trigger learns of new blobs",
    )
    # Daily, at night (UTC): templates' documents are scanned again with the day's signatures.
    template_rescan_schedule: str = setting(
        "TEMPLATE_RESCAN_SCHEDULE",
        "0 30 2 * * *",
        ncrontab,
        "when templates' documents are scanned again (NCRONTAB, six fields, UTC)",
    )
    # Empty locally, so no telemetry exporter is loaded.
    applicationinsights_connection_string: str = setting(
        "APPLICATIONINSIGHTS_CONNECTION_STRING", "", text, "Azure Monitor telemetry", hidden=True
    )

    def check_secrets(self) -> None:
        """SecretUnavailable (503) unless every secret can be used: for work that needs them all,
        checked before it writes anything."""
        for declared in SETTINGS:
            value = getattr(self, declared.field)
            if isinstance(value, Secret):
                value.reveal()

    @property
    def upload_limit(self) -> int:
        """The largest file an upload may carry: MAX_UPLOAD_BYTES, never below MAX_ATTACHMENT_BYTES."""
        return max(self.max_upload_bytes, self.max_attachment_bytes)

    @property
    def uses_azurite(self) -> bool:
        """True when storage is the local emulator (account-key SAS is allowed only then)."""
        cs = self.storage_connection_string.lower()
        return "usedevelopmentstorage=true" in cs or "devstoreaccount1" in cs


@dataclass(frozen=True)
class Declared:
    """One row of the settings table: a `Settings` field as its `setting(...)` declared it."""

    env: str
    field: str
    default: Any
    parse: Parser
    meaning: str


#: Every setting, in declaration order.
SETTINGS: tuple[Declared, ...] = tuple(
    Declared(f.metadata["env"], f.name, f.default, f.metadata["parse"], f.metadata["meaning"])
    for f in dataclasses.fields(Settings)
)

#: environment variable → Settings field. The Bicep sets each of these in Azure, except the local-only ones.
ENVIRONMENT_NAMES: dict[str, str] = {declared.env: declared.field for declared in SETTINGS}


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from an environment mapping (the process environment by default).

    A missing or blank variable means its default; anything else goes through its parser,
    which raises SettingsError for a value it cannot use (a secret's problems wait for its use).
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for declared in SETTINGS:
        raw = (env.get(declared.env) or "").strip()
        if raw:
            values[declared.field] = declared.parse(declared.env, raw)
    return Settings(**values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return load_settings()
