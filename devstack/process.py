"""Child processes of the local stack that never outlive it."""

from __future__ import annotations

import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """For `preexec_fn`: the kernel sends the child SIGTERM when its parent dies, even by SIGKILL,
    so a killed stack leaves no Azurite or clamd holding its ports."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: the parent's clean stop still ends its children
        pass
