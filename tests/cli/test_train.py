"""`charlm train` end to end with a micro model."""

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
from charlm.rundir import checkpoint as ckpt_io
from tests.helpers import MICRO_ARGS

runner = CliRunner()


def train(*args: str, input: str | bytes | None = None):
    return runner.invoke(app, ["train", *args], input=input)


def test_train_writes_a_run_and_keeps_stdout_empty(corpus_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = train(str(corpus_file), "--out", str(out), *MICRO_ARGS)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "seed 3" in result.stderr and "best val loss" in result.stderr
    assert {p.name for p in out.iterdir()} >= {
        "best.safetensors", "latest.safetensors", "config.json", "metrics.jsonl", "samples.txt"
    }  # fmt: skip
    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == 3 and config["model"]["hidden_size"] == 16
    ck = ckpt_io.load(out / "best.safetensors")
    assert ck.tokenizer["kind"] == "char" and ck.config.train.seed == 3


def test_quiet_prints_nothing(corpus_file: Path, tmp_path: Path) -> None:
    result = train(str(corpus_file), "--out", str(tmp_path / "r"), "--quiet", *MICRO_ARGS)
    assert result.exit_code == 0 and result.stdout == "" and result.stderr == ""


def test_seed_is_chosen_and_recorded_when_not_given(corpus_file: Path, tmp_path: Path) -> None:
    args = [a for a in MICRO_ARGS if a not in ("--seed", "3")]
    result = train(str(corpus_file), "--out", str(tmp_path / "r"), *args)
    assert result.exit_code == 0
    seed = json.loads((tmp_path / "r" / "config.json").read_text())["seed"]
    assert isinstance(seed, int) and f"seed {seed}" in result.stderr


def test_dry_run_prints_sizes_as_json(corpus_file: Path, tmp_path: Path) -> None:
    result = train(str(corpus_file), "--dry-run", "--out", str(tmp_path / "r"), *MICRO_ARGS)
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["vocab_size"] == len(set(corpus_file.read_text()))
    assert info["parameters"] > 0 and info["tokens_per_epoch"] > 0
    assert not (tmp_path / "r").exists()


def test_stdin_corpus(corpus_text: str, tmp_path: Path) -> None:
    result = train("-", "--out", str(tmp_path / "r"), *MICRO_ARGS, input=corpus_text)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "best.safetensors").exists()


def test_crlf_is_normalised(corpus_text: str, tmp_path: Path) -> None:
    path = tmp_path / "dos.txt"
    path.write_bytes(corpus_text.replace("\n", "\r\n").encode())
    result = train(str(path), "--dry-run", *MICRO_ARGS)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["vocab_size"] == len(set(corpus_text))


@pytest.mark.parametrize(
    ("setup", "extra", "message", "code"),
    [  # 1: the input cannot be used; 2: the options cannot work (the exit code table)
        (None, [], "no such file", 1),
        (b"abc\xff\xfedef" * 10, [], "byte offset 3", 1),
        (b"", [], "holds no text", 1),
        (b"tiny corpus\n", [], "fewer than one batch window", 1),
        (None, ["--model", "transformer"], "unknown --model 'transformer'", 2),
        (None, ["--max-time", "ten minutes"], "cannot read the duration", 2),
        (None, ["--val-frac", "1"], "--val-frac must be between 0 and 1", 2),
        (None, ["--hidden-size", "0"], "--hidden-size must be greater than 0", 2),
    ],
)
def test_bad_input_gets_one_line_and_its_exit_code(
    corpus_file: Path,
    tmp_path: Path,
    setup: bytes | None,
    extra: list[str],
    message: str,
    code: int,
) -> None:
    path = corpus_file
    if setup is not None:
        path = tmp_path / "bad.txt"
        path.write_bytes(setup)
    elif message == "no such file":
        path = tmp_path / "missing.txt"
    result = train(str(path), "--out", str(tmp_path / "r"), *MICRO_ARGS, *extra)
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("charlm: error:") and message in lines[0]
    assert "Traceback" not in result.output and not (tmp_path / "r").exists()


def test_an_existing_run_is_never_overwritten_silently(
    corpus_file: Path, trained_run: Path
) -> None:
    result = train(str(corpus_file), "--out", str(trained_run), *MICRO_ARGS)
    assert result.exit_code == 1 and "--resume" in result.stderr and "--force" in result.stderr
    assert train(str(corpus_file), "--out", str(trained_run), "--force", *MICRO_ARGS).exit_code == 0


def test_default_run_dirs_are_numbered(corpus_file: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert train(str(corpus_file), *MICRO_ARGS).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "verse-lstm", "verse-lstm-2"
    ]  # fmt: skip


def test_preset_then_explicit_options_win_and_say_so(corpus_file: Path) -> None:
    result = train(str(corpus_file), "--preset", "tiny", "--hidden-size", "24", "--dry-run")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["config"]["model"]["hidden_size"] == 24
    assert "--hidden-size 24 overrides preset 'tiny'" in result.stderr


def test_ctrl_c_saves_exits_130_and_resume_finishes(corpus_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = [a if a != "12" else "100000" for a in MICRO_ARGS]  # --max-steps: far away
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "charlm", "train", str(corpus_file), "--out", str(out), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 120
    while not (out / ckpt_io.BEST).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr.decode()
    assert stdout == b"" and b"Traceback" not in stderr
    step = ckpt_io.load(out / ckpt_io.LATEST).state["step"]
    assert step > 0
    result = train("--resume", str(out), "--max-steps", str(step + 5), "--quiet")
    assert result.exit_code == 0, result.output
    assert ckpt_io.load(out / ckpt_io.LATEST).state["step"] == step + 5


def test_resume_reads_a_named_corpus_with_the_runs_own_encoding(
    corpus_text: str, tmp_path: Path
) -> None:
    latin = tmp_path / "latin.txt"
    latin.write_bytes(corpus_text.replace("e", "\u00e9").encode("latin-1"))
    out = tmp_path / "run"
    assert train(str(latin), "--encoding", "latin-1", "--out", str(out), *MICRO_ARGS).exit_code == 0
    result = train(str(latin), "--resume", str(out), "--max-steps", "14", "--quiet")
    assert result.exit_code == 0, result.output
    assert ckpt_io.load(out / ckpt_io.LATEST).state["step"] == 14
