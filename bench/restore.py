"""Both directions at work: held-out text with 1% of its characters blanked, restored.

A forward and a backward (`--reverse`) LSTM are trained on tiny-shakespeare with the same
settings and budget (nanoGPT's split, --val-frac 0.1, one thread). From the validation text,
1% of the characters of a stretch are replaced by the gap marker at random (their places
known, as `charlm fill` takes them), and `charlm fill`'s library restores them by the forward
model alone, the backward model alone, and both (the product of the two distributions). The
figure is the share restored exactly.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from typer.testing import CliRunner

from bench.cells import CORPUS
from bench.modes import mode
from charlm.cli import app
from charlm.generation.fill import fill
from charlm.generation.load import load_model

BUDGET = {"full": "5m", "quick": "20s", "smoke": "1s"}  # --quick: two models, 40 s
CHARS = {"full": 20000, "quick": 5000, "smoke": 300}
HIDDEN = {"full": 256, "quick": 128, "smoke": 16}
RATE = 0.01  # the share of characters blanked
MARKER = "\x00"  # a character no corpus here holds


def train(out: Path, budget: str, hidden: int, reverse: bool) -> None:
    cmd = ["train", str(CORPUS), "--model", "lstm", "--hidden-size", str(hidden),
           "--val-frac", "0.1", "--threads", "1", "--max-time", budget, "--seed", "1",
           "--sample-length", "0", "--amp", "off", "--out", str(out), "--quiet"]  # fmt: skip
    result = CliRunner().invoke(app, [*cmd, "--reverse"] if reverse else cmd)
    if result.exit_code != 0:
        raise RuntimeError(f"charlm train failed: {result.output}")


def blanked(text: str, seed: int) -> tuple[str, np.ndarray]:
    """``text`` with RATE of its characters (not the first or last) replaced by MARKER."""
    rng = np.random.default_rng(seed)
    gaps = np.sort(rng.choice(np.arange(1, len(text) - 1), round(RATE * len(text)), False))
    chars = list(text)
    for g in gaps:
        chars[g] = MARKER
    return "".join(chars), gaps


def run(quick: bool = False, smoke: bool = False) -> dict[str, Any]:
    m = mode(quick, smoke)
    full = CORPUS.read_text()
    held = full[len(full) - len(full) // 10 :][: CHARS[m]]  # the validation split's start
    text, gaps = blanked(held, seed=1)
    shares = {}
    with tempfile.TemporaryDirectory() as tmp:
        runs = {d: Path(tmp) / d for d in ("forward", "backward")}
        for d, out in runs.items():
            train(out, BUDGET[m], HIDDEN[m], reverse=d == "backward")
        fwd, bwd = load_model(runs["forward"]), load_model(runs["backward"])
        for rule in ("forward", "backward", "both"):
            got = fill(fwd.model, bwd.model, fwd.tokenizer, text, MARKER, rule)  # type: ignore[arg-type]
            shares[rule] = float(np.mean([got.text[g] == held[g] for g in gaps]))
    return {
        "chars": len(held),
        "gaps": len(gaps),
        "budget": BUDGET[m],
        "model": f"lstm 1x{HIDDEN[m]}, the char preset otherwise, one thread, each direction",
        "restored": shares,
    }


def main() -> None:
    print(json.dumps(run(), indent=1))


if __name__ == "__main__":
    main()
