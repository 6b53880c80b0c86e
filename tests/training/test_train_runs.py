"""A run's life on the command line (issue 12): finished runs, resume checks, --init-from,
a stop at once before anything was saved, and how metrics.jsonl counts epochs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from charlm.cli import app
from charlm.data.corpus import read_corpus
from charlm.rundir import checkpoint as ckpt_io
from charlm.training.events import StepEvent
from charlm.training.setup import new_trainer
from tests.helpers import micro_config

SMALL = ("--batch-size", "4", "--bptt", "16")  # batching the micro corpus can feed


def train(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["train", *args])


def _snapshot(run: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(run.iterdir())}


def _one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("charlm: error: "), stderr
    return lines[0]


@pytest.mark.parametrize(
    ("bounds", "reason", "hint"),
    [
        ((), "max_steps", "--max-steps 24"),
        (("--max-steps", "100", "--max-time", "0.001s"), "max_time", "--max-time +0.001s"),
    ],
)
def test_a_finished_run_says_so_and_is_left_untouched(
    trained_run: Path, bounds: tuple[str, ...], reason: str, hint: str
) -> None:
    before = _snapshot(trained_run)
    result = train("--resume", str(trained_run), *bounds)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"is finished ({reason} reached at step 12)" in result.stderr
    assert f"charlm train --resume {trained_run} {hint}" in result.stderr
    assert _snapshot(trained_run) == before


def test_resuming_is_announced(trained_run: Path) -> None:
    result = train("--resume", str(trained_run), "--max-steps", "14")
    assert result.exit_code == 0, result.output
    assert f"resuming {trained_run} at step 12 of 14 (epoch 1)" in result.stderr
    assert ckpt_io.load(trained_run / ckpt_io.LATEST).state["step"] == 14


def test_resuming_on_another_corpus_needs_a_flag(
    trained_run: Path, corpus_file: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.txt"
    other.write_text(corpus_file.read_text().replace("speak", "spoke"), encoding="utf-8")
    before = _snapshot(trained_run)
    result = train(str(other), "--resume", str(trained_run), "--max-steps", "14")
    assert result.exit_code == 1
    assert "--allow-corpus-change" in _one_error_line(result.stderr)
    assert _snapshot(trained_run) == before
    args = ("--resume", str(trained_run), "--max-steps", "14", "--allow-corpus-change")
    result = train(str(other), *args)
    assert result.exit_code == 0, result.output
    assert "the corpus changed since this run started" in result.stderr


def test_init_from_refuses_every_conflicting_option(
    trained_run: Path, corpus_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ft"
    args = ("--init-from", str(trained_run), "--out", str(out), "--max-steps", "2", *SMALL)
    clash = ("--hidden-size", "256", "--tokenizer", "word", "--model", "gru", "--no-tie-weights")
    result = train(str(corpus_file), *args, *clash)
    assert result.exit_code == 2  # options that cannot work with that checkpoint
    line = _one_error_line(result.stderr)
    for part in ("--hidden-size 256 (it has 16)", "--tokenizer word (it has char)",
                 "--model gru (it has lstm)", "without --init-from"):  # fmt: skip
        assert part in line
    assert "--tie-weights" not in line  # agrees with the checkpoint: accepted
    assert "preset" not in result.stderr
    result = train(str(corpus_file), *args, "--hidden-size", "16", "--no-tie-weights")
    assert result.exit_code == 0, result.output
    assert "preset" not in result.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["init_from"] == str((trained_run / ckpt_io.BEST).resolve())


def test_init_from_refuses_text_it_cannot_read_much_of(
    trained_run: Path, corpus_file: Path, tmp_path: Path
) -> None:
    foreign = tmp_path / "code.txt"
    lines = corpus_file.read_text().splitlines(keepends=True)
    foreign.write_text("".join("# " + line for line in lines), encoding="utf-8")  # ~4% '#'

    args = ("--init-from", str(trained_run), "--max-steps", "2", "--max-time", "none", *SMALL)
    result = train(str(foreign), *args, "--out", str(tmp_path / "a"))
    assert result.exit_code == 1
    line = _one_error_line(result.stderr)
    assert "not in the vocabulary" in line and "--unknown skip" in line
    assert not (tmp_path / "a").exists()
    result = train(str(foreign), *args, "--out", str(tmp_path / "b"), "--unknown", "skip")
    assert result.exit_code == 0, result.output
    assert "they are dropped" in result.stderr


def _start_slow_run(corpus: Path, out: Path) -> subprocess.Popen[bytes]:
    """A run whose first checkpoint is far away: a large model, no evaluation for ages."""
    args = ["--hidden-size", "1024", "--batch-size", "32", "--bptt", "128", "--eval-every",
            "100000", "--max-steps", "100000", "--max-time", "none", "--threads", "1"]  # fmt: skip
    cmd = [sys.executable, "-m", "charlm", "train", str(corpus), "--out", str(out), *args]
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    logs = out.parent
    with open(logs / "stdout.txt", "wb") as stdout, open(logs / "stderr.txt", "wb") as stderr:
        return subprocess.Popen(cmd, stdout=stdout, stderr=stderr, env=env)


@pytest.mark.parametrize("existed", [False, True])
def test_two_ctrl_c_before_any_checkpoint_say_nothing_was_saved(
    corpus_text: str, tmp_path: Path, existed: bool
) -> None:
    corpus = tmp_path / "verse.txt"
    corpus.write_text(corpus_text * 20, encoding="utf-8")
    out = tmp_path / "run"
    if existed:  # a directory the user made: never removed
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    proc = _start_slow_run(corpus, out)
    deadline = time.monotonic() + 120
    while not (out / "config.json").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    # Signals that arrive during one long torch call reach Python as one: press again until it
    # answers (the first asks to stop after the step, the next stops at once), then no more.
    log = tmp_path / "stderr.txt"
    while proc.poll() is None and time.monotonic() < deadline:
        if b"nothing was saved" in log.read_bytes() or b"interrupted" in log.read_bytes():
            break
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
    proc.wait(timeout=120)
    stdout, stderr = (tmp_path / "stdout.txt").read_bytes(), log.read_bytes()
    assert proc.returncode == 130, stderr.decode()
    assert stdout == b"" and b"Traceback" not in stderr
    assert b"nothing was saved" in stderr
    if existed:
        assert sorted(p.name for p in out.iterdir()) == ["config.json", "notes.txt"]
        assert b"removed" not in stderr
    else:
        assert not out.exists()
        assert f"removed {out}".encode() in stderr


def test_metrics_count_epochs_from_one_as_the_display_does(
    corpus_file: Path, tmp_path: Path
) -> None:
    config = micro_config(epochs=2, eval_every=5)
    trainer, _ = new_trainer(config, read_corpus(str(corpus_file)), tmp_path, seed=1)
    shown: dict[int, int] = {}  # step -> the epoch the live display shows (1-based)
    trainer.run(lambda e: shown.update({e.step: e.epoch + 1}) if isinstance(e, StepEvent) else 0)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {r["epoch"] for r in rows} == {1, 2}
    assert all(r["epoch"] == shown[r["step"]] for r in rows)
    assert rows[-1]["epoch"] == 2 and rows[-1]["step"] == trainer.state.step
