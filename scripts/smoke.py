"""Smoke test of a deployed Enclose, for an operator after every deploy (`scripts/smoke.sh`, `make smoke`).

    TOKEN=... scripts/smoke.sh --url https://APP.azurewebsites.net --mobile 07123456789 [--no-sms]

Against the deployed app, with a real bearer token for the API, it uploads a small PDF and the
EICAR anti-virus test file and waits (within bounds) for `clean` and `rejected`: that proves the
scanner and the upload trigger. With `--mobile` it sends a message to that number; the operator
pastes the link from the text (the API never shows a link: only the patient's phone has it), and
the script opens it, checks the date-of-birth form and its security headers, gives the date of
birth, downloads the document, waits for the delivery report and then revokes the message. With
`--no-sms` it makes a message to that number scheduled for tomorrow and revokes it, so nothing is
sent (the number is still the operator's own: were the revoke to fail, the text would reach no one
else). It also checks the 404 page of an unknown link, deletes its uploads, prints one line per check
(PASS, FAIL and what went wrong, or SKIP and why) and exits 1 if any check failed (2 on bad
arguments).

Standard library only, so an operator needs nothing but Python 3.11. The token is read from
`--token` or the TOKEN environment variable and is sent only to `--url`; neither it, the
number nor the link is ever printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import secrets
import select
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any, TextIO

PDF_NAME = "enclose-smoke-test.pdf"
EICAR_NAME = "enclose-smoke-eicar.txt"
# Ofcom's drama range is refused in Azure, so a sent test uses the operator's own number; the
# patient details are the docs' examples (a valid NHS number that is nobody's).
NHS_NUMBER = "9434765919"
DATE_OF_BIRTH = "1970-01-31"
BODY = "Enclose smoke test: this text checks the service after a deploy. You can ignore it."
PORTAL_LINK = re.compile(r"https?://[^\s/]+/p/[A-Za-z0-9_-]{16,64}")
PORTAL_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
}


class Failed(Exception):
    """A check did not pass; the message says what was seen instead."""


class Skipped(Exception):
    """A check was not run; the message says why."""


# -- what is sent ---------------------------------------------------------------------------------


def sample_pdf(text: str = "Enclose smoke test") -> bytes:
    """A small valid one-page PDF, written by hand (no PDF library), cross-reference table included."""
    content = f"BT /F1 24 Tf 72 760 Td ({text}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset  # each entry exactly 20 bytes, as the format requires
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def eicar() -> bytes:
    """The standard anti-virus test file, put together here so that no file of ours holds it whole."""
    return b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def multipart(field_name: str, filename: str, content_type: str, data: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with one file part, and its Content-Type."""
    boundary = f"enclose-smoke-{uuid.uuid4().hex}"
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field_name}"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def portal_header_problems(headers: Message, https: bool) -> list[str]:
    """What a portal answer lacks of the contract's security headers (empty when it has them all)."""
    problems = [
        f"{name} is {headers.get(name)!r}, not {want!r}"
        for name, want in PORTAL_HEADERS.items()
        if (headers.get(name) or "").strip().lower() != want
    ]
    policy = headers.get("Content-Security-Policy") or ""
    if "frame-ancestors 'none'" not in policy or "'unsafe-inline'" in policy:
        problems.append(f"Content-Security-Policy is {policy!r}")
    if https and "max-age=" not in (headers.get("Strict-Transport-Security") or ""):
        problems.append("no Strict-Transport-Security over https")
    return problems


# -- HTTP ------------------------------------------------------------------------------------------


@dataclass
class Answer:
    """One HTTP answer: status, headers and body (redirects are not followed)."""

    status: int
    headers: Message
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise Failed(f"{self.status} with a body that is not JSON") from None

    def problem(self) -> str:
        """The status and, for a problem+json answer, its title and detail (for a FAIL line)."""
        try:
            doc = json.loads(self.body)
            return f"{self.status} {doc.get('title', '')}: {doc.get('detail', '')}"
        except (ValueError, AttributeError):
            return f"{self.status}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 303 is an answer to check, not to follow


