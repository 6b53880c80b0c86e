"""One thread or two: charlm's training step on a quiet and on a contended host.

On a 2-core machine two torch threads need both cores; when anything else wants one of
them, every parallel region waits for the thread that was descheduled, and training can
run many times slower than on one thread. The contended case is made on purpose here: one
busy-looping process, started and stopped by this module, competes for a core while both
thread counts are timed, interleaved. Each OpenMP wait policy is measured in a child
process, since the policy is read once, when torch loads.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from bench.modes import Mode, mode
from bench.training import SMOKE_SHAPE, Shape, charlm_rate, matmul_peak
from charlm.config.runtime import default_threads
from charlm.config.schema import ModelConfig, TrainConfig

THREADS = (1, 2)
POLICIES = ("default", "PASSIVE")  # OMP_WAIT_POLICY: unset (spin, then sleep), or passive


# (timed steps, interleaved rounds, seconds of the matrix-multiply peak) by mode
SIZES: dict[Mode, tuple[int, int, float]] = {
    "full": (6, 2, 2.0),
    "quick": (2, 1, 2.0),
    "smoke": (1, 1, 0.05),
}


def default_shape(steps: int) -> Shape:
    """The shape `charlm train` uses with no options."""
    m, t = ModelConfig(), TrainConfig()
    return Shape(m.num_layers, m.hidden_size, t.bptt, t.batch_size, steps, embed=m.embed_size)


def shape_for(size: Mode) -> Shape:
    """The default shape, or in a smoke run the smallest one (the same paths, in seconds)."""
    return SMOKE_SHAPE if size == "smoke" else default_shape(SIZES[size][0])


@contextmanager
def busy_core() -> Iterator[None]:
    """A competing process spinning on one core for the duration of the block."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def measure(size: Mode) -> dict[str, Any]:
    """Training tokens/s at 1 and 2 threads, quiet and with one core busy."""
    shape, (_, reps, peak_seconds) = shape_for(size), SIZES[size]
    out: dict[str, Any] = {}
    for host in ("quiet", "contended"):
        rates: dict[int, list[float]] = {n: [] for n in THREADS}
        with busy_core() if host == "contended" else nullcontext():
            for rep in range(reps):
                for n in THREADS if rep % 2 == 0 else reversed(THREADS):
                    rates[n].append(charlm_rate(shape, shape.steps, n))
        med = {n: statistics.median(r) for n, r in rates.items()}
        out[host] = {f"{n}_thread_tok_s": round(v) for n, v in med.items()}
        out[host]["2_over_1"] = round(med[2] / med[1], 2)
    out["matmul_peak_gflops"] = {str(n): round(matmul_peak(n, peak_seconds), 1) for n in THREADS}
    return out


def measure_in_child(policy: str, size: Mode) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy != "default":
        env["OMP_WAIT_POLICY"] = policy
    cmd = [sys.executable, "-m", "bench.threads", size]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the {policy} child failed: {proc.stderr.strip()[-300:]}")
    return json.loads(proc.stdout)


def run(quick: bool = False, smoke: bool = False) -> dict[str, Any]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if (cores or 1) < 2:
        return {"skipped": f"{cores} core: nothing to compare"}
    size = mode(quick, smoke)
    rows = []
    # The short runs take one policy: each is a child of its own, on the same path.
    for policy in POLICIES if size == "full" else POLICIES[:1]:
        r = measure_in_child(policy, size)
        for host in ("quiet", "contended"):
            rows.append({"omp_wait_policy": policy, "host": host} | r[host])
    return {
        "config": shape_for(size).name,
        "cores": cores,
        "charlm_default_threads": default_threads(),
        "rows": rows,
        "note": "contended = one busy-looping process started by the suite, on top of "
        "whatever else the host runs; the load average is in the machine record",
    }


if __name__ == "__main__":  # the child process of measure_in_child
    sys.stdout.write(json.dumps(measure(sys.argv[1])))  # type: ignore[arg-type]
