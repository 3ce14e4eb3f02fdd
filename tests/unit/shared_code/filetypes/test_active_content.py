"""Links shared by PDF, DOCX and ODT: which targets count as unsafe."""

from __future__ import annotations

import pytest

from shared_code.filetypes import unsafe_link


@pytest.mark.parametrize(
    ("target", "unsafe"),
    [
        ("https://www.nhs.uk/", False),
        ("mailto:surgery@example.nhs.uk", False),
        ("#section-2", False),
        ("javascript:alert(1)", True),
        (" JavaScript:alert(1)", True),
        ("file:///C:/Windows/System32/cmd.exe", True),
        ("\\\\attacker\\share\\x", True),
        ("//attacker/share", True),
        ("vnd.sun.star.script:Standard.Module1.Main", True),
        ("ms-msdt:/id PCWDiagnostic", True),
    ],
)
def test_unsafe_link(target: str, unsafe: bool) -> None:
    assert unsafe_link(target) is unsafe