_OPENER = urllib.request.build_opener(_NoRedirect())


def fetch(method: str, url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None) -> Answer:
    """Send one request; any status is an Answer, only an unreachable server raises (Failed)."""
    if urllib.parse.urlsplit(url).scheme not in {"http", "https"}:
        raise Failed("an address that is not http(s)")
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310 - checked above
    try:
        with _OPENER.open(request, timeout=60) as response:
            return Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Answer(error.code, error.headers, error.read())
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise Failed(f"no answer from {urllib.parse.urlsplit(url).netloc}: {reason}") from None


@dataclass
class Api:
    """The toolbar API at `base` with a bearer token (sent to nothing else)."""

    base: str
    token: str

    def call(self, method: str, path: str, *, json_body: Any = None, auth: bool = True, **kwargs: Any) -> Answer:
        headers = dict(kwargs.pop("headers", {}))
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        if json_body is not None:
            headers["Content-Type"] = "application/json"
            kwargs["body"] = json.dumps(json_body).encode()
        return fetch(method, self.base + path, headers=headers, **kwargs)


# -- the report ------------------------------------------------------------------------------------


@dataclass
class Report:
    """One line per check on `out`; remembers whether any failed."""

    out: TextIO
    counts: dict[str, int] = field(default_factory=lambda: {"PASS": 0, "FAIL": 0, "SKIP": 0})

    def line(self, outcome: str, name: str, detail: str = "") -> None:
        self.counts[outcome] += 1
        print(f"{outcome}  {name}" + (f": {detail}" if detail else ""), file=self.out, flush=True)

    def check(self, name: str, step: Callable[[], tuple[Any, str]], needs: Iterable[Any] = ()) -> Any:
        """Run one check: its value (PASS), or None (FAIL or SKIP). Skipped when a value it needs is None."""
        if any(value is None for value in needs):
            self.line("SKIP", name, "an earlier check it needs did not pass")
            return None
        try:
            value, detail = step()
        except Failed as failed:
            self.line("FAIL", name, str(failed))
            return None
        except Skipped as skipped:
            self.line("SKIP", name, str(skipped))
            return None
        except Exception as error:  # noqa: BLE001 - an unforeseen answer is a failed check, not a crash
            self.line("FAIL", name, f"{type(error).__name__}: {error}")
            return None
        self.line("PASS", name, detail)
        return value

    @property
    def failed(self) -> bool:
        return self.counts["FAIL"] > 0


# -- the checks ------------------------------------------------------------------------------------


@dataclass
class Waits:
    """Upper bounds, in seconds, on each wait, and how often to ask again."""

    scan: float = 360  # Defender's verdict plus its retries
    send: float = 180
    link: float = 600  # the operator reading a phone
    delivery: float = 180
    poll: float = 2.0


