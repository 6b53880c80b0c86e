"""The run directory's logs: metrics.jsonl rows, samples.txt, config.json."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from charlm.config.schema import RunConfig
from charlm.rundir.atomic import write_atomic
from charlm.rundir.progress import TrainState

METRICS, SAMPLES = "metrics.jsonl", "samples.txt"
# Each sample in samples.txt starts with this line; recovery finds the samples by it.
SAMPLE_HEADER = re.compile(r"^===== step (\d+), val bpc [^\n]* =====$", re.MULTILINE)


def sample_header(step: int, bpc: float, how: str) -> str:
    return f"===== step {step}, val bpc {bpc:.3f}, {how} ====="


class Meter:
    """Train loss and throughput: tokens/s since the last evaluation, and the loss over the
    steps since the last metrics row (the logging interval), which ``take_loss`` hands out."""

    def __init__(self) -> None:
        self.t0, self.tokens, self.loss_sum, self.loss_n = time.monotonic(), 0, 0.0, 0
        self.t1: float | None = None

    def add(self, tokens: int, loss: float | None) -> None:
        self.tokens += tokens
        if loss is not None:
            self.loss_sum, self.loss_n = self.loss_sum + loss, self.loss_n + 1

    def freeze(self) -> None:
        """Stop the clock (before evaluating), so tokens/s measures training alone."""
        self.t1 = time.monotonic()

    def rate(self) -> float:
        end = self.t1 if self.t1 is not None else time.monotonic()
        return self.tokens / max(end - self.t0, 1e-9)

    def take_loss(self) -> float | None:
        """The mean loss of the steps since the last call (None if none), and start anew.

        A running mean since the last evaluation fell smoothly through the interval and then
        dropped at the evaluation: a false cliff in every plot of the run."""
        mean = self.loss_sum / self.loss_n if self.loss_n else None
        self.loss_sum, self.loss_n = 0.0, 0
        return mean


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


class RunLog:
    """Appends to a run directory's logs; a rank other than 0 gets a disabled one."""

    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.run_dir, self.enabled = run_dir, enabled

    def row(self, state: TrainState, meter: Meter, **extra: Any) -> None:
        if not self.enabled:
            return
        row = {
            "step": state.step,
            "epoch": state.epoch_number,
            "tokens_seen": state.tokens_seen,
            "elapsed": round(state.elapsed, 2),
            "tokens_per_s": round(meter.rate(), 1),
        }
        if "val_loss" not in extra:  # train_loss: the mean over the steps since the last row
            row["train_loss"] = meter.take_loss()
        append_jsonl(self.run_dir / METRICS, row | extra)

    def sample(self, step: int, bpc: float, how: str, text: str) -> None:
        """``how`` names the sampling settings, so `charlm sample` can repeat the text."""
        if not (self.enabled and text):
            return
        with open(self.run_dir / SAMPLES, "a", encoding="utf-8") as f:
            f.write(f"{sample_header(step, bpc, how)}\n{text}\n\n")

    def config(self, config: RunConfig, state: TrainState) -> None:
        if not self.enabled:
            return
        doc = {**config.to_dict(), "seed": state.seed, "corpus": state.corpus}
        if state.init_from:
            doc["init_from"] = state.init_from
        write_atomic(self.run_dir / "config.json", (json.dumps(doc, indent=2) + "\n").encode())
