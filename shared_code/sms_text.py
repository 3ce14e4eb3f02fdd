"""SMS encoding and segment counting (GSM 03.38 7-bit or UCS-2), as networks bill them."""

from __future__ import annotations

from dataclasses import dataclass

_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table characters cost two septets (escape + char).
_GSM_EXTENDED = set("^{}\\[~]|€\f")

GSM7 = "GSM-7"
UCS2 = "UCS-2"


@dataclass(frozen=True)
class SmsLength:
    """How a text is encoded and how many segments it is billed as."""

    encoding: str
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int


def _pack(costs: list[int], single: int, multi: int) -> int:
    """Segments needed, never splitting a character (escape pair or surrogate pair) across two."""
    total = sum(costs)
    if total <= single:
        return 1
    segments, used = 1, 0
    for cost in costs:
        if used + cost > multi:
            segments += 1
            used = 0
        used += cost
    return segments


def measure(text: str) -> SmsLength:
    """Encoding and segment count of `text` (an empty text is one segment)."""
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENDED for ch in text):
        costs = [2 if ch in _GSM_EXTENDED else 1 for ch in text]
        return SmsLength(GSM7, sum(costs), _pack(costs, 160, 153))
    costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    return SmsLength(UCS2, sum(costs), _pack(costs, 70, 67))
