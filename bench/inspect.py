"""`charlm inspect units`' recording pass: 100,000 characters through a 1x512 LSTM.

The issue's target is under 10 seconds on one CPU thread for the pass that keeps h, c and
the four gates of every step (``charlm.inspection.recording.record``), plus ranking every
unit against a feature and the gate saturation table. Random weights: speed does not depend on them.
Also the page's size for 20,000 characters.

`python -m bench.inspect [--quick]` prints the figures as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import numpy as np
import torch

from bench.modes import mode
from bench.training import torch_threads
from charlm.config.schema import ModelConfig
from charlm.inspection.doc import build_doc
from charlm.inspection.page import render_page
from charlm.inspection.recording import record
from charlm.inspection.saturation import saturation
from charlm.inspection.text_features import FEATURES, per_token, rank_units
from charlm.models.lm import RNNLM

ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ \n.,;:!?'-&$3"  # 65 characters


def _model() -> RNNLM:
    torch.manual_seed(0)
    return RNNLM(ModelConfig(vocab_size=len(ALPHABET), hidden_size=512, num_layers=1)).eval()


def _timed(fn: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, round(time.perf_counter() - t0, 2)


def _cpu_timed(fn: Any) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds): on a shared host the CPU time is the steadier."""
    c0 = time.process_time()
    out, wall = _timed(fn)
    return out, wall, round(time.process_time() - c0, 2)


def run(quick: bool = False, smoke: bool = False) -> dict[str, Any]:
    with torch_threads(1):
        return _measure({"full": 100_000, "quick": 20_000, "smoke": 500}[mode(quick, smoke)])


def _measure(chars: int) -> dict[str, Any]:
    model = _model()
    ids = np.random.default_rng(0).integers(0, len(ALPHABET), chars)
    pieces = [ALPHABET[i] for i in ids]
    load = os.getloadavg()[0]
    rec, record_s, record_cpu = _cpu_timed(lambda: record(model, ids))
    f = per_token(FEATURES["line-position"], pieces)
    _, rank_s = _timed(lambda: rank_units(rec.states, f))
    _, sat_s = _timed(lambda: saturation(rec.kind, rec.states))
    result: dict[str, Any] = {
        "model": "1x512 LSTM, vocabulary 65, one thread",
        "chars": chars,
        "record_seconds": record_s,
        "record_cpu_seconds": record_cpu,
        "record_chars_per_second": round(chars / record_s),
        "rank_seconds": rank_s,
        "saturation_seconds": sat_s,
        "total_seconds": round(record_s + rank_s + sat_s, 2),
        "load_average_1min_before": round(load, 2),
    }
    result |= _page_size(rec, pieces[:20_000])
    return result


def _page_size(rec: Any, pieces: list[str]) -> dict[str, Any]:
    n = len(pieces)
    rec.ids, rec.log2_prob = rec.ids[:n], rec.log2_prob[:n]
    rec.top_ids, rec.top_probs = rec.top_ids[:n], rec.top_probs[:n]
    rec.states = {k: v[:n] for k, v in rec.states.items()}
    doc = build_doc(rec, pieces, list(ALPHABET), "bench")
    page, seconds = _timed(lambda: render_page(doc))
    return {"page_chars": n, "page_bytes": len(page.encode()), "page_seconds": seconds}


if __name__ == "__main__":
    json.dump(run(quick="--quick" in sys.argv), sys.stdout, indent=2)
    print()
