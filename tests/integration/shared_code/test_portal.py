"""The portal's rules against real Azurite: lock-out under parallel guesses, link life."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta

import pytest

from shared_code import clock
from shared_code.message_links import revoke_message, unlock_message
from shared_code.message_store import get_message, transition
from shared_code.message_views import message_events
from shared_code.portal import LinkGone, LinkLocked, check_dob, resolve_link
from tests.support.records import mark_sent, new_message


def _linked(storage, settings):
    """A sent message and its token (read from the sealed value, as dispatch would)."""
    from shared_code.crypto import unseal
    from shared_code.message_create import token_seal_key

    message = new_message(storage, settings)
    token = unseal(token_seal_key(settings), get_message(storage, message.org, message.id).sealed_token)
    return mark_sent(storage, message), token


def test_twenty_parallel_wrong_guesses_lock_after_exactly_the_limit(storage, settings) -> None:
    message, token = _linked(storage, settings)

    def guess(_: int) -> str:
        try:
            live = resolve_link(storage, token)
            return check_dob(storage, settings, live, "2", "2", "1971").kind
        except LinkLocked:
            return "locked"

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(guess, range(20)))
    stored = get_message(storage, message.org, message.id)
    assert stored.locked
    assert stored.dob_attempts == settings.max_dob_attempts
    assert outcomes.count("wrong") == settings.max_dob_attempts - 1
    events = [e.type for e in message_events(storage, get_message(storage, message.org, message.id))]
    assert events.count("dob_failed") == settings.max_dob_attempts
    assert events.count("locked") == 1


def test_right_date_verifies_and_resets_the_count(storage, settings) -> None:
    message, token = _linked(storage, settings)
    assert check_dob(storage, settings, resolve_link(storage, token), "1", "1", "1970").kind == "wrong"
    assert check_dob(storage, settings, resolve_link(storage, token), "31", "01", "1970").kind == "verified"
    assert get_message(storage, message.org, message.id).dob_attempts == 0


def test_not_a_real_date_is_not_an_attempt(storage, settings) -> None:
    message, token = _linked(storage, settings)
    for _ in range(settings.max_dob_attempts + 2):
        assert check_dob(storage, settings, resolve_link(storage, token), "30", "2", "1970").kind == "invalid"
    assert get_message(storage, message.org, message.id).dob_attempts == 0


def test_locked_link_is_403_until_unlocked(storage, settings) -> None:
    message, token = _linked(storage, settings)
    live = resolve_link(storage, token)
    for _ in range(settings.max_dob_attempts - 1):
        check_dob(storage, settings, live, "2", "2", "1971")
    with pytest.raises(LinkLocked):
        check_dob(storage, settings, live, "2", "2", "1971")
    with pytest.raises(LinkLocked) as locked:
        resolve_link(storage, token)
    assert locked.value.status == 403
    unlock_message(storage, message.org, message.id)
    assert resolve_link(storage, token).id == message.id


def test_unsent_revoked_and_expired_links_are_gone(storage, settings) -> None:
    message = new_message(storage, settings)
    from shared_code.crypto import unseal
    from shared_code.message_create import token_seal_key

    token = unseal(token_seal_key(settings), message.sealed_token)
    with pytest.raises(LinkGone):
        resolve_link(storage, token)  # queued, not sent yet
    mark_sent(storage, message)
    assert resolve_link(storage, token).id == message.id
    transition(
        storage, message.org, message.id, lambda m: replace(m, link_expires_at=clock.now() - timedelta(seconds=1))
    )
    with pytest.raises(LinkGone):
        resolve_link(storage, token)
    transition(storage, message.org, message.id, lambda m: replace(m, link_expires_at=clock.now() + timedelta(days=1)))
    revoke_message(storage, message.org, message.id)
    with pytest.raises(LinkGone) as gone:
        resolve_link(storage, token)
    assert gone.value.status == 404
    with pytest.raises(LinkGone):
        resolve_link(storage, "A" * 24)
    with pytest.raises(LinkGone):
        resolve_link(storage, "../../etc/passwd")
