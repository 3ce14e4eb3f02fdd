"""Defender for Storage's scan results, kept for the scan that waits on them.

Defender publishes a `Microsoft.Security.MalwareScanningResult` event for every blob it scans
to the deployment's Event Grid topic; a subscription delivers it to `record_scan_result`
(functions/scan.py), which stores it here with `store_scan_result`. The upload's scan
(`shared_code.scanning.DefenderScanner`) reads it back through `StoredVerdicts`, which also
tells it which version of the upload is stored now, so only a result for those bytes counts.

Rows live in the `scanverdicts` table: the partition is the blob's path in the account
(`uploads/{org}/{id}`, URL-quoted because table keys may not hold `/`), the row key the ETag
of the version Defender read, so a repeated event (Event Grid delivers at least once) rewrites
the same row and results for an older version of the blob stay apart from the current one.
Rows are removed once the verdict is settled (`forget_scan_results`), and any left (a verdict
that came after its scan gave up, a blob deleted meanwhile) after `KEEP_UNCLAIMED` by the
retention timer (`forget_unclaimed_scan_results`). Any container Defender
scans (`SCANNED_BY_DEFENDER`) can be waited on this way; uploads are.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from shared_code import clock
from shared_code.scanning import BlobVersion, ScanResult, scan_result_from_event
from shared_code.storage import SCAN_VERDICTS, SCANNED_BY_DEFENDER, UPLOADS, Storage
from shared_code.tables import at_most, eq

log = logging.getLogger(__name__)

#: How long a result no scan claimed is kept: far past any scan's wait for its verdict.
KEEP_UNCLAIMED = timedelta(days=1)
#: The row key of a result whose event named no ETag (it then counts by its time alone).
_NO_ETAG = "-"


def _partition(container: str, blob: str) -> str:
    return quote(f"{container}/{blob}", safe="")


def _row_key(etag: str | None) -> str:
    if not etag:
        return _NO_ETAG
    # ETags are `0x` and hex; anything a table key cannot hold is quoted away all the same.
    return quote(etag.strip().strip('"'), safe="")


def store_scan_result(storage: Storage, data: Mapping[str, Any]) -> str:
    """Store the result in one scan-result event's data; what was done, in a few words.

    Only results for this app's storage account and the containers Defender is meant to scan
    are kept: an event about another account's blob (a topic shared by mistake) or another
    container is ignored, and so is one that lacks what a verdict needs. Storing the same event
    again changes nothing.
    """
    result = scan_result_from_event(data)
    if result is None:
        return "ignored: not a usable scan result"
    if result.account != storage.blob_service.account_name:
        return "ignored: another storage account"
    if result.container not in SCANNED_BY_DEFENDER:
        return "ignored: a container Defender is not meant to scan"
    storage.table(SCAN_VERDICTS).replace(
        {
            "PartitionKey": _partition(result.container, result.blob),
            "RowKey": _row_key(result.etag),
            "blobEtag": result.etag,
            "result": result.result,
            "malwareNames": "\n".join(result.malware_names),
            # Microseconds: a verdict is compared with the blob's last write.
            "scannedAt": result.scanned_at.isoformat(timespec="microseconds"),
            "recordedAt": clock.iso(clock.now()),
        },
        etag=None,
    )
    return "recorded: " + ("clean" if result.verdict.clean else "rejected")


class StoredVerdicts:
    """The `shared_code.scanning.VerdictSource` over this app's storage: a blob's current
    version from blob storage, its recorded results from the `scanverdicts` table."""

    def __init__(self, storage: Storage, container: str = UPLOADS) -> None:
        self._storage = storage
        self._container = container

    def blob_version(self, blob_name: str) -> BlobVersion:
        """ETag, last write and Content-MD5 of `{container}/{blob_name}` as stored now."""
        props = self._storage.container(self._container).get_blob_client(blob_name).get_blob_properties()
        md5 = props.content_settings.content_md5
        return BlobVersion(etag=props.etag, last_modified=props.last_modified, content_md5=bytes(md5) if md5 else None)

    def results(self, blob_name: str) -> list[ScanResult]:
        """Every result recorded for `{container}/{blob_name}`."""
        rows = self._storage.table(SCAN_VERDICTS).query(eq("PartitionKey", _partition(self._container, blob_name)))
        account = self._storage.blob_service.account_name
        return [
            ScanResult(
                account=account,
                container=self._container,
                blob=blob_name,
                etag=row.get("blobEtag") or None,
                result=row["result"],
                malware_names=tuple(n for n in (row.get("malwareNames") or "").split("\n") if n),
                scanned_at=datetime.fromisoformat(row["scannedAt"]),
            )
            for row in rows
        ]


def forget_scan_results(storage: Storage, blob_name: str, container: str = UPLOADS) -> None:
    """Remove what was recorded for `{container}/{blob_name}` once its verdict is settled (best
    effort: a row left behind is harmless, since it only counts for a blob with that very ETag)."""
    table = storage.table(SCAN_VERDICTS)
    try:
        for row in table.query(eq("PartitionKey", _partition(container, blob_name)), select=["PartitionKey", "RowKey"]):
            table.delete(row["PartitionKey"], row["RowKey"])
    except Exception:  # noqa: BLE001 - the verdict is already stored; this is housekeeping
        log.warning("could not remove the recorded scan results of %s", blob_name.rsplit("/", 1)[-1])


def forget_unclaimed_scan_results(storage: Storage) -> int:
    """Remove results recorded more than `KEEP_UNCLAIMED` ago that no scan removed; how many."""
    table = storage.table(SCAN_VERDICTS)
    cutoff = clock.iso(clock.now() - KEEP_UNCLAIMED)
    count = 0
    for row in table.query(at_most("recordedAt", cutoff), select=["PartitionKey", "RowKey"]):
        table.delete(row["PartitionKey"], row["RowKey"])
        count += 1
    return count
