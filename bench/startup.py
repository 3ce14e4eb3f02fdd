"""Cold import: `import function_app` against `import azure.functions` alone (budget 1.5×)."""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

from bench.table import print_table

ROOT = Path(__file__).resolve().parent.parent
RUNS = 9
BUDGET = 1.5


def _time_import(module: str) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = subprocess.run(
        [sys.executable, "-X", "frozen_modules=on", "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip())


def main() -> None:
    # Interleave the two so machine noise hits both alike.
    base, app = [], []
    for _ in range(RUNS):
        base.append(_time_import("azure.functions"))
        app.append(_time_import("function_app"))
    b, a = statistics.median(base), statistics.median(app)
    ratio = a / b
    print_table(
        ["import", "median ms", "runs"],
        [["azure.functions", f"{b * 1000:.1f}", RUNS], ["function_app", f"{a * 1000:.1f}", RUNS]],
    )
    print(f"ratio {ratio:.2f}× (budget {BUDGET}×): {'within budget' if ratio <= BUDGET else 'OVER BUDGET'}")


if __name__ == "__main__":
    main()
