"""Plain-text samples in each accepted encoding, and text that is refused."""

from __future__ import annotations


def txt_good() -> bytes:
    return "Dear patient,\r\nYour results are normal. Café £5.\n\fPage 2\n".encode()


def txt_cp1252() -> bytes:
    return "Dear patient, caf\u00e9 \u00a35 \u2013 results".encode("cp1252")


def txt_utf16() -> bytes:
    return "Dear patient, résultats normaux.".encode("utf-16")


def txt_control() -> bytes:
    return b"Dear patient \x1b[31m red \x1b[0m"


def txt_html() -> bytes:
    return b"  <!DOCTYPE html><html><body><script>alert(1)</script></body></html>"


def txt_svg() -> bytes:
    return b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