def _poll(what: str, wait: float, interval: float, probe: Callable[[], Any]) -> Any:
    """probe() until it returns something; Failed(`what`) after `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise Failed(f"{what} within {wait:g} s")
        time.sleep(interval)


def check_openapi(api: Api) -> tuple[Any, str]:
    """The API answers, without a token, with its OpenAPI document."""
    answer = api.call("GET", "/api/v1/openapi.json", auth=False)
    if answer.status != 200:
        raise Failed(answer.problem())
    version = answer.json().get("openapi", "")
    return True, f"OpenAPI {version}"


def check_no_token(api: Api) -> tuple[Any, str]:
    """A request without a token is refused (401)."""
    answer = api.call("GET", f"/api/v1/attachments/{uuid.uuid4()}", auth=False)
    if answer.status != 401:
        raise Failed(f"{answer.status}, not 401")
    return True, "401"


def check_unknown_link(api: Api, https: bool) -> tuple[Any, str]:
    """A made-up link answers the portal's 404 page, with the portal's security headers."""
    answer = api.call("GET", f"/p/{secrets.token_urlsafe(18)}", auth=False)
    if answer.status != 404 or not (answer.headers.get("Content-Type") or "").startswith("text/html"):
        raise Failed(f"{answer.status} {answer.headers.get('Content-Type')}, not the 404 page")
    problems = portal_header_problems(answer.headers, https)
    if problems:
        raise Failed("; ".join(problems))
    return True, "404 page with the portal's security headers"


def upload(api: Api, filename: str, content_type: str, data: bytes) -> tuple[Any, str]:
    """Upload one file: its attachment id (202)."""
    body, multipart_type = multipart("file", filename, content_type, data)
    answer = api.call("POST", "/api/v1/attachments", body=body, headers={"Content-Type": multipart_type})
    if answer.status != 202:
        raise Failed(answer.problem())
    doc = answer.json()
    return doc["id"], f"202, {doc.get('status')}"


def wait_verdict(api: Api, attachment_id: str, want: str, waits: Waits) -> tuple[Any, str]:
    """Wait for the scan's verdict and compare it with `want`: the attachment as the API shows it."""

    def verdict() -> dict | None:
        answer = api.call("GET", f"/api/v1/attachments/{attachment_id}")
        if answer.status != 200:
            raise Failed(answer.problem())
        doc = answer.json()
        return None if doc.get("status") == "scanning" else doc

    doc = _poll("no verdict", waits.scan, waits.poll, verdict)
    if doc["status"] != want:
        raise Failed(f"{doc['status']}, not {want}" + (f" ({doc['reason']})" if doc.get("reason") else ""))
    return doc, want + (f": {doc['reason']}" if doc.get("reason") else "")


def create_message(api: Api, attachment_id: str, mobile: str, send_at: str | None) -> tuple[Any, str]:
    """Send (or, with `send_at`, schedule) a message with the attachment: its id (202)."""
    body: dict[str, Any] = {
        "patient": {"nhsNumber": NHS_NUMBER, "dateOfBirth": DATE_OF_BIRTH, "mobile": mobile},
        "body": BODY,
        "attachmentIds": [attachment_id],
    }
    if send_at:
        body["sendAt"] = send_at
    answer = api.call("POST", "/api/v1/messages", json_body=body, headers={"Idempotency-Key": str(uuid.uuid4())})
    if answer.status != 202:
        raise Failed(answer.problem())
    doc = answer.json()
    want = {"scheduled"} if send_at else {"queued", "awaiting_scan"}
    if doc.get("status") not in want:
        raise Failed(f"status {doc.get('status')}, not {' or '.join(sorted(want))}")
    return doc["id"], f"202, {doc['status']}"


def get_message(api: Api, message_id: str) -> dict:
    """The message as the API shows it."""
    answer = api.call("GET", f"/api/v1/messages/{message_id}")
    if answer.status != 200:
        raise Failed(answer.problem())
    return answer.json()


def wait_event(api: Api, message_id: str, event: str, wait: float, poll: float) -> tuple[Any, str]:
    """Wait until the message's events include `event`; Failed when it failed or time ran out."""

    def seen() -> dict | None:
        doc = get_message(api, message_id)
        if doc.get("status") == "failed":
            raise Failed(f"the message failed: {doc.get('failureReason')}")
        return doc if event in {e.get("type") for e in doc.get("events", [])} else None

    doc = _poll(f"no {event} event", wait, poll, seen)
    return doc, f"status {doc['status']}"


