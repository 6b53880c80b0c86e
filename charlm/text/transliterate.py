"""ASCII spellings of Unicode text, with an account of what was changed and what was lost.

anyascii (ISC licence) does the transliteration: ``Straße`` -> ``Strasse``, ``Ærø`` -> ``Aero``,
``½`` -> ``1/2``, CJK to its romanisation. A few punctuation marks keep the spelling charlm
used before (an em dash is ``--``, as typists wrote it). Emoji are dropped rather than turned
into ``:grinning:``: words the author never wrote would be learned as text.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from anyascii import anyascii

_PUNCT = {
    "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
    "\u2014": "--", "\u2026": "...", "\u00a0": " ",
}  # fmt: skip
_EMOJI_NAME = re.compile(r"^:[a-z0-9_+\-]+:$")


@dataclass
class AsciiReport:
    """Non-ASCII characters met: spelled in ASCII, or dropped for want of a spelling."""

    spelled: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    spellings: dict[str, str] = field(default_factory=dict)

    def __iadd__(self, other: AsciiReport) -> AsciiReport:
        self.spelled += other.spelled
        self.dropped += other.dropped
        self.spellings |= other.spellings
        return self

    def summary(self, examples: int = 4) -> str:
        """One line: how many characters were spelled or dropped, the commonest of each."""
        spelled = ", ".join(
            f"{c!r}->{self.spellings[c]!r}" for c, _ in self.spelled.most_common(examples)
        )
        dropped = ", ".join(f"{c!r} x{n:,}" for c, n in self.dropped.most_common(examples))
        parts = [f"{self.spelled.total():,} characters spelled in ASCII" + _eg(spelled)]
        parts.append(f"{self.dropped.total():,} dropped with no ASCII spelling" + _eg(dropped))
        return "--ascii: " + "; ".join(parts)


def _eg(examples: str) -> str:
    return f" (e.g. {examples})" if examples else ""


def spelling(char: str) -> str:
    """The ASCII spelling of one character; '' when it has none worth keeping."""
    if char in _PUNCT:
        return _PUNCT[char]
    ascii_form = anyascii(char)
    return "" if _EMOJI_NAME.match(ascii_form) else ascii_form


def to_ascii(text: str) -> tuple[str, AsciiReport]:
    """``text`` in ASCII, and what it took. Each distinct character is looked up once."""
    report = AsciiReport()
    table: dict[int, str] = {}
    for char, n in Counter(text).items():  # counting every character is fast in C
        if char.isascii():
            continue
        table[ord(char)] = report.spellings[char] = spelling(char)
        (report.spelled if table[ord(char)] else report.dropped)[char] = n
    return text.translate(table), report
