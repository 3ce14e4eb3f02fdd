"""Print a benchmark table."""

from __future__ import annotations


def print_table(headers: list[str], rows: list[list[object]]) -> None:
    """A plain fixed-width table on stdout."""
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * w for w in widths))
