"""Document SAS URLs against real Azurite: every field of the SAS, and what it lets its holder do.

Two paths, as in the app: the account-key SAS (storage is Azurite: the session's emulator)
and the user delegation SAS (storage reached over https with an Entra token, as in Azure:
a second Azurite started with `--oauth basic` and a certificate, which issues user delegation
keys for any well-formed token and checks issuer, audience and lifetime but not signatures).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit, urlunsplit

import pytest
import requests

from shared_code import clock
from shared_code.sas import CLOCK_SKEW, DELEGATION_KEY_LIFETIME, document_sas_url
from shared_code.settings import Settings
from shared_code.storage import DOCUMENTS, Storage

DATA = b"%PDF-1.7\n% a fit note\n"
DISPOSITION = "attachment; filename=\"Fit note.pdf\"; filename*=UTF-8''Fit%20note.pdf"
ACCOUNT = "devstoreaccount1"
TENANT_ID = "72f988bf-0000-4000-8000-000000000001"
OBJECT_ID = "5b1f7a5e-0000-4000-8000-00000000000a"
#: The newest user delegation SAS format Azurite 3.35 verifies (see the xfail test below).
AZURITE_UDK_VERSION = "2025-07-05"


def sas_fields(url: str) -> dict[str, str]:
    """The SAS's query fields; each must appear exactly once."""
    query = parse_qs(urlsplit(url).query, keep_blank_values=True, strict_parsing=True)
    assert all(len(values) == 1 for values in query.values()), query
    return {name: values[0] for name, values in query.items()}


def sas_time(value: str) -> datetime:
    """A SAS time field (`2026-01-31T09:00:00Z`)."""
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def with_query(url: str, fields: dict[str, str]) -> str:
    """The URL with its query replaced by these fields."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=urlencode(fields, quote_via=quote)))


def other_blob(url: str, name: str) -> str:
    """The same SAS pointed at another blob in the same container."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rsplit("/", 1)[0] + "/" + name))


def put_document(storage: Storage) -> str:
    """A document blob; returns its name."""
    name = f"A12345/{uuid.uuid4()}"
    storage.container(DOCUMENTS).upload_blob(name, DATA, overwrite=True)
    return name


# -- account-key SAS (Azurite) ------------------------------------------------------------------


def test_account_key_sas_fields(storage: Storage, settings: Settings) -> None:
    name = put_document(storage)
    before = clock.now().replace(microsecond=0)
    url = document_sas_url(
        storage, settings, DOCUMENTS, name, filename_disposition=DISPOSITION, content_type="application/pdf"
    )
    after = clock.now()
    parts = urlsplit(url)
    assert parts.path == f"/{ACCOUNT}/{DOCUMENTS}/{name}"
    fields = sas_fields(url)
    # Nothing more: no identifier (stored policy), no IP range, no account key fields;
    # no `spr` (Azurite is plain http; https-only is the delegation path's, for Azure).
    assert set(fields) == {"sv", "st", "se", "sp", "sr", "rscd", "rsct", "sig"}
    assert fields["sp"] == "r"
    assert fields["sr"] == "b"
    assert fields["rscd"] == DISPOSITION
    assert fields["rsct"] == "application/pdf"
    start, expiry = sas_time(fields["st"]), sas_time(fields["se"])
    assert before - CLOCK_SKEW <= start <= after - CLOCK_SKEW
    assert expiry - start == timedelta(seconds=settings.sas_ttl_seconds) + CLOCK_SKEW
    assert expiry - after <= timedelta(seconds=settings.sas_ttl_seconds)
    assert len(fields["sv"]) == 10 and fields["sv"] >= "2020-12-06"


def test_sas_lifetime_follows_the_setting(storage: Storage, settings: Settings) -> None:
    name = put_document(storage)
    short = replace(settings, sas_ttl_seconds=15)
    fields = sas_fields(
        document_sas_url(
            storage, short, DOCUMENTS, name, filename_disposition=DISPOSITION, content_type="application/pdf"
        )
    )
    assert sas_time(fields["se"]) - sas_time(fields["st"]) == timedelta(seconds=15) + CLOCK_SKEW


def test_account_key_sas_reads_that_blob_with_the_signed_headers(storage: Storage, settings: Settings) -> None:
    name = put_document(storage)
    url = document_sas_url(
        storage, settings, DOCUMENTS, name, filename_disposition=DISPOSITION, content_type="application/pdf"
    )
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.content == DATA
    assert answer.headers["Content-Disposition"] == DISPOSITION
    assert answer.headers["Content-Type"] == "application/pdf"


