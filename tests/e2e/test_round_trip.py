"""The whole path of one document through real HTTP, Azurite, ClamAV and the SMS emulator."""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta
from urllib.parse import parse_qs, urlparse

import requests

from tests.support.corpus.common import eicar as corpus_eicar
from tests.support.stack import RunningStack, sample_pdf

DOB = "1970-01-31"


def _patient(mobile: str | None = None) -> dict:
    return {
        "nhsNumber": "9434765919",
        "dateOfBirth": DOB,
        "mobile": mobile or f"07700 900{uuid.uuid4().int % 1000:03d}",
        "name": "Jo Bloggs",
    }


def _e164(mobile: str) -> str:
    return "+44" + mobile.replace(" ", "")[1:]


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def _send_clean(stack: RunningStack, data: bytes, *, filename: str = "fit-note.pdf") -> tuple[str, str, str]:
    """Upload, wait for clean, send; returns (message id, link, mobile)."""
    upload = stack.upload(data, filename)
    assert upload.status_code == 202, upload.text
    attachment = stack.wait_attachment(upload.json()["id"])
    assert attachment["status"] == "clean", attachment
    mobile = f"07700 900{uuid.uuid4().int % 1000:03d}"
    marker = f"ref {uuid.uuid4().hex[:8]}"
    sent = stack.send(
        {
            "patient": _patient(mobile),
            "body": f"Your fit note is attached ({marker}).",
            "attachmentIds": [attachment["id"]],
        }
    )
    assert sent.status_code == 202, sent.text
    link = stack.wait_link(_e164(mobile), marker)
    return sent.json()["id"], link, mobile


def test_document_goes_from_toolbar_to_patient_and_back_intact(stack: RunningStack) -> None:
    data = sample_pdf("Fit note for Jo")
    upload = stack.upload(data, "Fit note.pdf")
    assert upload.status_code == 202, upload.text
    created = upload.json()
    assert created["status"] == "scanning"
    assert upload.headers["Location"] == f"/api/v1/attachments/{created['id']}"
    assert created["size"] == len(data) and created["contentType"] == "application/pdf"
    assert stack.wait_attachment(created["id"])["status"] == "clean"

    mobile = "07700 900123"
    sent = stack.send(
        {"patient": _patient(mobile), "body": "Dear Jo, your fit note is attached.", "attachmentIds": [created["id"]]}
    )
    assert sent.status_code == 202, sent.text
    accepted = sent.json()
    assert accepted["status"] == "queued" and accepted["encoding"] == "GSM-7" and accepted["segments"] == 1
    assert sent.headers["Location"] == f"/api/v1/messages/{accepted['id']}"

    link = stack.wait_link("+447700900123", "Dear Jo, your fit note is attached.")
    sms = [m for m in stack.inbox() if link in m["message"]][-1]
    assert sms["message"] == f"Dear Jo, your fit note is attached.\n{link}"
    token = urlparse(link).path.rsplit("/", 1)[-1]
    assert len(token) >= 16

    browser = requests.Session()
    form = browser.get(link, timeout=10)
    assert form.status_code == 200
    for name in ("dob-day", "dob-month", "dob-year", "csrf"):
        assert f'name="{name}"' in form.text
    assert form.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in form.headers["Content-Security-Policy"]

    wrong = browser.post(
        link,
        data={"dob-day": "1", "dob-month": "2", "dob-year": "1970", "csrf": _csrf(form.text)},
        allow_redirects=False,
        timeout=10,
    )
    assert wrong.status_code == 200
    assert "does not match" in wrong.text

    right = browser.post(
        link,
        data={"dob-day": "31", "dob-month": "1", "dob-year": "1970", "csrf": _csrf(form.text)},
        allow_redirects=False,
        timeout=10,
    )
    assert right.status_code == 303
    assert right.headers["Location"] == f"/p/{token}/documents"
    cookie = right.headers["Set-Cookie"]
    attributes = {
        part.strip().split("=", 1)[0].lower(): part.strip().partition("=")[2] for part in cookie.split(";")[1:]
    }
    assert "httponly" in attributes and attributes["samesite"].lower() == "strict"
    assert attributes["path"] == f"/p/{token}"
    assert attributes["max-age"] == "900"
    assert "secure" not in attributes  # plain http locally; Secure whenever served over https

    documents = browser.get(f"{stack.base_url}/p/{token}/documents", timeout=10)
    assert documents.status_code == 200
    assert "Fit note.pdf" in documents.text

    download = browser.get(f"{stack.base_url}/p/{token}/documents/{created['id']}", allow_redirects=False, timeout=10)
    assert download.status_code == 303
    sas_url = download.headers["Location"]
    query = parse_qs(urlparse(sas_url).query)
    assert query["sp"] == ["r"] and query["sr"] == ["b"]
    assert "attachment" in query["rscd"][0] and query["rsct"] == ["application/pdf"]
    blob = requests.get(sas_url, timeout=10)
    assert blob.status_code == 200
    assert blob.content == data
    assert blob.headers["Content-Type"] == "application/pdf"

    # A second download works too, until the link expires.
    again = browser.get(f"{stack.base_url}/p/{token}/documents/{created['id']}", allow_redirects=False, timeout=10)
    assert requests.get(again.headers["Location"], timeout=10).content == data

    record = stack.wait_message(accepted["id"], {"delivered"})
    assert record["status"] == "delivered"
    assert record["sentAt"] and record["deliveredAt"]
    types = [e["type"] for e in record["events"]]
    for expected in (
        "created",
        "scan_clean",
        "queued",
        "sent",
        "delivered",
        "portal_opened",
        "dob_failed",
        "dob_verified",
        "downloaded",
    ):
        assert expected in types, (expected, types)
    assert record["attachments"] == [{"id": created["id"], "filename": "Fit note.pdf", "downloads": 2}]