def ask_for_link(stream: TextIO, wait: float) -> tuple[Any, str]:
    """The link the operator pastes from the text (the API never shows it)."""
    print(
        f"Paste the link from the text just sent to your phone, then Enter (within {wait:g} s; "
        "Enter alone skips the portal checks):",
        file=sys.stderr,
        flush=True,
    )
    ready, _, _ = select.select([stream], [], [], wait)
    if not ready:
        raise Failed(f"no link pasted within {wait:g} s")
    line = stream.readline()
    if not line:
        raise Failed("no link pasted (end of input)")
    link = line.strip()
    if not link:
        raise Skipped("no link pasted")
    if not PORTAL_LINK.fullmatch(link):
        raise Failed("what was pasted is not a portal link (https://HOST/p/...)")
    return link, "a portal link"


def _cookies(answer: Answer, jar: dict[str, str]) -> dict[str, str]:
    for header in answer.headers.get_all("Set-Cookie") or []:
        name, _, value = header.split(";", 1)[0].partition("=")
        jar[name.strip()] = value.strip()
    return jar


def _cookie_header(jar: dict[str, str]) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())} if jar else {}


@dataclass
class Visit:
    """A patient's visit to the link: its cookies and what the pages said."""

    link: str
    cookies: dict[str, str] = field(default_factory=dict)
    csrf: str = ""
    download: str = ""


def open_form(link: str) -> tuple[Any, str]:
    """Open the link as a patient: the visit so far and the page (the date-of-birth form)."""
    answer = fetch("GET", link)
    if answer.status != 200:
        raise Failed(f"{answer.status}, not 200")
    missing = [name for name in ("dob-day", "dob-month", "dob-year", "csrf") if f'name="{name}"' not in answer.text]
    if missing:
        raise Failed("the page has no field " + ", ".join(missing))
    csrf = re.search(r'name="csrf" value="([^"]*)"', answer.text)
    visit = Visit(link, _cookies(answer, {}), csrf.group(1) if csrf else "")
    return (visit, answer), "200, fields dob-day, dob-month, dob-year and csrf"


def check_form_headers(answer: Answer, https: bool) -> tuple[Any, str]:
    """The form page carries the portal's security headers."""
    problems = portal_header_problems(answer.headers, https)
    if problems:
        raise Failed("; ".join(problems))
    return True, ", ".join(PORTAL_HEADERS) + ", Content-Security-Policy" + (", HSTS" if https else "")


def give_date_of_birth(visit: Visit, attachment_id: str) -> tuple[Any, str]:
    """Post the right date of birth: a 303 to the documents, which list the PDF."""
    year, month, day = DATE_OF_BIRTH.split("-")
    form = urllib.parse.urlencode(
        {"dob-day": str(int(day)), "dob-month": str(int(month)), "dob-year": year, "csrf": visit.csrf}
    ).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", **_cookie_header(visit.cookies)}
    answer = fetch("POST", visit.link, body=form, headers=headers)
    documents = visit.link + "/documents"
    if answer.status != 303 or urllib.parse.urljoin(visit.link, answer.headers.get("Location", "")) != documents:
        raise Failed(f"{answer.status}, not a 303 to the documents")
    _cookies(answer, visit.cookies)
    page = fetch("GET", documents, headers=_cookie_header(visit.cookies))
    href = f"/documents/{attachment_id}"
    if page.status != 200 or PDF_NAME not in page.text or href not in page.text:
        raise Failed(f"{page.status}: the documents page does not list the PDF")
    visit.download = documents + "/" + attachment_id
    return visit, "303 to the documents, which list the PDF"


def download(visit: Visit, sha256: str) -> tuple[Any, str]:
    """The download link gives a 303 to a URL that serves the very bytes uploaded, as an attachment."""
    answer = fetch("GET", visit.download, headers=_cookie_header(visit.cookies))
    location = answer.headers.get("Location", "")
    if answer.status != 303 or not location:
        raise Failed(f"{answer.status}, not a 303 to the file")
    blob = fetch("GET", urllib.parse.urljoin(visit.download, location))  # the short SAS URL: no token, no cookie
    if blob.status != 200:
        raise Failed(f"the file's URL answered {blob.status}")
    if hashlib.sha256(blob.body).hexdigest() != sha256:
        raise Failed("the file downloaded is not the one uploaded")
    if "attachment" not in (blob.headers.get("Content-Disposition") or ""):
        raise Failed("the file is not served as an attachment")
    return True, f"303 to a short-lived URL; the same {len(blob.body)} bytes"


