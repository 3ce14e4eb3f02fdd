"""The README and docs/ link only to files inside the repository, and every such link resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# [text](target) links; a target with a scheme (https:, mailto:) or a bare #anchor is not a file.
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def _file_links(document: Path) -> list[str]:
    targets = [m.group(1) for m in _LINK.finditer(document.read_text(encoding="utf-8"))]
    return [t.split("#", 1)[0] for t in targets if not _EXTERNAL.match(t) and not t.startswith("#")]


def test_the_documents_exist() -> None:
    assert {p.name for p in DOCUMENTS} >= {"README.md", "contract.md", "architecture.md"}
    assert (ROOT / "docs" / "openapi.yaml").is_file()


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_file_link_resolves_inside_the_repository(document: Path) -> None:
    for target in _file_links(document):
        resolved = (document.parent / target).resolve()
        assert resolved.is_relative_to(ROOT), f"{document.name} links outside the repository: {target}"
        assert resolved.exists(), f"{document.name} links to a missing file: {target}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_no_document_names_the_steering_folder(document: Path) -> None:
    # A person who clones the repository has only the repository.
    assert "../shared" not in document.read_text(encoding="utf-8")


def test_the_link_finder_finds_links() -> None:
    # Guards the tests above against a pattern that silently matches nothing.
    assert _file_links(ROOT / "README.md"), "the README has no file links at all"
