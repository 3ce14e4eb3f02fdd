"""Fixtures shared by the whole suite: real Azurite, settings with local secrets, a storage."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devstack.azurite import azurite_binary, connection_string, start_azurite  # noqa: E402
from devstack.clamd import ClamdProcess  # noqa: E402
from devstack.ports import Ports  # noqa: E402
from tests.support.components import missing  # noqa: E402


@dataclass(frozen=True)
class AzuriteInstance:
    """A running Azurite for the test session."""

    ports: Ports
    connection_string: str


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteInstance]:
    """One Azurite for the session, on free ports, with its data in a temp folder."""
    if azurite_binary() is None:
        missing("Azurite", "run `npm ci` (make test does)")
    ports = Ports.free()
    proc = start_azurite(tmp_path_factory.mktemp("azurite"), ports)
    try:
        yield AzuriteInstance(ports, connection_string(ports))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def base_env(azurite: AzuriteInstance) -> dict[str, str]:
    """App settings against the session's Azurite, with fresh secrets."""
    return {
        "AzureWebJobsStorage": azurite.connection_string,
        "DOB_HASH_KEY": secrets.token_hex(32),
        "SESSION_KEY": secrets.token_hex(32),
        "ALLOW_DRAMA_NUMBERS": "true",
        "PORTAL_BASE_URL": "http://127.0.0.1:7071",
    }


@pytest.fixture(scope="session")
def settings(base_env: dict[str, str]):
    """Settings for integration tests of shared_code against Azurite."""
    from shared_code.settings import load_settings

    return load_settings(base_env)


@pytest.fixture(scope="session")
def storage(settings):
    """A Storage on the session's Azurite."""
    from shared_code.storage import Storage

    return Storage(settings)


@pytest.fixture(scope="session")
def session_clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClamdProcess]:
    """One clamd for the session (the project's test signatures); a test may teach it a signature
    of its own (`tests.support.clamd.add_signature`), as a signature update would."""
    from devstack.clamd import clamd_available
    from tests.support.clamd import start_clamd

    if not clamd_available():
        missing("ClamAV clamd", "apt-get install clamav-daemon (make test does, as root)")
    clamd = start_clamd(tmp_path_factory.mktemp("clamd"))
    try:
        yield clamd
    finally:
        clamd.stop()


@pytest.fixture(scope="session")
def clamd_address(session_clamd: ClamdProcess) -> str:
    """The session's clamd as a CLAMD_ADDRESS."""
    return session_clamd.address
