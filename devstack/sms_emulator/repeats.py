"""What the emulator records of each repeatable request, and how ACS treats a repeat of one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: How ACS treats a repeat of a request it recorded (Microsoft's "Repeatability of requests" page for
#: ACS: a repeat of a request whose answer was 2xx or 4xx gets that answer again; one whose answer
#: was 5xx is re-executed; one still in progress gets 409). No public recording shows what ACS SMS
#: does, so both are modelled: "replay" returns the recorded answer whatever the first request was
#: answered with; "reexecute" follows the page, and sends the text again after an accepted-then-5xx.
REPEAT_MODES = ("replay", "reexecute")


@dataclass
class Recorded:
    """One recorded request: what answers a repeat of it."""

    fingerprint: str
    item: dict[str, Any]
    answered: int  # the HTTP status the request that recorded it was answered with
    started: float  # time.monotonic() when that request was taken
    held_until: float  # ...and until when a time-out fault holds it


@dataclass
class RepeatStats:
    """What repeats of recorded requests met: a 409 (still in progress), the recorded answer, a re-execution."""

    in_progress: int = 0
    replayed: int = 0
    reexecuted: int = 0

    def as_json(self) -> dict[str, int]:
        """The counts as `GET /control/repeats` shows them."""
        return {"inProgress": self.in_progress, "replayed": self.replayed, "reexecuted": self.reexecuted}
