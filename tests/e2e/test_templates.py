"""Templates through the whole local stack: the API with ETags, visibility, previews, a send that
reaches the SMS inbox filled in with the template's document downloadable on the portal, the
boundaries after substitution, the link purge, and a re-scan that withdraws a document once
clamd has learnt a signature for it."""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from datetime import timedelta
from urllib.parse import urlparse

import requests

from tests.support.clamd import ClamdProcess, add_signature
from tests.support.stack import RunningStack, sample_pdf

DOB = "1970-01-31"


def _org() -> str:
    """An organisation of its own for each test, so lists and limits are the test's alone."""
    return f"T{random.randrange(10**6):06d}"


def _api(stack: RunningStack, method: str, path: str, org: str, user: str = "gp1", **kwargs) -> requests.Response:
    headers = {**stack.auth(org, user=user, org_name="Riverside Surgery"), **kwargs.pop("headers", {})}
    return requests.request(method, f"{stack.base_url}/api/v1{path}", headers=headers, timeout=30, **kwargs)


def _clean_upload(stack: RunningStack, org: str, data: bytes, filename: str = "leaflet.pdf", **kwargs) -> str:
    upload = stack.upload(data, filename, org=org, **kwargs)
    assert upload.status_code == 202, upload.text
    attachment = stack.wait_attachment(upload.json()["id"], org=org)
    assert attachment["status"] == "clean", attachment
    return attachment["id"]


def _create(stack: RunningStack, org: str, user: str = "gp1", **fields) -> requests.Response:
    body = {"name": "Flu jab", "body": "Dear ((first name)), your jab is on ((date)).", **fields}
    return _api(stack, "POST", "/templates", org, user, json=body)


def _mobile() -> tuple[str, str]:
    national = f"07700 900{uuid.uuid4().int % 1000:03d}"
    return national, "+44" + national.replace(" ", "")[1:]


def _send(stack: RunningStack, org: str, mobile: str, **fields) -> requests.Response:
    patient = {"nhsNumber": "9434765919", "dateOfBirth": DOB, "mobile": mobile, "name": "Jo Bloggs"}
    return _api(stack, "POST", "/messages", org, json={"patient": patient, **fields})


def _open_documents(stack: RunningStack, link: str) -> tuple[requests.Session, str, str]:
    """Give the date of birth; the session, the token and the documents page's HTML."""
    browser = requests.Session()
    form = browser.get(link, timeout=10)
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    right = {"dob-day": "31", "dob-month": "1", "dob-year": "1970", "csrf": csrf}
    assert browser.post(link, data=right, allow_redirects=False, timeout=10).status_code == 303
    token = urlparse(link).path.rsplit("/", 1)[-1]
    page = browser.get(f"{stack.base_url}/p/{token}/documents", timeout=10)
    assert page.status_code == 200
    return browser, token, page.text


def _download(stack: RunningStack, browser: requests.Session, token: str, document_id: str) -> requests.Response:
    return browser.get(f"{stack.base_url}/p/{token}/documents/{document_id}", allow_redirects=False, timeout=10)


