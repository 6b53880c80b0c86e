"""ABC tunes: how fast ``charlm music check`` reads them, and the check on real tunes.

Prepares music21's collections as ``charlm prepare abc`` does (seed 0), then times the
check on the first 1,000 tunes and reports the check's totals on the last 100 (the
validation tail a model trained on the corpus is scored on): the figures sampled tunes
are compared against. Run alone: ``python -m bench.music [--quick]``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from charlm.abc import join_tunes, split_tunes
from charlm.musiccheck import check_text
from charlm.musiccorpus import build_corpus, music21_collections


def run(quick: bool = False) -> dict[str, Any]:
    try:
        files = [f for fs in music21_collections().values() for f in fs]
    except Exception as e:  # music21 missing: nothing to measure
        return {"skipped": str(e)}
    if quick:
        files = files[:100]
    t0 = time.monotonic()
    corpus = build_corpus(files, seed=0)
    prepared = time.monotonic() - t0
    tunes = split_tunes(corpus.text)
    first = join_tunes(tunes[:1000])
    t0 = time.monotonic()
    _, summary = check_text(first)
    checked = time.monotonic() - t0
    _, tail = check_text(join_tunes(tunes[-100:]))
    return {
        "tunes": len(tunes),
        "prepare_seconds": round(prepared, 1),
        "check_tunes": summary.tunes,
        "check_seconds": round(checked, 2),
        "check_tunes_per_s": round(summary.tunes / checked),
        "real_tail_100": tail.to_dict(),
    }


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
