"""Run every benchmark, or the ones named: `python -m bench [startup upload portal send batch pacing]`."""

from __future__ import annotations

import importlib
import sys

ALL = ("startup", "upload", "portal", "send", "batch", "pacing")


def main(argv: list[str]) -> int:
    names = argv or list(ALL)
    for name in names:
        if name not in ALL:
            print(f"unknown benchmark {name!r}; choose from {', '.join(ALL)}", file=sys.stderr)
            return 2
        print(f"\n== {name} ==", flush=True)
        importlib.import_module(f"bench.{name}").main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
