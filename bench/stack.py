"""A whole local stack (and its clamd) on free ports, for one benchmark run."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devstack.clamd import ClamdProcess, start_clamd
from devstack.ports import Ports
from tests.support.stack import RunningStack


@contextmanager
def local_stack() -> Iterator[tuple[RunningStack, ClamdProcess]]:
    """Start clamd and `python -m devstack.run` in a temp folder; stop both afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        clamd = start_clamd(Path(tmp) / "clamd", include_system_signatures=False)
        ports = Ports.free()
        local = Path(tmp) / "local"
        env = {**os.environ, **ports.env(), "ENCLOSE_LOCAL_DIR": str(local), "CLAMD_ADDRESS": clamd.address}
        stack = RunningStack(ports, local, Path(tmp) / "stack.log", env=env)
        stack.start()
        try:
            yield stack, clamd
        finally:
            stack.stop()
            clamd.stop()
