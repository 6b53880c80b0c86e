"""Quality at a fixed budget: `charlm train` on tiny-shakespeare with nanoGPT's split.

Each run is the real command line (a subprocess), first 90% train and last 10% validation
(--val-frac 0.1), scored on the whole validation split at every evaluation. The figure is
the best validation loss of the run, in nats per character (= per token here) and bits.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.cells import summary

CORPUS = (
    Path(__file__).resolve().parents[2] / "shared" / "corpora" / "tinyshakespeare" / "input.txt"
)
NANOGPT_10MIN = 1.552  # nats/char, nanoGPT's CPU recipe given 10 minutes here (ANCHORS.md)

# (label, preset, threads). Each preset carries its own --max-time.
FULL = (
    ("tiny preset (30 s)", "tiny", 1),
    ("default (small), 1 thread", "small", 1),
    ("default (small), 2 threads", "small", 2),
)
LONG = (("medium preset, 1 thread", "medium", 1),)
QUICK = FULL[:1]
SMOKE_BOUND = ["--max-steps", "2", "--max-time", "none"]  # the smoke run: 2 steps, then score


def train_once(preset: str, threads: int, bound: list[str] | None = None) -> dict[str, Any]:
    """One run of the preset, bounded by its own --max-time unless ``bound`` says otherwise."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "charlm", "train", str(CORPUS), "--preset", preset,
               "--val-frac", "0.1", "--threads", str(threads), "--seed", "1",
               "--sample-length", "0", "--out", str(out), "--quiet", *(bound or [])]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            return {"error": proc.stderr.strip().splitlines()[-1:]}
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return summary(rows) | {
        "chars_seen": rows[-1]["tokens_seen"],
        "minutes": round(rows[-1]["elapsed"] / 60, 2),
    }


def run(quick: bool = False, long: bool = False, smoke: bool = False) -> dict[str, Any]:
    if not CORPUS.exists():
        return {"skipped": f"{CORPUS} is absent: quality runs need tiny-shakespeare"}
    plan = QUICK if quick or smoke else FULL + (LONG if long else ())
    bound = SMOKE_BOUND if smoke else None
    rows = [{"run": label, "threads": n} | train_once(p, n, bound) for label, p, n in plan]
    return {"corpus": str(CORPUS), "split": "first 90% train, last 10% validation",
            "peer_nanogpt_10min": NANOGPT_10MIN, "rows": rows}  # fmt: skip
