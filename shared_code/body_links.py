"""Web addresses in a message's text: only links to allowed domains may go out under the practice's sender.

The service adds the portal link itself, so a practice's text needs no other link except,
at most, to NHS or government advice. A stolen token must not be able to send phishing
links under a sender patients trust, so any other address makes the request a 422.

What counts as an address, found without any network look-up:

* anything with a scheme (`https://...`, `http://...`, `ftp://...`): its host;
* a host starting `www.`;
* a bare domain name followed by a path (`bit.ly/x`), or ending in a common top-level
  domain (`example.com`, `example.co.uk`). Top-level domains that are also everyday words
  or abbreviations (`it`, `in`, `me`, `am`, `to`...) count only with a path, so a missing
  space ("results.It is") or an abbreviation ("Dr.Smith", "e.g.") is not taken for a link.
* an IPv4 address followed by a path.

Labels may be any letters (not only ASCII), so a look-alike host in another script is still
seen as a host. E-mail addresses are not links: a domain straight after `@` is not checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Common top-level domains: a bare name ending in one of these is taken for a link even without a
# path. Deliberately not exhaustive; uncommon ones still count with a path or a scheme.
_COMMON_TLDS = frozenset(
    {
        "com",
        "net",
        "org",
        "info",
        "biz",
        "io",
        "co",
        "uk",
        "gov",
        "nhs",
        "edu",
        "ly",
        "app",
        "xyz",
        "online",
        "site",
        "top",
        "shop",
        "store",
        "club",
        "live",
        "link",
        "click",
        "tk",
        "ml",
        "ga",
        "cf",
        "gq",
        "ru",
        "cn",
        "de",
        "fr",
        "nl",
        "eu",
        "us",
        "ca",
        "au",
        "ie",
        "es",
        "pl",
        "br",
        "jp",
        "kr",
        "su",
        "ua",
        "vip",
        "win",
        "bid",
        "loan",
        "work",
        "icu",
        "cc",
        "ws",
        "pw",
        "gl",
        "gd",
        "page",
        "dev",
        "cloud",
        "tech",
        "support",
        "help",
        "health",
        "care",
        "services",
        "email",
        "digital",
        "world",
    }
)
_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
# Not after a letter, digit, dot, hyphen or `@` (an e-mail address), so a match is a whole name.
_START = r"(?<![\w.@-])"
_SCHEME_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://(?P<authority>[^\s/\\?#]*)", re.IGNORECASE)
_WWW_HOST = re.compile(_START + r"(?P<host>www\d{0,3}(?:\." + _LABEL + r")+)", re.IGNORECASE)
_BARE_HOST = re.compile(
    _START + r"(?P<host>(?:" + _LABEL + r"\.)+(?P<tld>[^\W\d_]{2,63}|xn--[a-z0-9-]{1,59}))(?![\w-])"
    # A path, or a port: a colon alone ("Results.Note: ...") is prose.
    r"(?P<after>[/\\]|:\d)?",
    re.IGNORECASE,
)
# Every form above has a scheme, or a dot followed by a label's first character.
_MAYBE_ADDRESS = re.compile(r"://|\.[^\W_]")
_IP_WITH_PATH = re.compile(_START + r"(?P<host>\d{1,3}(?:\.\d{1,3}){3})(?::\d+)?[/\\]")


def _host_of(authority: str) -> str:
    """The host of a URL's authority: without user info (`nhs.uk@evil.example`) or port."""
    host = authority.rsplit("@", 1)[-1]
    if host.startswith("["):  # an IPv6 literal
        return host.split("]", 1)[0] + "]"
    return host.split(":", 1)[0]


def _token_end(text: str, start: int) -> int:
    """Where the address starting at `start` ends: its path is the linked site's own business
    (a file name such as `leaflet.pdf` in it is not another link)."""
    end = start
    while end < len(text) and not text[end].isspace():
        end += 1
    return end


def linked_hosts(text: str) -> list[str]:
    """Every host the text links to, lower-cased (a host may repeat): those with a scheme first."""
    if _MAYBE_ADDRESS.search(text) is None:
        return []  # most texts and values (a batch's rows): quicker than the four searches below
    hosts: list[str] = []
    covered: list[tuple[int, int]] = []
    for match in _SCHEME_URL.finditer(text):
        hosts.append(_host_of(match["authority"]))
        covered.append((match.start(), _token_end(text, match.start())))
    for pattern in (_WWW_HOST, _IP_WITH_PATH, _BARE_HOST):
        for match in pattern.finditer(text):
            start = match.start("host")
            if any(a <= start < b for a, b in covered):
                continue  # part of an address already found
            if pattern is _BARE_HOST and not match["after"] and match["tld"].lower() not in _COMMON_TLDS:
                continue  # "Dr.Smith", "results.It": no path and not a common top-level domain
            hosts.append(match["host"])
            covered.append((start, _token_end(text, start)))
    return [host.lower().rstrip(".") for host in hosts]


def is_allowed(host: str, allowed_domains: Iterable[str]) -> bool:
    """Whether the host is one of the allowed domains or a subdomain of one."""
    return any(host == domain or host.endswith("." + domain) for domain in allowed_domains)


def disallowed_hosts(text: str, allowed_domains: Iterable[str]) -> list[str]:
    """The hosts the text links to that are not on the allow-list (empty when every link is allowed)."""
    allowed = tuple(allowed_domains)
    return [host for host in linked_hosts(text) if not is_allowed(host, allowed)]
