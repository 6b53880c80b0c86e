"""Which cell, on the same budget: every `--model` on tiny-shakespeare, parameters matched.

Each row is the real command line (a subprocess): `charlm train` with nanoGPT's split
(--val-frac 0.1: first 90% train, last 10% validation, scored whole at every evaluation), the
former default preset (1x512, no dropout, lr 1.2e-2) but for --model and --hidden-size,
--threads 1, --seed 1, float32 (--amp off: bf16 would speed only the cells torch fuses) and
the same --max-time (10 minutes), once without and once with the state penalty (--quick: every
model for 5 seconds, at a 1x128 LSTM's parameter count, without the penalty). The hidden size
of each model is solved so that its parameter count, counted by building the model, is within
10% of that 1x512 LSTM's. The figure is the run's best
validation loss in nats per character, and the speed its training alone ran at.

A row takes 10 minutes, so the section can be run in pieces: finished rows are kept in
bench/results/cells.json (the --quick rows apart from the 10-minute ones) and a run does
only the rows it does not hold. Environment variables choose what runs:
  CHARLM_BENCH_CELLS=lstm,gru  only these models (default: every registered model)
  CHARLM_BENCH_ROWS=lstm,gru+penalty  only these rows, by name (a model, or model+penalty)
  CHARLM_BENCH_JOBS=2          rows run concurrently (default 1; each row uses one thread)
  CHARLM_BENCH_FRESH=1         run the chosen rows again even when held
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bench import report
from bench.modes import Mode, mode
from charlm.config.schema import ModelConfig
from charlm.models import registry
from charlm.models.lm import RNNLM, count_parameters

CORPUS = (
    Path(__file__).resolve().parents[2] / "shared" / "corpora" / "tinyshakespeare" / "input.txt"
)
BUDGET: dict[Mode, str] = {"full": "10m", "quick": "5s", "smoke": "1s"}  # a row's --max-time
ROWS_KEY: dict[Mode, str] = {"full": "rows", "quick": "quick_rows", "smoke": "smoke_rows"}
# The reference LSTM's width in the short runs: --quick runs every cell, without the penalty,
# at 128 units (at 512 the rows alone outran the quick suite's promise); smoke runs one row.
QUICK_HIDDEN, SMOKE_HIDDEN = 128, 16
MATCH = 0.10  # a model's parameter count within 10% of the default preset's
# The state penalty of the "with" rows, chosen by a short sweep (docs/records/cells.md).
PENALTY = ("norm", 0.1)
PROBE_SIZES = (8, 16, 32)  # hidden sizes the parameter count is fitted on

Runner = Callable[[dict[str, Any], str], dict[str, Any]]  # (row, --max-time) -> figures


def default_model(vocab_size: int) -> ModelConfig:
    """The table's reference for a character vocabulary of ``vocab_size``: the 1x512 LSTM
    without dropout that was the default preset when the table was measured."""
    return ModelConfig(hidden_size=512, dropout=0.0, vocab_size=vocab_size)


def counts(base: ModelConfig, model: str, hidden_size: int) -> tuple[int, int]:
    """(trained, total) parameters of ``base`` as ``model`` with ``hidden_size`` units, built."""
    net = RNNLM(dataclasses.replace(base, model=model, hidden_size=hidden_size))
    return count_parameters(net, trained_only=True), count_parameters(net)


def matched_hidden_size(base: ModelConfig, model: str, target: int) -> int:
    """The hidden size whose total parameter count is nearest ``target``.

    A recurrent model's count is a quadratic in the hidden size (matrices H x H, H x E, H x V,
    biases): fitted exactly on three small built models, solved, then checked by building
    the solution (building large ones to search would be slow: an echo-state network's
    reservoir needs its eigenvalues).
    """
    totals = [counts(base, model, h)[1] for h in PROBE_SIZES]
    a, b, c = np.polyfit(PROBE_SIZES, totals, 2)
    # A count linear in H (the Jordan network: no H x H matrix) fits a as noise, not 0.
    quadratic = abs(a) > 1e-9 * abs(b)
    roots = np.roots([a, b, c - target]) if quadratic else np.array([(target - c) / b])
    hidden = max(1, round(max(r.real for r in roots)))
    total = counts(base, model, hidden)[1]
    if abs(total - target) > MATCH * target:
        raise RuntimeError(f"{model}: {total:,} parameters at {hidden} units, not {target:,}")
    return hidden


def plan(base: ModelConfig, models: list[str]) -> list[dict[str, Any]]:
    """One row per model and penalty setting: its name, hidden size and parameter counts."""
    target = count_parameters(RNNLM(base))
    rows = []
    for model in models:
        hidden = matched_hidden_size(base, model, target)
        trained, total = counts(base, model, hidden)
        sizes = {"hidden_size": hidden, "trained_params": trained, "total_params": total}
        rows.append({"row": model, "model": model, "state_penalty": 0.0} | sizes)
        # Only where every weight is trained: an ESN trains no recurrent weight for the
        # penalty to act on, and charlm refuses --state-penalty with it.
        if trained == total:
            rows.append(
                {"row": f"{model}+penalty", "model": model, "state_penalty": PENALTY[1]}
                | {"state_penalty_kind": PENALTY[0]}
                | sizes
            )
    return rows


def command(row: dict[str, Any], budget: str, out: Path) -> list[str]:
    cmd = [sys.executable, "-m", "charlm", "train", str(CORPUS), "--model", row["model"],
           "--hidden-size", str(row["hidden_size"]), "--val-frac", "0.1", "--threads", "1",
           "--max-time", budget, "--seed", "1", "--sample-length", "0", "--out", str(out),
           "--dropout", "0", "--lr", "0.012", "--amp", "off", "--quiet"]  # fmt: skip
    if row["state_penalty"]:
        cmd += ["--state-penalty", f"{row['state_penalty']:g}"]
        cmd += ["--state-penalty-kind", row["state_penalty_kind"]]
    return cmd


def train_row(row: dict[str, Any], budget: str) -> dict[str, Any]:
    """Train one row; its best validation loss, its training speed, the host's load."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        load = os.getloadavg()[0]
        proc = subprocess.run(command(row, budget, out), capture_output=True, text=True)
        if proc.returncode != 0:
            return {"error": (proc.stderr.strip().splitlines() or ["no message"])[-1]}
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return summary(rows) | {"load_start": round(load, 2), "load_end": round(os.getloadavg()[0], 2)}


