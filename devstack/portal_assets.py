"""Build the portal's static files from the `nhsuk-frontend` npm package (run by `make`).

Copies the prebuilt NHS.UK frontend stylesheet and its images into
`shared_code/static/nhsuk/`, which the app serves and the deployment publishes.

The stylesheet is adjusted on the way, because the portal's Content-Security-Policy
allows only its own origin: the web-font rules that load Frutiger from assets.nhs.uk are
dropped (the design system's own fallback, Arial, is used, and a patient's browser never
contacts a third party), image URLs are pointed at where the app serves the images, and
the source-map comment is removed (the map is not published).
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "node_modules" / "nhsuk-frontend" / "dist" / "nhsuk"
TARGET = ROOT / "shared_code" / "static" / "nhsuk"
#: Where the app serves the copied images (functions/portal.py serves shared_code/static at /static).
IMAGES_URL = "/static/nhsuk/images/"

_REMOTE_FONT_FACE = re.compile(r"@font-face\s*\{[^}]*url\(\s*[\"']?https?://[^}]*\}")
_PACKAGE_IMAGES = re.compile(r"url\(\s*([\"']?)/assets/images/")
_SOURCE_MAP = re.compile(r"/\*#\s*sourceMappingURL=[^*]*\*/\s*")


def adapt_stylesheet(css: str, images_url: str = IMAGES_URL) -> str:
    """The package's CSS made to work under `default-src 'none'; style-src/img-src/font-src 'self'`."""
    css = _REMOTE_FONT_FACE.sub("", css)
    css = _PACKAGE_IMAGES.sub(lambda m: f"url({m.group(1)}{images_url}", css)
    return _SOURCE_MAP.sub("", css)


def build(source: Path = SOURCE, target: Path = TARGET) -> Path:
    """Copy the stylesheet (adapted) and images; returns the target folder."""
    css = source / "nhsuk-frontend.min.css"
    if not css.exists():
        raise FileNotFoundError(f"{css} is missing: run `npm ci` first")
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    (target / "nhsuk-frontend.min.css").write_text(adapt_stylesheet(css.read_text(encoding="utf-8")), encoding="utf-8")
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
