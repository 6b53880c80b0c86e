"""Real ranks on this machine: torchrun over gloo and loopback, and how to compare their runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from charlm.rundir import checkpoint as ckpt_io

REPO = Path(__file__).resolve().parents[2]
# Dropout 0, a constant schedule and float32 (bf16 rounds a batch of 8 and one of 16
# differently): runs of different lengths and rank counts must agree.
ARGS = [
    "--hidden-size", "16", "--embed-size", "8", "--layers", "1", "--bptt", "16", "--amp", "off",
    "--dropout", "0", "--schedule", "constant", "--warmup-steps", "2", "--eval-every", "4",
    "--sample-length", "0", "--seed", "5", "--max-time", "none", "--val-frac", "0.1", "--quiet",
]  # fmt: skip


def rank_env() -> dict[str, str]:
    return os.environ | {
        "OMP_NUM_THREADS": "1",
        "GLOO_SOCKET_IFNAME": "lo",  # keep gloo's traffic on the loopback interface
        "PYTHONPATH": str(REPO),
    }


def start_torchrun(*args: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", *args]
    return subprocess.Popen(
        cmd, env=rank_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def start_ranks(nproc: int, *args: str) -> subprocess.Popen[str]:
    """``charlm train ARGS`` as nproc ranks on this machine."""
    return start_torchrun(
        "--standalone", f"--nproc-per-node={nproc}", "-m", "charlm", "train", *args
    )


def fresh_args(corpus: Path, out: Path, batch_size: int, max_steps: int) -> list[str]:
    """``charlm train`` arguments for a new micro run."""
    return [str(corpus), "--out", str(out), "--batch-size", str(batch_size),
            "--max-steps", str(max_steps), *ARGS]  # fmt: skip


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    assert out == ""  # stdout carries data only, and training writes none
    return err


def metric_rows(run: Path) -> dict[tuple[int, bool], dict]:
    """A run's metrics.jsonl rows by (step, whether the row holds a validation loss)."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {(r["step"], "val_loss" in r): r for r in rows}


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:  # the sum over ranks runs in another order: equal up to rounding
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=1e-5)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return ckpt_io.load(run / ckpt_io.LATEST).model
