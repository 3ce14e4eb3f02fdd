"""Bounded counters in Table Storage: one row per counter, raised by ETag-conditional writes.

Several requests, processes or instances may raise the same counter at once; each raise is a
conditional write, so none is lost and the limit is never passed. Used for per-message activity
caps and per-practice sending limits.
"""

from __future__ import annotations

import random
import time
from typing import Any

from shared_code.storage import insert_entity


def take_slot(
    table: Any, partition: str, row_key: str, limit: int, *, period: str | None = None, attempts: int = 50
) -> bool | None:
    """Add one to the counter if it is under `limit`.

    True when a place was taken, False when the counter is at its limit, None when parallel
    writers won every one of `attempts` tries. With `period` (say, the current minute), a row
    counted in another period counts as zero: the count starts again each period.
    """
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
    from azure.data.tables import UpdateMode

    for _ in range(attempts):
        try:
            row = table.get_entity(partition, row_key)
        except ResourceNotFoundError:
            row = None
        entity: dict[str, Any] = {"PartitionKey": partition, "RowKey": row_key, "count": 1}
        if period is not None:
            entity["window"] = period
        try:
            if row is None:
                insert_entity(table, entity)  # only one of several first writers wins
                return True
            same_period = period is None or row.get("window") == period
            count = int(row.get("count") or 0) if same_period else 0
            if count >= limit:
                return False
            entity["count"] = count + 1
            table.update_entity(
                entity,
                mode=UpdateMode.REPLACE,
                etag=row.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
            return True
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            # Another writer counted first: a short random pause keeps racers from colliding again.
            time.sleep(random.uniform(0, 0.02))
    return None
