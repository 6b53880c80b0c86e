"""`make gpu-check` (`python -m bench.gpu_check`): the CUDA paths the CPU machines never run.

One run, meant to take under 5 minutes on one modern GPU:

1. the CUDA-marked tests (`pytest -m cuda`, in a child process);
2. precision tracking: a short training run on CUDA in fp32, bf16 and fp16 (loss-scaled)
   against the same run on the CPU with the same seed; the validation loss at every
   evaluation must stay within a tolerance of the CPU's (``TOLERANCE`` says why);
3. the large preset timed for 200 steps;
4. sampling (one stream, and 64 streams) and evaluation on CUDA, from that run's checkpoint,
   the evaluation checked against the same checkpoint scored on the CPU.

Every figure goes into one JSON file (``--out``; its path is printed on stderr). Without
CUDA it says so in one line on stderr and exits 3. Commands run through charlm's own CLI
(in this process), so the check exercises what a user runs. ``--device cpu --dry`` runs
the same functions on the CPU at micro sizes (no pytest, no AMP): the self-check its test
uses. Nothing in charlm imports this module.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import torch

from bench import report

ROOT = Path(__file__).resolve().parent.parent
EXIT_NO_CUDA = 3
SEED = 1
# The largest relative gap allowed between a CUDA run's validation loss and the CPU run's, at
# every evaluation. Both runs start from the same weights (built on the CPU, then moved) and
# see the same batches, without dropout; only arithmetic differs. fp32 on CUDA is still not
# bit-identical (cuDNN sums in another order, and on Ampere and later may use TF32, 10
# mantissa bits), and training amplifies small differences; bf16 (8 bits) and fp16 (11, loss-
# scaled) round harder. The scale: another seed on the CPU moved this run's validation loss
# by up to 7.5% (measured 2026-11-29, `cpu_seed_gap` in the JSON records it each time). A
# precision must move it less than a new seed does: 2% for fp32, 5% for bf16 and fp16. A
# broken path (a wrong cast, unscaled fp16 gradients, every step skipped) moves it by more.
TOLERANCE = {"off": 0.02, "bf16": 0.05, "fp16": 0.05}
# The CPU must agree with CUDA on one checkpoint's score far more closely: one forward
# pass, nothing compounding, rounding averaged over thousands of tokens.
EVAL_TOLERANCE = 0.005


@dataclass(frozen=True)
class Plan:
    """The sizes of one check run: full on a GPU, micro for the CPU self-check."""

    track_args: tuple[str, ...]  # the tracking run (CPU and each CUDA precision)
    speed_args: tuple[str, ...]  # the timed run, whose checkpoint is sampled and scored
    speed_steps: int
    one_stream: tuple[int, int]  # two lengths: the rate is their difference over time's
    many_streams: tuple[int, int]
    streams: int
    eval_chars: int


FULL = Plan(
    # Past the first plateau by the first evaluation (2.85, 2.57, 2.34 nats on the CPU): at 150
    # steps a 1x256 run was still on it, where two seeds differ by 11%.
    track_args=("--layers", "1", "--hidden-size", "128", "--embed-size", "32",
                "--batch-size", "32", "--bptt", "64", "--lr", "1e-2", "--warmup-steps", "20",
                "--schedule", "constant", "--max-steps", "300", "--eval-every", "100"),
    speed_args=("--preset", "large"),
    speed_steps=200,
    one_stream=(500, 2500),
    many_streams=(100, 600),
    streams=64,
    eval_chars=20_000,
)  # fmt: skip
DRY = Plan(
    track_args=("--layers", "1", "--hidden-size", "16", "--embed-size", "8",
                "--batch-size", "4", "--bptt", "16", "--max-steps", "12", "--eval-every", "6"),
    speed_args=("--preset", "tiny", "--batch-size", "4", "--bptt", "16"),
    speed_steps=4,
    one_stream=(20, 60),
    many_streams=(10, 30),
    streams=4,
    eval_chars=2_000,
)  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.gpu_check", description=__doc__.split("\n")[0]
    )
    p.add_argument("--out", type=Path, default=report.RESULTS / "gpu_check.json")
    p.add_argument(
        "--corpus",
        type=Path,
        help="text to train on [default: corpora/shakespeare.txt, else tiny-shakespeare]",
    )
    p.add_argument("--device", default="cuda", help=argparse.SUPPRESS)  # cpu: self-check only
    p.add_argument("--dry", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        say("no CUDA device on this machine: run `make gpu-check` on one with an NVIDIA GPU")
        return EXIT_NO_CUDA
    corpus = args.corpus or default_corpus()
    if corpus is None or not corpus.is_file():
        say("no corpus: pass --corpus FILE, or run `make demo` (it writes corpora/shakespeare.txt)")
        return 2
    figures = run_checks(args.device, DRY if args.dry else FULL, corpus)
    write_json(figures, args.out)
    verdict = "all checks passed" if figures["passed"] else "some checks FAILED"
    say(f"{verdict}; figures in {args.out}")
    return 0 if figures["passed"] else 1


def say(message: str) -> None:
    print(f"gpu-check: {message}", file=sys.stderr, flush=True)


def default_corpus() -> Path | None:
    for path in (ROOT / "corpora/shakespeare.txt",
                 Path("/work/shared/corpora/tinyshakespeare/input.txt")):  # fmt: skip
        if path.is_file():
            return path
    return None


def run_checks(device: str, plan: Plan, corpus: Path) -> dict[str, Any]:
    t0 = time.monotonic()
    figures: dict[str, Any] = {
        "device": device_name(device),
        "dry": plan is DRY,
        "corpus": str(corpus),
    }
    figures["machine"] = report.machine() | {"cuda": torch.version.cuda}
    with TemporaryDirectory(prefix="charlm-gpu-check-") as tmp:
        work = Path(tmp)
        say("CUDA-marked tests...")
        figures["cuda_tests"] = {"skipped": "dry run"} if plan is DRY else cuda_tests()
        say("precision tracking against the CPU...")
        figures["tracking"] = tracking(device, plan, corpus, work)
        say(f"timing {' '.join(plan.speed_args)} for {plan.speed_steps} steps...")
        figures["speed"] = speed(device, plan, corpus, work / "speed")
        say("sampling...")
        figures["sampling"] = sampling(device, plan, work / "speed")
        say("evaluating...")
        figures["evaluate"] = evaluate(device, plan, corpus, work)
    figures["seconds"] = round(time.monotonic() - t0, 1)
    figures["passed"] = all(v.get("passed", True) for v in figures.values() if isinstance(v, dict))
    return figures


def device_name(device: str) -> str:
    return torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"


def write_json(figures: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")
    return path


# ---- running charlm ----------------------------------------------------------------------
@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str
    seconds: float


def charlm(*args: str) -> Ran:
    """``charlm ARGS`` through the CLI, in this process (Python and torch start once).

    An exception escaping the CLI (a CUDA error, say) fails that check, with its traceback
    kept in the JSON, and the other checks still run.
    """
    from typer.testing import CliRunner

    from charlm.cli import app

    t0 = time.perf_counter()
    result = CliRunner().invoke(app, list(args))
    seconds = time.perf_counter() - t0
    err = result.stderr.strip()
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        err += "\n" + "".join(traceback.format_exception(result.exception))
    return Ran(result.exit_code, result.stdout, err, seconds)


def failed(ran: Ran) -> dict[str, Any]:
    return {"passed": False, "exit_code": ran.code, "stderr": ran.stderr[-2000:]}


def train(corpus: Path, out: Path, device: str, *args: str) -> Ran:
    fixed = ("--force", "--seed", str(SEED), "--sample-length", "0", "--max-time", "none", "-q")
    return charlm("train", str(corpus), "--out", str(out), "--device", device, *fixed, *args)


def metrics(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def val_losses(run_dir: Path) -> list[float]:
    return [row["val_loss"] for row in metrics(run_dir) if "val_loss" in row]


# ---- the checks --------------------------------------------------------------------------
def cuda_tests() -> dict[str, Any]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", "tests"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    # Exit 5 (nothing selected) fails too: the CUDA tests exist and must run here.
    return {"passed": out.returncode == 0, "exit_code": out.returncode,
            "summary": lines[-1] if lines else out.stderr.strip()[-500:]}  # fmt: skip


def compare_losses(
    reference: list[float], candidate: list[float], tolerance: float
) -> dict[str, Any]:
    """How far ``candidate``'s losses are from ``reference``'s, evaluation by evaluation."""
    gaps = [abs(c - r) / r for r, c in zip(reference, candidate, strict=False)]
    finite = all(math.isfinite(x) for x in [*reference, *candidate])
    worst = max(gaps) if gaps and finite else math.inf
    return {
        "val_losses": [round(x, 5) for x in candidate],
        "max_relative_gap": round(worst, 5) if math.isfinite(worst) else None,
        "tolerance": tolerance,
        "passed": bool(reference) and len(reference) == len(candidate) and worst <= tolerance,
    }


def tracking(device: str, plan: Plan, corpus: Path, work: Path) -> dict[str, Any]:
    ran = train(corpus, work / "cpu", "cpu", *plan.track_args)
    if ran.code:
        return failed(ran)
    reference = val_losses(work / "cpu")
    other_seed = train(corpus, work / "cpu-seed", "cpu", *plan.track_args, "--seed", str(SEED + 1))
    spread = (
        compare_losses(reference, val_losses(work / "cpu-seed"), 0.0) if not other_seed.code else {}
    )
    result: dict[str, Any] = {
        "cpu_val_losses": [round(x, 5) for x in reference],
        "cpu_seed_gap": spread.get("max_relative_gap"),  # for scale: another seed, same device
    }
    # AMP exists only on CUDA: the CPU self-check compares full precision alone.
    for amp in TOLERANCE if device.startswith("cuda") else ("off",):
        ran = train(corpus, work / amp, device, *plan.track_args, "--amp", amp)
        result[amp] = failed(ran) if ran.code else compare_losses(
            reference, val_losses(work / amp), TOLERANCE[amp]
        )  # fmt: skip
    result["passed"] = all(result[a]["passed"] for a in TOLERANCE if a in result)
    return result


def speed(device: str, plan: Plan, corpus: Path, run_dir: Path) -> dict[str, Any]:
    steps = str(plan.speed_steps)
    ran = train(
        corpus, run_dir, device, *plan.speed_args, "--max-steps", steps, "--eval-every", steps
    )
    if ran.code:
        return failed(ran)
    last = [
        row for row in metrics(run_dir) if row["step"] == plan.speed_steps and "val_loss" not in row
    ]
    row = last[-1] if last else metrics(run_dir)[-1]
    return {
        "passed": True,
        "steps": plan.speed_steps,
        "seconds_training": row["elapsed"],  # from the first step, evaluation excluded
        "tokens_per_s": row["tokens_per_s"],
        "train_loss": row["train_loss"],
        "seconds_with_set_up": round(ran.seconds, 1),
    }


def sampling(device: str, plan: Plan, run_dir: Path) -> dict[str, Any]:
    result: dict[str, Any] = {}
    cases = (("one_stream", 1, plan.one_stream),
             (f"{plan.streams}_streams", plan.streams, plan.many_streams))  # fmt: skip
    for name, streams, lengths in cases:
        runs = [sample(run_dir, device, streams, n) for n in lengths]
        for ran, n in zip(runs, lengths, strict=True):
            if ran.code or len(ran.stdout) < streams * n:  # fewer characters than asked for
                return {name: failed(ran) | {"chars_out": len(ran.stdout)}, "passed": False}
        # Loading the checkpoint costs the same in both runs: the difference is sampling alone.
        extra = streams * (lengths[1] - lengths[0])
        result[f"{name}_chars_per_s"] = round(extra / max(runs[1].seconds - runs[0].seconds, 1e-9))
    return result | {"passed": True}


def sample(run_dir: Path, device: str, streams: int, length: int) -> Ran:
    return charlm("sample", str(run_dir), "--device", device, "--length", str(length),
                  "--num-samples", str(streams), "--seed", str(SEED), "-q")  # fmt: skip


def evaluate(device: str, plan: Plan, corpus: Path, work: Path) -> dict[str, Any]:
    text = work / "eval.txt"
    text.write_text(corpus.read_text(encoding="utf-8")[-plan.eval_chars :], encoding="utf-8")
    scores = {}
    for where in (device, "cpu"):
        ran = charlm("evaluate", str(work / "speed"), str(text), "--device", where, "--json", "-q")
        if ran.code:
            return failed(ran)
        scores[where] = (json.loads(ran.stdout)["total"]["bits_per_char"], ran.seconds)
    (bpc, seconds), (cpu_bpc, _) = scores[device], scores["cpu"]
    gap = abs(bpc - cpu_bpc) / cpu_bpc
    return {
        "bits_per_char": round(bpc, 5),
        "cpu_bits_per_char": round(cpu_bpc, 5),
        "relative_gap": round(gap, 6),
        "tolerance": EVAL_TOLERANCE,
        "chars_per_s_with_loading": round(plan.eval_chars / seconds),
        "passed": gap <= EVAL_TOLERANCE,
    }


if __name__ == "__main__":
    sys.exit(main())
