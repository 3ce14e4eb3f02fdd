"""What every family shares: the refusal words."""

from __future__ import annotations

from shared_code.filetypes import REASONS


def test_every_reason_is_plain_words() -> None:
    for rule, reason in REASONS.items():
        assert reason == reason.strip() and reason[0].islower(), rule
        assert not reason.endswith("."), rule
