"""Batches through the whole local stack: a CSV as a practice exports it (Windows-1252, CRLF, dates in
three forms, a refused row, a duplicate), sent twice under one Idempotency-Key and once more without,
each patient texted exactly once with the filled-in text, counters and status to `done`, paging,
errors.csv, and another organisation's 404 on every route."""

from __future__ import annotations

import csv
import io
import random
import time
import uuid

import requests

from tests.support.nhs_numbers import nhs_number
from tests.support.stack import RunningStack, sample_pdf


def _org() -> str:
    return f"B{random.randrange(10**6):06d}"


def _api(stack: RunningStack, method: str, path: str, org: str, **kwargs) -> requests.Response:
    headers = {**stack.auth(org, org_name="Riverside Surgery"), **kwargs.pop("headers", {})}
    return requests.request(method, f"{stack.base_url}/api/v1{path}", headers=headers, timeout=60, **kwargs)


def _wait(check, what: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def test_a_batch_texts_each_patient_once(stack: RunningStack) -> None:
    org = _org()
    upload = stack.upload(sample_pdf("Flu leaflet"), "leaflet.pdf", org=org)
    assert upload.status_code == 202, upload.text
    assert stack.wait_attachment(upload.json()["id"], org=org)["status"] == "clean"
    marker = uuid.uuid4().hex[:8]
    base = random.randrange(0, 900)
    mobiles = [f"07700 900{base + i:03d}" for i in range(12)]
    dates = ["31/01/1970", "31-Jan-1970", "1970-01-31"]
    lines = ["NHS Number,Date of Birth,Mobile Telephone,Given Name,Family Name,Clinic Ref"]
    for i, mobile in enumerate(mobiles):
        lines.append(f"{nhs_number(7000 + base * 20 + i)},{dates[i % 3]},{mobile},Zoë{i},Brontë,{marker}")
    lines.append(f"1234567890,31/01/1970,07700 900999,Bad,Row,{marker}")  # the check digit fails
    lines.append(f"{nhs_number(7000 + base * 20)},31/01/1970,{mobiles[0]},Zoë0,Brontë,{marker}")  # again
    data = ("\r\n".join(lines) + "\r\n").encode("cp1252")
    created = _api(
        stack,
        "POST",
        "/batches",
        org,
        files={"file": ("cohort.csv", io.BytesIO(data), "text/csv")},
        data={"body": "Dear ((first name)), your leaflet (ref ((clinic ref))).", "attachmentIds": upload.json()["id"]},
    )
    assert created.status_code == 201, created.text
    batch = created.json()
    assert created.headers["Location"] == f"/api/v1/batches/{batch['id']}"
    assert (batch["rows"], batch["valid"], batch["invalid"], batch["duplicates"]) == (14, 12, 1, 1)
    assert batch["errors"] == [{"row": 14, "column": "NHS Number", "message": "Enter a valid 10-digit NHS number"}]
    assert batch["preview"][0]["body"].startswith(f"Dear Zoë0, your leaflet (ref {marker}).\n")
    assert len(batch["preview"]) == 5

    path = f"/batches/{batch['id']}"
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = _api(stack, "POST", f"{path}/send", org, headers=key)
    assert first.status_code == 202, first.text and first.json()["status"] == "sending"
    again = _api(stack, "POST", f"{path}/send", org, headers=key)
    assert again.status_code == 202 and again.json() == first.json()
    assert _api(stack, "POST", f"{path}/send", org).status_code == 202  # without a key: nothing new either

    wanted = {"+44" + m.replace(" ", "")[1:] for m in mobiles}

    def texts() -> list[dict]:
        return [sms for sms in stack.inbox() if f"(ref {marker})" in sms["message"]]

    _wait(lambda: {sms["to"] for sms in texts()} == wanted, "a text to every patient")
    view = _wait(
        lambda: (doc := _api(stack, "GET", path, org).json())["status"] == "done" and doc,
        "the batch to be done",
    )
    counters = view["counters"]
    assert counters["total"] == 12 and counters["queued"] == 0 and counters["cancelled"] == 0
    assert counters["sent"] + counters["delivered"] == 12
    got = sorted(sms["to"] for sms in texts())
    assert got == sorted(wanted)  # exactly one each
    by_to = {sms["to"]: sms["message"] for sms in texts()}
    assert by_to["+44" + mobiles[3].replace(" ", "")[1:]].startswith(f"Dear Zoë3, your leaflet (ref {marker}).\n")

    page = _api(stack, "GET", f"{path}/messages", org, params={"limit": 10}).json()
    assert [i["row"] for i in page["items"]] == list(range(2, 12))
    rest = _api(stack, "GET", f"{path}/messages", org, params={"continuationToken": page["continuationToken"]}).json()
    assert [i["row"] for i in rest["items"]] == [12, 13] and rest["continuationToken"] is None

    errors = _api(stack, "GET", f"{path}/errors.csv", org)
    assert errors.status_code == 200 and errors.headers["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(errors.content.decode("utf-8-sig"), newline="")))
    assert table[0][-1] == "Reason" and len(table) == 2 and table[1][0] == "1234567890"

    other = _org()
    for method, suffix in (
        ("GET", ""),
        ("POST", "/send"),
        ("POST", "/cancel"),
        ("GET", "/messages"),
        ("GET", "/errors.csv"),
    ):
        assert _api(stack, method, f"{path}{suffix}", other).status_code == 404


def test_a_file_over_the_row_limit_or_without_a_mobile_column_is_refused(stack: RunningStack) -> None:
    org = _org()
    upload = stack.upload(sample_pdf("Leaflet"), "leaflet.pdf", org=org)
    files = {"file": ("cohort.csv", io.BytesIO(b"NHS Number,DOB\r\n9434765919,31/01/1970\r\n"), "text/csv")}
    fields = {"body": "Hi", "attachmentIds": upload.json()["id"]}
    refused = _api(stack, "POST", "/batches", org, files=files, data=fields)
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["file"]
    too_many = b"NHS Number,DOB,Mobile\r\n" + b"9434765919,31/01/1970,07700900123\r\n" * 10_001
    files = {"file": ("cohort.csv", io.BytesIO(too_many), "text/csv")}
    refused = _api(stack, "POST", "/batches", org, files=files, data=fields)
    assert refused.status_code == 422
