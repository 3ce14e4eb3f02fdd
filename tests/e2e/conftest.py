"""The whole local stack (`python -m devstack.run`) started as a process on free ports."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from devstack.ports import Ports
from tests.support.stack import RunningStack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, clamd_address: str) -> Iterator[RunningStack]:
    """The whole stack for the e2e session; its log is printed when it fails to start."""
    ports = Ports.free()
    local_dir = tmp_path_factory.mktemp("local")
    env = {**os.environ, **ports.env(), "ENCLOSE_LOCAL_DIR": str(local_dir), "CLAMD_ADDRESS": clamd_address}
    running = RunningStack(ports, local_dir, local_dir.parent / f"{local_dir.name}-stack.log", env=env)
    running.start()
    try:
        yield running
    finally:
        running.stop()
