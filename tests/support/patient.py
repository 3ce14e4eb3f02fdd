"""A patient's side of the portal over plain HTTP (no browser): confirm the date of birth, then
fetch a document (download or view) as the phone would."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import requests

from tests.support.stack import RunningStack

RIGHT_DOB = ("31", "1", "1970")  # the date of birth RunningStack.send_clean sends with


def signed_in(link: str, dob: tuple[str, str, str] = RIGHT_DOB) -> tuple[requests.Session, str]:
    """A session that has confirmed the date of birth on `link`, and the link's token."""
    session = requests.Session()
    form = session.get(link, timeout=10)
    assert form.status_code == 200, form.status_code
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    day, month, year = dob
    answer = session.post(
        link,
        data={"dob-day": day, "dob-month": month, "dob-year": year, "csrf": csrf},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 303, answer.status_code
    return session, urlparse(link).path.rsplit("/", 1)[-1]


def document(
    stack: RunningStack, session: requests.Session, token: str, attachment_id: str, *, view: bool = False
) -> requests.Response:
    """Follow a document's download (or view) link to the blob: the answer the phone gets."""
    suffix = "/view" if view else ""
    redirect = session.get(
        f"{stack.base_url}/p/{token}/documents/{attachment_id}{suffix}", allow_redirects=False, timeout=10
    )
    assert redirect.status_code == 303, redirect.status_code
    blob = requests.get(redirect.headers["Location"], timeout=30)
    assert blob.status_code == 200, blob.status_code
    return blob
