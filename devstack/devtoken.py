"""Print one signed bearer token for the local issuer: `python -m devstack.devtoken --org A12345 --user gp1`."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from devstack.localsecrets import (
    DEFAULT_LOCAL_DIR,
    LOCAL_AUDIENCE,
    LOCAL_ISSUER,
    LOCAL_ROLE,
    ensure_local_secrets,
    local_dir_from_env,
)


def make_token(
    org: str,
    user: str,
    *,
    org_name: str | None = None,
    ttl_seconds: int = 3600,
    local_dir: Path = DEFAULT_LOCAL_DIR,
    issuer: str = LOCAL_ISSUER,
    audience: str = LOCAL_AUDIENCE,
    not_before: int | None = None,
    roles: tuple[str, ...] = (LOCAL_ROLE,),
) -> str:
    """An RS256 JWT for the local issuer, signed with the key under `local_dir`.

    `roles` is the `roles` claim (Entra ID's app roles); the app requires AUTH_REQUIRED_ROLE in it.
    Pass `()` for a token without it.
    """
    import jwt

    secrets = ensure_local_secrets(local_dir)
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": user,
        "org": org,
        "iat": now,
        "nbf": now if not_before is None else not_before,
        "exp": now + ttl_seconds,
    }
    if roles:
        claims["roles"] = list(roles)
    if org_name:
        claims["org_name"] = org_name
    return jwt.encode(claims, secrets.jwt_private_key.read_bytes(), algorithm="RS256", headers={"kid": "devstack-1"})


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: prints the token and nothing else on stdout."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--org", required=True, help="ODS code of the practice, e.g. A12345")
    parser.add_argument("--user", required=True, help="user id (the `sub` claim)")
    parser.add_argument("--name", default=None, help="practice name shown to patients")
    parser.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    args = parser.parse_args(argv)
    # The same keys as the stack that `make run` started, wherever ENCLOSE_LOCAL_DIR moved them.
    token = make_token(
        args.org.upper(), args.user, org_name=args.name, ttl_seconds=args.ttl, local_dir=local_dir_from_env()
    )
    sys.stdout.write(token + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
