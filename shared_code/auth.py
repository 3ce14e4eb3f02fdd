"""Bearer-token authentication for the toolbar API.

Tokens are JWTs signed by the configured issuer (Microsoft Entra ID in Azure, the
devstack issuer locally); keys come from the issuer's JWKS. The organisation is the
`org` claim (an ODS code), the user is `sub`.

The audience may be any of AUTH_AUDIENCE's comma-separated values: Entra ID puts the API's
Application ID URI in a v1 token and its client id in a v2 token. A token that passes every
check but lacks the app role AUTH_REQUIRED_ROLE in its `roles` claim is 403, not 401: the
caller is known, just not allowed to send.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from shared_code.errors import Forbidden, Unauthorized
from shared_code.settings import Settings

_ODS_CODE = re.compile(r"[A-Z0-9]{3,10}")
_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256"]
_clients: dict[str, object] = {}
_lock = threading.Lock()

# The issuer's key set is fetched again once it is this old (an hour: well inside a day, so a
# key Entra ID withdraws stops being trusted the same day). An unknown `kid` forces one early
# refetch (key rollover), at most once per cooldown so junk tokens cannot hammer the endpoint.
JWKS_LIFESPAN_SECONDS = 3600
JWKS_REFETCH_COOLDOWN_SECONDS = 30
JWKS_TIMEOUT_SECONDS = 10
# PyJWKClient's per-`kid` key cache is an LRU with no expiry: a key in it would be trusted until
# evicted, however long ago the issuer withdrew it. It stays off; the key set cache above is the
# only cache, one set per JWKS URL, refreshed by age.
JWKS_CACHE_KEYS = False
JWKS_MAX_CACHED_KEYS = 16


@dataclass(frozen=True)
class Principal:
    """Who is calling: their organisation (ODS code) and user id."""

    org: str
    user: str
    org_name: str | None = None


class _FileJwks:
    """A JWKS read from a local file (the devstack issuer); PyJWKClient fetches only http(s)."""

    def __init__(self, path: str) -> None:
        import jwt

        with open(path, encoding="utf-8") as f:
            self._keys = jwt.PyJWKSet.from_json(f.read())

    def get_signing_key_from_jwt(self, token: str):  # -> jwt.PyJWK
        import jwt

        kid = jwt.get_unverified_header(token).get("kid")
        for key in self._keys.keys:
            if key.key_id == kid:
                return key
        raise jwt.InvalidTokenError("unknown signing key")


def _jwks_client(url: str):  # -> jwt.PyJWKClient | _FileJwks
    import jwt

    with _lock:
        client = _clients.get(url)
        if client is None:
            if url.startswith("file:"):
                from urllib.parse import unquote, urlparse

                client = _FileJwks(unquote(urlparse(url).path))
            else:
                client = jwt.PyJWKClient(
                    url,
                    cache_keys=JWKS_CACHE_KEYS,
                    max_cached_keys=JWKS_MAX_CACHED_KEYS,
                    cache_jwk_set=True,
                    lifespan=JWKS_LIFESPAN_SECONDS,
                    timeout=JWKS_TIMEOUT_SECONDS,
                    cooldown_duration=JWKS_REFETCH_COOLDOWN_SECONDS,
                )
            _clients[url] = client
        return client


def audiences(settings: Settings) -> list[str]:
    """The audiences a token may name: AUTH_AUDIENCE split at commas."""
    return [audience.strip() for audience in settings.auth_audience.split(",") if audience.strip()]


def has_role(claims: dict[str, object], role: str) -> bool:
    """Whether the `roles` claim (a list of app role values, case-sensitive) includes `role`."""
    roles = claims.get("roles")
    if isinstance(roles, str):  # some issuers give a lone role as a string
        roles = [roles]
    return isinstance(roles, list) and role in roles


def authenticate(authorization: str | None, settings: Settings) -> Principal:
    """Check an `Authorization: Bearer` header and return the caller.

    Raises Unauthorized (401) for a missing or invalid token, Forbidden (403) for a valid token
    without the required app role.
    """
    import jwt

    if not authorization or not authorization.lower().startswith("bearer "):
        raise Unauthorized("Sign in: this request needs a bearer token.")
    token = authorization[7:].strip()
    if not settings.auth_jwks_url or not settings.auth_issuer:
        raise Unauthorized("Token checking is not configured.")
    try:
        key = _jwks_client(settings.auth_jwks_url).get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key.key,
            algorithms=_ALGORITHMS,
            audience=audiences(settings),
            issuer=settings.auth_issuer,
            options={"require": ["exp", "iss", "aud", "sub"]},
            leeway=30,
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The token has expired: sign in again.") from None
    except (jwt.PyJWKClientConnectionError, OSError):
        raise Unauthorized("The token could not be checked.") from None
    except jwt.PyJWTError:
        raise Unauthorized("The token is not valid.") from None
    org = claims.get("org")
    org = org.upper() if isinstance(org, str) else ""
    if not _ODS_CODE.fullmatch(org):
        raise Unauthorized("The token names no organisation.")
    if not has_role(claims, settings.auth_required_role):
        raise Forbidden("Your account is not allowed to send documents: ask your administrator for access.")
    name = claims.get("org_name")
    return Principal(org=org, user=str(claims["sub"]), org_name=str(name) if name else None)
