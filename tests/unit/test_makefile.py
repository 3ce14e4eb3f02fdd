"""The Makefile's habits: `make help` lists every public target, lint runs in CI, a changed lock reinstalls."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def makefile() -> list[str]:
    """The Makefile's lines."""
    return (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()


def phony_targets(lines: list[str]) -> list[str]:
    """The targets named on the `.PHONY:` line: the public ones."""
    [phony] = [line for line in lines if line.startswith(".PHONY:")]
    return phony.split(":", 1)[1].split()


def rule(lines: list[str], target: str) -> tuple[int, list[str]]:
    """Where `target:`'s rule starts, and its prerequisites."""
    for number, line in enumerate(lines):
        match = re.match(rf"^{re.escape(target)}\s*:(?!=)(.*)$", line)
        if match:
            return number, match[1].split()
    raise AssertionError(f"no rule for {target}")


def test_every_public_target_has_its_help_line_just_above_its_rule() -> None:
    # `make help` prints these comments, so a target without one would be missing from the list.
    lines = makefile()
    undocumented = []
    for target in phony_targets(lines):
        number, _ = rule(lines, target)
        if not lines[number - 1].startswith(f"## {target}: "):
            undocumented.append(target)
    assert undocumented == []


def test_every_help_line_names_the_rule_below_it() -> None:
    lines = makefile()
    for number, line in enumerate(lines):
        match = re.match(r"^## ([a-z-]+): ", line)
        if match:
            assert lines[number + 1].startswith(f"{match[1]}:"), line


def test_plain_make_only_prints_help() -> None:
    assert ".DEFAULT_GOAL := help" in makefile()


def test_make_test_lints_first() -> None:
    # .ci/run runs `make test`, so this is what makes CI lint.
    _, prerequisites = rule(makefile(), "test")
    assert prerequisites[0] == "lint"


def test_lint_checks_both_the_rules_and_the_formatting() -> None:
    lines = makefile()
    number, _ = rule(lines, "lint")
    recipe = []
    for line in lines[number + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip().lstrip("@"))
    assert "$(VENV)/bin/ruff check ." in recipe
    assert "$(VENV)/bin/ruff format --check ." in recipe


def test_a_changed_lock_reinstalls_the_venv_in_hash_checking_mode() -> None:
    lines = makefile()
    number, prerequisites = rule(lines, "$(VENV)/.installed")
    assert {"requirements.txt", "requirements-dev.txt"} <= set(prerequisites)
    assert "--require-hashes" in next(line for line in lines if line.startswith("PIP_INSTALL :="))
    assert any("$(PIP_INSTALL) -r requirements.txt -r requirements-dev.txt" in line for line in lines[number:])
