"""A WikiText-style corpus made from a raw text: the test bed for word-level comparisons.

Lowercased, split into words and punctuation (hyphens inside words become WikiText's
``@-@``), whitespace-separated, words seen fewer than ``min_count`` times in the training
part replaced by a literal ``<unk>`` everywhere, and cut by lines into train, valid and
test files, as WikiText-2 and the Penn Treebank ship.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

_TOKEN = re.compile(r"\w+(?:['\u2019]\w+)*|-|[^\w\s]")  # "o'er" stays whole; "-" stands alone


def tokenise_line(line: str) -> list[str]:
    """One raw line as lowercase tokens; a hyphen between two word characters is '@-@'."""
    tokens = []
    text = line.lower()
    for m in _TOKEN.finditer(text):
        tok = m.group()
        inner = m.start() > 0 and m.end() < len(text) and text[m.start() - 1].isalnum()
        if tok == "-" and inner and text[m.end()].isalnum():
            tok = "@-@"
        tokens.append(tok)
    return tokens


def make_corpus(text: str, min_count: int = 3, eval_share: float = 0.05) -> dict[str, str]:
    """train, valid and test texts: the last 2 * eval_share of the lines are valid then test."""
    lines = [tokenise_line(line) for line in text.splitlines()]
    n_eval = round(len(lines) * eval_share)
    parts = {
        "train": lines[: len(lines) - 2 * n_eval],
        "valid": lines[len(lines) - 2 * n_eval : len(lines) - n_eval],
        "test": lines[len(lines) - n_eval :],
    }
    counts = Counter(tok for line in parts["train"] for tok in line)
    known = {w for w, n in counts.items() if n >= min_count}
    return {
        name: "".join(" ".join(t if t in known else "<unk>" for t in line) + "\n" for line in part)
        for name, part in parts.items()
    }


def write_corpus(source: Path, out_dir: Path, min_count: int = 3) -> dict[str, Path]:
    """train.txt, valid.txt, test.txt in ``out_dir`` (word_language_model's layout)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    texts = make_corpus(source.read_text(encoding="utf-8"), min_count)
    paths = {}
    for name, body in texts.items():
        paths[name] = out_dir / f"{name}.txt"
        paths[name].write_text(body, encoding="utf-8")
    return paths
