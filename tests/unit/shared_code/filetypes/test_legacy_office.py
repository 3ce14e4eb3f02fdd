"""Legacy Office (DOC): the corpus samples."""

from __future__ import annotations

import pytest

from shared_code.filetypes import TYPES, ContentRejected, validate
from tests.support import corpus
from tests.support.corpus.hidden import SECRET, VANISH_OFF, VANISH_ON, doc_built, doc_style, in_style
from tests.support.filetype_checks import bad_cases, check_bad_sample, check_good_sample, good_names


@pytest.mark.parametrize("name", good_names("legacy_office"))
def test_good_sample_is_sniffed_and_passes(name: str) -> None:
    check_good_sample(name)


@pytest.mark.parametrize("case", bad_cases("legacy_office"), ids=lambda c: c.name)
def test_bad_sample_is_rejected_with_its_reason(case: corpus.Case) -> None:
    check_bad_sample(case)


# -- hidden text in a DOC (issue 18): index entries, styles, and the bounds of reading them ---------


def _rule(data: bytes) -> str | None:
    """The rule a DOC is refused by, or None when it passes."""
    try:
        validate(data, TYPES["doc"])
    except ContentRejected as error:
        return error.rule
    return None


SHOWN = ("Your results are normal.", b"")


@pytest.mark.parametrize("compressed", [False, True], ids=["utf16", "8bit"])
def test_an_index_entry_is_allowed_and_hidden_text_beside_it_is_not(compressed: bool) -> None:
    entry = ('\x13   xe "Diabetes" \x15', VANISH_ON)  # any case, after spaces
    assert _rule(doc_built([SHOWN, entry, ("\r", VANISH_ON)], compressed=compressed)) is None
    hidden = (" Not for the patient.", VANISH_ON)
    assert _rule(doc_built([SHOWN, entry, hidden], compressed=compressed)) == "hidden_text"
    assert _rule(doc_built([SHOWN, hidden, entry], compressed=compressed)) == "hidden_text"


@pytest.mark.parametrize(
    "field",
    [
        '\x13 HYPERLINK "https://www.nhs.uk/" \x14NHS\x15',  # another field's instruction is hidden text
        '\x13 XE "Diabetes" ',  # an entry never ended has no complete instruction
        '\x13 XE "a" \x15\x13 XE "Diabetes"',  # nor after a complete one
        '\x13 XEX "Diabetes" \x15',  # not the XE keyword
        "\x15 Diabetes \x13",  # marks the wrong way round open no field
    ],
)
def test_hidden_text_in_a_field_that_is_not_an_entry_counts(field: str) -> None:
    assert _rule(doc_built([SHOWN, (field, VANISH_ON)])) == "hidden_text"


def test_the_result_of_an_entry_field_is_the_entrys_and_an_entry_inside_another_field_is_allowed() -> None:
    entry = ('\x13 XE "Diabetes" \x14Diabetes\x15', VANISH_ON)
    assert _rule(doc_built([SHOWN, ('\x13 IF 1 = 1 "', b""), entry, ('" \x14\x15', b"")])) is None
    hidden_if = ('\x13 IF 1 = 1 "', VANISH_ON)  # the IF's own instruction hidden: not the entry's
    assert _rule(doc_built([SHOWN, hidden_if, entry, ('" \x14\x15', b"")])) == "hidden_text"


def test_a_hidden_run_of_only_spaces_and_marks_hides_nothing() -> None:
    assert _rule(doc_built([SHOWN, ("  \t\x07\r", VANISH_ON)])) is None
    assert _rule(doc_built([SHOWN, ("  \t\x07\r.", VANISH_ON)])) == "hidden_text"


@pytest.mark.parametrize(
    ("own", "rule"),
    [(b"", "hidden_text"), (b"\x3c\x08\x00", None), (b"\x3c\x08\x80", "hidden_text"), (b"\x3c\x08\x81", None)],
    ids=["style", "off", "same_as_style", "opposite_of_style"],
)
def test_a_runs_own_vanish_overrides_its_style(own: bytes, rule: str | None) -> None:
    styles = {SECRET: doc_style(2, chpx=VANISH_ON, name="Secret")}
    assert _rule(doc_built([SHOWN, (" Not for the patient.", in_style(SECRET, own))], styles=styles)) == rule


def test_the_opposite_of_a_style_that_shows_text_hides_it() -> None:
    assert _rule(doc_built([SHOWN, (" Not for the patient.", b"\x3c\x08\x81")])) == "hidden_text"


