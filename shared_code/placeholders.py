"""Placeholders in a message's text, `((name))`: which ones a text has, and filling them in.

A placeholder is a name between double brackets. Names are matched ignoring case, spaces,
`_` and `-`, so `((First name))`, `((first_name))` and `((FIRSTNAME))` are one placeholder.
Three are built in, filled from the request itself: `((first name))`, `((full name))` and
`((practice name))`; any other is filled from the caller's `personalisation`. The date of
birth and the NHS number are never placeholders: the link exists so that they are never in
a text, so a template naming one is refused when it is saved.

Values are plain text on one line: no control characters (new lines included), at most
`MAX_VALUE_CHARS`, and no web address the link rules (`body_links`) would refuse. Filling is
one pass over the text, so a value that itself looks like a placeholder is never filled in.
Everything here is pure; nothing is logged (values are personal data).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shared_code.body_links import disallowed_hosts

#: Longest placeholder name, and longest value, in characters.
MAX_NAME_CHARS = 40
MAX_VALUE_CHARS = 200
#: Most keys a request's `personalisation` may have.
MAX_PERSONALISATION_KEYS = 50

FIRST_NAME, FULL_NAME, PRACTICE_NAME = "firstname", "fullname", "practicename"
#: Built-in placeholders (by key) and how the API names them.
BUILT_IN = {FIRST_NAME: "first name", FULL_NAME: "full name", PRACTICE_NAME: "practice name"}

_PLACEHOLDER = re.compile(r"\(\(([^()\r\n]*)\)\)")
# Letters and digits, with spaces, `_` and `-` only between them.
_NAME = re.compile(r"[^\W_](?:[\w \-]*[^\W_])?")
_SEPARATORS = str.maketrans("", "", " _-")


@dataclass(frozen=True)
class Placeholder:
    """One placeholder of a text: its name as first written there, and its matching `key`."""

    name: str
    key: str


@dataclass(frozen=True)
class Filled:
    """A text with its placeholders filled, and the names of those that had no value (left as written)."""

    text: str
    missing: tuple[str, ...]


@functools.lru_cache(maxsize=1024)  # a batch's column names, once per row each
def key(name: str) -> str:
    """The form names are matched in: case-folded, without spaces, `_` or `-`."""
    return unicodedata.normalize("NFKC", name).casefold().translate(_SEPARATORS)


def is_personal_identifier(placeholder_key: str) -> bool:
    """Whether a key names a date of birth or an NHS number, which a text must never carry."""
    if "birth" in placeholder_key or "dob" in placeholder_key or "nhsnumber" in placeholder_key:
        return True
    return placeholder_key in {"nhs", "nhsno", "nhsnum", "nhsid"}


def placeholders_in(text: str) -> list[Placeholder]:
    """The text's placeholders with a valid name, each once, in order of first appearance."""
    return list(_placeholders(text))


@functools.lru_cache(maxsize=256)
def _placeholders(text: str) -> tuple[Placeholder, ...]:
    # Cached: a batch fills one text for up to 10,000 patients.
    found: dict[str, Placeholder] = {}
    for match in _PLACEHOLDER.finditer(text):
        name = match.group(1).strip()
        if _valid_name(name):
            found.setdefault(key(name), Placeholder(name, key(name)))
    return tuple(found.values())


def _valid_name(name: str) -> bool:
    return len(name) <= MAX_NAME_CHARS and _NAME.fullmatch(name) is not None


def text_problems(text: str) -> list[str]:
    """Why the text's placeholders cannot be used (empty when they can): a badly written name,
    or one that names a date of birth or an NHS number."""
    problems: list[str] = []
    for match in _PLACEHOLDER.finditer(text):
        name = match.group(1).strip()
        if not _valid_name(name):
            problems.append(
                f"A placeholder name must be 1 to {MAX_NAME_CHARS} letters or digits, with spaces, "
                "hyphens or underscores between them, as in ((appointment date))"
            )
        elif is_personal_identifier(key(name)):
            problems.append(
                f"A date of birth or an NHS number can never be put in a text: remove the placeholder (({name}))"
            )
    return list(dict.fromkeys(problems))


def value_problem(value: object, allowed_domains: Iterable[str]) -> str | None:
    """Why `value` cannot fill a placeholder, or None when it can."""
    if not isinstance(value, str):
        return "The value must be text"
    if not value.strip():
        return "The value must not be empty"
    if len(value) > MAX_VALUE_CHARS:
        return f"The value must be at most {MAX_VALUE_CHARS} characters"
    # isprintable() is False for every Cc, Cf, Zl and Zp character (and for other spaces, hence the look).
    if not value.isprintable() and any(unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"} for ch in value):
        return "The value must be plain text on one line"
    if disallowed_hosts(value, tuple(allowed_domains)):
        # The address itself is not echoed: values are personal data, kept out of errors and logs.
        return "The value must not contain a web address"
    return None


def built_in_values(*, full_name: str | None, first_name: str | None, practice_name: str | None) -> dict[str, str]:
    """The built-in placeholders' values from the request, by key (absent when the request has none).

    The first name, when not given, is the first word of the full name.
    """
    values: dict[str, str] = {}
    full = (full_name or "").strip()
    first = (first_name or "").strip() or (full.split()[0] if full else "")
    for placeholder_key, value in ((FULL_NAME, full), (FIRST_NAME, first), (PRACTICE_NAME, practice_name)):
        if value and value.strip():
            values[placeholder_key] = value.strip()
    return values


def values_by_key(personalisation: Mapping[str, object], built_ins: Mapping[str, str]) -> dict[str, object]:
    """Every value by key: the request's built-ins, then `personalisation` for anything they leave.

    A built-in the request fills cannot be overridden by `personalisation`; when the request has
    no value for it (no name given, a token without a practice name), `personalisation` may give it.
    """
    values: dict[str, object] = {}
    for raw_key, value in personalisation.items():
        values.setdefault(key(raw_key), value)
    values.update(built_ins)
    return values


def without_placeholders(text: str) -> str:
    """The text with every placeholder taken out: the least it can cost once filled."""
    return _PLACEHOLDER.sub("", text)


def fill(text: str, values: Mapping[str, str]) -> Filled:
    """The text with each placeholder that has a value (by key) replaced by it, in one pass.

    A placeholder without a value stays as written and is named in `missing`, once each.
    """
    missing: dict[str, str] = {}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if not _valid_name(name):
            return match.group(0)
        value = values.get(key(name))
        if value is None:
            missing.setdefault(key(name), name)
            return match.group(0)
        return value

    return Filled(_PLACEHOLDER.sub(replace, text), tuple(missing.values()))
