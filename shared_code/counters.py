"""Bounded counters in Table Storage: one row per counter, raised by ETag-conditional writes.

Several requests, processes or instances may raise the same counter at once; each raise is a
conditional write, so none is lost and the limit is never passed. Used for per-message activity
caps and per-practice sending limits.
"""

from __future__ import annotations

import random
import time
from typing import Any

from shared_code.tables import RowChanged, RowExists, Table


def take_slot(
    table: Table, partition: str, row_key: str, limit: int, *, period: str | None = None, attempts: int = 50
) -> bool | None:
    """Add one to the counter if it is under `limit`.

    True when a place was taken, False when the counter is at its limit, None when parallel
    writers won every one of `attempts` tries. With `period` (say, the current minute), a row
    counted in another period counts as zero: the count starts again each period.
    """
    for _ in range(attempts):
        row = table.get(partition, row_key)
        entity: dict[str, Any] = {"PartitionKey": partition, "RowKey": row_key, "count": 1}
        if period is not None:
            entity["window"] = period
        try:
            if row is None:
                table.insert(entity)  # only one of several first writers wins
                return True
            same_period = period is None or row.get("window") == period
            count = int(row.get("count") or 0) if same_period else 0
            if count >= limit:
                return False
            entity["count"] = count + 1
            table.replace(entity, etag=row.etag)
            return True
        except (RowExists, RowChanged):
            # Another writer counted first: a short random pause keeps racers from colliding again.
            time.sleep(random.uniform(0, 0.02))
    return None
