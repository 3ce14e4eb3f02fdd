"""Active-content rules that several families share: links (PDF, DOCX, ODT), Word field
instructions (DOCX, RTF) and which finding a document reports first (DOCX, ODT, RTF)."""

from __future__ import annotations

import re

from shared_code.filetypes.common import Refusal

_UNSAFE_SCHEMES = {"javascript", "vbscript", "file", "vnd.sun.star.script", "macro", "smb", "ms-msdt"}


def unsafe_link(target: str) -> bool:
    """True for a link that runs code or opens a local or network file when clicked."""
    t = target.strip().lower()
    if t.startswith(("\\\\", "//")):
        return True  # UNC path: a click connects to another computer
    match = re.match(r"([a-z][a-z0-9+.\-]*):", t)
    return bool(match and match.group(1) in _UNSAFE_SCHEMES)


class Fields:
    """Collects Word field instructions (split over runs) and judges each one."""

    _DDE = re.compile(r"^\s*DDE(?:AUTO)?\b", re.IGNORECASE)
    _REMOTE = re.compile(r"^\s*(?:INCLUDETEXT|INCLUDEPICTURE|LINK|IMPORT)\b", re.IGNORECASE)

    def __init__(self) -> None:
        self.stack: list[list[str]] = []
        self.findings: set[str] = set()

    def begin(self) -> None:
        self.stack.append([])

    def text(self, text: str) -> None:
        if self.stack:
            self.stack[-1].append(text)
        else:
            self.judge(text)  # instruction text outside a begin/end pair still counts

    def separate(self) -> None:
        if self.stack:
            self.judge("".join(self.stack[-1]))
            self.stack[-1] = [""]  # the result part follows; the instruction is judged

    def end(self) -> None:
        if self.stack:
            self.judge("".join(self.stack.pop()))

    def judge(self, instruction: str) -> None:
        if self._DDE.match(instruction):
            self.findings.add("dde")
        elif self._REMOTE.match(instruction):
            self.findings.add("external_content")


_CONTAINER_PRIORITY = (
    "macros",
    "activex",
    "dde",
    "embedded_object",
    "external_content",
    "unsafe_link",
    "zip_nested",
    # Not dangerous, but not for the patient's eyes: asked for only once the file is otherwise safe.
    "comments",
    "tracked_changes",
    "hidden_text",
)


def raise_first(findings: set[str]) -> None:
    """Raise the most telling of `findings` (macros before the objects that hold them), if any."""
    for rule in _CONTAINER_PRIORITY:
        if rule in findings:
            raise Refusal(rule)
