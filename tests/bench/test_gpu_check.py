"""`make gpu-check`'s plumbing, here on the CPU: the no-CUDA exit, the comparisons, the JSON."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench import gpu_check
from bench.gpu_check import compare_losses
from tests.helpers.texts import VERSE

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_without_cuda_it_says_so_in_one_line_and_exits_3(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    cmd = [sys.executable, "-m", "bench.gpu_check", "--out", str(out)]
    ran = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert ran.returncode == gpu_check.EXIT_NO_CUDA == 3
    assert ran.stdout == ""
    assert len(ran.stderr.splitlines()) == 1 and "no CUDA device" in ran.stderr
    assert not out.exists()


def test_losses_within_the_tolerance_track() -> None:
    result = compare_losses([2.0, 1.5], [2.02, 1.49], tolerance=0.02)
    assert result["passed"] and result["max_relative_gap"] == pytest.approx(0.01)


def test_one_evaluation_beyond_the_tolerance_fails() -> None:
    assert not compare_losses([2.0, 1.5], [2.0, 1.6], tolerance=0.05)["passed"]


@pytest.mark.parametrize(
    "candidate",
    [[2.0, math.nan], [2.0], []],
    ids=["not finite", "fewer evaluations", "none"],
)
def test_a_diverged_or_short_run_fails(candidate: list[float]) -> None:
    result = compare_losses([2.0, 1.5], candidate, tolerance=1.0)
    assert not result["passed"]


def test_dry_self_check_on_the_cpu_writes_one_json(tmp_path: Path, capsys) -> None:
    corpus, out = tmp_path / "c.txt", tmp_path / "results" / "gpu.json"
    corpus.write_text(VERSE * 12)
    code = gpu_check.main(["--device", "cpu", "--dry", "--corpus", str(corpus), "--out", str(out)])
    err = capsys.readouterr()
    assert code == 0, out.read_text() if out.exists() else err.err
    assert err.out == "" and str(out) in err.err.splitlines()[-1]
    figures = json.loads(out.read_text())
    assert figures["passed"] and figures["device"] == "cpu" and figures["dry"]
    # The same seed on the same device must give the same losses, bit for bit.
    track = figures["tracking"]
    assert track["off"]["max_relative_gap"] == 0.0
    assert (
        track["off"]["val_losses"] == track["cpu_val_losses"] and len(track["cpu_val_losses"]) == 2
    )
    assert "bf16" not in track  # no AMP on the CPU
    assert figures["speed"]["steps"] == gpu_check.DRY.speed_steps
    assert figures["evaluate"]["relative_gap"] == 0.0
    assert figures["sampling"]["one_stream_chars_per_s"] > 0


def test_a_failing_check_fails_the_run_and_still_writes_figures(tmp_path: Path) -> None:
    corpus, out = tmp_path / "c.txt", tmp_path / "gpu.json"
    corpus.write_text("too short to train on\n")
    code = gpu_check.main(["--device", "cpu", "--dry", "--corpus", str(corpus), "--out", str(out)])
    figures = json.loads(out.read_text())
    assert code == 1 and not figures["passed"]
    assert not figures["tracking"]["passed"] and "charlm: error:" in figures["tracking"]["stderr"]
