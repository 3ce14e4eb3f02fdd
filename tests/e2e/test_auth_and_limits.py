"""The app role, the host's body limit and chunked bodies through the local stack, configured as `make run` does."""

from __future__ import annotations

import http.client
from urllib.parse import urlparse

import requests

from devstack.localsecrets import request_body_limit
from tests.support.stack import RunningStack


def test_a_valid_token_without_the_app_role_is_a_403_problem(stack: RunningStack) -> None:
    url = f"{stack.base_url}/api/v1/messages/00000000-0000-0000-0000-000000000000"
    answer = requests.get(url, headers=stack.auth(roles=()), timeout=10)
    assert answer.status_code == 403, answer.text
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert answer.json()["type"].endswith("/forbidden")
    with_role = requests.get(url, headers=stack.auth(), timeout=10)
    assert with_role.status_code == 404  # past the role check: no such message in this organisation


def test_an_upload_over_the_host_limit_is_refused_from_its_content_length(stack: RunningStack) -> None:
    target = urlparse(stack.base_url)
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=5)
    conn.putrequest("POST", "/api/v1/attachments")
    conn.putheader("Authorization", stack.auth()["Authorization"])
    conn.putheader("Content-Type", "multipart/form-data; boundary=x")
    conn.putheader("Content-Length", str(request_body_limit() + 1))
    conn.endheaders()  # no body is sent: the host answers from the header alone (or times out)
    answer = conn.getresponse()
    assert answer.status == 413
    conn.close()


def _chunks(data: bytes):
    yield from (data[i : i + 1024] for i in range(0, len(data), 1024))


def test_a_message_sent_chunked_is_411_not_an_empty_body(stack: RunningStack) -> None:
    body = b'{"mobile": "07700900123", "body": "Your letter is ready."}'
    headers = {**stack.auth(), "Content-Type": "application/json"}
    answer = requests.post(f"{stack.base_url}/api/v1/messages", data=_chunks(body), headers=headers, timeout=10)
    assert answer.status_code == 411, answer.text
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert answer.json()["type"].endswith("/length-required")


def test_an_upload_sent_chunked_is_411(stack: RunningStack) -> None:
    boundary = "enclose-chunked"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        f"Content-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n"
    ).encode()
    headers = {**stack.auth(), "Content-Type": f"multipart/form-data; boundary={boundary}"}
    answer = requests.post(f"{stack.base_url}/api/v1/attachments", data=_chunks(body), headers=headers, timeout=10)
    assert answer.status_code == 411, answer.text
    assert answer.json()["type"].endswith("/length-required")