def _wait(check, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


# -- the API ----------------------------------------------------------------------------------


def test_create_read_list_change_and_delete_with_etags(stack: RunningStack) -> None:
    org = _org()
    document = _clean_upload(stack, org, sample_pdf("Flu leaflet"), "Flu leaflet.pdf")
    created = _create(stack, org, attachmentIds=[document])
    assert created.status_code == 201, created.text
    template = created.json()
    assert created.headers["Location"] == f"/api/v1/templates/{template['id']}"
    assert created.headers["ETag"] == '"v1"'
    assert template["version"] == 1 and template["owner"] == "gp1" and template["shared"] is True
    assert template["placeholders"] == ["first name", "date"]
    [kept] = template["attachments"]
    assert kept["filename"] == "Flu leaflet.pdf" and kept["contentType"] == "application/pdf" and kept["id"] != document
    # The template's document is its own, not an attachment of the API.
    assert _api(stack, "GET", f"/attachments/{kept['id']}", org).status_code == 404

    path = f"/templates/{template['id']}"
    read = _api(stack, "GET", path, org)
    assert read.status_code == 200 and read.headers["ETag"] == '"v1"' and read.json() == template

    change = {"name": "Flu jab", "body": "Changed ((date))", "attachmentIds": [kept["id"]]}
    assert _api(stack, "PUT", path, org, json=change).status_code == 428
    assert _api(stack, "PUT", path, org, json=change, headers={"If-Match": '"v0"'}).status_code == 412
    assert _api(stack, "PUT", path, org, json=change, headers={"If-Match": 'W/"v1"'}).status_code == 412
    changed = _api(stack, "PUT", path, org, json=change, headers={"If-Match": '"v1"'})
    assert changed.status_code == 200 and changed.headers["ETag"] == '"v2"'
    assert changed.json()["version"] == 2 and changed.json()["attachments"] == [kept]
    stale = _api(stack, "PUT", path, org, json={**change, "body": "Lost"}, headers={"If-Match": '"v1"'})
    assert stale.status_code == 412 and stale.json()["type"].endswith("/precondition-failed")
    assert _api(stack, "GET", path, org).json()["body"] == "Changed ((date))"

    for name in ("b", "a", "c"):
        assert _create(stack, org, name=name).status_code == 201
    first = _api(stack, "GET", "/templates", org, params={"limit": 2}).json()
    assert [t["name"] for t in first["items"]] == ["a", "b"] and first["continuationToken"]
    rest = _api(
        stack, "GET", "/templates", org, params={"limit": 2, "continuationToken": first["continuationToken"]}
    ).json()
    assert [t["name"] for t in rest["items"]] == ["c", "Flu jab"] and rest["continuationToken"] is None
    assert _api(stack, "GET", "/templates", org, params={"limit": 0}).status_code == 422
    assert _api(stack, "GET", "/templates", org, params={"continuationToken": "nope"}).status_code == 422

    assert _api(stack, "DELETE", path, org, headers={"If-Match": '"v1"'}).status_code == 412
    assert _api(stack, "DELETE", path, org, headers={"If-Match": '"v2"'}).status_code == 204
    assert _api(stack, "GET", path, org).status_code == 404
    assert _api(stack, "DELETE", path, org).status_code == 404


def test_shared_and_private_templates_and_another_organisations(stack: RunningStack) -> None:
    org, other = _org(), _org()
    shared = _create(stack, org, name="shared").json()
    private = _create(stack, org, name="private", shared=False).json()
    assert private["shared"] is False
    names = [t["name"] for t in _api(stack, "GET", "/templates", org, user="gp2").json()["items"]]
    assert names == ["shared"]
    assert _api(stack, "GET", f"/templates/{private['id']}", org, user="gp2").status_code == 404
    assert _api(stack, "GET", f"/templates/{private['id']}", org).status_code == 200
    # Anyone in the practice may change a shared template; only its owner may make it private.
    bad = _api(
        stack,
        "PUT",
        f"/templates/{shared['id']}",
        org,
        user="gp2",
        json={"name": "shared", "body": "x", "shared": False},
        headers={"If-Match": '"v1"'},
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "shared"

    for template in (shared, private):
        path = f"/templates/{template['id']}"
        assert _api(stack, "GET", path, other).status_code == 404
        assert (
            _api(stack, "PUT", path, other, json={"name": "x", "body": "y"}, headers={"If-Match": "*"}).status_code
            == 404
        )
        assert _api(stack, "DELETE", path, other).status_code == 404
        assert _api(stack, "POST", f"{path}/preview", other, json={}).status_code == 404
        attachment = _clean_upload(stack, other, sample_pdf("x"))
        sent = _send(stack, other, "07700900123", templateId=template["id"], attachmentIds=[attachment])
        assert sent.status_code == 422 and [e["field"] for e in sent.json()["errors"]] == ["templateId"]
    assert _api(stack, "GET", "/templates", other).json() == {"items": [], "continuationToken": None}


def test_saving_a_date_of_birth_or_nhs_number_placeholder_is_a_422(stack: RunningStack) -> None:
    org = _org()
    for body in ("Your DOB is ((date of birth))", "NHS number: ((NHS_number))"):
        answer = _create(stack, org, body=body)
        assert answer.status_code == 422 and [e["field"] for e in answer.json()["errors"]] == ["body"]


def test_a_preview_counts_the_segments_after_filling(stack: RunningStack) -> None:
    org = _org()
    template = _create(stack, org, body="Dear ((first name)), ((note))").json()
    path = f"/templates/{template['id']}/preview"
    empty = _api(stack, "POST", path, org, json={})
    assert empty.status_code == 200
    assert empty.json()["missing"] == ["first name", "note"] and empty.json()["segments"] == 1
    link = empty.json()["body"].rsplit("\n", 1)[1]
    assert link.startswith(f"{stack.base_url}/p/")
    filled = _api(
        stack, "POST", path, org, json={"patient": {"name": "Jo Bloggs"}, "personalisation": {"Note": "n" * 150}}
    )
    assert filled.json() == {
        "body": f"Dear Jo, {'n' * 150}\n{link}",
        "segments": 2,
        "encoding": "GSM-7",
        "missing": [],
    }
    ucs2 = _api(stack, "POST", path, org, json={"patient": {"firstName": "Zoë"}, "personalisation": {"note": "Łódź"}})
    assert ucs2.json()["encoding"] == "UCS-2"
    bad = _api(stack, "POST", path, org, json={"personalisation": {"note": "see https://evil.example"}})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "personalisation.note"


# -- sending with a template --------------------------------------------------------------------


def test_a_send_by_template_reaches_the_inbox_filled_in_and_its_document_downloads(stack: RunningStack) -> None:
    org = _org()
    leaflet = sample_pdf("Flu leaflet")
    extra = sample_pdf("Extra letter")
    template = _create(
        stack,
        org,
        body="Dear ((first name)), ((practice name)) has your flu jab on ((appointment date)).",
        attachmentIds=[_clean_upload(stack, org, leaflet, "Flu leaflet.pdf")],
    ).json()
    extra_id = _clean_upload(stack, org, extra, "Extra.pdf")
    mobile, e164 = _mobile()
    when = f"Monday {uuid.uuid4().hex[:6]}"
    sent = _send(
        stack,
        org,
        mobile,
        templateId=template["id"],
        attachmentIds=[extra_id],
        personalisation={"Appointment Date": when},
    )
    assert sent.status_code == 202, sent.text
    link = stack.wait_link(e164, when)
    sms = [m for m in stack.inbox() if link in m["message"]][-1]
    assert sms["message"] == f"Dear Jo, Riverside Surgery has your flu jab on {when}.\n{link}"

    browser, token, page = _open_documents(stack, link)
    assert "Flu leaflet.pdf" in page and "Extra.pdf" in page
    document = template["attachments"][0]["id"]
    for document_id, data in ((document, leaflet), (extra_id, extra)):
        download = _download(stack, browser, token, document_id)
        assert download.status_code == 303
        assert requests.get(download.headers["Location"], timeout=10).content == data

    view = stack.message(sent.json()["id"], org=org)
    assert (view["templateId"], view["templateVersion"]) == (template["id"], 1)
    assert [a["id"] for a in view["attachments"]] == [document, extra_id]
    # Revoking the message never touches the template: the next send still has the document.
    assert _api(stack, "POST", f"/messages/{sent.json()['id']}/revoke", org).status_code == 200
    again = _send(stack, org, mobile, templateId=template["id"], personalisation={"appointment date": "Tuesday"})
    assert again.status_code == 202, again.text


def test_missing_placeholders_are_all_named_in_one_422(stack: RunningStack) -> None:
    org = _org()
    document = _clean_upload(stack, org, sample_pdf("x"))
    template = _create(stack, org, body="((first name)): ((date)) at ((time)) in ((room))", attachmentIds=[document])
    patient = {"nhsNumber": "9434765919", "dateOfBirth": DOB, "mobile": "07700900123"}
    answer = _api(
        stack,
        "POST",
        "/messages",
        org,
        json={"patient": patient, "templateId": template.json()["id"], "personalisation": {"TIME": "10:30", "x": "y"}},
    )
    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == [
        "patient.name",
        "personalisation.date",
        "personalisation.room",
    ]


def test_attachments_and_segments_at_the_limit_and_one_over(stack: RunningStack) -> None:
    org = _org()
    documents = [_clean_upload(stack, org, sample_pdf(f"doc {n}")) for n in range(2)]
    uploads = [_clean_upload(stack, org, sample_pdf(f"upload {n}")) for n in range(4)]
    template = _create(stack, org, body="Hello ((x))", attachmentIds=documents).json()
    mobile, _ = _mobile()
    five = _send(stack, org, mobile, templateId=template["id"], attachmentIds=uploads[:3], personalisation={"x": "y"})
    assert five.status_code == 202, five.text
    six = _send(stack, org, mobile, templateId=template["id"], attachmentIds=uploads, personalisation={"x": "y"})
    assert six.status_code == 422 and [e["field"] for e in six.json()["errors"]] == ["attachmentIds"]

    # Six segments exactly (153 GSM-7 characters each) once ((x)) is filled, then one character more.
    probe = _api(stack, "POST", f"/templates/{template['id']}/preview", org, json={"personalisation": {"x": "y"}})
    link = probe.json()["body"].rsplit("\n", 1)[1]
    value = "z" * 10
    static = "s" * (6 * 153 - len(link) - 1 - len(value))
    long = _create(stack, org, body=f"{static}((x))", attachmentIds=[]).json()
    preview = _api(stack, "POST", f"/templates/{long['id']}/preview", org, json={"personalisation": {"x": value}})
    assert preview.json()["segments"] == 6
    exact = _send(stack, org, mobile, templateId=long["id"], attachmentIds=[uploads[0]], personalisation={"x": value})
    assert exact.status_code == 202 and exact.json()["segments"] == 6, exact.text
    over = _send(
        stack, org, mobile, templateId=long["id"], attachmentIds=[uploads[0]], personalisation={"x": value + "z"}
    )
    assert over.status_code == 422 and [e["field"] for e in over.json()["errors"]] == ["body"]


def test_template_documents_survive_the_link_purge(stack: RunningStack) -> None:
    from azure.data.tables import TableClient, UpdateMode

    from devstack.azurite import connection_string
    from shared_code import clock

    org = _org()
    leaflet = sample_pdf("Kept for months")
    template = _create(stack, org, attachmentIds=[_clean_upload(stack, org, leaflet)]).json()
    mobile, e164 = _mobile()
    first = _send(stack, org, mobile, templateId=template["id"], personalisation={"date": "one"}).json()
    stack.wait_message(first["id"], {"sent", "delivered"}, org=org)
    messages = TableClient.from_connection_string(connection_string(stack.ports), "messages")
    expired = clock.iso(clock.now() - timedelta(minutes=1))
    messages.update_entity(
        {"PartitionKey": org, "RowKey": first["id"], "linkExpiresAt": expired}, mode=UpdateMode.MERGE
    )
    assert requests.post(f"{stack.base_url}/admin/functions/retention", json={}, timeout=10).status_code == 202
    _wait(lambda: "purged" in [e["type"] for e in stack.message(first["id"], org=org)["events"]], "the purge")

    marker = f"again {uuid.uuid4().hex[:6]}"
    second = _send(stack, org, mobile, templateId=template["id"], personalisation={"date": marker})
    assert second.status_code == 202, second.text
    browser, token, _ = _open_documents(stack, stack.wait_link(e164, marker))
    download = _download(stack, browser, token, template["attachments"][0]["id"])
    assert requests.get(download.headers["Location"], timeout=10).content == leaflet


def test_a_rescan_withdraws_a_document_current_signatures_find(
    stack: RunningStack, session_clamd: ClamdProcess
) -> None:
    org = _org()
    marker = f"ENCLOSE-E2E-RESCAN-{uuid.uuid4().hex}"
    fasting = f"Fasting before your operation. Reference {marker}\n".encode()
    letter = sample_pdf("Pre-op letter")
    template = _create(
        stack,
        org,
        body="Dear ((first name)), read these before ((date)).",
        attachmentIds=[
            _clean_upload(stack, org, fasting, "Fasting.txt", content_type="text/plain"),
            _clean_upload(stack, org, letter, "Pre-op letter.pdf"),
        ],
    ).json()
    bad, good = (a["id"] for a in template["attachments"])
    mobile, e164 = _mobile()
    when = f"Friday {uuid.uuid4().hex[:6]}"
    sent = _send(stack, org, mobile, templateId=template["id"], personalisation={"date": when}).json()
    link = stack.wait_link(e164, when)
    browser, token, page = _open_documents(stack, link)
    assert "Fasting.txt" in page

    signature = add_signature(session_clamd, f"Enclose.Test.E2E{uuid.uuid4().hex[:8]}", marker.encode())
    assert requests.post(f"{stack.base_url}/admin/functions/template_rescan", json={}, timeout=10).status_code == 202
    path = f"/templates/{template['id']}"
    now = _wait(lambda: (t := _api(stack, "GET", path, org).json())["version"] == 2 and t, "the withdrawal", 120)
    assert [a["id"] for a in now["attachments"]] == [good]
    [withdrawn] = now["withdrawnAttachments"]
    assert withdrawn["id"] == bad and withdrawn["filename"] == "Fasting.txt" and signature in withdrawn["reason"]

    view = _wait(
        lambda: (
            (v := stack.message(sent["id"], org=org))
            and any(e["type"] == "document_withdrawn" for e in v["events"])
            and v
        ),
        "the message's event",
    )
    assert view["templateVersion"] == 1
    page = browser.get(f"{stack.base_url}/p/{token}/documents", timeout=10).text
    assert "Fasting.txt" not in page and "Pre-op letter.pdf" in page
    assert _download(stack, browser, token, bad).status_code == 404
    assert _download(stack, browser, token, good).status_code == 303
    # Version 1 had it: it can no longer be sent. The current version can.
    old = _send(stack, org, mobile, templateId=template["id"], templateVersion=1, personalisation={"date": "x"})
    assert old.status_code == 409, old.text
    assert _send(stack, org, mobile, templateId=template["id"], personalisation={"date": "x"}).status_code == 202


def test_an_idempotency_key_replays_a_send_by_template(stack: RunningStack) -> None:
    org = _org()
    template = _create(stack, org, attachmentIds=[_clean_upload(stack, org, sample_pdf("Once"))]).json()
    mobile, e164 = _mobile()
    marker = f"once {uuid.uuid4().hex[:6]}"
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = _api(
        stack,
        "POST",
        "/messages",
        org,
        headers=key,
        json={
            "patient": {"nhsNumber": "9434765919", "dateOfBirth": DOB, "mobile": mobile, "name": "Jo Bloggs"},
            "templateId": template["id"],
            "personalisation": {"date": marker},
        },
    )
    again = _api(stack, "POST", "/messages", org, headers=key, json=json.loads(first.request.body))
    assert first.status_code == again.status_code == 202 and first.json() == again.json()
    other = json.loads(first.request.body) | {"personalisation": {"date": "another day"}}
    assert _api(stack, "POST", "/messages", org, headers=key, json=other).status_code == 422
    stack.wait_link(e164, marker)
    assert len([m for m in stack.inbox() if marker in m["message"]]) == 1
