"""Settings: the contract's defaults, parsing of each kind of value, SettingsError for bad ones."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from shared_code.errors import ServiceUnavailable
from shared_code.settings import (
    ENVIRONMENT_NAMES,
    SecretUnavailable,
    Settings,
    SettingsError,
    get_settings,
    load_settings,
)


def test_contract_defaults_from_an_empty_environment() -> None:
    s = load_settings({})
    assert s.max_attachment_bytes == 3145728
    assert s.max_upload_bytes == 20971520  # 20 MiB: a PDF or picture, then made to fit
    assert s.max_segments == 6
    assert s.max_attachments == 5
    assert s.max_dob_attempts == 5
    assert s.link_ttl_days == 28
    assert s.sas_ttl_seconds == 60
    assert s.session_ttl_seconds == 900  # 15 minutes at most
    assert s.idempotency_ttl_hours == 24
    assert s.allow_drama_numbers is False
    assert s.allowed_countries == ("GB",)


def test_empty_environment_equals_the_dataclass_defaults() -> None:
    assert load_settings({}) == Settings()


def test_every_field_has_an_environment_name() -> None:
    fields = {f.name for f in dataclasses.fields(Settings)}
    assert set(ENVIRONMENT_NAMES.values()) == fields
    assert len(ENVIRONMENT_NAMES) == len(fields)


def test_blank_values_mean_the_default() -> None:
    env = {name: "  " for name in ENVIRONMENT_NAMES}
    assert load_settings(env) == Settings()


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        ("MAX_ATTACHMENT_BYTES", "max_attachment_bytes", 1048576),
        ("MAX_UPLOAD_BYTES", "max_upload_bytes", 10485760),
        ("MAX_SEGMENTS", "max_segments", 3),
        ("MAX_ATTACHMENTS", "max_attachments", 2),
        ("MAX_DOB_ATTEMPTS", "max_dob_attempts", 3),
        ("LINK_TTL_DAYS", "link_ttl_days", 7),
        ("SAS_TTL_SECONDS", "sas_ttl_seconds", 30),
        ("SESSION_TTL_SECONDS", "session_ttl_seconds", 300),
        ("IDEMPOTENCY_TTL_HOURS", "idempotency_ttl_hours", 48),
        ("SMS_RATE_PER_MINUTE", "sms_rate_per_minute", 60),
        ("SMS_MAX_ATTEMPTS", "sms_max_attempts", 1),
        ("CLAMD_TIMEOUT_SECONDS", "clamd_timeout_seconds", 1),
        ("DEFENDER_VERDICT_TIMEOUT_SECONDS", "defender_verdict_timeout_seconds", 600),
    ],
)
def test_whole_numbers(name: str, field: str, value: int) -> None:
    assert getattr(load_settings({name: str(value)}), field) == value
    assert getattr(load_settings({name: f" {value} "}), field) == value


@pytest.mark.parametrize(
    "name",
    [
        "MAX_ATTACHMENT_BYTES",
        "MAX_UPLOAD_BYTES",
        "MAX_SEGMENTS",
        "MAX_ATTACHMENTS",
        "MAX_DOB_ATTEMPTS",
        "LINK_TTL_DAYS",
        "SAS_TTL_SECONDS",
        "SESSION_TTL_SECONDS",
        "IDEMPOTENCY_TTL_HOURS",
        "SMS_RATE_PER_MINUTE",
        "SMS_MAX_ATTEMPTS",
        "CLAMD_TIMEOUT_SECONDS",
        "DEFENDER_VERDICT_TIMEOUT_SECONDS",
    ],
)
@pytest.mark.parametrize("bad", ["abc", "3.5", "1e3", "0", "-1", "5 MB"])
def test_bad_whole_numbers_raise_settings_error(name: str, bad: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({name: bad})


def test_the_upload_limit_is_the_larger_of_the_two_limits() -> None:
    assert load_settings({}).upload_limit == 20971520
    # An operator who raises the attachment limit past the upload limit still gets uploads that big.
    assert load_settings({"MAX_ATTACHMENT_BYTES": "31457280"}).upload_limit == 31457280
    assert load_settings({"MAX_UPLOAD_BYTES": "5242880"}).upload_limit == 5242880


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


def test_session_lifetime_is_capped_at_15_minutes() -> None:
    assert load_settings({"SESSION_TTL_SECONDS": "900"}).session_ttl_seconds == 900
    assert load_settings({"SESSION_TTL_SECONDS": "3600"}).session_ttl_seconds == 900


@pytest.mark.parametrize("value", ["true", "TRUE", "True", "1", "yes", "on", " true "])
def test_flag_on(value: str) -> None:
    assert load_settings({"ALLOW_DRAMA_NUMBERS": value}).allow_drama_numbers is True


@pytest.mark.parametrize("value", ["false", "0", "no", "off", ""])
def test_flag_off(value: str) -> None:
    assert load_settings({"ALLOW_DRAMA_NUMBERS": value}).allow_drama_numbers is False


def test_delivery_reports_flag_defaults_on_and_can_be_switched_off() -> None:
    assert load_settings({}).sms_delivery_reports is True
    assert load_settings({"SMS_DELIVERY_REPORTS": "false"}).sms_delivery_reports is False


def test_allowed_countries_list() -> None:
    assert load_settings({"ALLOWED_COUNTRIES": "gb, ie ,,FR"}).allowed_countries == ("GB", "IE", "FR")


DOB_KEY = "ab" * 16  # exactly the 32-character minimum
SESSION = "c2Vzc2lvbi1rZXktZm9yLXRlc3RzLW9ubHk="


def test_secrets_are_the_bytes_of_their_text_and_not_in_repr() -> None:
    s = load_settings({"DOB_HASH_KEY": f" {DOB_KEY} ", "SESSION_KEY": SESSION})
    assert s.dob_hash_key.reveal() == DOB_KEY.encode()
    assert s.session_key.reveal() == SESSION.encode()
    s.check_secrets()  # both usable: no error
    assert DOB_KEY not in repr(s)
    assert SESSION[:10] not in repr(s)
    assert DOB_KEY not in repr(s.dob_hash_key)


REFERENCE = "@Microsoft.KeyVault(SecretUri=https://kv-enclose.vault.azure.net/secrets/dob-hash-key/)"


@pytest.mark.parametrize("name", ["DOB_HASH_KEY", "SESSION_KEY"])
@pytest.mark.parametrize(
    ("value", "why"),
    [
        (None, "is not set"),
        ("   ", "is not set"),
        (REFERENCE, "is an unresolved Key Vault reference"),
        ("a" * 31, "is shorter than 32 characters"),
    ],
)
def test_an_unusable_secret_loads_and_fails_only_where_it_is_used(
    name: str, value: str | None, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Loading never fails for a secret: the app must index while App Service has not resolved
    # a Key Vault reference yet. Using it is a 503 whose log line names the setting, not its value.
    env = {"DOB_HASH_KEY": DOB_KEY, "SESSION_KEY": SESSION}
    if value is None:
        del env[name]
    else:
        env[name] = value
    s = load_settings(env)
    unusable = s.dob_hash_key if name == "DOB_HASH_KEY" else s.session_key
    usable = s.session_key if name == "DOB_HASH_KEY" else s.dob_hash_key
    assert usable.reveal()
    with caplog.at_level(logging.ERROR, logger="enclose.settings"):
        with pytest.raises(SecretUnavailable) as raised:
            unusable.reveal()
        with pytest.raises(SecretUnavailable):
            s.check_secrets()
    assert raised.value.status == 503 and raised.value.setting == name
    assert isinstance(raised.value, ServiceUnavailable)
    assert name not in raised.value.detail  # the caller is told to try later; the name is for the log
    logged = caplog.text
    assert f"{name} {why}" in logged
    assert DOB_KEY not in logged and SESSION not in logged and "a" * 31 not in logged
    assert "@Microsoft.KeyVault" not in logged and "kv-enclose" not in logged


def test_a_secret_of_exactly_the_minimum_length_is_usable() -> None:
    assert load_settings({"DOB_HASH_KEY": "x" * 32}).dob_hash_key.reveal() == b"x" * 32


def test_an_empty_environment_has_no_usable_secret() -> None:
    s = load_settings({})
    with pytest.raises(SecretUnavailable, match="try again later"):
        s.check_secrets()


def test_text_settings() -> None:
    s = load_settings(
        {
            "PORTAL_BASE_URL": "https://enclose.example/",
            "AUTH_ISSUER": "https://issuer.example/",
            "AUTH_AUDIENCE": "api://other",
            "AUTH_JWKS_URL": "https://issuer.example/keys",
            "SMS_SENDER": "Surgery",
        }
    )
    assert s.portal_base_url == "https://enclose.example"  # no trailing slash: links are base + "/p/..."
    assert s.auth_issuer == "https://issuer.example/"
    assert s.auth_audience == "api://other"
    assert s.auth_jwks_url == "https://issuer.example/keys"
    assert s.sms_sender == "Surgery"


def test_auth_audience_default() -> None:
    assert load_settings({}).auth_audience == "api://enclose"


@pytest.mark.parametrize("scanner", ["clamav", "defender", "ClamAV", "DEFENDER"])
def test_scanner_choices(scanner: str) -> None:
    assert load_settings({"SCANNER": scanner}).scanner == scanner.lower()


def test_unknown_scanner_raises() -> None:
    with pytest.raises(SettingsError, match="SCANNER"):
        load_settings({"SCANNER": "none"})


@pytest.mark.parametrize("source", ["EventGrid", "LogsAndContainerScan"])
def test_blob_trigger_source_choices(source: str) -> None:
    assert load_settings({"BLOB_TRIGGER_SOURCE": source}).blob_trigger_source == source


@pytest.mark.parametrize("source", ["eventgrid", "Polling"])
def test_unknown_blob_trigger_source_raises(source: str) -> None:
    with pytest.raises(SettingsError, match="BLOB_TRIGGER_SOURCE"):
        load_settings({"BLOB_TRIGGER_SOURCE": source})


@pytest.mark.parametrize(
    ("connection_string", "azurite"),
    [
        ("UseDevelopmentStorage=true", True),
        (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=x;"
            "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;",
            True,
        ),
        ("DefaultEndpointsProtocol=https;AccountName=encloseprod;EndpointSuffix=core.windows.net", False),
        ("", False),
    ],
)
def test_uses_azurite(connection_string: str, azurite: bool) -> None:
    assert load_settings({"AzureWebJobsStorage": connection_string}).uses_azurite is azurite


def test_get_settings_reads_the_process_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    get_settings.cache_clear()
    monkeypatch.setenv("MAX_SEGMENTS", "4")
    try:
        first = get_settings()
        assert first.max_segments == 4
        monkeypatch.setenv("MAX_SEGMENTS", "5")
        assert get_settings() is first
    finally:
        get_settings.cache_clear()


def test_settings_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        load_settings({}).max_segments = 10  # type: ignore[misc]


def test_link_domains_are_lower_cased_and_checked() -> None:
    assert load_settings({}).allowed_link_domains == ("nhs.uk", "gov.uk")
    assert load_settings({"ALLOWED_LINK_DOMAINS": " NHS.UK, *.Example.org ,"}).allowed_link_domains == (
        "nhs.uk",
        "example.org",
    )
    for bad in ("localhost", "https://nhs.uk", "nhs uk.com"):
        with pytest.raises(SettingsError, match="ALLOWED_LINK_DOMAINS"):
            load_settings({"ALLOWED_LINK_DOMAINS": bad})


def test_sending_limits_have_safe_defaults() -> None:
    defaults = load_settings({})
    assert (defaults.org_sms_per_minute, defaults.org_daily_sms_quota) == (60, 2000)
    # One organisation can never take more than a tenth of the ACS rate every practice shares.
    assert defaults.org_sms_per_minute * 10 <= defaults.sms_rate_per_minute


@pytest.mark.parametrize("schedule", ["0 30 2 * * *", "0 */5 * * * *", "0 0 1,13 * * 1-5", "  0  30 2 * * *  "])
def test_a_template_rescan_schedule_is_six_ncrontab_fields(schedule: str) -> None:
    settings = load_settings({"TEMPLATE_RESCAN_SCHEDULE": schedule})
    assert settings.template_rescan_schedule == " ".join(schedule.split())
    assert load_settings({}).template_rescan_schedule == "0 30 2 * * *"


@pytest.mark.parametrize("schedule", ["30 2 * * *", "0 30 2 * * * *", "daily", "0 30 2 ? * MON", "00:05:00"])
def test_a_schedule_that_is_not_six_ncrontab_fields_is_refused(schedule: str) -> None:
    with pytest.raises(SettingsError, match="TEMPLATE_RESCAN_SCHEDULE"):
        load_settings({"TEMPLATE_RESCAN_SCHEDULE": schedule})
