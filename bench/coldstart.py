"""Cold start against warm start (issue 12.1): `charlm train` with and without stripe resets.

Each run is the real command line (a subprocess) on tiny-shakespeare, --threads 1, seed 5,
bounded by steps (so runs are repeatable and comparable): once with --reset-prob 0 (training
as it was: only carried state) and once with the default --reset-prob. For each, on the run's
own validation split (the last 5%): the mean loss of 100 characters at 300 random positions
from the zero state ("cold") and after the 500 characters before them ("warm"); and
`charlm evaluate` on the split's first 20,000 characters at --batch-size 1 and 32 (32 cuts the
text into 32 stripes that each start cold).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench.modes import mode
from charlm.config.schema import DataConfig, TrainConfig
from charlm.data.corpus import split_text
from charlm.evaluation.coldstart import cold_warm
from charlm.generation.load import load_model

# Beside the repository (/work/main), or one level further up from a worktree (/work/wt/NAME).
_HERE = Path(__file__).resolve()
CORPUS = next(
    (
        p
        for d in _HERE.parents[2:4]
        if (p := d / "shared/corpora/tinyshakespeare/input.txt").exists()
    ),
    _HERE.parents[2] / "shared/corpora/tinyshakespeare/input.txt",
)
SHORT_TEXT = 20_000  # characters for evaluate's batch 1 against batch 32
# (label, preset, steps). The default preset is 10 minutes; bounded by steps here.
FULL = (
    ("tiny, 200 steps (the issue's case)", "tiny", 200),
    ("tiny, 1500 steps", "tiny", 1500),
    ("default (small), 400 steps", "small", 400),
)
QUICK = FULL[:1]
SMOKE = (("tiny, 2 steps (smoke)", "tiny", 2),)


def train(preset: str, steps: int, reset_prob: float, out: Path, seed: int = 5) -> None:
    cmd = [sys.executable, "-m", "charlm", "train", str(CORPUS), "--preset", preset,
           "--max-steps", str(steps), "--max-time", "none", "--reset-prob", str(reset_prob),
           "--threads", "1", "--seed", str(seed), "--sample-length", "0", "--out", str(out),
           "--quiet"]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def evaluate(run: Path, text: Path, batch_size: int) -> float:
    cmd = [sys.executable, "-m", "charlm", "evaluate", str(run), str(text), "--batch-size",
           str(batch_size), "--threads", "1", "--json", "--quiet"]  # fmt: skip
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return round(json.loads(proc.stdout)["total"]["nats_per_token"], 4)


def measure(run: Path, val_text: str, short: Path) -> dict[str, Any]:
    lm = load_model(run, "cpu")
    cw = cold_warm(lm.model, np.asarray(lm.tokenizer.encode(val_text)))
    return {
        "cold": round(cw.cold, 4),
        "warm": round(cw.warm, 4),
        "gap": round(cw.gap, 4),
        "evaluate_b1": evaluate(run, short, 1),
        "evaluate_b32": evaluate(run, short, 32),
    }


def run(quick: bool = False, smoke: bool = False) -> dict[str, Any]:
    if not CORPUS.exists():
        return {"skipped": f"{CORPUS} is absent: the cold-start runs need tiny-shakespeare"}
    size, dc = mode(quick, smoke), DataConfig()
    # The smoke run trains once: both settings take the same path.
    probs = (TrainConfig.reset_prob,) if smoke else (0.0, TrainConfig.reset_prob)
    _, _, val_text = split_text(CORPUS.read_text(encoding="utf-8"), dc.val_frac, dc.test_frac)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        short = Path(tmp) / "short.txt"
        short.write_text(val_text[:SHORT_TEXT], encoding="utf-8")
        for label, preset, steps in {"full": FULL, "quick": QUICK, "smoke": SMOKE}[size]:
            for p in probs:
                out = Path(tmp) / f"{preset}-{steps}-{p}"
                train(preset, steps, p, out)
                rows.append({"run": label, "reset_prob": p} | measure(out, val_text, short))
                print(f"bench: coldstart {rows[-1]}", file=sys.stderr, flush=True)
    return {
        "corpus": str(CORPUS),
        "measure": "mean nats/char of 100 validation characters at 300 random positions, "
        "cold (zero state) and warm (after the 500 characters before); evaluate on the first "
        f"{SHORT_TEXT:,} validation characters at batch 1 and 32",
        "rows": rows,
    }
