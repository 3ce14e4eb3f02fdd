"""Hooks for the schemathesis run (tests/e2e/test_api_fuzz.py, loaded through SCHEMATHESIS_HOOKS).

`errors.csv` answers `text/csv`, which schemathesis cannot read by itself; its schema in
docs/openapi.yaml is a string, so the body is checked as the text it is (decoded strictly: a body
that is not UTF-8 fails the run).
"""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.deserializer("text/csv")
def csv_text(ctx: Any, response: Any) -> str:
    """The CSV body as text, for the schema's `type: string`."""
    return response.content.decode("utf-8-sig")
