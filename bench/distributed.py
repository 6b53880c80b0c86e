"""Data-parallel training speed: 1 process against 2 (torchrun, gloo) on this machine.

Every variant trains the same global batch with charlm's own step (``Trainer.train_step`` and
the per-step all-reduce of loss and stop flags), so the tokens per step are equal and
tokens/s compare directly. Variants: one process on 1 thread, one process on 2 threads,
two processes on 1 thread each (both cores either way).

The communication share of a two-process step is measured in the same processes, in
interleaved blocks: full steps against steps under DDP's ``no_sync()`` with the stop-flag
all-reduce left out, which do the same arithmetic under the same contention but exchange
nothing. Run as ``python -m bench.distributed [--quick]``; the ranks are this module run
again with ``--worker``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from bench.modes import mode
from bench.training import SMOKE_SHAPE, Shape, synthetic_text
from charlm.config.schema import DataConfig, ModelConfig, RunConfig, TrainConfig
from charlm.data.corpus import Corpus
from charlm.training import distributed
from charlm.training.setup import new_trainer

SHAPES = (
    Shape(2, 128, 50, 50, steps=60),  # char-rnn's default
    Shape(2, 256, 100, 32, steps=16),
)
WARM, BLOCKS = 3, 4  # untimed steps; timed blocks per mode, interleaved
VARIANTS = ((1, 1), (1, 2), (2, 1))  # (processes, threads each)
SMOKE_VARIANTS = ((2, 1),)  # the data-parallel path; one process takes a subset of it


def run(quick: bool = False, smoke: bool = False) -> dict[str, Any]:
    size = mode(quick, smoke)
    shapes = {"full": SHAPES, "quick": SHAPES[:1], "smoke": (SMOKE_SHAPE,)}[size]
    rows = []
    for shape in shapes:
        steps = max(8, shape.steps // 3) if size == "quick" else shape.steps
        for nproc, threads in SMOKE_VARIANTS if smoke else VARIANTS:
            result = _launch(shape, steps, nproc, threads)
            rows.append({"config": shape.name, "processes": nproc, "threads_each": threads}
                        | result)  # fmt: skip
    base = {r["config"]: r["tok_s"] for r in rows if r["processes"] == 1 and r["threads_each"] == 1}
    for r in rows:
        if r["config"] in base:  # not in a smoke run
            r["speedup_vs_1x1"] = round(r["tok_s"] / base[r["config"]], 2)
    return {
        "rows": rows,
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "note": "2 cores shared with other work: figures are noisy; comm share is "
        "1 - (no-sync step time / full step time) in the same two processes",
    }


def _launch(shape: Shape, steps: int, nproc: int, threads: int) -> dict[str, Any]:
    dims = json.dumps([shape.layers, shape.hidden, shape.bptt, shape.batch])
    args = ["-m", "bench.distributed", "--worker", "--steps", str(steps), "--shape", dims]
    if nproc > 1:
        args = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *args]
    env = os.environ | {"OMP_NUM_THREADS": str(threads), "GLOO_SOCKET_IFNAME": "lo"}
    out = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"worker failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _worker(shape: Shape, steps: int) -> dict[str, Any] | None:
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    world = distributed.world_from_env()
    model = ModelConfig(embed_size=shape.embed, hidden_size=shape.hidden, num_layers=shape.layers)
    config = RunConfig(
        model=model,
        data=DataConfig(val_frac=0.01),
        train=TrainConfig(batch_size=shape.batch // world, bptt=shape.bptt, max_time=None,
                          eval_every=10**9, sample_length=0, device="cpu"),
    )  # fmt: skip
    n = shape.batch * shape.bptt * (WARM + 2 * BLOCKS * steps + 2)
    with tempfile.TemporaryDirectory() as tmp:
        trainer, _ = new_trainer(config, Corpus(synthetic_text(int(n * 1.02)), "-", "x"), Path(tmp))
    windows = trainer.batcher.windows()
    total = len(trainer.batcher)

    def block(k: int, sync: bool) -> float:
        quiet = contextlib.nullcontext() if sync or world == 1 else trainer.net.no_sync()
        distributed.barrier()
        t0 = time.perf_counter()
        with quiet:
            for _ in range(k):
                _, x, y = next(windows)
                loss, _, _ = trainer.train_step(x, y, total)
                if sync:
                    trainer.agree(loss, total)
        return (time.perf_counter() - t0) / k

    block(WARM, True)
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(BLOCKS):
        for sync in times if world > 1 else (True,):
            times[sync].append(block(steps, sync))
    main = distributed.rank() == 0
    distributed.teardown()
    if not main:
        return None
    full = statistics.median(times[True])
    local = statistics.median(times[False] or times[True])
    return {
        "tok_s": round(shape.batch * shape.bptt / full),
        "step_ms": round(full * 1e3, 2),
        "comm_share": round(max(0.0, 1 - local / full), 3),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.distributed")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--shape", help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        layers, hidden, bptt, batch = json.loads(args.shape)
        result = _worker(Shape(layers, hidden, bptt, batch, steps=args.steps), args.steps)
        if result is not None:
            print(json.dumps(result), flush=True)
        return
    print(json.dumps(run(args.quick), indent=2))


if __name__ == "__main__":
    main()
