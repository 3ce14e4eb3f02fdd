"""Local secrets and settings, made once under `.local/` and kept across restarts.

Holds what Key Vault and Entra ID hold in Azure: the date-of-birth hash key, the
session signing key, the dev token issuer's RSA key (and its JWKS), the SMS
emulator's access key and its self-signed TLS certificate. `local_settings()`
gives the app settings of a local stack, in the shape of `local.settings.json`.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from devstack.azurite import connection_string
from devstack.ports import Ports

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LOCAL_DIR = ROOT / ".local"
LOCAL_ISSUER = "https://login.enclose.local/devstack"
LOCAL_AUDIENCE = "api://enclose"
LOCAL_ROLE = "Messages.Send"  # the app role the dev tokens carry, as Entra ID assigns it in Azure
# Room for a multipart upload's boundaries and part headers around the largest file allowed; the
# Bicep sizes FUNCTIONS_REQUEST_BODY_SIZE_LIMIT the same way (the larger of maxUploadBytes and
# maxAttachmentBytes, + 64 KiB).
MULTIPART_OVERHEAD_BYTES = 65536


def local_dir_from_env() -> Path:
    """Where local secrets and data live: ENCLOSE_LOCAL_DIR, else `.local/` in the checkout."""
    return Path(os.environ.get("ENCLOSE_LOCAL_DIR") or DEFAULT_LOCAL_DIR)


@dataclass(frozen=True)
class LocalSecrets:
    """Paths and values of the local secrets."""

    root: Path

    @property
    def jwt_private_key(self) -> Path:
        return self.root / "devtoken-private.pem"

    @property
    def jwks(self) -> Path:
        return self.root / "devtoken-jwks.json"

    @property
    def sms_cert(self) -> Path:
        return self.root / "sms-emulator-cert.pem"

    @property
    def sms_key(self) -> Path:
        return self.root / "sms-emulator-key.pem"

    @property
    def azurite_dir(self) -> Path:
        return self.root / "azurite"

    def value(self, name: str) -> str:
        """A stored secret value (created by `ensure_local_secrets`)."""
        return (self.root / name).read_text().strip()


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    os.chmod(path, 0o600)


def _b64url_uint(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def ensure_local_secrets(root: Path = DEFAULT_LOCAL_DIR) -> LocalSecrets:
    """Create any missing secret under `root`; existing ones are kept as they are."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    s = LocalSecrets(root)
    for name in ("dob-hash-key", "session-key"):
        if not (root / name).exists():
            _write_private(root / name, secrets.token_hex(32).encode())
    if not (root / "sms-access-key").exists():
        _write_private(root / "sms-access-key", base64.b64encode(secrets.token_bytes(32)))

    if not s.jwt_private_key.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(s.jwt_private_key, pem)
        s.jwks.unlink(missing_ok=True)
    if not s.jwks.exists():
        key = serialization.load_pem_private_key(s.jwt_private_key.read_bytes(), None)
        numbers = key.public_key().public_numbers()
        jwk = {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": "devstack-1",
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
        }
        s.jwks.write_text(json.dumps({"keys": [jwk]}, indent=2))

    if not s.sms_cert.exists() or not s.sms_key.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Enclose SMS emulator")])
        now = dt.datetime.now(dt.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        _write_private(
            s.sms_key,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        s.sms_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return s


def request_body_limit() -> int:
    """The host's request body limit: the largest upload (MAX_UPLOAD_BYTES, a PDF or picture that
    is then made to fit) plus multipart overhead, as in Azure."""
    from shared_code.settings import Settings

    return Settings().upload_limit + MULTIPART_OVERHEAD_BYTES


def local_settings(s: LocalSecrets, ports: Ports) -> dict[str, str]:
    """The app settings of a local stack on these ports (the `Values` of local.settings.json)."""
    return {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsFeatureFlags": "EnableWorkerIndexing",
        "AzureWebJobsStorage": connection_string(ports),
        "ACS_CONNECTION_STRING": (f"endpoint=https://127.0.0.1:{ports.sms_api}/;accesskey={s.value('sms-access-key')}"),
        "ACS_CA_BUNDLE": str(s.sms_cert),
        "SMS_SENDER": "Enclose",
        "PORTAL_BASE_URL": f"http://127.0.0.1:{ports.functions}",
        "AUTH_ISSUER": LOCAL_ISSUER,
        "AUTH_AUDIENCE": LOCAL_AUDIENCE,
        "AUTH_JWKS_URL": s.jwks.as_uri(),
        "AUTH_REQUIRED_ROLE": LOCAL_ROLE,
        "DOB_HASH_KEY": s.value("dob-hash-key"),
        "SESSION_KEY": s.value("session-key"),
        "ALLOW_DRAMA_NUMBERS": "true",
        "CALLBACK_ALLOW_LOCAL": "true",
        "SCANNER": "clamav",
        "BLOB_TRIGGER_SOURCE": "LogsAndContainerScan",
        "CLAMD_ADDRESS": os.environ.get("CLAMD_ADDRESS", "tcp://127.0.0.1:3310"),
        # The host refuses a bigger body with 413 from its Content-Length, before reading it.
        "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT": str(request_body_limit()),
    }


def write_local_settings_json(values: dict[str, str], path: Path = ROOT / "local.settings.json") -> None:
    """Write Core Tools' `local.settings.json`, so `func start` runs the same configuration."""
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values}, indent=2) + "\n")
    os.chmod(path, 0o600)
