"""Bearer tokens: signature against a JWKS (a file:// URI here), iss, aud, exp, nbf, the org claim, the app role."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from shared_code import auth
from shared_code.auth import Principal, authenticate
from shared_code.errors import Forbidden, Unauthorized
from shared_code.settings import Settings, load_settings

ISSUER = "https://login.example/tenant/v2.0"
AUDIENCE = "api://enclose"
CLIENT_ID = "6f1c2a7e-3b4d-4e5f-8a9b-0c1d2e3f4a5b"  # a v2 token's audience: the API's client id
ROLE = "Messages.Send"
_DROP = object()  # a claim value meaning "leave the claim out"


@dataclass(frozen=True)
class Issuer:
    """A signing key published in a JWKS file, and settings that trust it."""

    key: rsa.RSAPrivateKey
    kid: str
    settings: Settings


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def issuer(tmp_path: Path, signing_key: rsa.RSAPrivateKey) -> Issuer:
    return make_issuer(tmp_path, signing_key)


def make_issuer(tmp_path: Path, signing_key: rsa.RSAPrivateKey, **environment: str) -> Issuer:
    # A fresh kid and file per test: the JWKS client is cached per URL inside shared_code.auth.
    kid = uuid.uuid4().hex
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(signing_key.public_key(), as_dict=True)
    jwk.update(kid=kid, use="sig", alg="RS256")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk]}))
    settings = load_settings(
        {
            "AUTH_JWKS_URL": jwks.as_uri(),
            "AUTH_ISSUER": ISSUER,
            "AUTH_AUDIENCE": AUDIENCE,
            **environment,
        }
    )
    return Issuer(signing_key, kid, settings)


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "gp1",
        "org": "A12345",
        "iat": now,
        "nbf": now - 5,
        "exp": now + 600,
        "roles": [ROLE],
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not _DROP}


def token(
    issuer: Issuer,
    key: rsa.RSAPrivateKey | None = None,
    kid: str | None = None,
    algorithm: str = "RS256",
    **changes: Any,
) -> str:
    return jwt.encode(claims(**changes), key or issuer.key, algorithm=algorithm, headers={"kid": kid or issuer.kid})


def refused(header: str | None, settings: Settings) -> Unauthorized:
    with pytest.raises(Unauthorized) as caught:
        authenticate(header, settings)
    assert caught.value.status == 401
    assert caught.value.problem()["status"] == 401
    return caught.value


# -- accepted --------------------------------------------------------------------------------------


def test_good_token(issuer: Issuer) -> None:
    principal = authenticate("Bearer " + token(issuer), issuer.settings)
    assert principal == Principal(org="A12345", user="gp1", org_name=None)


def test_org_name_and_lower_case_org(issuer: Issuer) -> None:
    principal = authenticate("Bearer " + token(issuer, org="b82001", org_name="Riverside Surgery"), issuer.settings)
    assert principal == Principal(org="B82001", user="gp1", org_name="Riverside Surgery")


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
def test_scheme_is_case_insensitive(issuer: Issuer, scheme: str) -> None:
    assert authenticate(f"{scheme} {token(issuer)}", issuer.settings).org == "A12345"


def test_expired_within_the_clock_skew_leeway_is_accepted(issuer: Issuer) -> None:
    # PyJWT allows 30 s of leeway; 20 s is well inside it.
    now = int(time.time())
    assert authenticate("Bearer " + token(issuer, exp=now - 20), issuer.settings).user == "gp1"


# -- refused -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_header(issuer: Issuer, header: str | None) -> None:
    refused(header, issuer.settings)


def test_not_bearer(issuer: Issuer) -> None:
    good = token(issuer)
    for header in [f"Basic {good}", good, f"Token {good}", f"Bearer{good}", "Bearer", "Bearer "]:
        refused(header, issuer.settings)


def test_wrong_signature_from_another_key_with_the_same_kid(issuer: Issuer, other_key: rsa.RSAPrivateKey) -> None:
    assert refused("Bearer " + token(issuer, key=other_key), issuer.settings).detail == "The token is not valid."


def test_unknown_kid(issuer: Issuer, other_key: rsa.RSAPrivateKey) -> None:
    refused("Bearer " + token(issuer, key=other_key, kid="someone-else"), issuer.settings)


def test_tampered_payload(issuer: Issuer) -> None:
    header, _, signature = token(issuer).split(".")
    forged = jwt.utils.base64url_encode(json.dumps(claims(org="Z99999")).encode()).decode()
    refused(f"Bearer {header}.{forged}.{signature}", issuer.settings)


def test_unsigned_token(issuer: Issuer) -> None:
    unsigned = jwt.encode(claims(), None, algorithm="none", headers={"kid": issuer.kid})
    refused("Bearer " + unsigned, issuer.settings)


def test_hmac_token_keyed_with_the_public_key(issuer: Issuer) -> None:
    # Algorithm confusion: only asymmetric algorithms are accepted.
    forged = jwt.encode(
        claims(), b"public-key-bytes-used-as-a-shared-secret!", algorithm="HS256", headers={"kid": issuer.kid}
    )
    refused("Bearer " + forged, issuer.settings)


def test_expired(issuer: Issuer) -> None:
    now = int(time.time())
    error = refused("Bearer " + token(issuer, exp=now - 60, nbf=now - 600, iat=now - 600), issuer.settings)
    assert "expired" in error.detail


def test_not_yet_valid(issuer: Issuer) -> None:
    refused("Bearer " + token(issuer, nbf=int(time.time()) + 120), issuer.settings)


@pytest.mark.parametrize("iss", ["https://evil.example/tenant/v2.0", ISSUER + "/", ""])
def test_wrong_issuer(issuer: Issuer, iss: str) -> None:
    refused("Bearer " + token(issuer, iss=iss), issuer.settings)


@pytest.mark.parametrize("aud", ["api://other", "", ["api://other"]])
def test_wrong_audience(issuer: Issuer, aud: Any) -> None:
    refused("Bearer " + token(issuer, aud=aud), issuer.settings)


@pytest.mark.parametrize("claim", ["exp", "iss", "aud", "sub"])
def test_required_claims(issuer: Issuer, claim: str) -> None:
    refused("Bearer " + token(issuer, **{claim: _DROP}), issuer.settings)


@pytest.mark.parametrize("org", [_DROP, "", "AB", "A1234567890", "A12-345", "A12 345", "A12345\n", None, "ÄÖÜ123"])
def test_missing_or_invalid_org(issuer: Issuer, org: Any) -> None:
    error = refused("Bearer " + token(issuer, org=org), issuer.settings)
    assert error.detail == "The token names no organisation."


def test_garbage_token(issuer: Issuer) -> None:
    for garbage in ["Bearer x", "Bearer a.b.c", "Bearer " + "é" * 20]:
        refused(garbage, issuer.settings)


def test_not_configured() -> None:
    assert refused("Bearer x.y.z", Settings()).detail == "Token checking is not configured."


def test_jwks_that_cannot_be_fetched(tmp_path: Path, signing_key: rsa.RSAPrivateKey) -> None:
    missing = tmp_path / "missing.json"
    settings = load_settings({"AUTH_JWKS_URL": missing.as_uri(), "AUTH_ISSUER": ISSUER})
    good = jwt.encode(claims(), signing_key, algorithm="RS256", headers={"kid": "k"})
    refused("Bearer " + good, settings)


def test_refusals_never_echo_the_token(issuer: Issuer, other_key: rsa.RSAPrivateKey) -> None:
    bad = token(issuer, key=other_key)
    error = refused("Bearer " + bad, issuer.settings)
    assert bad not in str(error)
    assert bad.split(".")[1] not in json.dumps(error.problem())


# -- audiences: AUTH_AUDIENCE may list several (Entra ID v1 and v2 tokens name the API differently) -------


@pytest.mark.parametrize("aud", [AUDIENCE, CLIENT_ID, [CLIENT_ID], ["api://other", AUDIENCE]])
def test_any_configured_audience_is_accepted(tmp_path: Path, signing_key: rsa.RSAPrivateKey, aud: Any) -> None:
    both = make_issuer(tmp_path, signing_key, AUTH_AUDIENCE=f"{AUDIENCE}, {CLIENT_ID}")
    assert authenticate("Bearer " + token(both, aud=aud), both.settings).org == "A12345"


@pytest.mark.parametrize("aud", ["api://other", "", [], f"{AUDIENCE},{CLIENT_ID}", CLIENT_ID.upper(), "api://enclose/"])
def test_an_audience_not_configured_is_refused(tmp_path: Path, signing_key: rsa.RSAPrivateKey, aud: Any) -> None:
    both = make_issuer(tmp_path, signing_key, AUTH_AUDIENCE=f"{AUDIENCE},{CLIENT_ID}")
    refused("Bearer " + token(both, aud=aud), both.settings)


def test_only_the_configured_audience_by_default(issuer: Issuer) -> None:
    # The client id is accepted only when AUTH_AUDIENCE names it.
    refused("Bearer " + token(issuer, aud=CLIENT_ID), issuer.settings)


def test_an_audience_list_of_only_commas_accepts_nothing(tmp_path: Path, signing_key: rsa.RSAPrivateKey) -> None:
    nothing = make_issuer(tmp_path, signing_key, AUTH_AUDIENCE=" , ,")
    assert auth.audiences(nothing.settings) == []
    for aud in (AUDIENCE, CLIENT_ID, ""):
        refused("Bearer " + token(nothing, aud=aud), nothing.settings)


# -- the app role: a valid token without it is 403, not 401 ----------------------------------------------


def forbidden(header: str, settings: Settings) -> Forbidden:
    with pytest.raises(Forbidden) as caught:
        authenticate(header, settings)
    assert caught.value.status == 403
    problem = caught.value.problem()
    assert problem["status"] == 403 and problem["type"].endswith("/forbidden")
    return caught.value


@pytest.mark.parametrize(
    "roles", [_DROP, [], None, ["Messages.Read"], ["messages.send"], "Messages.Read", [["Messages.Send"]]]
)
def test_a_valid_token_without_the_role_is_forbidden(issuer: Issuer, roles: Any) -> None:
    good = token(issuer, roles=roles)
    error = forbidden("Bearer " + good, issuer.settings)
    assert good not in str(error) and good.split(".")[1] not in json.dumps(error.problem())


@pytest.mark.parametrize("roles", [[ROLE], ["Messages.Read", ROLE], ROLE])
def test_the_role_among_others_or_alone_is_accepted(issuer: Issuer, roles: Any) -> None:
    assert authenticate("Bearer " + token(issuer, roles=roles), issuer.settings).user == "gp1"


def test_the_required_role_is_a_setting(tmp_path: Path, signing_key: rsa.RSAPrivateKey) -> None:
    assert Settings().auth_required_role == ROLE
    custom = make_issuer(tmp_path, signing_key, AUTH_REQUIRED_ROLE="Enclose.Sender")
    assert custom.settings.auth_required_role == "Enclose.Sender"
    assert authenticate("Bearer " + token(custom, roles=["Enclose.Sender"]), custom.settings).org == "A12345"
    forbidden("Bearer " + token(custom, roles=[ROLE]), custom.settings)


def test_an_invalid_token_is_401_even_with_the_role(issuer: Issuer, other_key: rsa.RSAPrivateKey) -> None:
    refused("Bearer " + token(issuer, key=other_key, roles=[ROLE]), issuer.settings)
    refused("Bearer " + token(issuer, aud="api://other", roles=[ROLE]), issuer.settings)
    refused("Bearer " + token(issuer, org=_DROP, roles=[]), issuer.settings)  # no organisation: not a valid token


# -- the issuer's signing keys: a bounded cache, refetched well within a day -------------------------------


def test_the_jwks_client_refetches_the_key_set_hourly_and_keeps_no_unbounded_key_cache() -> None:
    client = auth._jwks_client(f"https://login.example/{uuid.uuid4().hex}/discovery/v2.0/keys")  # no fetch yet
    assert isinstance(client, jwt.PyJWKClient)
    # The whole key set is cached, and expires after JWKS_LIFESPAN_SECONDS (an hour, at most a day).
    assert client.jwk_set_cache is not None
    assert client.jwk_set_cache.lifespan == auth.JWKS_LIFESPAN_SECONDS == 3600
    assert 0 < client.jwk_set_cache.lifespan <= 24 * 3600
    # PyJWKClient's per-kid LRU has no expiry (a withdrawn key would stay trusted): it is off.
    assert auth.JWKS_CACHE_KEYS is False
    assert not hasattr(client.get_signing_key, "cache_info")
    assert auth.JWKS_MAX_CACHED_KEYS == 16
    assert client.timeout == auth.JWKS_TIMEOUT_SECONDS == 10
    # An unknown kid forces an early refetch at most this often.
    assert client.cooldown_duration == auth.JWKS_REFETCH_COOLDOWN_SECONDS == 30


def test_one_jwks_client_per_url() -> None:
    url = f"https://login.example/{uuid.uuid4().hex}/keys"
    assert auth._jwks_client(url) is auth._jwks_client(url)
    assert auth._jwks_client(url) is not auth._jwks_client(url + "/other")
