"""The operator's smoke test (`scripts/smoke.sh`) run against the local stack, as after a deploy.

The link is pasted on the script's standard input, as the operator would from the phone: here it is
read from the SMS emulator's inbox. Waits are shortened (they bound a poll; nothing is timed).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

from tests.support.stack import RunningStack

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "smoke.sh"
WAITS = ["--scan-wait", "120", "--send-wait", "120", "--link-wait", "180", "--delivery-wait", "120", "--poll", "0.2"]
PORTAL_CHECKS = [
    "the link serves the date-of-birth form",
    "the form has the portal's security headers",
    "the date of birth opens the documents",
    "the document downloads",
]


def _mobile() -> str:
    return f"07700900{uuid.uuid4().int % 1000:03d}"


def _start(stack: RunningStack, token: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        ["bash", str(SCRIPT), "--url", stack.base_url, *args, *WAITS],
        cwd=ROOT,
        env={**os.environ, "TOKEN": token},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _checks(stdout: str) -> dict[str, str]:
    """{check: outcome} from the script's lines (`PASS  name: detail`); the summary line is left out."""
    checks = {}
    for line in stdout.splitlines():
        outcome, _, rest = line.partition("  ")
        if outcome in {"PASS", "FAIL", "SKIP"}:
            checks[rest.split(": ", 1)[0]] = outcome
    return checks


def test_every_check_passes_with_a_text_and_the_link_pasted(stack: RunningStack) -> None:
    mobile, token = _mobile(), stack.token()
    proc = _start(stack, token, "--mobile", mobile)
    try:
        link = stack.wait_link("+44" + mobile[1:], "Enclose smoke test", timeout=240)
        proc.stdin.write(link + "\n")
        proc.stdin.flush()
        stdout, stderr = proc.communicate(timeout=280)
    finally:
        proc.kill()
    checks = _checks(stdout)
    assert proc.returncode == 0, stdout + stderr
    assert set(checks.values()) == {"PASS"}, stdout
    assert list(checks) == [
        "the API answers (GET /api/v1/openapi.json)",
        "the API refuses a request without a token",
        "an unknown portal link answers the 404 page",
        "upload a small PDF",
        "upload the EICAR test file",
        "the PDF is scanned clean",
        "the EICAR file is rejected",
        "a message to the number given is accepted",
        "the text is sent",
        "the link is pasted from the text",
        *PORTAL_CHECKS,
        "the delivery report arrives",
        "the message records the visit",
        "the message is revoked",
        "the revoked link answers 404",
        "the uploads are deleted",
    ]
    assert stdout.splitlines()[-1] == f"{len(checks)} passed, 0 failed, 0 skipped"
    for secret in (token, mobile, link, link.rsplit("/", 1)[-1]):
        assert secret not in stdout and secret not in stderr


def test_no_sms_schedules_a_message_revokes_it_and_sends_nothing(stack: RunningStack) -> None:
    mobile = _mobile()
    proc = _start(stack, stack.token(), "--mobile", mobile, "--no-sms")
    stdout, stderr = proc.communicate(timeout=280)
    checks = _checks(stdout)
    assert proc.returncode == 0, stdout + stderr
    assert checks["a message scheduled for tomorrow is accepted"] == "PASS"
    assert checks["the scheduled message is revoked before it is sent"] == "PASS"
    assert checks["the EICAR file is rejected"] == "PASS" and checks["the uploads are deleted"] == "PASS"
    assert [name for name, outcome in checks.items() if outcome == "SKIP"] == PORTAL_CHECKS
    assert "FAIL" not in checks.values()
    assert not [sms for sms in stack.inbox() if sms["to"] == "+44" + mobile[1:]]


def test_a_refused_token_fails_and_says_what(stack: RunningStack) -> None:
    proc = _start(stack, "not-a-token", "--mobile", _mobile(), "--no-sms")
    stdout, stderr = proc.communicate(timeout=280)
    checks = _checks(stdout)
    assert proc.returncode == 1, stdout + stderr
    assert checks["the API answers (GET /api/v1/openapi.json)"] == "PASS"
    assert checks["upload a small PDF"] == "FAIL"
    assert "FAIL  upload a small PDF: 401" in stdout
    # What needs the upload is not run, and says so.
    assert checks["the PDF is scanned clean"] == "SKIP"
    assert checks["a message scheduled for tomorrow is accepted"] == "SKIP"
    assert "not-a-token" not in stdout + stderr