def test_message_waits_for_the_scan_then_sends_itself(stack: RunningStack) -> None:
    upload = stack.upload(sample_pdf("Result"), "result.pdf")
    mobile = "07700 900456"
    marker = uuid.uuid4().hex[:8]
    sent = stack.send(
        {"patient": _patient(mobile), "body": f"Your result {marker}", "attachmentIds": [upload.json()["id"]]}
    )
    assert sent.status_code == 202
    assert sent.json()["status"] in {"awaiting_scan", "queued"}
    assert stack.wait_link("+447700900456", marker)


def test_eicar_is_rejected_and_a_message_with_it_fails(stack: RunningStack) -> None:
    upload = stack.upload(corpus_eicar(), "notes.txt", content_type="text/plain")
    assert upload.status_code == 202, upload.text
    sent = stack.send({"patient": _patient(), "body": "Your notes", "attachmentIds": [upload.json()["id"]]})
    attachment = stack.wait_attachment(upload.json()["id"])
    assert attachment["status"] == "rejected"
    assert attachment["reason"].startswith("This file contains a virus or malware")
    if sent.status_code == 202:  # sent while the scan ran: the message fails with the reason
        failed = stack.wait_message(sent.json()["id"], {"failed"})
        assert failed["status"] == "failed" and "rejected" in failed["failureReason"]
    else:  # the verdict came first
        assert sent.status_code == 422
    again = stack.send({"patient": _patient(), "body": "Your notes", "attachmentIds": [upload.json()["id"]]})
    assert again.status_code == 422
    assert again.json()["errors"][0]["field"] == "attachmentIds[0]"


