"""Debian's Chromium driven by Playwright, axe-core checks and screenshots for the portal's tests.

Playwright's own browser downloads are never used (`playwright install` is not run):
the tests drive the Chromium that Debian packages, at CHROMIUM.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from tests.support.components import missing

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts" / "portal"
#: WCAG 2.0, 2.1 and 2.2, levels A and AA: what the portal promises (design: WCAG 2.2 AA).
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]


def chromium_executable() -> str | None:
    """The Chromium binary to drive, or None when it is not installed."""
    if CHROMIUM.exists():
        return str(CHROMIUM)
    return shutil.which("chromium")


@contextmanager
def launch_chromium() -> Iterator[Any]:
    """A headless Chromium (a `playwright.sync_api.Browser`), closed afterwards.

    Fails under CI and skips elsewhere when Chromium or Playwright is missing.
    """
    executable = chromium_executable()
    if executable is None:
        missing("Chromium", "apt-get install chromium (make test does, as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Playwright for Python", "pip install -r requirements-dev.txt")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=LAUNCH_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@lru_cache(maxsize=1)
def axe_source() -> str:
    """axe-core's script (npm devDependency); fails under CI and skips elsewhere when missing."""
    if not AXE.is_file():
        missing("axe-core", "run `npm ci` (make test does)")
    return AXE.read_text(encoding="utf-8")


def axe_violations(page: Any, tags: list[str] | None = None) -> list[dict]:
    """axe-core's violations on the page as it is now (WCAG 2.x A and AA by default).

    The script goes in through `page.evaluate`, which runs over the DevTools protocol and so
    is not subject to the page's Content-Security-Policy (`script-src 'self'` would refuse a
    <script> tag); the page's own script policy is left as it is.
    """
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source())
    result = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        tags or WCAG_TAGS,
    )
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
    ]


def assert_accessible(page: Any, state: str) -> None:
    """No axe-core violations in this page state (the message lists them)."""
    violations = axe_violations(page)
    assert violations == [], f"{state}: axe-core found\n{json.dumps(violations, indent=2)}"


def screenshot(page: Any, state: str) -> Path:
    """Keep a full-page screenshot of a page state as test-artifacts/portal/<state>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{state}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
