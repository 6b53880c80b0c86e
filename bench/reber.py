"""The embedded Reber grammar: the memory a truncated gradient cannot learn, and RTRL can.

An embedded Reber string is B, then T or P, then a Reber string, then the same T or P again,
then E (the Reber grammar: Reber 1967; embedded, as Fahlman and Hochreiter and Schmidhuber
used it). Every symbol but the one before the last E is predictable from the few before it;
that one must be remembered across the whole inner string (5 symbols or more, 8 on average).
The strings are written one after another, each on its own: the corpus is a stream.

Its exact entropy per symbol follows from the grammar: with S the inner string's number of
choices (each a fair coin), a string has S + 1 coin flips over S + 6 symbols, and E[S] = 6
(from the expected steps to the end, solved state by state), so the stream's entropy is
7/12 bits per symbol (``exact_bits_per_symbol`` computes it).

Each row trains a one-layer LSTM with `charlm train` on the same generated corpus, for the
same number of steps on one thread: truncated BPTT with windows shorter than the lag (4),
and longer (32), and RTRL with the short windows (its gradient does not stop at them). The
figures: how often the symbol before the last E is the model's likeliest guess (0.5 is
chance), and bits per symbol on held-out strings against the exact entropy.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from typer.testing import CliRunner

from bench.modes import mode
from charlm.cli import app
from charlm.generation.load import load_model
from charlm.generation.stepping import run_prime

# The Reber grammar's graph: state -> [(symbol, next state)]; state 6 ends with E.
GRAPH = {
    1: [("T", 2), ("P", 3)],
    2: [("S", 2), ("X", 4)],
    3: [("T", 3), ("V", 5)],
    4: [("X", 3), ("S", 6)],
    5: [("P", 4), ("V", 6)],
}
STEPS = {"full": 3000, "quick": 600, "smoke": 4}
STRINGS = {"full": 20000, "quick": 6000, "smoke": 400}
ROWS = (
    ("bptt-4", ["--algorithm", "bptt", "--bptt", "4"]),
    ("bptt-32", ["--algorithm", "bptt", "--bptt", "32"]),
    ("rtrl-4", ["--algorithm", "rtrl", "--bptt", "4"]),
)


def reber(rng: np.random.Generator) -> str:
    """One Reber string, B ... E."""
    out, state = ["B"], 1
    while state != 6:
        symbol, state = GRAPH[state][rng.integers(2)]
        out.append(symbol)
    return "".join(out) + "E"


def embedded(rng: np.random.Generator) -> str:
    """One embedded Reber string: B, T or P, a Reber string, the same T or P, E."""
    side = "TP"[rng.integers(2)]
    return f"B{side}{reber(rng)}{side}E"


def corpus(count: int, seed: int) -> tuple[str, np.ndarray]:
    """``count`` embedded strings one after another, and where each one's remembered symbol
    (the one before its last E) is."""
    rng = np.random.default_rng(seed)
    strings = [embedded(rng) for _ in range(count)]
    return "".join(strings), np.cumsum([len(s) for s in strings]) - 2


def exact_bits_per_symbol() -> float:
    """The stream's entropy per symbol: (E[S] + 1) / (E[S] + 6), E[S] the inner choices."""
    # e[s]: expected choices from state s to the end, e = 1 + mean(e over the two next)
    states = sorted(GRAPH)
    a, b = np.eye(len(states)), np.ones(len(states))
    for i, s in enumerate(states):
        for _, nxt in GRAPH[s]:
            if nxt != 6:
                a[i, states.index(nxt)] -= 0.5
    choices = float(np.linalg.solve(a, b)[0])
    return (choices + 1) / (choices + 6)


def score(run: Path, text: str, remembered: np.ndarray) -> dict[str, float]:
    """Bits per symbol over ``text`` (after its first) and the share of penultimate symbols
    (the remembered T or P) that are the model's likeliest guess."""
    lm = load_model(run)
    ids = lm.tokenizer.encode(text)
    rows: list[torch.Tensor] = []
    run_prime(lm.model, ids, on_chunk=lambda _, lp: rows.append(lp))
    log_p = torch.cat(rows).double().numpy()[:-1]  # row t predicts token t + 1
    nats = -log_p[np.arange(len(ids) - 1), ids[1:]]
    right = log_p[remembered - 1].argmax(axis=1) == ids[remembered]
    return {
        "bits_per_symbol": float(nats.mean() / np.log(2)),
        "last_symbol_right": float(right.mean()),
    }


def train(text: str, args: list[str], steps: int, out: Path) -> None:
    path = out.parent / "reber.txt"
    path.write_text(text)
    cmd = ["train", str(path), "--model", "lstm",
           "--hidden-size", "16", "--embed-size", "8", "--batch-size", "16", "--dropout", "0",
           "--lr", "0.01", "--max-steps", str(steps), "--eval-every", str(max(steps, 1)),
           "--reset-prob", "0", "--threads", "1", "--seed", "1", "--sample-length", "0",
           "--amp", "off", "--val-frac", "0.05", "--out", str(out), "--quiet", *args]  # fmt: skip
    # In this process (the command line's own entry point): a row's torch import is shared.
    result = CliRunner().invoke(app, cmd)
    if result.exit_code != 0:
        raise RuntimeError(f"charlm train failed: {result.output}")


def run(quick: bool = False, smoke: bool = False) -> dict[str, Any]:
    m = mode(quick, smoke)
    text, _ = corpus(STRINGS[m], seed=1)
    held_out, remembered = corpus(500 if m != "smoke" else 20, seed=2)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in ROWS:
            out = Path(tmp) / name
            train(text, args, STEPS[m], out)
            rows.append({"row": name, "steps": STEPS[m]} | score(out, held_out, remembered))
    return {
        "exact_bits_per_symbol": exact_bits_per_symbol(),
        "model": "lstm 1x16, embed 8, batch 16, lr 0.01, no resets, one thread",
        "rows": rows,
    }


def main() -> None:
    print(json.dumps(run(), indent=1))


if __name__ == "__main__":
    main()
