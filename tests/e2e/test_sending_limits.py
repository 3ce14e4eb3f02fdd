"""A practice over its per-minute sending limit gets 429 with Retry-After, through the local host."""

from __future__ import annotations

import requests

from shared_code.settings import Settings
from tests.support.stack import RunningStack, sample_pdf

ORG = "L99999"  # a practice of its own: the other e2e tests' sends must not count here


def test_the_message_over_the_per_minute_limit_is_a_429_with_retry_after(stack: RunningStack) -> None:
    limit = Settings().org_sms_per_minute
    upload = stack.upload(sample_pdf("Leaflet"), "leaflet.pdf", org=ORG)
    assert upload.status_code == 202, upload.text
    attachment = stack.wait_attachment(upload.json()["id"], org=ORG)
    assert attachment["status"] == "clean", attachment
    body = {
        "patient": {"nhsNumber": "9434765919", "dateOfBirth": "1970-01-31", "mobile": "07700900321"},
        "body": "Your leaflet is ready.",
        "attachmentIds": [attachment["id"]],
    }
    accepted = 0
    refusal: requests.Response | None = None
    # Two windows at the most: the run may cross the turn of a minute, which starts a new count.
    for _ in range(2 * limit + 1):
        answer = stack.send(body, org=ORG)
        if answer.status_code == 429:
            refusal = answer
            break
        assert answer.status_code == 202, answer.text
        accepted += 1
    assert refusal is not None, f"{accepted} messages accepted and none refused"
    assert limit <= accepted <= 2 * limit
    assert 1 <= int(refusal.headers["Retry-After"]) <= 60
    assert refusal.json()["type"].endswith("/too-many-requests")
