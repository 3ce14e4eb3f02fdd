"""Checkov on infra/: no failed check, no parse error, and every skip says why.

Checkov lives in its own virtual environment (.venv-tools, from requirements-tools.txt,
installed by `make tools`) because its pins clash with the app's.
"""

from __future__ import annotations

import json
import os
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
INFRA = ROOT / "infra"
CHECKOV = ROOT / ".venv-tools" / "bin" / "checkov"


@lru_cache(maxsize=1)
def checkov_report() -> dict[str, Any]:
    """Checkov's JSON report for the Bicep in infra/ (run once per session)."""
    if not CHECKOV.exists():
        reason = f"{CHECKOV.relative_to(ROOT)} is missing: run `make tools` (requirements-tools.txt)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    proc = subprocess.run(
        # --skip-download: no calls to Prisma Cloud for policy metadata (there is no network).
        [str(CHECKOV), "--directory", str(INFRA), "--framework", "bicep", "--skip-download", "--output", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.stdout.strip(), f"checkov printed no report (exit {proc.returncode}): {proc.stderr[-2000:]}"
    report = json.loads(proc.stdout)
    # With one framework checkov prints one report; keep the test honest if that changes.
    reports = report if isinstance(report, list) else [report]
    (bicep,) = [r for r in reports if r.get("check_type", "bicep") == "bicep"]
    bicep["exit_code"] = proc.returncode
    return bicep


def results() -> dict[str, Any]:
    report = checkov_report()
    assert "results" in report, f"checkov found nothing to check: {report}"
    return report["results"]


def test_checkov_parses_every_bicep_file() -> None:
    assert results()["parsing_errors"] == []
    checked = {
        check["file_abs_path"]
        for kind in ("passed_checks", "failed_checks", "skipped_checks")
        for check in results()[kind]
    }
    # Every file that declares a resource checkov knows must have been checked; a file it
    # could not read would be missing here.
    expected = {
        str(INFRA / "modules" / name)
        for name in ("storage.bicep", "keyvault.bicep", "functionapp.bicep", "eventing.bicep")
    }
    assert expected <= checked, f"not checked: {sorted(expected - checked)}"


def test_checkov_finds_no_failed_check() -> None:
    failed = [
        f"{c['check_id']} {c['check_name']} — {c['resource']} in {c['file_path']}" for c in results()["failed_checks"]
    ]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert checkov_report()["exit_code"] == 0


def test_every_skipped_check_says_why() -> None:
    skipped = results()["skipped_checks"]
    for check in skipped:
        comment = (check["check_result"].get("suppress_comment") or "").strip()
        assert comment and comment != "No comment provided", f"{check['check_id']} in {check['file_path']}"
        assert len(comment) >= 30, f"{check['check_id']}: the reason is too short to mean anything: {comment!r}"
