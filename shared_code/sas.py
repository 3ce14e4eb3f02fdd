"""Short-lived, read-only SAS URLs for one document.

In Azure: a user delegation SAS signed with a key obtained through the managed
identity (never an account key), https only. Against Azurite: an account-key SAS,
the only kind the emulator's well-known key allows.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from shared_code import clock
from shared_code.settings import Settings
from shared_code.storage import Storage

_key_lock = threading.Lock()
_delegation: dict[str, object] = {}
#: A user delegation key is fetched for this long and reused until 10 minutes before it ends,
#: so issuing a SAS costs no round trip on the portal's hot path.
DELEGATION_KEY_LIFETIME = timedelta(hours=2)


def _delegation_key(storage: Storage, now: datetime):  # -> UserDelegationKey
    with _key_lock:
        key = _delegation.get("key")
        expires = _delegation.get("expires")
        if key is None or expires is None or expires - now < timedelta(minutes=10):
            expiry = now + DELEGATION_KEY_LIFETIME
            key = storage.blob_service.get_user_delegation_key(now - timedelta(minutes=5), expiry)
            _delegation.update(key=key, expires=expiry)
        return key


def document_sas_url(storage: Storage, settings: Settings, container: str, blob_name: str, *,
                     filename_disposition: str, content_type: str) -> str:
    """A URL that lets its holder read this one blob for at most SAS_TTL_SECONDS."""
    from azure.storage.blob import BlobSasPermissions, generate_blob_sas

    now = clock.now()
    service = storage.blob_service
    common = dict(
        account_name=service.account_name,
        container_name=container,
        blob_name=blob_name,
        permission=BlobSasPermissions(read=True),
        # A little clock-skew allowance at the start; the end is the hard limit.
        start=now - timedelta(minutes=1),
        expiry=now + timedelta(seconds=settings.sas_ttl_seconds),
        content_disposition=filename_disposition,
        content_type=content_type,
    )
    if settings.uses_azurite:
        sas = generate_blob_sas(account_key=service.credential.account_key, **common)
    else:
        sas = generate_blob_sas(user_delegation_key=_delegation_key(storage, now),
                                protocol="https", **common)
    base = service.get_blob_client(container, blob_name).url
    return f"{base.split('?', 1)[0]}?{sas}"
