"""Web addresses in a message's text: which are found, and which the allow-list lets through."""

from __future__ import annotations

import pytest

from shared_code.body_links import disallowed_hosts, is_allowed, linked_hosts

ALLOWED = ("nhs.uk", "gov.uk")


@pytest.mark.parametrize(
    ("text", "hosts"),
    [
        ("Read https://evil.example/login now", ["evil.example"]),
        ("HTTP://EVIL.EXAMPLE", ["evil.example"]),
        ("ftp://files.example/x", ["files.example"]),
        # User info and ports are not the host; a backslash ends the host as browsers read it.
        ("https://nhs.uk@evil.example/x", ["evil.example"]),
        ("https://evil.example:8443/x", ["evil.example"]),
        ("https://evil.example\\@nhs.uk", ["evil.example"]),
        ("see www.evil.example today", ["www.evil.example"]),
        ("see WWW.Evil.Example.", ["www.evil.example"]),
        ("bit.ly/abc123", ["bit.ly"]),
        ("short.example/x", ["short.example"]),
        ("visit example.com.", ["example.com"]),
        ("visit example.co.uk, then", ["example.co.uk"]),
        ("example.com:8080", ["example.com"]),
        ("go to 192.168.1.1/login", ["192.168.1.1"]),
        # A look-alike in another script is still a host.
        ("раураl.com", ["раураl.com"]),
        ("xn--80ak6aa92e.com", ["xn--80ak6aa92e.com"]),
        # A file name in an allowed site's path is not another link.
        ("https://www.nhs.uk/conditions/flu/leaflet.pdf", ["www.nhs.uk"]),
        ("www.nhs.uk/a/b.com", ["www.nhs.uk"]),
    ],
)
def test_addresses_are_found(text: str, hosts: list[str]) -> None:
    assert linked_hosts(text) == hosts


@pytest.mark.parametrize(
    "text",
    [
        "Dr.Smith has reviewed your results",
        "Bring ID, e.g. a passport, i.e. photo ID",
        "Your results are fine.It is nothing to worry about",
        "Results.Note: bring your letter",
        "Take 2 tablets.Co-codamol is fine",
        "Take 2.5mg at 10.30am",
        "St.Mary's Surgery, Mon-Fri.Call us",
        "Email reception@riverside.nhs.net or gp@practice.example.com",
        "Your letter.pdf is attached",
        "Please call 01234 567890.",
    ],
)
def test_prose_is_not_taken_for_a_link(text: str) -> None:
    assert linked_hosts(text) == []


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("nhs.uk", True),
        ("www.nhs.uk", True),
        ("111.nhs.uk", True),
        ("www.gov.uk", True),
        ("evilnhs.uk", False),
        ("nhs.uk.evil.example", False),
        ("nhs.net", False),
    ],
)
def test_allowed_domains_include_their_subdomains_only(host: str, allowed: bool) -> None:
    assert is_allowed(host, ALLOWED) is allowed


def test_only_links_off_the_allow_list_are_refused() -> None:
    assert disallowed_hosts("See https://www.nhs.uk/flu and www.gov.uk/x", ALLOWED) == []
    assert disallowed_hosts("See www.nhs.uk and bit.ly/x", ALLOWED) == ["bit.ly"]
    assert disallowed_hosts("See www.nhs.uk", ()) == ["www.nhs.uk"]
