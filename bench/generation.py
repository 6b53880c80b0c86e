"""Generation and scoring speed: charlm's sampler and evaluator against the obvious loops.

A 2x256 LSTM (embedding 64, vocabulary 65, random weights: speed does not depend on them),
torch at one thread. Measured in the same run, so a change in the host's load hits both:

- one stream: ``charlm.generation.generate`` (the NumPy step, sampling included) against a
  naive loop
  that calls the model (``nn.LSTM``) on one step at a time and samples with torch;
- 64 streams at once: total characters per second;
- scoring ~1 MB with ``score_text`` (what ``charlm evaluate`` runs) against training the
  same model (batch 32, bptt 100, forward + backward + Adam step).

`python -m bench.generation [--quick]` prints the figures as JSON.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.modes import Mode, mode
from charlm.config.schema import ModelConfig
from charlm.data.batching import StripeBatcher
from charlm.data.tokenizers import CharTokenizer
from charlm.evaluation.scoring import score_text
from charlm.generation.generate import GenerateConfig, generate
from charlm.models.lm import RNNLM, detach_hidden

ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ \n.,;:!?'-&$3"  # 65 characters


def _model() -> tuple[RNNLM, CharTokenizer]:
    tok = CharTokenizer(list(ALPHABET))
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=tok.vocab_size, embed_size=64, hidden_size=256, num_layers=2)
    return RNNLM(cfg).eval(), tok


def _rate(n: int, fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t0)


def _charlm(model: RNNLM, tok: CharTokenizer, length: int, streams: int) -> None:
    cfg = GenerateConfig(length=length, num_samples=streams, seed=0)
    for _ in generate(model, tok, [0], cfg):
        pass


@torch.no_grad()
def _naive(model: RNNLM, length: int) -> None:
    """The loop everyone writes first (and charlm's own sampler before the fast path): the
    whole model on one step, softmax, torch.multinomial."""
    gen = torch.Generator().manual_seed(0)
    x, hidden = torch.zeros((1, 1), dtype=torch.long), None
    for _ in range(length):
        out = model(x, hidden)
        probs, hidden = out.log_probs[0, -1].exp().cpu(), out.hidden
        x = torch.multinomial(probs, 1, generator=gen)[None]


def _train(model: RNNLM, tokens: np.ndarray, steps: int) -> None:
    """Train a copy of the model: batch 32, bptt 100, clipping, Adam, hidden state carried."""
    model = copy.deepcopy(model).train()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    batcher = StripeBatcher(tokens, 32, 100)
    hidden = None
    for k in range(steps):
        x, y = batcher.window(k)
        out = model(x, hidden, targets=y)
        nll, hidden = out.nll, detach_hidden(out.hidden)
        opt.zero_grad(set_to_none=True)
        nll.mean().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()


def _corpus(size: int) -> str:
    """Tiny Shakespeare when it is there (real text), else random text of the same size."""
    path = Path(__file__).resolve().parents[2] / "shared/corpora/tinyshakespeare/input.txt"
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        return (text * (size // len(text) + 1))[:size]
    rng = np.random.default_rng(0)
    return "".join(np.array(list(ALPHABET))[rng.integers(0, 65, size)])


def run(quick: bool = False, smoke: bool = False) -> dict[str, Any]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _measure(mode(quick, smoke))
    finally:
        torch.set_num_threads(threads)


def _interleaved(repeats: int, *runs: tuple[int, Callable[[], Any]]) -> list[float]:
    """Best rate of each run over ``repeats`` rounds, alternating them within each round, so
    that a change in the host's load (other work shares the cores) hits them alike."""
    best = [0.0] * len(runs)
    for _ in range(repeats):
        for k, (n, fn) in enumerate(runs):
            best[k] = max(best[k], _rate(n, fn))
    return best


# Characters: one stream, each of 64 streams, the naive loop; then rounds of each.
SAMPLING = {"full": (20000, 1000, 1500, 3), "quick": (2000, 200, 300, 2), "smoke": (50, 5, 20, 1)}
# Characters scored, training steps, rounds of each.
SCORING = {"full": (1_000_000, 20, 2), "quick": (200_000, 10, 1), "smoke": (5_000, 1, 1)}


def _measure(size: Mode) -> dict[str, Any]:
    load = os.getloadavg()[0]
    model, tok = _model()
    n1, n64, naive_n, rounds = SAMPLING[size]
    _charlm(model, tok, 200, 1)  # warm-up: first calls allocate and load libraries
    one, naive, many = _interleaved(
        rounds,
        (n1, lambda: _charlm(model, tok, n1, 1)),
        (naive_n, lambda: _naive(model, naive_n)),
        (n64 * 64, lambda: _charlm(model, tok, n64, 64)),
    )
    chars, steps, rounds = SCORING[size]
    text = _corpus(chars)
    tokens = tok.encode(text)
    evaluate, train = _interleaved(
        rounds,
        (chars, lambda: score_text(model, tok, text, "", 32, 100)),
        (steps * 32 * 100, lambda: _train(model, tokens, steps)),
    )
    return {
        "model": "2x256 lstm, embed 64, vocabulary 65, torch 1 thread, BLAS 1 thread",
        "load_average_1min_before": round(load, 2),
        "sample_1_stream_chars_per_s": round(one),
        "naive_nn_lstm_step_chars_per_s": round(naive),
        "sample_speedup_vs_naive": round(one / naive, 1),
        "sample_64_streams_total_chars_per_s": round(many),
        "evaluate_chars_per_s": round(evaluate),
        "evaluate_text_chars": chars,
        "train_chars_per_s": round(train),
        "evaluate_speedup_vs_train": round(evaluate / train, 1),
    }


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv[1:]), indent=2))
