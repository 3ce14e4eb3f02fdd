"""A local managed-identity endpoint, as App Service and Azure Functions offer one, so the app's Entra ID
path to ACS runs on one machine.

In Azure the platform sets `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`, and `azure-identity` (through MSAL's
`ManagedIdentityClient`) asks `GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=...` with the header
`X-IDENTITY-HEADER: {IDENTITY_HEADER}`, and reads `access_token` and `expires_on` (Unix seconds) from the
JSON answer (Microsoft's "Managed identities for App Service and Azure Functions", REST endpoint
reference; msal's `managed_identity._obtain_token_on_app_service`). This endpoint answers the same way
with a JWT for the requested resource, signed with a key kept under `.local/`, which the SMS emulator
checks; a request without the right header is refused, as the platform's is.

`python -m devstack.identity` runs it alone and prints the two settings.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("devstack.identity")

#: The API version azure-identity and MSAL speak to App Service's endpoint.
API_VERSION = "2019-08-01"
#: Who the local tokens say issued them (Entra ID's v1 issuer has the same shape, with a tenant id).
ISSUER = "https://sts.windows.net/00000000-0000-0000-0000-000000000000/"
#: The resource the ACS SDK asks for (its BearerTokenCredentialPolicy scope, less "/.default").
ACS_RESOURCE = "https://communication.azure.com/"
TOKEN_LIFETIME_SECONDS = 3600
KEY_FILE = "identity-signing-key"


def identity_key(local_dir: Path) -> bytes:
    """The key local tokens are signed with (HS256), made under `local_dir` on first use."""
    path = Path(local_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()


def issue_token(key: bytes, resource: str, principal_id: str, client_id: str, now: float | None = None) -> str:
    """A token for `resource`, as Entra ID gives a managed identity (the claims the emulator checks)."""
    import jwt

    issued = int(time.time() if now is None else now)
    claims = {
        "aud": resource.rstrip("/"),
        "iss": ISSUER,
        "iat": issued,
        "nbf": issued,
        "exp": issued + TOKEN_LIFETIME_SECONDS,
        "oid": principal_id,
        "sub": principal_id,
        "appid": client_id,
        "idtyp": "app",
    }
    return jwt.encode(claims, key, algorithm="HS256")


def verify_token(key: bytes, token: str, resource: str) -> dict[str, Any]:
    """The claims of a token this endpoint issued for `resource`; `jwt.InvalidTokenError` if it is not one."""
    import jwt

    # Entra ID names the resource with or without its trailing slash, as it was asked.
    audiences = [resource.rstrip("/"), resource.rstrip("/") + "/"]
    return jwt.decode(
        token,
        key,
        algorithms=["HS256"],
        audience=audiences,
        issuer=ISSUER,
        options={"require": ["exp", "iat", "nbf", "aud", "iss", "oid"]},
    )


class IdentityEndpoint:
    """The managed-identity endpoint on a background thread; `environ` is what the app's host needs."""

    def __init__(
        self,
        key: bytes,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        principal_id: str | None = None,
        client_id: str | None = None,
    ) -> None:
        self.key = key
        self.secret = secrets.token_urlsafe(24)  # IDENTITY_HEADER: new for each run, as the platform's
        self.principal_id = principal_id or str(uuid.uuid4())
        self.client_id = client_id or str(uuid.uuid4())
        self.tokens_issued = 0
        self._address = (host, port)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """IDENTITY_ENDPOINT."""
        if self._server is None:
            raise RuntimeError("not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/msi/token"

    @property
    def environ(self) -> dict[str, str]:
        """The two settings App Service gives a function app with a managed identity."""
        return {"IDENTITY_ENDPOINT": self.url, "IDENTITY_HEADER": self.secret}

    def start(self) -> None:
        """Listen, and serve on a background thread."""
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                status, body = endpoint._answer(self.path, self.headers.get("X-IDENTITY-HEADER"))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("%s %s", self.address_string(), format % args)

        self._server = ThreadingHTTPServer(self._address, Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="identity", daemon=True
        )
        self._thread.start()
        log.info("managed identity endpoint listening at %s (principal %s)", self.url, self.principal_id)

    def stop(self) -> None:
        """Stop listening. Safe to call twice."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server, self._thread = None, None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _answer(self, target: str, header: str | None) -> tuple[int, dict[str, Any]]:
        split = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(split.query).items()}
        if split.path != "/msi/token":
            return 404, {"statusCode": 404, "message": "Not found."}
        if header is None or not secrets.compare_digest(header, self.secret):
            log.info("token refused: no or wrong X-IDENTITY-HEADER")
            return 401, {"statusCode": 401, "message": "The X-IDENTITY-HEADER is missing or wrong."}
        if query.get("api-version") != API_VERSION or not query.get("resource"):
            return 400, {"statusCode": 400, "message": "api-version and resource are required."}
        if query.get("client_id") not in (None, self.client_id):
            return 400, {"statusCode": 400, "message": "No such user-assigned identity."}
        resource = query["resource"]
        now = time.time()
        with self._lock:
            self.tokens_issued += 1
        return 200, {
            "access_token": issue_token(self.key, resource, self.principal_id, self.client_id, now),
            "expires_on": str(int(now) + TOKEN_LIFETIME_SECONDS),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": self.client_id,
        }


def main() -> int:
    """Run the endpoint alone, on the local stack's key, until Ctrl-C."""
    from devstack.localsecrets import local_dir_from_env

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    endpoint = IdentityEndpoint(identity_key(local_dir_from_env()))
    endpoint.start()
    for name, value in endpoint.environ.items():
        print(f"{name}={value}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        endpoint.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