def test_account_key_sas_does_nothing_else(storage: Storage, settings: Settings) -> None:
    name, neighbour = put_document(storage), put_document(storage)
    url = document_sas_url(
        storage, settings, DOCUMENTS, name, filename_disposition=DISPOSITION, content_type="application/pdf"
    )
    fields = sas_fields(url)
    # Another blob in the same container: the signature covers one blob path.
    assert requests.get(other_blob(url, neighbour.rsplit("/", 1)[1]), timeout=10).status_code == 403
    # No writing, deleting or listing with it.
    put = requests.put(url, data=b"overwritten", headers={"x-ms-blob-type": "BlockBlob"}, timeout=10)
    assert put.status_code == 403
    assert requests.delete(url, timeout=10).status_code == 403
    container = urlsplit(url)._replace(
        path=f"/{ACCOUNT}/{DOCUMENTS}", query=urlencode({**fields, "restype": "container", "comp": "list"})
    )
    assert requests.get(urlunsplit(container), timeout=10).status_code == 403
    # Widening a field breaks the signature.
    assert requests.get(with_query(url, {**fields, "sp": "rw"}), timeout=10).status_code == 403
    assert requests.get(with_query(url, {**fields, "se": "2099-01-01T00:00:00Z"}), timeout=10).status_code == 403
    assert requests.get(with_query(url, {**fields, "rsct": "text/html"}), timeout=10).status_code == 403
    assert storage.container(DOCUMENTS).download_blob(name).readall() == DATA


