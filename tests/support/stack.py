"""Drive the whole local stack (`python -m devstack.run`) as a separate process."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

from devstack.ports import Ports, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"(http://127\.0\.0\.1:\d+/p/[A-Za-z0-9_-]+)")


@dataclass
class RunningStack:
    """A local stack under test and helpers to drive it."""

    ports: Ports
    local_dir: Path
    log_path: Path
    proc: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.functions}"

    @property
    def inbox_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.sms_inbox}"

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child writes to it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devstack.run"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            for port in (self.ports.sms_inbox, self.ports.functions):
                wait_for_port(port, timeout=120)
        except TimeoutError:
            self.stop()
            raise RuntimeError("the stack did not start:\n" + self.log_path.read_text()[-4000:]) from None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None

    def token(self, org: str = "A12345", user: str = "gp1", **kwargs) -> str:
        from devstack.devtoken import make_token

        return make_token(org, user, local_dir=self.local_dir, **kwargs)

    def auth(self, org: str = "A12345", **kwargs) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(org, **kwargs)}"}

    def upload(
        self, data: bytes, filename: str = "letter.pdf", org: str = "A12345", content_type: str = "application/pdf"
    ) -> requests.Response:
        return requests.post(
            f"{self.base_url}/api/v1/attachments",
            headers=self.auth(org),
            files={"file": (filename, io.BytesIO(data), content_type)},
            timeout=30,
        )

    def wait_attachment(self, attachment_id: str, org: str = "A12345", timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            doc = requests.get(
                f"{self.base_url}/api/v1/attachments/{attachment_id}", headers=self.auth(org), timeout=10
            ).json()
            if doc["status"] != "scanning" or time.monotonic() > deadline:
                return doc
            time.sleep(0.1)

    def send(self, body: dict, org: str = "A12345", headers: dict | None = None) -> requests.Response:
        return requests.post(
            f"{self.base_url}/api/v1/messages", json=body, headers={**self.auth(org), **(headers or {})}, timeout=30
        )

    def message(self, message_id: str, org: str = "A12345") -> dict:
        return requests.get(f"{self.base_url}/api/v1/messages/{message_id}", headers=self.auth(org), timeout=10).json()

    def wait_message(self, message_id: str, statuses: set[str], org: str = "A12345", timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            doc = self.message(message_id, org)
            if doc["status"] in statuses or time.monotonic() > deadline:
                return doc
            time.sleep(0.1)

    def send_clean(
        self,
        data: bytes,
        filename: str = "fit-note.pdf",
        *,
        content_type: str = "application/pdf",
        date_of_birth: str = "1970-01-31",
        org_name: str | None = None,
    ) -> tuple[str, str, str]:
        """Upload, wait for the verdict `clean`, send to a new drama-range mobile and wait for the text.

        Returns (message id, portal link, mobile). `org_name` is the practice name the token carries.
        """
        upload = self.upload(data, filename, content_type=content_type)
        assert upload.status_code == 202, upload.text
        attachment = self.wait_attachment(upload.json()["id"])
        assert attachment["status"] == "clean", attachment
        mobile = f"07700 900{uuid.uuid4().int % 1000:03d}"
        marker = f"ref {uuid.uuid4().hex[:8]}"
        body = {
            "patient": {"nhsNumber": "9434765919", "dateOfBirth": date_of_birth, "mobile": mobile, "name": "Jo Bloggs"},
            "body": f"Your document is ready ({marker}).",
            "attachmentIds": [attachment["id"]],
        }
        headers = {"Authorization": f"Bearer {self.token(org_name=org_name)}"} if org_name else None
        sent = self.send(body, headers=headers)
        assert sent.status_code == 202, sent.text
        link = self.wait_link("+44" + mobile.replace(" ", "")[1:], marker)
        return sent.json()["id"], link, mobile

    def inbox(self) -> list[dict]:
        return requests.get(f"{self.inbox_url}/messages", timeout=10).json()

    def wait_link(self, to: str, body_text: str, timeout: float = 60) -> str:
        """The portal link in the newest text to `to` that contains `body_text`."""
        deadline = time.monotonic() + timeout
        while True:
            for sms in reversed(self.inbox()):
                if sms["to"] == to and body_text in sms["message"]:
                    return LINK.search(sms["message"]).group(1)
            if time.monotonic() > deadline:
                raise AssertionError("no text arrived in the emulator's inbox")
            time.sleep(0.1)


def sample_pdf(text: str = "Fit note") -> bytes:
    """A small, valid, one-page PDF made with pikepdf."""
    import pikepdf

    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(595, 842))
    font = pdf.make_indirect(
        pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica)
    )
    page.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
    page.Contents = pdf.make_stream(f"BT /F1 24 Tf 72 760 Td ({text}) Tj ET".encode())
    buf = io.BytesIO()
    pdf.save(buf)
    return buf.getvalue()
