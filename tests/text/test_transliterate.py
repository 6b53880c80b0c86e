"""--ascii: letters transliterated, not deleted; what has no ASCII spelling is counted."""

from __future__ import annotations

from charlm.text.clean import CleanOptions, clean
from charlm.text.transliterate import to_ascii


def test_letters_are_spelled_not_deleted() -> None:
    text, report = to_ascii("Straße Ærø Œuvre ½ naïve café")
    assert text == "Strasse Aero Oeuvre 1/2 naive cafe"
    assert report.dropped.total() == 0
    assert report.spelled["ß"] == 1 and report.spellings["ß"] == "ss"
    assert report.spelled.total() == 7  # ß Æ ø Œ ½ ï é


def test_counts_are_per_occurrence() -> None:
    _, report = to_ascii("éé ß")
    assert report.spelled == {"é": 2, "ß": 1}


def test_cjk_is_romanised_and_emoji_dropped_and_counted() -> None:
    text, report = to_ascii("東京 😀😀 ok")
    assert text == "DongJing  ok"
    assert report.spelled.total() == 2 and report.dropped == {"😀": 2}
    summary = report.summary()
    assert "2 characters spelled in ASCII" in summary
    assert "2 dropped with no ASCII spelling (e.g. '😀' x2)" in summary


def test_typographic_punctuation_keeps_its_typed_spelling() -> None:
    assert to_ascii("\u201cYes\u201d \u2014 it\u2019s\u2026")[0] == '"Yes" -- it\'s...'


def test_clean_reports_what_ascii_changed() -> None:
    cleaned = clean("Ærø and 🙂\n", CleanOptions(ascii=True, lowercase=True))
    assert cleaned.text == "aero and\n"
    assert cleaned.ascii is not None and cleaned.ascii.dropped == {"🙂": 1}
    assert clean("Ærø\n").ascii is None  # no report unless asked