def test_a_based_on_style_can_show_again_what_its_base_hides() -> None:
    styles = {SECRET: doc_style(2, chpx=VANISH_ON, name="Secret"), 16: doc_style(2, SECRET, b"\x3c\x08\x00")}
    assert _rule(doc_built([SHOWN, (" Shown.", in_style(16))], styles=styles)) is None
    styles[16] = doc_style(2, SECRET, b"\x3c\x08\x81")  # the opposite of its base's: shown too
    assert _rule(doc_built([SHOWN, (" Shown.", in_style(16))], styles=styles)) is None


def test_a_hidden_character_style_in_a_hidden_paragraph_style_shows_the_text_as_word_toggles() -> None:
    styles = {SECRET: doc_style(2, chpx=VANISH_ON, name="Secret"), 16: doc_style(1, chpx=VANISH_ON, name="Notes")}
    assert _rule(doc_built([(" Shown.", in_style(SECRET)), ("\r", b"")], styles=styles, paragraph_style=16)) is None
    assert _rule(doc_built([(" Hidden.", b""), ("\r", b"")], styles=styles, paragraph_style=16)) == "hidden_text"


def test_a_loop_of_based_on_styles_ends_and_a_chain_too_long_is_too_complex() -> None:
    looped = {16: doc_style(2, 17, name="A"), 17: doc_style(2, 16, name="B"), 18: doc_style(2, chpx=VANISH_ON)}
    assert _rule(doc_built([SHOWN, (" Shown.", in_style(16))], styles=looped)) is None
    chain = {20 + i: doc_style(2, 21 + i, name=f"S{i}") for i in range(40)}
    chain[60] = doc_style(2, chpx=VANISH_ON, name="Secret")
    assert _rule(doc_built([SHOWN, (" Hidden.", in_style(20))], styles=chain)) == "too_complex"


def test_a_style_sheet_that_does_not_fit_hides_nothing_and_breaks_nothing() -> None:
    name_too_long = bytearray(doc_style(2, chpx=VANISH_ON, name="Secret"))
    name_too_long[10:12] = b"\xff\x7f"  # xstzName claims more characters than the style holds
    styles = {SECRET: bytes(name_too_long), 16: b"\x00" * 5}
    assert _rule(doc_built([SHOWN, (" Shown.", in_style(SECRET))], styles=styles)) is None
    assert _rule(doc_built([SHOWN, (" Shown.", in_style(16))], styles=styles)) is None


def test_a_piece_table_that_does_not_fit_falls_back_to_counting_every_hidden_run() -> None:
    entry = [SHOWN, ('\x13 XE "Diabetes" \x15', VANISH_ON)]
    length = 24 + 17
    assert _rule(doc_built(entry, pieces=[(0, length, 10_000_000)])) == "hidden_text"  # outside the stream
    assert _rule(doc_built(entry, pieces=[(0, 20, 1024), (20, length, 1030)])) == "hidden_text"  # overlapping
    assert _rule(doc_built(entry, pieces=[(1, length, 1024)])) == "hidden_text"  # not from CP 0
    assert _rule(doc_built([SHOWN, ("\r", VANISH_ON)], pieces=[(0, 25, 10_000_000)])) is None  # a mark alone


def test_too_many_pieces_or_fields_inside_fields_are_too_complex() -> None:
    many = [(0, 0, 1024)] * 65_537
    assert _rule(doc_built([SHOWN, (" Hidden.", VANISH_ON)], pieces=many)) == "too_complex"
    assert _rule(doc_built([SHOWN, ("\x13 IF " * 65, VANISH_OFF)])) == "too_complex"
    assert _rule(doc_built([SHOWN, ("\x13 IF " * 64, VANISH_OFF)])) is None


def test_runs_that_cover_the_text_again_and_again_are_too_complex() -> None:
    spaces = [(" " * 60_000, VANISH_ON)]  # hidden, but nothing to see: each run reads all of it
    assert _rule(doc_built(spaces, run_limits=[0, 60_000] * 4 + [0])) is None
    assert _rule(doc_built(spaces, run_limits=[0, 60_000] * 40 + [0])) == "too_complex"


def test_text_no_character_run_lists_is_hidden_by_its_paragraph_style() -> None:
    styles = {16: doc_style(1, chpx=VANISH_ON, name="Notes")}
    runs = [("Shown again.", b""), (" Hidden by its paragraph style.\r", VANISH_OFF)]
    whole = sum(len(text) for text, _ in runs)
    assert _rule(doc_built(runs, styles=styles, paragraph_style=16, run_limits=[0, whole])) is None
    assert _rule(doc_built(runs, styles=styles, paragraph_style=16, run_limits=[0, 12])) == "hidden_text"
    assert _rule(doc_built(runs, styles=styles, paragraph_style=16, run_limits=[12, whole])) == "hidden_text"
    assert _rule(doc_built(runs, styles=styles, run_limits=[0, 12])) is None  # Normal hides nothing