def test_five_wrong_dates_lock_the_link_and_unlock_reopens_it(stack: RunningStack) -> None:
    message_id, link, _ = _send_clean(stack, sample_pdf("Letter"))
    browser = requests.Session()
    csrf = _csrf(browser.get(link, timeout=10).text)
    for attempt in range(1, 6):
        answer = browser.post(
            link,
            data={"dob-day": "2", "dob-month": "2", "dob-year": "1971", "csrf": csrf},
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == (200 if attempt < 5 else 403), attempt
    assert "contact" in answer.text.lower()
    assert browser.get(link, timeout=10).status_code == 403
    # Even the right date is refused while locked.
    right = {"dob-day": "31", "dob-month": "1", "dob-year": "1970", "csrf": csrf}
    assert browser.post(link, data=right, allow_redirects=False, timeout=10).status_code == 403
    assert stack.message(message_id)["status"] == "locked"

    unlocked = requests.post(f"{stack.base_url}/api/v1/messages/{message_id}/unlock", headers=stack.auth(), timeout=10)
    assert unlocked.status_code == 200
    assert browser.post(link, data=right, allow_redirects=False, timeout=10).status_code == 303
    types = [e["type"] for e in stack.message(message_id)["events"]]
    assert types.count("dob_failed") == 5 and "locked" in types and "unlocked" in types


def test_an_impossible_date_is_not_an_attempt(stack: RunningStack) -> None:
    message_id, link, _ = _send_clean(stack, sample_pdf("Letter"))
    browser = requests.Session()
    csrf = _csrf(browser.get(link, timeout=10).text)
    for _ in range(7):
        answer = browser.post(
            link,
            data={"dob-day": "31", "dob-month": "2", "dob-year": "1970", "csrf": csrf},
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 200
        assert "real date" in answer.text
    assert stack.message(message_id)["status"] != "locked"


def test_revoked_expired_and_unknown_links_look_the_same(stack: RunningStack) -> None:
    message_id, link, _ = _send_clean(stack, sample_pdf("Letter"))
    browser = requests.Session()
    csrf = _csrf(browser.get(link, timeout=10).text)
    assert (
        browser.post(
            link,
            data={"dob-day": "31", "dob-month": "1", "dob-year": "1970", "csrf": csrf},
            allow_redirects=False,
            timeout=10,
        ).status_code
        == 303
    )
    revoked = requests.post(f"{stack.base_url}/api/v1/messages/{message_id}/revoke", headers=stack.auth(), timeout=10)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    gone = browser.get(link, timeout=10)
    unknown = requests.get(f"{stack.base_url}/p/{'x' * 24}", timeout=10)
    assert gone.status_code == unknown.status_code == 404
    assert gone.text == unknown.text
    # The session dies with the link.
    token = urlparse(link).path.rsplit("/", 1)[-1]
    assert browser.get(f"{stack.base_url}/p/{token}/documents", allow_redirects=False, timeout=10).status_code == 404


def test_documents_without_a_session_redirect_to_the_form(stack: RunningStack) -> None:
    _, link, _ = _send_clean(stack, sample_pdf("Letter"))
    token = urlparse(link).path.rsplit("/", 1)[-1]
    answer = requests.get(f"{stack.base_url}/p/{token}/documents", allow_redirects=False, timeout=10)
    assert answer.status_code == 303 and answer.headers["Location"] == f"/p/{token}"


# -- bad inputs through HTTP ---------------------------------------------------------------


def test_no_or_bad_token_is_401(stack: RunningStack) -> None:
    url = f"{stack.base_url}/api/v1/messages/{uuid.uuid4()}"
    assert requests.get(url, timeout=10).status_code == 401
    bad = requests.get(url, headers={"Authorization": "Bearer not-a-jwt"}, timeout=10)
    assert bad.status_code == 401
    assert bad.headers["Content-Type"].startswith("application/problem+json")
    expired = requests.get(url, headers={"Authorization": f"Bearer {stack.token(ttl_seconds=-120)}"}, timeout=10)
    assert expired.status_code == 401


def test_upload_limits_and_types(stack: RunningStack) -> None:
    limit = 3 * 1024 * 1024
    pdf = sample_pdf("x")
    padded = pdf + b"\n%" + b"0" * (limit - len(pdf) - 2)  # a PDF comment pads it to exactly the limit
    assert len(padded) == limit
    assert stack.upload(padded).status_code == 202
    # Over the limit a PDF or picture is made to fit (tests/e2e/test_fitting.py); other types are refused.
    too_big = stack.upload(
        b"Dear patient\n" * (limit // 13) + b"x" * (limit % 13 + 1), "letter.txt", content_type="text/plain"
    )
    assert too_big.status_code == 413
    assert too_big.json()["status"] == 413
    assert "Save it as a PDF" in too_big.json()["detail"]
    exe = stack.upload(b"MZ\x90\x00" + b"\x00" * 200, "letter.pdf")
    assert exe.status_code == 415
    empty = stack.upload(b"", "empty.pdf")
    assert empty.status_code == 400
    no_file = requests.post(
        f"{stack.base_url}/api/v1/attachments", headers=stack.auth(), files={"other": ("a.pdf", pdf)}, timeout=10
    )
    assert no_file.status_code == 400
    not_multipart = requests.post(
        f"{stack.base_url}/api/v1/attachments", headers=stack.auth(), data=b"hello", timeout=10
    )
    assert not_multipart.status_code == 400


def test_another_organisations_things_are_404(stack: RunningStack) -> None:
    upload = stack.upload(sample_pdf("Letter"), org="B99999")
    attachment_id = upload.json()["id"]
    assert (
        requests.get(
            f"{stack.base_url}/api/v1/attachments/{attachment_id}", headers=stack.auth("A12345"), timeout=10
        ).status_code
        == 404
    )
    assert (
        requests.delete(
            f"{stack.base_url}/api/v1/attachments/{attachment_id}", headers=stack.auth("A12345"), timeout=10
        ).status_code
        == 404
    )
    sent = stack.send({"patient": _patient(), "body": "Hi", "attachmentIds": [attachment_id]}, org="A12345")
    assert sent.status_code == 422
    ours = stack.send({"patient": _patient(), "body": "Hi", "attachmentIds": [attachment_id]}, org="B99999")
    message_id = ours.json()["id"]
    for path in ("", "/revoke", "/unlock"):
        method = requests.get if not path else requests.post
        url = f"{stack.base_url}/api/v1/messages/{message_id}{path}"
        answer = method(url, headers=stack.auth("A12345"), timeout=10)
        assert answer.status_code == 404, path


def test_each_invalid_field_is_a_422_naming_it(stack: RunningStack) -> None:
    attachment_id = stack.upload(sample_pdf("Letter")).json()["id"]
    base = {"patient": _patient(), "body": "Hello", "attachmentIds": [attachment_id]}
    tomorrow = (date.today() + timedelta(days=2)).isoformat()
    cases = {
        "patient.nhsNumber": {"patient": {**base["patient"], "nhsNumber": "9434765918"}},
        "patient.dateOfBirth": {"patient": {**base["patient"], "dateOfBirth": tomorrow}},
        "patient.mobile": {"patient": {**base["patient"], "mobile": "020 7946 0000"}},
        "body": {"body": "   "},
        "attachmentIds": {"attachmentIds": []},
    }
    for field, change in cases.items():
        answer = stack.send({**base, **change})
        assert answer.status_code == 422, (field, answer.text)
        problem = answer.json()
        assert answer.headers["Content-Type"].startswith("application/problem+json")
        assert [e["field"] for e in problem["errors"]] == [field]
    too_long = stack.send({**base, "body": "x" * 1000})
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["field"] == "body"
    six = stack.send({**base, "attachmentIds": [str(uuid.uuid4()) for _ in range(6)]})
    assert six.status_code == 422
    unknown = stack.send({**base, "attachmentIds": [str(uuid.uuid4())]})
    assert unknown.status_code == 422
    assert (
        requests.post(
            f"{stack.base_url}/api/v1/messages",
            data=b"{not json",
            timeout=10,
            headers={**stack.auth(), "Content-Type": "application/json"},
        ).status_code
        == 400
    )


def test_idempotency_key_replays_the_first_answer(stack: RunningStack) -> None:
    attachment_id = stack.upload(sample_pdf("Letter")).json()["id"]
    body = {"patient": _patient(), "body": "Hello once", "attachmentIds": [attachment_id]}
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = stack.send(body, headers=key)
    second = stack.send(body, headers=key)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    different = stack.send({**body, "body": "Something else"}, headers=key)
    assert different.status_code == 422


def test_a_key_whose_first_request_died_is_taken_over_and_sends_once(stack: RunningStack) -> None:
    """A process killed mid-request leaves the key's claim pending; a retry later must not be stuck."""
    from azure.data.tables import TableClient

    from devstack.azurite import connection_string
    from shared_code import clock
    from shared_code.crypto import sha256_hex
    from shared_code.idempotency import TAKEOVER_AFTER, request_fingerprint

    attachment_id = stack.upload(sample_pdf("Letter")).json()["id"]
    mobile = "07700 900417"
    body = {"patient": _patient(mobile), "body": "Hello after a crash", "attachmentIds": [attachment_id]}
    key = str(uuid.uuid4())
    operation_id = str(uuid.uuid4())
    claims = TableClient.from_connection_string(connection_string(stack.ports), "idempotency")
    claims.create_entity(
        {  # what the dead request left behind
            "PartitionKey": "A12345",
            "RowKey": sha256_hex(key.encode()),
            "state": "pending",
            "fingerprint": request_fingerprint(body),
            "operationId": operation_id,
            "createdAt": clock.iso(clock.now() - TAKEOVER_AFTER - timedelta(seconds=5)),
        }
    )

    first = stack.send(body, headers={"Idempotency-Key": key})
    assert first.status_code == 202, first.text
    assert first.json()["id"] == operation_id  # the dead run's message, had it made one
    again = stack.send(body, headers={"Idempotency-Key": key})
    assert again.status_code == 202 and again.json() == first.json()
    stack.wait_message(first.json()["id"], {"sent", "delivered"})
    texts = [m for m in stack.inbox() if m["message"].startswith("Hello after a crash")]
    assert len(texts) == 1 and texts[0]["to"] == _e164(mobile)