def check_receipts(api: Api, message_id: str) -> tuple[Any, str]:
    """The message's events show the visit: opened, date of birth verified, downloaded."""
    seen = {e.get("type") for e in get_message(api, message_id).get("events", [])}
    missing = [event for event in ("portal_opened", "dob_verified", "downloaded") if event not in seen]
    if missing:
        raise Failed("no " + ", ".join(missing) + " event")
    return True, "portal_opened, dob_verified, downloaded"


def revoke(api: Api, message_id: str, *, unsent: bool = False) -> tuple[Any, str]:
    """Revoke the message: 200 and `revoked`."""
    # Said on failure: what is left behind, and how to end it by hand.
    left = (
        f"the text goes to your phone tomorrow unless you revoke message {message_id} "
        "(POST /api/v1/messages/{id}/revoke)"
        if unsent
        else f"revoke message {message_id} by hand (POST /api/v1/messages/{{id}}/revoke)"
    )
    answer = api.call("POST", f"/api/v1/messages/{message_id}/revoke")
    if answer.status != 200:
        raise Failed(f"{answer.problem()}; {left}")
    status = answer.json().get("status")
    if status != "revoked":
        raise Failed(f"status {status}, not revoked; {left}")
    return True, "200, revoked"


def check_link_dead(link: str) -> tuple[Any, str]:
    """The link answers 404."""
    answer = fetch("GET", link)
    if answer.status != 404:
        raise Failed(f"{answer.status}, not 404")
    return True, "404"


def delete_uploads(api: Api, attachment_ids: list[str]) -> tuple[Any, str]:
    """Delete the uploaded attachments (204 each)."""
    statuses = [api.call("DELETE", f"/api/v1/attachments/{a}").status for a in attachment_ids]
    if any(status != 204 for status in statuses):
        raise Failed(f"answers {statuses}, not 204")
    return True, f"{len(statuses)} deleted"


# -- the run ---------------------------------------------------------------------------------------


