"""Dispatch rules without I/O: queue entries, back-off, the repeatability window, the tag."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shared_code import clock
from shared_code.dispatch import (
    BACKOFF_MAX_SECONDS,
    MAX_RETRY_DELAY_SECONDS,
    REPEATABILITY_WINDOW,
    WINDOW_MARGIN,
    evidence_wait,
    retry_delay,
    sms_tag,
    wait_before_retry,
    window_closed,
)
from shared_code.message_model import Message
from shared_code.settings import Settings, load_settings
from shared_code.sms import SmsError
from tests.support.messages import message_record


def message(**changes: Any) -> Message:
    """A queued message with plausible fields, changed as asked."""
    return message_record(**changes)


@pytest.mark.parametrize("attempt", range(1, 12))
def test_backoff_doubles_with_jitter_and_is_capped(attempt: int) -> None:
    ceiling = min(BACKOFF_MAX_SECONDS, 2 ** (attempt - 1))
    assert retry_delay(attempt, None, rand=lambda: 0.0) == pytest.approx(ceiling / 2)
    assert retry_delay(attempt, None, rand=lambda: 0.999999) == pytest.approx(ceiling, rel=1e-5)


def test_the_first_retries_are_quick() -> None:
    # Five tries fit many times over into the five minutes ACS remembers a repeatability id.
    worst = sum(retry_delay(a, None, rand=lambda: 1.0) for a in range(1, 5))
    assert worst < REPEATABILITY_WINDOW.total_seconds() / 4


def test_retry_after_is_honoured_over_a_shorter_backoff() -> None:
    assert retry_delay(1, 7.0, rand=lambda: 0.5) == 7.0
    assert retry_delay(6, 1.0, rand=lambda: 0.0) == 16.0  # the longer of the two


def test_a_huge_retry_after_is_capped() -> None:
    assert retry_delay(1, 86_400.0) == MAX_RETRY_DELAY_SECONDS


def test_the_window_opens_at_the_first_try_and_closes_before_acs_forgets() -> None:
    never_tried = message(first_sent_at=None)
    assert not window_closed(never_tried)
    assert not window_closed(message(first_sent_at=clock.now() - timedelta(minutes=4)))
    # ACS forgets after 5 minutes; we stop a little earlier, for clock differences.
    assert window_closed(message(first_sent_at=clock.now() - REPEATABILITY_WINDOW + timedelta(seconds=5)))
    assert window_closed(message(first_sent_at=clock.now() - timedelta(hours=1)))


def test_the_tag_names_organisation_and_message_only() -> None:
    m = message()
    assert sms_tag(m) == f"{m.org}/{m.id}"
    assert m.mobile not in sms_tag(m)


# -- evidence before a repeat ------------------------------------------------------------------------

LOST = SmsError("The SMS service answered 500", retryable=True, may_have_sent=True)
NOT_SENT = SmsError("The SMS service could not be reached", retryable=True)


def test_a_try_that_may_have_reached_acs_waits_for_its_delivery_report() -> None:
    settings = Settings(sms_evidence_wait_seconds=30)
    assert wait_before_retry(1, LOST, settings, rand=lambda: 0.0) == 30.0
    assert wait_before_retry(1, NOT_SENT, settings, rand=lambda: 0.0) == 0.5  # provably not sent: the back-off
    # A longer back-off or Retry-After still wins.
    in_progress = SmsError("still in progress (409)", retryable=True, may_have_sent=True, retry_after=45)
    assert wait_before_retry(1, in_progress, settings, rand=lambda: 0.0) == 45.0


def test_without_delivery_reports_there_is_no_evidence_to_wait_for() -> None:
    settings = Settings(sms_evidence_wait_seconds=30, sms_delivery_reports=False)
    assert evidence_wait(settings) == 0.0
    assert wait_before_retry(1, LOST, settings, rand=lambda: 0.0) == 0.5


def test_the_wait_can_be_switched_off_and_is_capped() -> None:
    assert evidence_wait(load_settings({"SMS_EVIDENCE_WAIT_SECONDS": "0"})) == 0.0
    assert evidence_wait(load_settings({"SMS_EVIDENCE_WAIT_SECONDS": "3600"})) == 60.0
    assert evidence_wait(load_settings({})) == 30.0


@pytest.mark.parametrize("wait", ["30", "60"])
def test_every_try_that_may_have_reached_acs_still_fits_in_the_repeatability_window(wait: str) -> None:
    # The worst case: each try times out after the request went out, then waits for a report that never comes.
    settings = load_settings({"SMS_EVIDENCE_WAIT_SECONDS": wait})
    tries = range(1, settings.sms_max_attempts)
    worst = sum(settings.sms_timeout_seconds + wait_before_retry(a, LOST, settings, rand=lambda: 1.0) for a in tries)
    assert worst < (REPEATABILITY_WINDOW - WINDOW_MARGIN).total_seconds()
