"""Build the portal's static files from the `nhsuk-frontend` npm package (run by `make`).

Copies the prebuilt NHS.UK frontend stylesheet and its images into
`shared_code/static/nhsuk/`, which the app serves and the deployment publishes.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "node_modules" / "nhsuk-frontend" / "dist" / "nhsuk"
TARGET = ROOT / "shared_code" / "static" / "nhsuk"


def build(source: Path = SOURCE, target: Path = TARGET) -> Path:
    """Copy the stylesheet and images; returns the target folder."""
    css = source / "nhsuk-frontend.min.css"
    if not css.exists():
        raise FileNotFoundError(f"{css} is missing: run `npm ci` first")
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(css, target / "nhsuk-frontend.min.css")
    images = source / "assets" / "images"
    if images.is_dir():
        shutil.copytree(images, target / "images")
    return target


if __name__ == "__main__":
    try:
        print(f"portal assets built in {build().relative_to(ROOT)}")
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
