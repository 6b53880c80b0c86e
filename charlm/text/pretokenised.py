"""Telling a pre-tokenised corpus (Penn Treebank, WikiText) from raw text, for --word-split auto.

The rule is conservative: raw text read in whitespace mode would keep "word," and "word"
apart for ever, while a pre-tokenised corpus read in punct mode only splits its markers.
So whitespace mode needs positive evidence that only tokenised text shows.
"""

from __future__ import annotations

import re

WORD_SPLITS = ("auto", "punct", "whitespace")
DETECT_CHARS = 1_000_000  # the start of the corpus is evidence enough, and reading it is quick
MIN_MARKERS = 3  # one stray "<unk>" in a raw text is not a convention
MIN_MARKS = 50  # commas and full stops needed before their spacing means anything
SPACED_SHARE = 0.95  # PTB/WikiText space out nearly every one; raw prose almost none

_UNK = re.compile(r"(?:^|(?<=\s))<unk>(?=\s|$)")
_WIKITEXT = re.compile(r" @[-,.]@ ")  # WikiText's split hyphens and number separators
_MARK = re.compile(r"[,.]")
_SPACED_MARK = re.compile(r"(?:^|(?<=\s))[,.](?=\s|$)")


def looks_pretokenised(sample: str) -> str | None:
    """Why ``sample`` looks pre-tokenised, or None when it reads as raw text."""
    unks = len(_UNK.findall(sample))
    if unks >= MIN_MARKERS:
        return f"it holds literal <unk> tokens ({unks:,} in the first {len(sample):,} characters)"
    markers = len(_WIKITEXT.findall(sample))
    if markers >= MIN_MARKERS:
        return (
            f"it uses WikiText's @-@ markers ({markers:,} in the first {len(sample):,} characters)"
        )
    marks = len(_MARK.findall(sample))
    spaced = len(_SPACED_MARK.findall(sample))
    if marks >= MIN_MARKS and spaced >= SPACED_SHARE * marks:
        share = f"{spaced:,} of {marks:,} commas and full stops"
        return f"its punctuation stands apart from the words ({share})"
    return None


def choose_word_split(requested: str, sample: str) -> tuple[str, str]:
    """The split to use and, for auto, why; an explicit choice is taken as it is."""
    if requested != "auto":
        return requested, ""
    reason = looks_pretokenised(sample)
    if reason is not None:
        return "whitespace", f"the corpus looks pre-tokenised: {reason}"
    return "punct", "the corpus looks like raw text (no literal <unk>, @-@ or spaced punctuation)"