def run(url: str, token: str, mobile: str, no_sms: bool, waits: Waits, out: TextIO, stdin: TextIO) -> int:
    """Every check in order; 1 if any failed, else 0."""
    api = Api(url.rstrip("/"), token)
    https = url.startswith("https://")
    report = Report(out)
    report.check("the API answers (GET /api/v1/openapi.json)", lambda: check_openapi(api))
    report.check("the API refuses a request without a token", lambda: check_no_token(api))
    report.check("an unknown portal link answers the 404 page", lambda: check_unknown_link(api, https))

    pdf_id = report.check("upload a small PDF", lambda: upload(api, PDF_NAME, "application/pdf", sample_pdf()))
    eicar_id = report.check("upload the EICAR test file", lambda: upload(api, EICAR_NAME, "text/plain", eicar()))
    pdf = report.check("the PDF is scanned clean", lambda: wait_verdict(api, pdf_id, "clean", waits), [pdf_id])
    report.check("the EICAR file is rejected", lambda: wait_verdict(api, eicar_id, "rejected", waits), [eicar_id])

    portal_checks = (
        "the link serves the date-of-birth form",
        "the form has the portal's security headers",
        "the date of birth opens the documents",
        "the document downloads",
    )
    if no_sms:
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat(timespec="seconds")
        message_id = report.check(
            "a message scheduled for tomorrow is accepted",
            lambda: create_message(api, pdf["id"], mobile, tomorrow),
            [pdf],
        )
        report.check(
            "the scheduled message is revoked before it is sent",
            lambda: revoke(api, message_id, unsent=True),
            [message_id],
        )
        for name in portal_checks:
            report.line("SKIP", name, "--no-sms: nothing is sent, so there is no link to open")
    else:
        message_id = report.check(
            "a message to the number given is accepted", lambda: create_message(api, pdf["id"], mobile, None), [pdf]
        )
        sent = report.check(
            "the text is sent", lambda: wait_event(api, message_id, "sent", waits.send, waits.poll), [message_id]
        )
        link = report.check("the link is pasted from the text", lambda: ask_for_link(stdin, waits.link), [sent])
        opened = report.check(portal_checks[0], lambda: open_form(link), [link])
        visit, form_answer = opened if opened else (None, None)
        report.check(portal_checks[1], lambda: check_form_headers(form_answer, https), [form_answer])
        visit = report.check(portal_checks[2], lambda: give_date_of_birth(visit, pdf_id), [visit])
        downloaded = report.check(portal_checks[3], lambda: download(visit, pdf["sha256"]), [visit])
        report.check(
            "the delivery report arrives",
            lambda: wait_event(api, message_id, "delivered", waits.delivery, waits.poll),
            [sent],
        )
        report.check("the message records the visit", lambda: check_receipts(api, message_id), [downloaded])
        # Always, once a message exists: the operator's phone must not keep a live test link.
        revoked = report.check("the message is revoked", lambda: revoke(api, message_id), [message_id])
        report.check("the revoked link answers 404", lambda: check_link_dead(link), [revoked, link])

    uploads = [a for a in (pdf_id, eicar_id) if a]
    if uploads:
        report.check("the uploads are deleted", lambda: delete_uploads(api, uploads))
    c = report.counts
    print(f"{c['PASS']} passed, {c['FAIL']} failed, {c['SKIP']} skipped", file=out, flush=True)
    return 1 if report.failed else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/smoke.sh", description="Smoke test of a deployed Enclose (see the README's Deploy to Azure)."
    )
    parser.add_argument("--url", required=True, help="the app's base URL, e.g. https://func-enclose.azurewebsites.net")
    parser.add_argument("--token", help="a bearer token for the API (default: the TOKEN environment variable)")
    parser.add_argument("--mobile", required=True, help="your mobile number: the text goes to it")
    parser.add_argument(
        "--no-sms", action="store_true", help="send nothing: schedule a message for tomorrow and revoke it"
    )
    for name, default, meaning in (
        ("scan-wait", Waits.scan, "for each scan verdict"),
        ("send-wait", Waits.send, "for the text to be sent"),
        ("link-wait", Waits.link, "for the link to be pasted"),
        ("delivery-wait", Waits.delivery, "for the delivery report"),
    ):
        parser.add_argument(f"--{name}", type=float, default=default, metavar="SECONDS", help=f"longest wait {meaning}")
    parser.add_argument("--poll", type=float, default=Waits.poll, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """`scripts/smoke.sh ...`: run the checks against --url; exit 1 if any failed, 2 on bad arguments."""
    parser = _parser()
    args = parser.parse_args(argv)
    token = args.token or os.environ.get("TOKEN", "")
    if not args.url.strip():
        parser.error("--url is empty: give the deployed app's base URL")
    if urllib.parse.urlsplit(args.url.strip()).scheme not in {"http", "https"}:
        parser.error("--url must start with https:// (or http:// for a local stack)")
    if not token.strip():
        parser.error("no token: pass --token or set TOKEN to a bearer token for the API")
    if not args.mobile.strip():
        parser.error("--mobile is empty: give your own mobile number")
    waits = Waits(args.scan_wait, args.send_wait, args.link_wait, args.delivery_wait, args.poll)
    return run(args.url.strip(), token.strip(), args.mobile.strip(), args.no_sms, waits, sys.stdout, sys.stdin)


if __name__ == "__main__":
    sys.exit(main())
