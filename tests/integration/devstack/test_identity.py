"""The local managed-identity endpoint, driven by azure-identity as the app drives it in Azure."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ManagedIdentityCredential

from devstack.identity import ACS_RESOURCE, API_VERSION, IdentityEndpoint, identity_key, verify_token

#: The scope the ACS SDK asks for (its BearerTokenCredentialPolicy).
ACS_SCOPE = "https://communication.azure.com//.default"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture
def key(tmp_path: Path) -> bytes:
    return identity_key(tmp_path / ".local")


@pytest.fixture
def endpoint(key: bytes) -> Iterator[IdentityEndpoint]:
    with IdentityEndpoint(key) as running:
        yield running


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with _NO_PROXY.open(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_key_is_made_once_and_kept(tmp_path: Path) -> None:
    first = identity_key(tmp_path)
    assert len(first) == 64 and identity_key(tmp_path) == first
    assert (tmp_path / "identity-signing-key").stat().st_mode & 0o077 == 0


def test_azure_identity_gets_a_token_for_acs_through_the_app_service_protocol(
    endpoint: IdentityEndpoint, key: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in endpoint.environ.items():
        monkeypatch.setenv(name, value)

    token = ManagedIdentityCredential().get_token(ACS_SCOPE)

    claims = verify_token(key, token.token, ACS_RESOURCE)
    assert claims["oid"] == endpoint.principal_id and claims["appid"] == endpoint.client_id
    assert 3000 < token.expires_on - time.time() <= 3600
    assert endpoint.tokens_issued == 1


def test_a_wrong_identity_header_gets_no_token(endpoint: IdentityEndpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", endpoint.url)
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-platforms-secret")

    with pytest.raises(ClientAuthenticationError):
        ManagedIdentityCredential().get_token(ACS_SCOPE)
    assert endpoint.tokens_issued == 0


@pytest.mark.parametrize(
    ("query", "header", "status"),
    [
        (f"?api-version={API_VERSION}&resource={ACS_RESOURCE}", None, 401),
        ("?resource=https://communication.azure.com/", "secret", 400),
        (f"?api-version={API_VERSION}", "secret", 400),
        (f"?api-version={API_VERSION}&resource={ACS_RESOURCE}&client_id=someone-else", "secret", 400),
    ],
)
def test_requests_the_platform_would_refuse_are_refused(
    endpoint: IdentityEndpoint, query: str, header: str | None, status: int
) -> None:
    headers = {} if header is None else {"X-IDENTITY-HEADER": endpoint.secret}
    answer, body = _get(endpoint.url + query, headers)
    assert answer == status and "access_token" not in body


def test_a_token_is_for_the_resource_asked_for_only(endpoint: IdentityEndpoint, key: bytes) -> None:
    answer, body = _get(
        f"{endpoint.url}?api-version={API_VERSION}&resource=https://storage.azure.com/",
        {"X-IDENTITY-HEADER": endpoint.secret},
    )
    assert answer == 200 and body["resource"] == "https://storage.azure.com/"
    with pytest.raises(jwt.InvalidAudienceError):
        verify_token(key, body["access_token"], ACS_RESOURCE)
    with pytest.raises(jwt.InvalidSignatureError):
        verify_token(b"another key" * 4, body["access_token"], "https://storage.azure.com/")
