"""Peak memory of `charlm train` on a corpus far larger than memory, against a 1 MB one.

A large corpus streams through in chunks into a token file that training memory-maps, so
the peak should hardly depend on the corpus size. Measured here, not assumed: the same
tiny model trains a few steps on a generated 1 MB corpus (held in memory, the simple
path) and on a generated 200 MB one, first with an empty token cache (tokenising included)
then with the cache warm. Each run is its own process; its peak resident set size comes
from the kernel (``os.wait4``). Goal: the large corpus within 150 MB of the small one.

Also the peak of training each of the three speed configs (``bench.training.SHAPES``) a few
steps on the 1 MB corpus, evaluation included: what a model of that size costs.

Run alone: ``python -m bench.memory [--quick]`` prints the figures as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.modes import Mode, mode
from bench.training import SHAPES, SMOKE_SHAPE, Shape

GOAL_MB = 150
# Steps of the tiny preset, MB of the large corpus, steps of each speed config, by mode.
# 6 steps of a config: enough for the optimizer state and the backward graph to be at full size.
SIZES: dict[Mode, tuple[int, int, int]] = {
    "full": (20, 200, 6),
    "quick": (20, 32, 2),
    "smoke": (2, 2, 1),
}
BLOCK = 1 << 20  # bytes of generated text per block


def generate(path: Path, size: int, seed: int = 0) -> None:
    """Play-like text from a made-up vocabulary of 5,000 Zipf-distributed words."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("etaoinshrdlucmfwypvbgkjqxz"))
    vocab = np.array(["".join(rng.choice(letters, rng.integers(1, 9))) for _ in range(5000)])
    names = [f"{w.upper()}:" for w in vocab[:40]]
    with open(path, "w", encoding="ascii") as f:
        written = 0
        while written < size:
            words = vocab[np.minimum(rng.zipf(1.3, 40_000) - 1, len(vocab) - 1)]
            lines = [" ".join(words[i : i + 8]) for i in range(0, len(words), 8)]
            for i in range(0, len(lines), 5):  # a speech of five lines
                lines[i] = f"\n{names[i % len(names)]}\n{lines[i]}"
            block = ("\n".join(lines) + "\n")[: min(BLOCK, size - written)]
            f.write(block)
            written += len(block)


# A child's ru_maxrss starts from its parent's resident size at fork (Linux keeps the
# high-water mark across exec), so inside a large benchmark process every child would report
# at least that. A fresh, small launcher forks the measured process instead.
LAUNCHER = (
    "import os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "print(usage.ru_maxrss, os.waitstatus_to_exitcode(status))\n"
)


def peak_rss_mb(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Peak resident memory (MB) and wall time (s) of ``charlm train ARGS`` in its own process."""
    cmd = [sys.executable, "-c", LAUNCHER, sys.executable, "-m", "charlm", "train", *args]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    maxrss_kib, code = (int(v) for v in proc.stdout.split())
    if code != 0:
        raise RuntimeError(f"charlm train failed: {proc.stderr[-500:]}")
    return maxrss_kib / 1024, time.monotonic() - t0  # ru_maxrss is in KiB on Linux


def shape_args(shape: Shape) -> list[str]:
    """`charlm train` options for the network and windows of ``shape``."""
    return ["--model", "lstm", "--layers", str(shape.layers), "--hidden-size", str(shape.hidden),
            "--embed-size", str(shape.embed), "--bptt", str(shape.bptt),
            "--batch-size", str(shape.batch)]  # fmt: skip


def shape_rows(
    corpus: Path, out: Path, env: dict[str, str], steps: int, shapes: tuple[Shape, ...] = SHAPES
) -> list[dict[str, Any]]:
    base = ["--max-time", "none", "--threads", "1", "--seed", "0", "--max-steps", str(steps)]
    base += ["--eval-every", str(steps), "--quiet", "--force", "--out", str(out)]
    rows = []
    for shape in shapes:
        mb, seconds = peak_rss_mb([str(corpus), *shape_args(shape), *base], env)
        rows.append({"config": shape.name, "steps": steps, "peak_rss_mb": round(mb, 1),
                     "seconds": round(seconds, 1)})  # fmt: skip
    return rows


def run(quick: bool = False, smoke: bool = False) -> dict[str, Any]:
    size = mode(quick, smoke)
    steps, big_mb, shape_steps = SIZES[size]
    common = ["--preset", "tiny", "--max-time", "none", "--threads", "1", "--seed", "0"]
    common += ["--max-steps", str(steps), "--eval-every", str(steps), "--quiet", "--force"]
    with tempfile.TemporaryDirectory(prefix="charlm-bench-memory-") as tmp:
        root = Path(tmp)
        env = os.environ | {"CHARLM_CACHE_DIR": str(root / "cache")}
        small, big = root / "small.txt", root / "big.txt"
        generate(small, 1 << 20)
        generate(big, big_mb << 20)
        out = ["--out", str(root / "run")]
        small_mb, small_s = peak_rss_mb([str(small), *common, *out], env)
        big_args = [str(big), *common, *out, "--token-cache", "always"]
        cold_mb, cold_s = peak_rss_mb(big_args, env)
        warm_mb, warm_s = peak_rss_mb(big_args, env)
        # --quick leaves out 3x512, whose evaluation alone outran the quick suite's promise.
        shapes = {"full": SHAPES, "quick": SHAPES[:2], "smoke": (SMOKE_SHAPE,)}[size]
        rows = shape_rows(small, root / "run", env, shape_steps, shapes)
    worst = max(cold_mb, warm_mb) - small_mb
    return {
        "model": f"preset tiny (1x128 LSTM), {steps} steps, 1 thread, char tokenizer",
        "corpus_mb": {"small": 1, "large": big_mb},
        "peak_rss_mb": {
            "small": round(small_mb, 1),
            "large_cold_cache": round(cold_mb, 1),
            "large_warm_cache": round(warm_mb, 1),
        },
        "seconds": {
            "small": round(small_s, 1),
            "large_cold": round(cold_s, 1),
            "large_warm": round(warm_s, 1),
        },
        "extra_mb": round(worst, 1),
        "goal_mb": GOAL_MB,
        "within_goal": worst <= GOAL_MB,
        "rows": rows,
    }


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
