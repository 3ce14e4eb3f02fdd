"""The toolbar API's OpenAPI 3.1 document (`docs/openapi.yaml`), read once per process.

The YAML file is the one source: the app serves it as JSON and the tests validate every
answer against it, so the document cannot drift from the code unnoticed.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

#: Beside the app, so it is deployed with it (`.funcignore` keeps `docs/*.yaml`).
OPENAPI_PATH = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"

_document: dict[str, Any] | None = None
_lock = threading.Lock()


def load_openapi(path: Path = OPENAPI_PATH) -> dict[str, Any]:
    """Parse an OpenAPI document from YAML (safe_load: the file holds data, never objects)."""
    # PyYAML only here: most requests never need it, and the app's import stays fast.
    import yaml

    with path.open(encoding="utf-8") as f:
        document = yaml.safe_load(f)
    if not isinstance(document, dict) or "openapi" not in document:
        raise ValueError(f"{path.name} is not an OpenAPI document")
    return document


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document as a dict, parsed on first use and cached for the process.

    Callers must not change it: the same dict is handed to every caller.
    """
    global _document
    if _document is None:
        with _lock:
            if _document is None:
                _document = load_openapi()
    return _document
