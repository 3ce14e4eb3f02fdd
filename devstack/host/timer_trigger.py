"""The timer trigger: NCRONTAB (six fields, seconds first) or TimeSpan schedules, past-due detection."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from typing import TYPE_CHECKING

from azure.functions.meta import Datum

from devstack.host.config import resolve_setting, timespan
from devstack.host.discovery import FunctionSpec, convert
from devstack.host.invocation import log_outcome

if TYPE_CHECKING:
    from devstack.host.localhost import LocalHost


class TimerRunner:
    """Fires one timer function on its schedule; invocations of one timer never overlap."""

    def __init__(self, host: LocalHost, spec: FunctionSpec) -> None:
        self.host = host
        self.spec = spec
        self.schedule = resolve_setting(spec.trigger.schedule).strip()
        self.interval: float | None = None
        if re.fullmatch(r"(?:\d+\.)?\d+:\d+:\d+(?:\.\d+)?", self.schedule):
            self.interval = timespan(self.schedule, 0)
        else:
            from croniter import croniter

            if len(self.schedule.split()) != 6 or not croniter.is_valid(self.schedule, second_at_beginning=True):
                raise ValueError(f"function {spec.name!r}: not a six-field NCRONTAB schedule: {self.schedule!r}")
        self.thread = threading.Thread(target=self._run, name=f"timer-{spec.name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _next(self, after: dt.datetime) -> dt.datetime:
        if self.interval is not None:
            return after + dt.timedelta(seconds=self.interval)
        from croniter import croniter

        return croniter(self.schedule, after, second_at_beginning=True).get_next(dt.datetime)

    def _run(self) -> None:
        stopping = self.host._stopping
        last: dt.datetime | None = None
        if self.spec.trigger.run_on_startup:
            now = dt.datetime.now(dt.UTC)
            self._fire(False, last, now, self._next(now))
            last = now
        due = self._next(dt.datetime.now(dt.UTC))
        while not stopping.is_set():
            delay = (due - dt.datetime.now(dt.UTC)).total_seconds()
            if delay > 0 and stopping.wait(delay):
                break
            now = dt.datetime.now(dt.UTC)
            # Late by more than a second (an overrun, a paused machine): tell the function, as Azure does.
            past_due = (now - due).total_seconds() > 1.0
            following = self._next(max(now, due))
            self._fire(past_due, last, due, following)
            last = due
            due = self._next(max(dt.datetime.now(dt.UTC), due))

    def _fire(self, past_due: bool, last: dt.datetime | None, due: dt.datetime, following: dt.datetime) -> None:
        info = {
            "Schedule": {"AdjustForDST": True},
            "ScheduleStatus": {
                "Last": (last or dt.datetime.min.replace(tzinfo=dt.UTC)).isoformat(),
                "Next": following.isoformat(),
                "LastUpdated": due.isoformat(),
            },
            "IsPastDue": past_due,
        }
        arg = convert(self.spec, Datum(json.dumps(info), "json"))
        outcome = self.host._invoker.run(self.spec, arg)
        log_outcome(self.spec, outcome, f"timer pastDue={past_due}")
