"""The README's settings table says what shared_code/settings.py declares: the same names, the same defaults."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from shared_code.settings import SETTINGS, Secret

README = Path(__file__).resolve().parents[3] / "README.md"
# A default cell: "—" (no default) or one `literal`, optionally followed by a note in brackets
# for where it differs, e.g. "`false` (`true` locally)".
_DEFAULT = re.compile(r"(?P<value>—|`[^`]*`)(?: \(.+\))?")


def settings_table(readme: str) -> dict[str, str]:
    """The README's "Settings" table as {name: default cell}; every row must name exactly one setting."""
    section = readme.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    table: dict[str, str] = {}
    for row in rows:
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        names = re.findall(r"`([^`]+)`", cells[0])
        assert len(names) == 1 and cells[0] == f"`{names[0]}`", f"one setting per row: {cells[0]}"
        assert names[0] not in table, f"listed twice: {names[0]}"
        table[names[0]] = cells[1]
    return table


def documented_default(cell: str) -> str:
    """The default a cell states: the literal's text, or "" for "—"."""
    match = _DEFAULT.fullmatch(cell)
    assert match, f"a default is — or a `literal`, maybe with a note in brackets: {cell!r}"
    value = match["value"]
    return "" if value == "—" else value.strip("`")


def as_text(default: Any) -> str:
    """A declared default as a setting's text would give it."""
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, Secret):
        return default.value.decode()
    if isinstance(default, tuple):
        return ",".join(default)
    return str(default)


def test_the_readme_lists_exactly_the_declared_settings() -> None:
    table = settings_table(README.read_text(encoding="utf-8"))
    assert list(table) == [declared.env for declared in SETTINGS]


@pytest.mark.parametrize("declared", SETTINGS, ids=lambda d: d.env)
def test_the_readme_gives_each_settings_default(declared) -> None:
    table = settings_table(README.read_text(encoding="utf-8"))
    assert declared.env in table, f"{declared.env} is not in the README's settings table"
    assert documented_default(table[declared.env]) == as_text(declared.default)


def test_a_stated_default_is_what_an_empty_environment_gives() -> None:
    # The check above compares text; this ties that text to what load_settings really does with it.
    for declared in SETTINGS:
        text = as_text(declared.default)
        if text:
            assert declared.parse(declared.env, text) == declared.default, declared.env


SAMPLE = """intro

## Settings

| setting | default | meaning |
|---|---|---|
| `A_SETTING` | `1` | one |
| `B_SETTING` | — (from `.local/` locally) | two |

## Layout

| `NOT_A_SETTING` | x | y |
"""


def test_the_table_reader_reads_only_the_settings_section() -> None:
    table = settings_table(SAMPLE)
    assert table == {"A_SETTING": "`1`", "B_SETTING": "— (from `.local/` locally)"}
    assert [documented_default(cell) for cell in table.values()] == ["1", ""]


@pytest.mark.parametrize("row", ["| `A`, `B` | `1` | two at once |", "| `A` / `B` | — | either |"])
def test_a_row_naming_two_settings_is_refused(row: str) -> None:
    with pytest.raises(AssertionError, match="one setting per row"):
        settings_table(f"intro\n\n## Settings\n\n{row}\n")


@pytest.mark.parametrize("cell", ["local issuer", "`1` `2`", "1", ""])
def test_a_default_that_is_not_a_literal_is_refused(cell: str) -> None:
    with pytest.raises(AssertionError, match="a default is"):
        documented_default(cell)
