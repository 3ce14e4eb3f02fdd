"""host.json as the local host reads it: queue polling as Azure does it, defaults included."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from devstack.host.config import QUEUE_MIN_POLL, ROOT, HostConfig, timespan


def _config(tmp_path: Path, queues: dict) -> HostConfig:
    path = tmp_path / "host.json"
    path.write_text(json.dumps({"version": "2.0", "extensions": {"queues": queues}}))
    return HostConfig.load(path)


def test_queue_polling_backs_off_to_a_minute_by_default_as_in_azure(tmp_path: Path) -> None:
    assert _config(tmp_path, {}).max_polling_interval == 60.0
    assert HostConfig.load(None).max_polling_interval == 60.0


def test_the_configured_polling_ceiling_is_honoured(tmp_path: Path) -> None:
    assert _config(tmp_path, {"maxPollingInterval": "00:00:07"}).max_polling_interval == 7.0
    assert _config(tmp_path, {"maxPollingInterval": "00:05:00"}).max_polling_interval == 300.0


def test_a_ceiling_under_the_first_interval_is_raised_to_it(tmp_path: Path) -> None:
    assert _config(tmp_path, {"maxPollingInterval": "00:00:00.01"}).max_polling_interval == QUEUE_MIN_POLL


def test_the_app_polls_its_dispatch_queue_within_a_few_seconds_after_a_quiet_spell() -> None:
    # The first text after a quiet spell waits at most this long for the dispatch queue's poll.
    config = HostConfig.load(ROOT / "host.json")
    assert 0 < config.max_polling_interval <= 5


@pytest.mark.parametrize(("text", "seconds"), [("00:00:02", 2.0), ("1.00:00:00", 86400.0), ("00:00:00.5", 0.5)])
def test_timespans(text: str, seconds: float) -> None:
    assert timespan(text, 0) == seconds


def test_the_longest_wait_of_one_scan_is_well_under_the_function_timeout() -> None:
    # In Azure a timed-out invocation restarts the worker process and ends every invocation in
    # it, so one scan's worst case (validation, waiting for a starting clamd or Defender's
    # verdict, then the scan) must stay well inside host.json's functionTimeout.
    from shared_code.filetypes.isolation import WALL_LIMIT_SECONDS
    from shared_code.settings import Settings

    defaults = Settings()
    bicep = (ROOT / "infra" / "main.bicep").read_text()
    azure_defender_wait = int(re.search(r"param defenderVerdictTimeoutSeconds int = (\d+)", bicep).group(1))
    scanner_wait = max(
        defaults.clamd_startup_wait_seconds + defaults.clamd_timeout_seconds,
        defaults.defender_verdict_timeout_seconds,
        azure_defender_wait,
    )
    worst = WALL_LIMIT_SECONDS + scanner_wait
    assert worst <= HostConfig.load(ROOT / "host.json").function_timeout / 1.5
