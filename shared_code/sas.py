"""Short-lived, read-only SAS URLs for one document.

In Azure: a user delegation SAS signed with a key obtained through the managed
identity (never an account key), https only. Against Azurite: an account-key SAS,
the only kind the emulator's well-known key allows.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from shared_code import clock
from shared_code.settings import Settings
from shared_code.storage import Storage

#: How far back a SAS's start is set, so a reader whose clock runs a little behind ours
#: can still use it; the expiry is the hard limit (now + SAS_TTL_SECONDS).
CLOCK_SKEW = timedelta(minutes=1)
#: A user delegation key is fetched for this long and reused until 10 minutes before it ends,
#: so issuing a SAS costs no round trip on the portal's hot path.
DELEGATION_KEY_LIFETIME = timedelta(hours=2)
_KEY_RENEW_BEFORE = timedelta(minutes=10)

_key_lock = threading.Lock()
#: blob endpoint -> (UserDelegationKey, when it expires)
_delegation: dict[str, tuple[Any, datetime]] = {}


def _delegation_key(storage: Storage, now: datetime) -> Any:
    """A user delegation key (`azure.storage.blob.UserDelegationKey`) for the storage account."""
    service = storage.blob_service
    with _key_lock:
        cached = _delegation.get(service.url)
        if cached is None or cached[1] - now < _KEY_RENEW_BEFORE:
            expiry = now + DELEGATION_KEY_LIFETIME
            key = service.get_user_delegation_key(now - timedelta(minutes=5), expiry)
            cached = _delegation[service.url] = (key, expiry)
        return cached[0]


def document_sas_url(
    storage: Storage,
    settings: Settings,
    container: str,
    blob_name: str,
    *,
    filename_disposition: str,
    content_type: str,
) -> str:
    """A URL that lets its holder read this one blob for at most SAS_TTL_SECONDS.

    Signed with a user delegation key (https only) unless storage is Azurite, where an
    account-key SAS is used.
    """
    from azure.storage.blob import BlobSasPermissions, generate_blob_sas

    now = clock.now()
    service = storage.blob_service
    common = dict(
        account_name=service.account_name,
        container_name=container,
        blob_name=blob_name,
        permission=BlobSasPermissions(read=True),
        start=now - CLOCK_SKEW,
        expiry=now + timedelta(seconds=settings.sas_ttl_seconds),
        content_disposition=filename_disposition,
        content_type=content_type,
    )
    if settings.uses_azurite:
        sas = generate_blob_sas(account_key=service.credential.account_key, **common)
    else:
        sas = generate_blob_sas(user_delegation_key=_delegation_key(storage, now), protocol="https", **common)
    base = service.get_blob_client(container, blob_name).url
    return f"{base.split('?', 1)[0]}?{sas}"
