"""The portal's pages: rendered with Jinja2 (autoescaped, loaded on first use), and sent with the
security headers every one of them carries."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
UNKNOWN_PRACTICE = "your GP practice"


@lru_cache(maxsize=1)
def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, **context: Any) -> str:
    """The HTML of one page.

    Every page names the practice (`practice_name`). When the practice is unknown (a dead
    link, or a message without a practice name) pages say "your GP practice" instead, and
    the header shows the service's name rather than an organisation's.
    """
    from shared_code.portal import DEFAULT_PRACTICE_NAME

    name = context.get("practice_name")
    known = bool(name) and name != DEFAULT_PRACTICE_NAME
    context["practice_name"] = name if known else DEFAULT_PRACTICE_NAME
    context["practice_known"] = known
    # The name as it reads in the middle of a sentence ("contact your GP practice").
    context["practice"] = name if known else UNKNOWN_PRACTICE
    return _environment().get_template(template).render(**context)


def human_size(size: int) -> str:
    """A file size as people read it (e.g. `240 KB`, `2.4 MB`)."""
    if size < 1024:
        return "1 byte" if size == 1 else f"{size} bytes"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} KB"
    return f"{size / (1024 * 1024):.1f} MB"


KIND_LABELS = {
    "pdf": "PDF",
    "docx": "Word document",
    "doc": "Word document",
    "odt": "OpenDocument text",
    "rtf": "Rich text document",
    "txt": "Text file",
    "jpeg": "JPEG image",
    "png": "PNG image",
    "tiff": "TIFF image",
}


def security_headers(https: bool) -> dict[str, str]:
    """Headers on every portal response (contract: patient portal)."""
    headers = {
        "Content-Security-Policy": (
            "default-src 'none'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
            "script-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        ),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
        "X-Robots-Tag": "noindex",
        "X-Frame-Options": "DENY",
    }
    if https:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return headers
