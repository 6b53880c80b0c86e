"""The Kneser-Ney n-gram baseline: fitting time and peak memory, and its validation bpc.

Three measurements, each in its own process so its peak resident set size is its own
(started by ``bench.memory``'s small launcher, for the reason given there):

- fit orders 1..10 on tiny-shakespeare's training split (nanoGPT's: the first 90%), the
  goal being under 60 s and 2 GB;
- fit order 20 on the 4.8 MB Shakespeare corpus that ``charlm prepare shakespeare`` makes
  (skipped with a note when that cannot be made);
- the validation bits per character of orders 1..20 on tiny-shakespeare's last 10%: what
  ``charlm evaluate --baseline ngram:best`` searches, and the README's table.

The process imports charlm (and so torch) before it fits, as ``charlm evaluate`` does; the
resident size just before the fit is reported too, so the fit's own share is visible.
Run alone: ``python -m bench.ngram [--quick]``; a child: ``python -m bench.ngram --child ...``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.memory import LAUNCHER
from bench.modes import mode
from bench.quality import CORPUS

VAL_FRAC = 0.1  # nanoGPT's split, as bench.quality trains the presets on
GOAL_SECONDS, GOAL_MB = 60, 2048
ORDERS = {"full": (10, 20), "quick": (4, 6), "smoke": (2, 2)}  # (fit's order, sweep's) by mode


def child(corpus: Path, order: int, score: bool, out: Path) -> None:
    """Fit (and maybe score) in this process; write the figures to ``out`` as JSON."""
    from charlm.config.schema import DataConfig, RunConfig
    from charlm.data.corpus import prepare, read_corpus
    from charlm.evaluation.ngram import count_ngrams

    prep = prepare(RunConfig(data=DataConfig(val_frac=VAL_FRAC)), read_corpus(str(corpus)))
    vocab = prep.tokenizer.vocab_size
    before = _own_peak_mb()
    t0, cpu0 = time.perf_counter(), time.process_time()
    # As `--baseline ngram:N` fits (top-order raw counts only); a search keeps them all.
    counts = count_ngrams(prep.splits.train, vocab, order, every_model=score)
    model = counts.model(order)
    result: dict[str, Any] = {
        "train_tokens": len(prep.splits.train),
        "val_tokens": len(prep.splits.val),
        "vocab": vocab,
        "order": order,
        # CPU seconds too: on a shared host the wall time also counts other people's work.
        "fit_seconds": round(time.perf_counter() - t0, 2),
        "fit_cpu_seconds": round(time.process_time() - cpu0, 2),
        "distinct_ngrams": sum(len(k) for k in counts.keys),
        "rss_before_fit_mb": round(before, 1),
        "rss_after_fit_mb": round(_own_peak_mb(), 1),
    }
    if score:
        t0 = time.perf_counter()
        bpc = {}
        for n in range(1, order + 1):
            nats = -float(counts.model(n).log_probs(prep.splits.val).sum())
            bpc[n] = round(nats / (prep.val_chars * math.log(2)), 4)
        result["score_seconds"] = round(time.perf_counter() - t0, 2)
        result["val_bpc"] = bpc
    with tempfile.TemporaryDirectory(prefix="charlm-bench-ngram-") as tmp:
        path = Path(tmp) / "model.npz"
        result |= _save(path, model)
        del model, counts  # a second call reads the cache in a process without them
        result |= _load(path, order)
    out.write_text(json.dumps(result))


def _save(path: Path, model: Any) -> dict[str, Any]:
    """Save the model as `charlm evaluate` caches it."""
    from charlm.evaluation.baseline import save_model

    t0 = time.perf_counter()
    save_model(path, model)
    return {
        "cache_mb": round(path.stat().st_size / 2**20, 3),
        "cache_save_seconds": round(time.perf_counter() - t0, 2),
        "rss_after_save_mb": round(_own_peak_mb(), 1),
    }


def _load(path: Path, order: int) -> dict[str, Any]:
    """Read the cached model back: what a second `charlm evaluate --baseline` call costs."""
    from charlm.evaluation.baseline import load_model

    t0 = time.perf_counter()
    if load_model(path, order) is None:
        raise RuntimeError(f"{path}: the cached model did not read back")
    return {"cache_load_seconds": round(time.perf_counter() - t0, 2)}


def _own_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(corpus: Path, order: int, score: bool) -> dict[str, Any]:
    """Run a child; its figures plus its peak RSS and wall time."""
    with tempfile.TemporaryDirectory(prefix="charlm-bench-ngram-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-c", LAUNCHER, sys.executable, "-m", "bench.ngram", "--child",
               str(corpus), "--order", str(order), "--out", str(out)]  # fmt: skip
        cmd += ["--score"] if score else []
        t0 = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.monotonic() - t0
        maxrss_kib, code = (int(v) for v in proc.stdout.split())
        if code != 0:
            raise RuntimeError(f"the n-gram child failed: {proc.stderr[-500:]}")
        result = json.loads(out.read_text())
    return result | {"peak_rss_mb": round(maxrss_kib / 1024, 1), "wall_seconds": round(wall, 1)}


def make_shakespeare(path: Path) -> str | None:
    """The 4.8 MB corpus, or why it could not be made."""
    cmd = [sys.executable, "-m", "charlm", "prepare", "shakespeare", "-o", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"
    return None


def run(quick: bool = False, smoke: bool = False) -> dict[str, Any]:
    if not CORPUS.exists():
        return {"skipped": f"{CORPUS} is absent: the n-gram benchmark needs tiny-shakespeare"}
    fit_order, sweep_order = ORDERS[mode(quick, smoke)]
    result: dict[str, Any] = {"corpus": "tiny-shakespeare, first 90% (--val-frac 0.1)"}
    fit10 = measure(CORPUS, fit_order, score=False)
    fit10["within_goal"] = fit10["wall_seconds"] < GOAL_SECONDS and fit10["peak_rss_mb"] < GOAL_MB
    rows = [{"fit": f"tiny-shakespeare, orders 1..{fit10['order']}", **fit10}]
    if not (quick or smoke):  # orders 1..20 on 4.8 MB: the full run's alone
        with tempfile.TemporaryDirectory(prefix="charlm-bench-ngram-") as tmp:
            shakes = Path(tmp) / "shakespeare.txt"
            why = make_shakespeare(shakes)
            if why is None:
                fit20 = measure(shakes, 20, score=False)
                rows.append({"fit": "Shakespeare 4.8 MB, orders 1..20", **fit20})
            else:
                result["shakespeare_skipped"] = why
    result["rows"] = rows
    sweep = measure(CORPUS, sweep_order, score=True)
    bpc = sweep["val_bpc"]
    best = min(bpc, key=bpc.__getitem__)
    result["best_order"] = int(best)
    result["best_val_bpc"] = bpc[best]
    result["sweep_seconds"] = sweep["wall_seconds"]
    result["val_bpc_by_order"] = [{"order": int(n), "val_bpc": v} for n, v in bpc.items()]
    return result


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.ngram")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--child", type=Path)
    p.add_argument("--order", type=int, default=10)
    p.add_argument("--score", action="store_true")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    if args.child is not None:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        child(args.child, args.order, args.score, args.out)
    else:
        print(json.dumps(run(quick=args.quick), indent=2))


if __name__ == "__main__":
    main()
