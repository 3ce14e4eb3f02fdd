"""Rendering the portal's pages (Jinja2, autoescaped), loaded on first use."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


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
    """The HTML of one page."""
    return _environment().get_template(template).render(**context)


def human_size(size: int) -> str:
    """A file size as people read it (e.g. `240 KB`, `2.4 MB`)."""
    if size < 1024:
        return "1 byte" if size == 1 else f"{size} bytes"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} KB"
    return f"{size / (1024 * 1024):.1f} MB"


KIND_LABELS = {
    "pdf": "PDF", "docx": "Word document", "doc": "Word document", "odt": "OpenDocument text",
    "rtf": "Rich text document", "txt": "Text file", "jpeg": "JPEG image", "png": "PNG image",
    "tiff": "TIFF image",
}
