"""Play layouts: detection that a novel cannot fool, Folio inline speakers, Dramatis Personae."""

from __future__ import annotations

import pytest

from charlm.errors import InputError
from charlm.text.clean import CleanOptions, clean, clean_text
from charlm.text.plays import (
    INLINE,
    OWN_LINE,
    PREPARED,
    detect_layout,
    inline_speech,
    prepared_speeches,
    speaker_of,
)
from tests.helpers.texts import (
    FOLIO,
    FOLIO_EXPECTED,
    MODERN,
    MODERN_FIRST_SPEECH,
    NOVEL,
    NOVEL_EXPECTED,
)

# Prose with indented paragraphs, some opening with an abbreviation and a full stop.
INDENTED_PROSE = """   Mr. Smith came home late. He was tired.
The rain had not stopped since noon.

   Mrs. Smith had waited. She said nothing.

   Mr. Smith sat down. The fire was out.

   Dr. Brown called at nine. Nobody answered.

   Mrs. Smith went to the door at last.

   It was a long night for all of them.
"""


def test_modern_gutenberg_play_is_detected_and_its_persons_kept_out() -> None:
    cleaned = clean(MODERN)
    assert (cleaned.layout, cleaned.detected) == (OWN_LINE, True)
    assert cleaned.text.startswith(MODERN_FIRST_SPEECH)
    assert "HECATE" not in cleaned.text and "Apparitions" not in cleaned.text
    assert (cleaned.speeches, cleaned.speakers) == (6, 3)
    assert cleaned.text.endswith("THIRD WITCH:\nThere to meet with Macbeth.\n")


def test_folio_inline_speakers_in_the_tiny_shakespeare_shape() -> None:
    assert detect_layout(FOLIO) == INLINE
    cleaned = clean(FOLIO)
    assert (cleaned.layout, cleaned.detected) == (INLINE, True)
    assert cleaned.text == FOLIO_EXPECTED
    assert clean_text(FOLIO, CleanOptions(format="play")) == FOLIO_EXPECTED


def test_a_short_folio_forced_as_a_play_is_reported_as_inline() -> None:
    """Too short to detect, --format play reads it inline; the summary said 'on lines of
    their own' all the same."""
    short = (
        "   Macb. Stay you imperfect Speakers, tell me more:\n\n   Banq. The earth hath bubbles.\n"
    )
    assert detect_layout(short) is None
    cleaned = clean(short, CleanOptions(format="play"))
    assert cleaned.layout == INLINE and cleaned.speeches == 2
    assert cleaned.text.startswith("Macb:\nStay you imperfect Speakers")


def test_folio_with_windows_line_endings_and_directions_kept() -> None:
    assert clean_text(FOLIO.replace("\n", "\r\n")) == FOLIO_EXPECTED
    kept = clean_text(FOLIO, CleanOptions(keep_directions=True))
    assert kept.startswith("[Thunder and Lightning. Enter three Witches.]\n\n1:\n")
    assert "[Exeunt.]\n\n[Enter Macbeth and Banquo.]\n\nMacb:" in kept
    assert kept.endswith("Thane of Glamis.\n[Witches vanish.]\n")


def test_a_novel_is_not_a_play_and_keeps_its_paragraphs() -> None:
    assert detect_layout(NOVEL) is None
    cleaned = clean(NOVEL)
    assert (cleaned.layout, cleaned.detected) == ("plain", True)
    assert cleaned.text == NOVEL_EXPECTED
    assert "CHAPTER I.\n\nIt was the best" in cleaned.text and cleaned.text.endswith("THE END.\n")
    assert "\n\nThen the bell rang" in cleaned.text  # a paragraph break survives


def test_chapter_headings_are_never_speakers() -> None:
    for line in ("CHAPTER I.", "CHAPTER XII.", "BOOK II.", "THE END.", "PREFACE.", "FINIS."):
        assert speaker_of(line) is None, line
    assert speaker_of("FIRST WITCH.") == "FIRST WITCH"


def test_forcing_play_on_a_novel_says_what_was_expected() -> None:
    with pytest.raises(InputError, match="no speeches found: --format play expects") as e:
        clean(NOVEL, CleanOptions(format="play"))
    assert "Macb. Stay" in str(e.value) and "--format plain" in str(e.value)


def test_indented_prose_with_abbreviations_is_not_a_folio_play() -> None:
    assert inline_speech("   Mr. Smith came home late.") is None
    assert inline_speech("   It was a long night for all of them.") is None
    assert inline_speech("  1. When shall we three meet againe?") == (
        "1",
        "When shall we three meet againe?",
    )
    assert detect_layout(INDENTED_PROSE) is None
    assert clean_text(INDENTED_PROSE) == INDENTED_PROSE  # untouched, indentation and all


def test_plain_prose_keeps_paragraphs() -> None:
    prose = "First paragraph, line one.\nLine two.\n\n\n\nSecond paragraph.\n"
    cleaned = clean(prose)
    assert cleaned.layout == "plain"
    assert cleaned.text == "First paragraph, line one.\nLine two.\n\nSecond paragraph.\n"


def test_prepared_play_is_left_as_it_is_even_when_play_is_forced() -> None:
    once = clean_text(MODERN)
    again = clean(once, CleanOptions(format="play"))
    assert again.layout == PREPARED and again.text == once and again.speeches == 6
    assert clean_text(FOLIO_EXPECTED, CleanOptions(format="play")) == FOLIO_EXPECTED


def test_a_detected_play_whose_speeches_all_vanish_stays_prose() -> None:
    """A list of persons with no act or scene heading after it hides every speech: auto then
    keeps the text rather than emptying it."""
    text = "PERSONS REPRESENTED\n\n" + "\n\n".join(["ADAM.\nYes.", "EVE.\nNo."] * 3) + "\n"
    cleaned = clean(text)
    assert cleaned.layout == "plain" and cleaned.text == text


def test_a_letter_is_not_taken_for_a_prepared_play() -> None:
    letter = "Dear Sir:\nI write to thank you for the parcel.\n"
    assert clean(letter).layout == "plain"


def test_a_prepared_play_with_empty_speeches_and_extra_blank_lines_is_recognised() -> None:
    # As tiny-shakespeare writes it: a speaker whose speech is empty, a run of two blank lines.
    speeches = [
        f"{who}:\nA line of verse, number {k}.\n" for k, who in enumerate(["ANNE", "BOB"] * 30)
    ]
    text = "\n".join(speeches[:10]) + "\nTITUS:\n\n\n" + "\n".join(speeches[10:])
    assert prepared_speeches(text) == 61
    assert prepared_speeches("Dear Sir:\nI write to you.\nYours.\n") == 0  # one speaker: a letter
