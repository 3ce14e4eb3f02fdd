"""The dev token command and the local secrets behind it (contract: Commands)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jwt
import pytest

from devstack.devtoken import make_token
from devstack.localsecrets import (
    LOCAL_AUDIENCE,
    LOCAL_ISSUER,
    LOCAL_ROLE,
    ensure_local_secrets,
    local_settings,
    request_body_limit,
)
from devstack.ports import Ports
from shared_code.auth import authenticate
from shared_code.errors import Forbidden, Unauthorized
from shared_code.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[3]


def _devtoken(**env: str) -> str:
    """What `python -m devstack.devtoken --org A12345 --user gp1` prints, run for real as the README does."""
    return subprocess.run(
        [sys.executable, "-m", "devstack.devtoken", "--org", "A12345", "--user", "gp1"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_the_command_prints_one_token_and_nothing_else(tmp_path: Path) -> None:
    # The command uses the repository's .local/ unless ENCLOSE_LOCAL_DIR moves it.
    out = _devtoken()
    lines = out.splitlines()
    assert len(lines) == 1 and out.endswith("\n")
    claims = jwt.decode(lines[0], options={"verify_signature": False})
    assert claims["org"] == "A12345" and claims["sub"] == "gp1"
    assert claims["iss"] == LOCAL_ISSUER and claims["aud"] == LOCAL_AUDIENCE
    assert claims["nbf"] <= claims["iat"] < claims["exp"]
    assert claims["roles"] == [LOCAL_ROLE]


def test_a_dev_token_passes_the_apps_check_with_the_local_settings(tmp_path: Path) -> None:
    secrets = ensure_local_secrets(tmp_path / ".local")
    values = local_settings(secrets, Ports())
    settings = load_settings({**values})
    principal = authenticate(f"Bearer {make_token('b99999', 'gp2', local_dir=tmp_path / '.local')}", settings)
    assert (principal.org, principal.user) == ("B99999", "gp2")


def test_the_local_settings_require_the_role_the_dev_tokens_carry(tmp_path: Path) -> None:
    secrets = ensure_local_secrets(tmp_path / ".local")
    settings = load_settings(local_settings(secrets, Ports()))
    assert settings.auth_required_role == LOCAL_ROLE == Settings().auth_required_role
    roleless = make_token("A12345", "gp1", local_dir=tmp_path / ".local", roles=())
    assert "roles" not in jwt.decode(roleless, options={"verify_signature": False})
    with pytest.raises(Forbidden):
        authenticate(f"Bearer {roleless}", settings)


def test_the_local_host_body_limit_is_the_upload_limit_plus_multipart_overhead(tmp_path: Path) -> None:
    values = local_settings(ensure_local_secrets(tmp_path / ".local"), Ports())
    limit = int(values["FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"])
    # The largest upload (MAX_UPLOAD_BYTES: a PDF or picture, then made to fit) plus multipart overhead.
    assert limit == request_body_limit() == load_settings(values).upload_limit + 64 * 1024 == 20 * 1024 * 1024 + 65536


def test_a_token_from_another_key_is_refused(tmp_path: Path) -> None:
    ours = ensure_local_secrets(tmp_path / "ours")
    settings = load_settings(local_settings(ours, Ports()))
    foreign = make_token("A12345", "gp1", local_dir=tmp_path / "theirs")
    with pytest.raises(Unauthorized):
        authenticate(f"Bearer {foreign}", settings)


def test_secrets_are_made_once_and_kept(tmp_path: Path) -> None:
    first = ensure_local_secrets(tmp_path / ".local")
    before = {name: first.value(name) for name in ("dob-hash-key", "session-key", "sms-access-key")}
    jwks = json.loads(first.jwks.read_text())
    again = ensure_local_secrets(tmp_path / ".local")
    assert {name: again.value(name) for name in before} == before
    assert json.loads(again.jwks.read_text()) == jwks
    assert oct(first.jwt_private_key.stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / ".local").stat().st_mode & 0o777) == "0o700"


def test_the_command_signs_with_the_keys_under_enclose_local_dir(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    out = _devtoken(ENCLOSE_LOCAL_DIR=str(tmp_path))
    # A stack started with the same ENCLOSE_LOCAL_DIR accepts it: it verifies with that directory's key.
    key = load_pem_private_key(ensure_local_secrets(tmp_path).jwt_private_key.read_bytes(), password=None)
    claims = jwt.decode(out.strip(), key.public_key(), algorithms=["RS256"], audience=LOCAL_AUDIENCE)
    assert claims["org"] == "A12345"
