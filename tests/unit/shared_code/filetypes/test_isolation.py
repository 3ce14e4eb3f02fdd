"""Turns at the isolation workers (the worker processes themselves are tested in
tests/integration/shared_code/test_filetypes_isolation.py): an upload waiting for its answer
goes before the scans' backlog, and no more callers than workers ever hold a turn."""

from __future__ import annotations

import threading

from shared_code.filetypes.isolation import _Slots


def _waiting(slots: _Slots, count: int) -> None:
    """Block until `count` callers are waiting on `slots` (they wait on its condition)."""
    with slots._cond:
        while slots._waiting < count:
            slots._cond.wait(0.01)


def test_an_upload_takes_the_next_turn_before_scans_that_waited_longer() -> None:
    slots = _Slots(1)
    order: list[str] = []

    def take(name: str, urgent: bool) -> None:
        with slots.taken(urgent=urgent):
            order.append(name)

    with slots.taken(urgent=False):
        scans = [threading.Thread(target=take, args=(f"scan{i}", False)) for i in range(3)]
        for thread in scans:
            thread.start()
        _waiting(slots, 3)
        upload = threading.Thread(target=take, args=("upload", True))
        upload.start()
        _waiting(slots, 4)
    for thread in [*scans, upload]:
        thread.join(timeout=30)
    assert order[0] == "upload"
    assert sorted(order[1:]) == ["scan0", "scan1", "scan2"]


def test_never_more_turns_than_workers() -> None:
    slots = _Slots(2)
    lock = threading.Lock()
    holding = 0
    most = 0

    def take(urgent: bool) -> None:
        nonlocal holding, most
        for _ in range(50):
            with slots.taken(urgent=urgent):
                with lock:
                    holding += 1
                    most = max(most, holding)
                with lock:
                    holding -= 1

    threads = [threading.Thread(target=take, args=(i % 2 == 0,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert most <= 2
    assert slots._free == 2 and slots._urgent_waiting == 0
