"""A step bound makes a run repeatable under a preset's clock; the schedule's bound is named."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from charlm.cli import app
from charlm.config.presets import PRESETS
from charlm.rundir import checkpoint as ckpt_io

runner = CliRunner()
TINY_STEPS = ["--preset", "tiny", "--max-steps", "4", "--seed", "7", "--threads", "1"]
TINY_CLOCK = PRESETS["tiny"]["train"]["max_time"]
QUICK = ["--sample-length", "0", "--val-frac", "0.2"]


def _train(corpus: Path, out: Path, *args: str):
    result = runner.invoke(app, ["train", str(corpus), "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    return result


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return ckpt_io.load(run / ckpt_io.LATEST).model


def test_a_step_bound_under_a_timed_preset_ignores_the_clock(
    corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same seed, same weights, even when the wall clock races past tiny's 30 seconds."""
    first = _train(corpus_file, tmp_path / "a", *TINY_STEPS, *QUICK)
    fake_now = itertools.count(start=1000.0, step=11.0)  # 11 s pass between any two readings
    monkeypatch.setattr(time, "monotonic", lambda: next(fake_now))
    second = _train(corpus_file, tmp_path / "b", *TINY_STEPS, *QUICK)
    for result in (first, second):
        assert "stopped (max_steps) at step 4" in result.stderr
        assert "the schedule follows --max-steps 4" in result.stderr
        assert (
            f"--max-steps replaces the preset 'tiny' time limit of {TINY_CLOCK:g}s" in result.stderr
        )
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_an_explicit_clock_is_kept_and_said_to_shape_the_schedule(
    corpus_file: Path, tmp_path: Path
) -> None:
    result = _train(corpus_file, tmp_path / "run", *TINY_STEPS, "--max-time", "1h", "--dry-run")
    assert json.loads(result.stdout)["config"]["train"]["max_time"] == 3600.0
    assert "replaces" not in result.stderr


@pytest.mark.parametrize("zero", ["0", "0s"])
def test_max_time_zero_is_refused_in_one_line(corpus_file: Path, zero: str) -> None:
    result = runner.invoke(app, ["train", str(corpus_file), "--max-time", zero, "--dry-run"])
    assert result.exit_code != 0 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines == [f"charlm: error: --max-time {zero} is no time at all: write --max-time none "
                     "for no time limit"]  # fmt: skip


def test_preset_notes_quote_what_the_user_typed(corpus_file: Path) -> None:
    result = runner.invoke(
        app, ["train", str(corpus_file), "--preset", "tiny", "--max-time", "none", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "--max-time none overrides preset 'tiny'" in result.stderr
    assert "None" not in result.stderr


def test_resume_keeps_the_settings_and_says_what_it_ignores(
    corpus_file: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    _train(corpus_file, run, *TINY_STEPS, *QUICK)
    result = runner.invoke(
        app, ["train", "--resume", str(run), "--max-steps", "6", "--lr", "0.5", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    train = json.loads(result.stdout)["config"]["train"]
    assert train["max_steps"] == 6 and train["lr"] != 0.5
    assert "--lr ignored when resuming: the run keeps its own settings" in result.stderr


def test_max_time_bounds_the_whole_run_and_plus_adds_to_it_on_resume(
    corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One rule for every bound: a total for the run, resumes included; `+DURATION` on a
    resume is that much more than the run has trained. Each clock reading is 1 s apart."""
    fake_now = itertools.count(start=1000.0, step=1.0)
    monkeypatch.setattr(time, "monotonic", lambda: next(fake_now))
    run = tmp_path / "run"
    _train(
        corpus_file, run, "--preset", "tiny", "--max-time", "20s", "--eval-every", "1000", *QUICK
    )
    first = ckpt_io.load(run / ckpt_io.LATEST).state["elapsed"]
    assert 20 <= first < 30
    again = runner.invoke(app, ["train", "--resume", str(run), "--max-time", "+20s"])
    assert again.exit_code == 0, again.output
    assert "--max-time" in again.stderr and "of --max-time" in again.stderr
    total = ckpt_io.load(run / ckpt_io.LATEST)
    assert total.config.train.max_time == pytest.approx(first + 20)
    assert first + 20 <= total.state["elapsed"] < first + 30  # 20 s more, not what was left
    done = runner.invoke(app, ["train", "--resume", str(run)])
    assert "--max-time +" in done.stderr  # how to go on, in the same terms