def summary(metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of a run's metrics.jsonl rows: best evaluation, tokens/s while training."""
    evals = [r for r in metrics if "val_loss" in r]
    if not evals:
        return {"error": "the run ended before its first evaluation"}
    best = min(evals, key=lambda r: r["val_loss"])
    return {
        "val_nats_per_char": round(best["val_loss"], 4),
        "val_bits_per_char": round(best["val_bpc"], 4),
        "at_step": best["step"],
        "steps": metrics[-1]["step"],
        "tokens_per_s": round(training_rate(evals), 1),
    }


def training_rate(evals: list[dict[str, Any]]) -> float:
    """Tokens per second of training alone, over the whole run.

    Each evaluation row's rate covers the tokens since the one before, its clock stopped
    before scoring: the run's rate is their tokens over the sum of their times.
    """
    seen = [0] + [r["tokens_seen"] for r in evals]
    tokens = [b - a for a, b in itertools.pairwise(seen)]
    seconds = sum(n / r["tokens_per_s"] for n, r in zip(tokens, evals, strict=True) if n)
    return sum(tokens) / seconds if seconds else 0.0


def chosen_models() -> list[str]:
    names = [m.strip() for m in os.environ.get("CHARLM_BENCH_CELLS", "").split(",") if m.strip()]
    cells = registry.names()
    unknown = [m for m in names if m not in cells]
    if unknown:
        raise ValueError(f"CHARLM_BENCH_CELLS: unknown model(s) {', '.join(unknown)}: {cells}")
    return names or list(cells)


def chosen_row(name: str) -> bool:
    """Whether CHARLM_BENCH_ROWS (row names, comma-separated; unset: every row) names it."""
    names = {n.strip() for n in os.environ.get("CHARLM_BENCH_ROWS", "").split(",") if n.strip()}
    return not names or name in names


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def run(
    quick: bool = False,
    smoke: bool = False,
    results: Path = report.RESULTS,
    runner: Runner = train_row,
) -> dict[str, Any]:
    if not CORPUS.exists() and runner is train_row:
        return {"skipped": f"{CORPUS} is absent: the cells table needs tiny-shakespeare"}
    vocab = len(set(CORPUS.read_text(encoding="utf-8"))) if CORPUS.exists() else 65
    if smoke:  # one row, the longest command (a cell with the penalty), kept nowhere
        base = dataclasses.replace(default_model(vocab), hidden_size=SMOKE_HIDDEN)
        with tempfile.TemporaryDirectory() as tmp:
            return run_rows(plan(base, list(registry.names()[:1]))[-1:], "smoke", Path(tmp), runner)
    base = default_model(vocab)
    if quick:
        base = dataclasses.replace(base, hidden_size=QUICK_HIDDEN)
    models = chosen_models()
    rows = [r for r in plan(base, models) if chosen_row(r["row"])]
    if quick:
        rows = [r for r in rows if not r["state_penalty"]]
    held = run_rows(rows, mode(quick, smoke), results, runner)
    if "tdnn" in models and CORPUS.exists():
        held["ngram_beside_tdnn"] = ngram_beside(base.window)
        report.save(
            "cells", {k: v for k, v in held.items() if k not in ("corpus", "split")}, results
        )
    return held


def ngram_beside(window: int) -> dict[str, Any]:
    """The Kneser-Ney n-gram of the time-delay network's order (it reads ``window`` tokens, so
    order window + 1) on the table's split, as `charlm evaluate --baseline ngram:N` fits it:
    its validation nats per character, the row the tdnn's stands beside."""
    from charlm.config.schema import DataConfig, RunConfig
    from charlm.data.corpus import prepare, read_corpus
    from charlm.evaluation.ngram import count_ngrams

    prep = prepare(RunConfig(data=DataConfig(val_frac=0.1)), read_corpus(str(CORPUS)))
    order = window + 1
    counts = count_ngrams(prep.splits.train, prep.tokenizer.vocab_size, order)
    nats = -float(counts.model(order).log_probs(prep.splits.val).sum()) / prep.val_chars
    return {
        "order": order,
        "val_nats_per_char": round(nats, 4),
        "val_bits_per_char": round(float(nats / np.log(2)), 4),
    }


def run_rows(
    rows: list[dict[str, Any]], size: Mode, results: Path, runner: Runner
) -> dict[str, Any]:
    """Train the rows ``results``/cells.json does not hold yet, saving each as it ends."""
    held = load(results / "cells.json")
    key, budget = ROWS_KEY[size], BUDGET[size]
    done = {r["row"]: r for r in held.get(key, [])}
    fresh = os.environ.get("CHARLM_BENCH_FRESH") == "1"
    todo = [r for r in rows if fresh or r["row"] not in done]

    lock = threading.Lock()

    def one(row: dict[str, Any]) -> None:
        row = row | runner(row, budget) | {"max_time": budget}
        with lock:  # each finished row is written at once: kept if the section is stopped
            done[row["row"]] = row
            held[key] = [done[name] for name in sorted(done, key=_order)]
            report.save("cells", held, results)

    jobs = max(1, int(os.environ.get("CHARLM_BENCH_JOBS", "1")))
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(one, todo))
    return held | {"corpus": str(CORPUS), "split": "first 90% train, last 10% validation"}


def _order(name: str) -> tuple[int, str]:
    """Rows in the registry's order of the cells (without, then with the penalty)."""
    model, cells = name.split("+")[0], registry.names()
    return (cells.index(model) if model in cells else len(cells), name)
