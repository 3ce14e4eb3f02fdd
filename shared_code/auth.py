"""Bearer-token authentication for the toolbar API.

Tokens are JWTs signed by the configured issuer (Microsoft Entra ID in Azure, the
devstack issuer locally); keys come from the issuer's JWKS. The organisation is the
`org` claim (an ODS code), the user is `sub`.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from shared_code.errors import Unauthorized
from shared_code.settings import Settings

_ODS_CODE = re.compile(r"[A-Z0-9]{3,10}")
_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256"]
_clients: dict[str, object] = {}
_lock = threading.Lock()


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
                # Keys are cached for an hour; an unknown `kid` triggers one refetch (key rollover).
                client = jwt.PyJWKClient(url, cache_keys=True, lifespan=3600, timeout=10)
            _clients[url] = client
        return client


def authenticate(authorization: str | None, settings: Settings) -> Principal:
    """Check an `Authorization: Bearer` header and return the caller, or raise Unauthorized (401)."""
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
            audience=settings.auth_audience,
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
    name = claims.get("org_name")
    return Principal(org=org, user=str(claims["sub"]), org_name=str(name) if name else None)
