"""SMS encoding and segment counts: GSM-7 160/153, UCS-2 70/67, nothing split across segments."""

from __future__ import annotations

import pytest

from shared_code.sms_text import GSM7, UCS2, SmsLength, measure

# The GSM 03.38 default alphabet (127 characters besides the escape) and its extension table,
# written out here independently of the module's own tables.
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = "\f^{}\\[]~|€"


def test_alphabet_sizes() -> None:
    assert len(set(GSM_BASIC)) == 127
    assert len(set(GSM_EXTENSION)) == 10


def test_empty_text_is_one_segment() -> None:
    assert measure("") == SmsLength(GSM7, 0, 1)


# -- GSM-7 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4), (918, 6), (919, 7)],
)
def test_gsm7_segment_boundaries(length: int, segments: int) -> None:
    assert measure("a" * length) == SmsLength(GSM7, length, segments)


def test_every_basic_character_is_one_septet() -> None:
    result = measure(GSM_BASIC)
    assert result.encoding == GSM7
    assert result.units == 127


@pytest.mark.parametrize("char", list(GSM_EXTENSION))
def test_each_extension_character_costs_two_septets(char: str) -> None:
    assert measure(char) == SmsLength(GSM7, 2, 1)
    assert measure("a" * 158 + char) == SmsLength(GSM7, 160, 1)
    assert measure("a" * 159 + char) == SmsLength(GSM7, 161, 2)


def test_euro_counts_two() -> None:
    assert measure("€" * 80) == SmsLength(GSM7, 160, 1)
    assert measure("€" * 81) == SmsLength(GSM7, 162, 2)


def test_extension_character_is_never_split_across_segments() -> None:
    # 152 + 2 = 154 septets would fill the first part past 153: the escape pair moves to part two,
    # which then holds 2 + 152 = 154 > 153, so three parts although 306 septets fit in two.
    text = "a" * 152 + "€" + "a" * 152
    assert measure(text) == SmsLength(GSM7, 306, 3)
    # The same 306 septets with the pair clear of the boundary fit in two.
    assert measure("a" * 151 + "€" + "a" * 153) == SmsLength(GSM7, 306, 2)


def test_gsm7_text_with_common_punctuation() -> None:
    text = "Dear Jo, your fit note is attached (2 pages): see https://example.org/p/AbC-123_xyz?x=1&y=2 @ £5!"
    assert measure(text).encoding == GSM7


# -- UCS-2 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_ucs2_segment_boundaries(length: int, segments: int) -> None:
    assert measure("ê" * length) == SmsLength(UCS2, length, segments)


@pytest.mark.parametrize("char", ["ê", "ç", "’", "“", "—", "…", "ł", "ş", "Ж", "中", "\t", "`"])
def test_one_character_outside_gsm7_makes_the_whole_text_ucs2(char: str) -> None:
    result = measure("a" * 69 + char)
    assert result == SmsLength(UCS2, 70, 1)
    assert measure("a" * 70 + char) == SmsLength(UCS2, 71, 2)


def test_emoji_is_a_surrogate_pair_of_two_units() -> None:
    assert measure("😀") == SmsLength(UCS2, 2, 1)
    assert measure("😀" * 35) == SmsLength(UCS2, 70, 1)
    assert measure("😀" * 36) == SmsLength(UCS2, 72, 2)
    assert measure("a" * 68 + "😀") == SmsLength(UCS2, 70, 1)
    assert measure("a" * 69 + "😀") == SmsLength(UCS2, 71, 2)


def test_surrogate_pair_is_never_split_across_segments() -> None:
    # 66 + 2 would overfill the first 67-unit part: the pair starts part two (2 + 66 = 68 > 67).
    assert measure("a" * 66 + "😀" + "a" * 66) == SmsLength(UCS2, 134, 3)
    assert measure("a" * 65 + "😀" + "a" * 67) == SmsLength(UCS2, 134, 2)


def test_extension_character_in_a_ucs2_text_is_one_unit() -> None:
    # In UCS-2 there is no escape: € is a single UTF-16 unit.
    assert measure("€" * 69 + "ê") == SmsLength(UCS2, 70, 1)


# -- the limit the API enforces (MAX_SEGMENTS, default 6) ------------------------------------------


def test_six_segments_is_918_septets_or_402_ucs2_units() -> None:
    assert measure("a" * 918).segments == 6 and measure("a" * 919).segments == 7
    assert measure("ê" * 402).segments == 6 and measure("ê" * 403).segments == 7


def test_a_curly_apostrophe_from_a_word_processor_makes_a_text_ucs2() -> None:
    straight = measure("Dear Jo, it's ready. " * 4)
    curly = measure("Dear Jo, it\u2019s ready. " * 4)
    assert (straight.encoding, straight.segments) == (GSM7, 1)
    assert (curly.encoding, curly.segments) == (UCS2, 2)


def test_the_link_line_counts_with_the_body() -> None:
    link = "https://enclose.example/p/" + "A" * 22
    body = "a" * (160 - len(link) - 1)
    assert measure(f"{body}\n{link}").segments == 1  # the newline is one septet
    assert measure(f"{body}a\n{link}").segments == 2


def test_every_extension_character_counts_two_in_a_long_text() -> None:
    text = GSM_EXTENSION * 50  # 500 characters, 1000 septets
    assert measure(text) == SmsLength(GSM7, 1000, 7)
