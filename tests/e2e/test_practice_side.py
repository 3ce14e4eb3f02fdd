"""The practice's side through the whole local stack (issue 17): a status callback to a receiver on
127.0.0.1 that checks every signature, the patient's history by NHS number kept to the
organisation, and the record entry once the patient has the document."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests.support.stack import RunningStack, sample_pdf

NHS = "9434765919"


class Receiver:
    """A practice's endpoint: keeps every event whose signature checks out, counts the others."""

    def __init__(self) -> None:
        self.secret = ""
        self.events: list[dict] = []
        self.bad = 0
        self.lock = threading.Lock()

    def verify(self, header: str, body: bytes) -> bool:
        fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        t, v1 = fields.get("t", ""), fields.get("v1", "")
        if not t.isdigit() or abs(time.time() - int(t)) > 300:
            return False
        expected = hmac.new(self.secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, v1)

    def wait_for(self, kinds: set[str], timeout: float = 90) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if kinds <= {e["type"] for e in self.events}:
                    return list(self.events)
            time.sleep(0.2)
        raise AssertionError(f"events not received: {kinds - {e['type'] for e in self.events}}")


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with state.lock:
                if state.verify(self.headers.get("Enclose-Signature", ""), body):
                    state.events.append(json.loads(body))
                else:
                    state.bad += 1
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/enclose/events"
    server.shutdown()
    server.server_close()


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def _callback(stack: RunningStack, method: str, org: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{stack.base_url}/api/v1/callback", headers=stack.auth(org), timeout=10, **kwargs)


def _history(stack: RunningStack, org: str, **params: str) -> requests.Response:
    return requests.get(f"{stack.base_url}/api/v1/messages", params=params, headers=stack.auth(org), timeout=30)


def test_callbacks_history_and_record_entry(stack: RunningStack, receiver: tuple[Receiver, str]) -> None:
    events, url = receiver
    org, other = "E" + uuid.uuid4().hex[:5].upper(), "F" + uuid.uuid4().hex[:5].upper()

    assert _callback(stack, "GET", org).status_code == 404
    refused = _callback(stack, "PUT", org, json={"url": "https://169.254.169.254/latest/meta-data"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "url"
    put = _callback(stack, "PUT", org, json={"url": url})
    assert put.status_code == 200, put.text
    events.secret = put.json()["secret"]
    shown = _callback(stack, "GET", org).json()
    assert shown["url"] == url and "secret" not in shown and events.secret not in json.dumps(shown)

    upload = stack.upload(sample_pdf("Fit note"), "fit-note.pdf", org=org)
    attachment = stack.wait_attachment(upload.json()["id"], org=org)
    assert attachment["status"] == "clean"
    mobile, marker = f"07700 900{uuid.uuid4().int % 1000:03d}", uuid.uuid4().hex[:8]
    patient = {"nhsNumber": NHS, "dateOfBirth": "1970-01-31", "mobile": mobile}
    sent = stack.send({"patient": patient, "body": f"Ready ({marker})", "attachmentIds": [attachment["id"]]}, org=org)
    assert sent.status_code == 202, sent.text
    message_id = sent.json()["id"]
    link = stack.wait_link("+44" + mobile.replace(" ", "")[1:], marker)
    assert stack.wait_message(message_id, {"delivered"}, org=org)["status"] == "delivered"

    browser = requests.Session()
    form = browser.get(link, timeout=10)
    right = browser.post(
        link,
        data={"dob-day": "31", "dob-month": "1", "dob-year": "1970", "csrf": _csrf(form.text)},
        allow_redirects=False,
        timeout=10,
    )
    assert right.status_code == 303
    download = browser.get(f"{link}/documents/{attachment['id']}", allow_redirects=False, timeout=10)
    assert download.status_code == 303

    received = events.wait_for({"sent", "delivered", "dob_verified", "downloaded"})
    assert events.bad == 0
    assert {e["messageId"] for e in received} == {message_id}
    assert len({e["id"] for e in received}) == len({(e["type"], e["at"]) for e in received})

    record = stack.message(message_id, org=org)["recordEntry"]
    assert record["snomed"] == {"code": "711408005", "display": "Short message service text message sent to patient"}
    text = record["text"]
    opening = f"Text message with 1 document (fit-note.pdf) sent by gp1 to mobile ending {mobile[-4:]} on "
    assert text.startswith(opening)
    assert "Delivered " in text and "Date of birth confirmed" in text and "downloaded by the patient" in text
    assert mobile.replace(" ", "")[1:] not in text.replace(" ", "") and "1970" not in text

    page = _history(stack, org, nhsNumber=NHS)
    assert page.status_code == 200, page.text
    [item] = page.json()["items"]
    assert item["id"] == message_id and item["status"] == "delivered"
    assert item["attachments"] == [{"id": attachment["id"], "filename": "fit-note.pdf"}]
    assert item["dobVerifiedAt"] and item["firstDownloadedAt"] and page.json()["cursor"] is None
    assert _history(stack, other, nhsNumber=NHS).json() == {"items": [], "cursor": None}
    assert _history(stack, org, limit="0").status_code == 422
    assert _history(stack, org, limit="101").status_code == 422
    assert _history(stack, org, cursor="not-a-cursor").status_code == 422

    test = requests.post(f"{stack.base_url}/api/v1/callback/test", headers=stack.auth(org), timeout=10)
    assert test.status_code == 202
    assert any(e["id"] == test.json()["id"] for e in events.wait_for({"test"}))

    assert _callback(stack, "DELETE", org).status_code == 204
    assert _callback(stack, "GET", org).status_code == 404
    assert _callback(stack, "DELETE", org).status_code == 404
