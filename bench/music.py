"""ABC tunes: how fast ``charlm music check`` reads them, and the check on real tunes.

Prepares music21's collections as ``charlm prepare abc`` does (seed 0), then times the check on
the first 1,000 tunes and reports the check's totals on the last 100 (the validation tail a
model trained on the corpus is scored on): the figures sampled tunes are compared against. Then
a 5-gram character model (Kneser-Ney, ``charlm.evaluation.ngram``) is fitted on the corpus's
training part (the split ``charlm train`` makes by default, all but the last 5%) and 100 tunes
sampled from it at temperatures 1.0 and 0.8 (seed 1), primed with ``X:1`` and stopped at a
blank line as the README's recipe samples the LSTM, are checked the same way: the baseline a
trained network has to beat. Run alone: ``python -m bench.music [--quick]``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from bench.modes import Mode, mode
from charlm.config.schema import RunConfig
from charlm.data.corpus import prepare
from charlm.errors import CharlmError
from charlm.evaluation.ngram import count_ngrams, sample
from charlm.music.abc import join_tunes, split_tunes
from charlm.music.check import check_text
from charlm.music.corpus import build_corpus, music21_collections

PRIME, STOP = "X:1", "\n\n"  # as `charlm sample RUN --prime 'X:1' --stop '\n\n'`
# In the corpus X:1 always follows a blank line, and a Kneser-Ney model's lower orders count
# continuations, not occurrences: after 'X:1' alone it gives the newline 0.42, after
# '\n\nX:1' 1.0. The blank line tells the n-gram a tune starts, as a fresh state tells the LSTM.
CONTEXT = STOP + PRIME
MAX_CHARS = 2000  # as the README's `--length 2000`: a tune longer than this is cut
# (collection files read, tunes sampled from the n-gram) by mode; None: every file
SIZES: dict[Mode, tuple[int | None, int]] = {
    "full": (None, 100),
    "quick": (100, 10),
    "smoke": (2, 2),
}


def ngram_tunes(
    corpus: str, order: int = 5, tunes: int = 100, seed: int = 1, temperature: float = 1.0
) -> str:
    """``tunes`` tunes sampled from an order-``order`` model of the training part."""
    prep = prepare(RunConfig(), corpus)
    tok = prep.tokenizer
    model = count_ngrams(prep.splits.train, tok.vocab_size, order, every_model=False)
    model = model.model(order)
    rng = np.random.default_rng(seed)
    prime, stop = tok.encode(CONTEXT), tok.encode(STOP)
    out = [
        PRIME + tok.decode(sample(model, prime, MAX_CHARS, rng, stop, temperature))
        for _ in range(tunes)
    ]
    return "".join(t + STOP for t in out)


def run(quick: bool = False, smoke: bool = False) -> dict[str, Any]:
    try:
        files = [f for fs in music21_collections().values() for f in fs]
    except CharlmError as e:  # music21 or its corpus missing: nothing to measure
        return {"skipped": str(e)}
    n_files, n = SIZES[mode(quick, smoke)]
    files = files[:n_files]
    t0 = time.monotonic()
    corpus = build_corpus(files, seed=0)
    prepared = time.monotonic() - t0
    tunes = split_tunes(corpus.text)
    first = join_tunes(tunes[:1000])
    t0 = time.monotonic()
    _, summary = check_text(first)
    checked = time.monotonic() - t0
    _, tail = check_text(join_tunes(tunes[-100:]))
    t0 = time.monotonic()
    ngram = {t: check_text(ngram_tunes(corpus.text, tunes=n, temperature=t))[1] for t in (1.0, 0.8)}
    return {
        "tunes": len(tunes),
        "prepare_seconds": round(prepared, 1),
        "check_tunes": summary.tunes,
        "check_seconds": round(checked, 2),
        "check_tunes_per_s": round(summary.tunes / checked),
        "real_tail_100": tail.to_dict(),
        "ngram5_tunes_t1.0": ngram[1.0].to_dict(),
        "ngram5_tunes_t0.8": ngram[0.8].to_dict(),
        "ngram5_seconds": round(time.monotonic() - t0, 1),
    }


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
