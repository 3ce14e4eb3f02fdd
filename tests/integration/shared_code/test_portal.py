"""The portal's rules against real Azurite: lock-out under parallel guesses, link life, and the
download and view links' SAS (attachment or inline, the real type)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from shared_code import clock
from shared_code.errors import NotFound
from shared_code.message_links import revoke_message, unlock_message
from shared_code.message_store import get_message, transition
from shared_code.message_views import message_events
from shared_code.portal import LinkGone, LinkLocked, check_dob, download_url, resolve_link
from tests.support import corpus
from tests.support.records import clean_attachment, mark_sent, new_message


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


def test_a_right_date_judged_on_a_copy_read_before_the_lock_is_refused(storage, settings) -> None:
    message, token = _linked(storage, settings)
    stale = resolve_link(storage, token)  # read before any guess is counted
    for _ in range(settings.max_dob_attempts - 1):
        assert check_dob(storage, settings, resolve_link(storage, token), "2", "2", "1971").kind == "wrong"
    with pytest.raises(LinkLocked):
        check_dob(storage, settings, resolve_link(storage, token), "2", "2", "1971")
    with pytest.raises(LinkLocked):
        check_dob(storage, settings, stale, "31", "1", "1970")
    stored = get_message(storage, message.org, message.id)
    assert stored.locked and stored.last_dob_verified_at is None
    assert "dob_verified" not in [e.type for e in message_events(storage, stored)]


@pytest.mark.parametrize("wrong_before", [0, 1, 4, 5, 6, 39])
def test_forty_guesses_all_read_before_any_is_counted(storage, settings, wrong_before: int) -> None:
    """The right one of 40 distinct guesses, each judged on a copy read before any was written,
    is verified only if fewer than MAX_DOB_ATTEMPTS wrong ones were counted before it."""
    message, token = _linked(storage, settings)
    copies = [resolve_link(storage, token) for _ in range(40)]
    wrong_dates = [(str(1 + i % 28), str(1 + i // 28), "1971") for i in range(39)]
    guesses = [*wrong_dates[:wrong_before], ("31", "1", "1970"), *wrong_dates[wrong_before:]]
    outcomes = []
    for copy, (day, month, year) in zip(copies, guesses, strict=True):
        try:
            outcomes.append(check_dob(storage, settings, copy, day, month, year).kind)
        except LinkLocked:
            outcomes.append("locked")
    right = outcomes[wrong_before]
    limit = settings.max_dob_attempts
    assert right == ("verified" if wrong_before < limit else "locked")
    # Every guess was counted in the order it was checked, however stale its copy: the link locks
    # after `limit` wrong ones in a row, and the right one, when verified, restarted the count.
    assert get_message(storage, message.org, message.id).locked
    assert outcomes.count("wrong") == min(wrong_before, limit - 1) + (limit - 1 if right == "verified" else 0)


def test_parallel_guesses_with_the_right_one_never_exceed_the_limit_before_it(storage, settings) -> None:
    message, token = _linked(storage, settings)
    copies = [resolve_link(storage, token) for _ in range(40)]
    guesses = [(str(1 + i % 28), str(1 + i // 28), "1971") for i in range(39)]
    guesses.insert(20, ("31", "1", "1970"))

    def guess(i: int) -> str:
        try:
            return check_dob(storage, settings, copies[i], *guesses[i]).kind
        except LinkLocked:
            return "locked"

    with ThreadPoolExecutor(max_workers=40) as pool:
        outcomes = list(pool.map(guess, range(40)))
    stored = get_message(storage, message.org, message.id)
    assert stored.locked and stored.dob_attempts == settings.max_dob_attempts
    limit = settings.max_dob_attempts
    # Without a verification the 39 wrong ones give limit-1 "wrong" answers and the rest "locked";
    # a verification restarts the count once, so at most 2 x (limit-1) wrong answers in all.
    if outcomes[20] == "verified":
        assert outcomes.count("wrong") <= 2 * (limit - 1)
    else:
        assert outcomes[20] == "locked" and outcomes.count("wrong") == limit - 1


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


def test_a_pdf_is_viewed_inline_with_its_type_and_a_word_document_only_downloaded(storage, settings) -> None:
    pdf = clean_attachment(storage, settings)
    docx = clean_attachment(storage, settings, data=corpus.docx_good())
    message = mark_sent(storage, new_message(storage, settings, attachment_ids=[pdf.id, docx.id]))

    view = download_url(storage, settings, message, pdf.id, inline=True)
    fields = parse_qs(urlsplit(view).query)
    assert (fields["rscd"], fields["rsct"], fields["sp"]) == (
        ['inline; filename="letter.pdf"'],
        ["application/pdf"],
        ["r"],
    )
    answer = requests.get(view, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Disposition"] == 'inline; filename="letter.pdf"'
    assert answer.headers["Content-Type"] == "application/pdf"

    download = download_url(storage, settings, message, pdf.id)
    assert parse_qs(urlsplit(download).query)["rscd"] == ['attachment; filename="letter.pdf"']
    # A Word document is not shown by a phone's browser: no view link, and none made if asked for.
    with pytest.raises(NotFound):
        download_url(storage, settings, message, docx.id, inline=True)
    assert parse_qs(urlsplit(download_url(storage, settings, message, docx.id)).query)["rscd"] == [
        'attachment; filename="letter.docx"'
    ]
    # A view is a receipt like a download: the patient has the document.
    events = message_events(storage, get_message(storage, message.org, message.id))
    assert [e.type for e in events if e.type == "downloaded"] == ["downloaded"] * 3


def test_the_first_download_is_noted_on_the_message_once(storage, settings) -> None:
    pdf = clean_attachment(storage, settings)
    message = mark_sent(storage, new_message(storage, settings, attachment_ids=[pdf.id]))
    assert message.first_downloaded_at is None
    download_url(storage, settings, message, pdf.id)
    first = get_message(storage, message.org, message.id).first_downloaded_at
    assert first is not None
    # A later download (with the copy read before the first, as a second tab would have) keeps the first time.
    download_url(storage, settings, message, pdf.id, inline=True)
    assert get_message(storage, message.org, message.id).first_downloaded_at == first