def test_an_expired_sas_is_refused(storage: Storage, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    name = put_document(storage)
    issued = clock.now() - timedelta(seconds=settings.sas_ttl_seconds) - timedelta(minutes=2)
    monkeypatch.setattr(clock, "now", lambda: issued)
    url = document_sas_url(
        storage, settings, DOCUMENTS, name, filename_disposition=DISPOSITION, content_type="application/pdf"
    )
    monkeypatch.undo()
    assert sas_time(sas_fields(url)["se"]) < clock.now()
    assert requests.get(url, timeout=10).status_code == 403


# -- user delegation SAS (Azurite with OAuth over https) ------------------------------------------


def _b64url(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


class UnsignedEntraToken:
    """A token credential like the managed identity's: an Entra-shaped JWT for Azure Storage.

    Azurite's `--oauth basic` checks the issuer, audience and lifetime but not the signature,
    so the token is unsigned; `oid` and `tid` become the delegation key's `skoid` and `sktid`.
    """

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        now = int(time.time())
        claims = {
            "aud": "https://storage.azure.com",
            "iss": f"https://sts.windows.net/{TENANT_ID}/",
            "iat": now,
            "nbf": now - 60,
            "exp": now + 3600,
            "oid": OBJECT_ID,
            "tid": TENANT_ID,
        }
        return AccessToken(f"{_b64url({'alg': 'none', 'typ': 'JWT'})}.{_b64url(claims)}.", now + 3600)


class EntraStorage(Storage):
    """Storage reached as in Azure (https, a token credential, no account key), at a given endpoint."""

    def __init__(self, settings: Settings, endpoint: str, ca_file: Path) -> None:
        super().__init__(settings)
        self._endpoint_url, self._ca_file, self._client = endpoint, ca_file, None

    @property
    def blob_service(self) -> Any:
        if self._client is None:
            from azure.storage.blob import BlobServiceClient

            self._client = BlobServiceClient(
                self._endpoint_url, credential=UnsignedEntraToken(), connection_verify=str(self._ca_file)
            )
        return self._client


@pytest.fixture(scope="module")
def oauth_azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Azurite's blob service with `--oauth basic` over https; yields (endpoint, CA file)."""
    from devstack.azurite import azurite_binary
    from devstack.localsecrets import ensure_local_secrets
    from devstack.ports import Ports, wait_for_port
    from tests.support.components import missing

    binary = azurite_binary()
    if binary is None:
        missing("Azurite", "run `npm ci` (make test does)")
    folder = tmp_path_factory.mktemp("azurite-oauth")
    # Any self-signed certificate for 127.0.0.1 will do: reuse the one made for the SMS emulator.
    secrets = ensure_local_secrets(folder / "local")
    port = Ports.free().blob
    log = open(folder / "azurite.log", "ab")  # noqa: SIM115 - owned by the child process
    proc = subprocess.Popen(
        [
            str(Path(binary).with_name("azurite-blob")),
            "--location",
            str(folder / "data"),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--oauth",
            "basic",
            "--cert",
            str(secrets.sms_cert),
            "--key",
            str(secrets.sms_key),
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_port(port, timeout=60)
        yield f"https://127.0.0.1:{port}/{ACCOUNT}", secrets.sms_cert
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def entra_storage(oauth_azurite: tuple[str, Path]) -> tuple[Storage, Settings, Path]:
    """Settings as in Azure (an account name, no connection string) and a Storage on the OAuth Azurite."""
    endpoint, ca_file = oauth_azurite
    settings = Settings(storage_account_name=ACCOUNT)
    assert not settings.uses_azurite  # so document_sas_url takes the delegation path
    return EntraStorage(settings, endpoint, ca_file), settings, ca_file


def resign_for_azurite(storage: Storage, fields: dict[str, str], container: str, blob: str) -> dict[str, str]:
    """The same SAS fields signed in the newest user delegation format Azurite 3.35 checks.

    The delegation key is asked for again with the SAS's own `skt`/`ske` (Azurite derives the
    key from them, so it is the key the SAS was signed with). String-to-sign order from
    Microsoft's "Create a user delegation SAS" (version 2025-07-05).
    """
    key = storage.blob_service.get_user_delegation_key(sas_time(fields["skt"]), sas_time(fields["ske"]))
    fields = {**fields, "sv": AZURITE_UDK_VERSION}
    lines = [
        fields["sp"],
        fields["st"],
        fields["se"],
        f"/blob/{ACCOUNT}/{container}/{blob}",
        fields["skoid"],
        fields["sktid"],
        fields["skt"],
        fields["ske"],
        fields["sks"],
        fields["skv"],
        "",
        "",
        "",
        "",
        "",  # authorized/unauthorized object ids, correlation id, delegated tenant/user
        "",
        fields.get("spr", ""),
        fields["sv"],
        fields["sr"],
        "",
        "",  # ip, spr, sv, sr, snapshot, scope
        "",
        fields["rscd"],
        "",
        "",
        fields["rsct"],  # cache control, disposition, encoding, language, type
    ]
    signature = hmac.new(base64.b64decode(key.value), "\n".join(lines).encode(), hashlib.sha256).digest()
    return {**fields, "sig": base64.b64encode(signature).decode()}


def test_user_delegation_sas_fields(entra_storage: tuple[Storage, Settings, Path]) -> None:
    storage, settings, _ = entra_storage
    name = put_document(storage)
    before = clock.now().replace(microsecond=0)
    url = document_sas_url(
        storage, settings, DOCUMENTS, name, filename_disposition=DISPOSITION, content_type="application/pdf"
    )
    after = clock.now()
    parts = urlsplit(url)
    assert parts.scheme == "https"
    assert parts.path == f"/{ACCOUNT}/{DOCUMENTS}/{name}"
    fields = sas_fields(url)
    assert set(fields) == {
        "sv",
        "st",
        "se",
        "sp",
        "spr",
        "sr",
        "rscd",
        "rsct",
        "skoid",
        "sktid",
        "skt",
        "ske",
        "sks",
        "skv",
        "sig",
    }
    assert fields["sp"] == "r"
    assert fields["sr"] == "b"
    assert fields["spr"] == "https"
    assert fields["rscd"] == DISPOSITION
    assert fields["rsct"] == "application/pdf"
    start, expiry = sas_time(fields["st"]), sas_time(fields["se"])
    assert before - CLOCK_SKEW <= start <= after - CLOCK_SKEW
    assert expiry - start == timedelta(seconds=settings.sas_ttl_seconds) + CLOCK_SKEW
    # The key came from the storage service for the identity in the token, and covers the SAS.
    assert (fields["skoid"], fields["sktid"], fields["sks"]) == (OBJECT_ID, TENANT_ID, "b")
    key_start, key_expiry = sas_time(fields["skt"]), sas_time(fields["ske"])
    assert key_start <= start and expiry <= key_expiry
    assert key_expiry - key_start == DELEGATION_KEY_LIFETIME + timedelta(minutes=5)


def test_user_delegation_key_is_reused(entra_storage: tuple[Storage, Settings, Path]) -> None:
    storage, settings, _ = entra_storage
    first, second = (
        sas_fields(
            document_sas_url(
                storage,
                settings,
                DOCUMENTS,
                put_document(storage),
                filename_disposition=DISPOSITION,
                content_type="application/pdf",
            )
        )
        for _ in range(2)
    )
    assert (first["skt"], first["ske"]) == (second["skt"], second["ske"])


def test_user_delegation_sas_reads_that_blob_only(entra_storage: tuple[Storage, Settings, Path]) -> None:
    storage, settings, ca_file = entra_storage
    name, neighbour = put_document(storage), put_document(storage)
    url = document_sas_url(
        storage, settings, DOCUMENTS, name, filename_disposition=DISPOSITION, content_type="application/pdf"
    )
    fields = resign_for_azurite(storage, sas_fields(url), DOCUMENTS, name)
    signed = with_query(url, fields)
    answer = requests.get(signed, verify=ca_file, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.content == DATA
    assert answer.headers["Content-Disposition"] == DISPOSITION
    assert answer.headers["Content-Type"] == "application/pdf"
    assert requests.get(other_blob(signed, neighbour.rsplit("/", 1)[1]), verify=ca_file, timeout=10).status_code == 403
    put = requests.put(signed, data=b"x", headers={"x-ms-blob-type": "BlockBlob"}, verify=ca_file, timeout=10)
    assert put.status_code == 403
    assert requests.get(with_query(url, {**fields, "sp": "rw"}), verify=ca_file, timeout=10).status_code == 403


@pytest.mark.xfail(
    strict=True,
    reason=(
        "azure-storage-blob signs user delegation SAS in a newer format (two more string-to-sign "
        "lines) than Azurite 3.35 verifies; when this passes, drop resign_for_azurite"
    ),
)
def test_user_delegation_sas_as_issued_is_accepted_by_azurite(entra_storage: tuple[Storage, Settings, Path]) -> None:
    storage, settings, ca_file = entra_storage
    url = document_sas_url(
        storage,
        settings,
        DOCUMENTS,
        put_document(storage),
        filename_disposition=DISPOSITION,
        content_type="application/pdf",
    )
    assert requests.get(url, verify=ca_file, timeout=10).status_code == 200
