"""`charlm export`, and examples/onnx_sample.py reading what it writes, as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from charlm.cli import app
from charlm.generation.onnx_export import unexportable

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "onnx_sample.py"
runner = CliRunner()


def _example(model: Path, *args: str) -> str:
    """The example in a process of its own, where importing torch or charlm would fail."""
    blocker = model.parent / "blocked"
    blocker.mkdir(exist_ok=True)
    for name in ("torch", "charlm"):  # a package that raises on import shadows the real one
        (blocker / name).mkdir(exist_ok=True)
        (blocker / name / "__init__.py").write_text("raise ImportError('not for the example')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), str(model), *args],
        capture_output=True, text=True, env=env, check=False, cwd=model.parent,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_greedy_through_onnxruntime_is_prime_greedy(trained_run: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    result = runner.invoke(app, ["export", str(trained_run), "-o", str(model)])
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and result.stderr.startswith(f"wrote {model}")
    primed = runner.invoke(app, ["prime", str(trained_run), "First", "-n", "80", "--greedy", "-q"])
    assert _example(model, "--prime", "First", "--length", "80", "--greedy") == primed.stdout
    sampled = _example(model, "--length", "30", "--temperature", "0.8", "--seed", "1")
    assert len(sampled) == 30


def test_cells_lists_what_cannot_be_exported_in_one_line() -> None:
    result = runner.invoke(app, ["export", "--cells"])
    assert result.exit_code == 0
    assert result.stdout == unexportable() + "\n" and result.stdout.count("\n") == 1
    assert result.stdout.startswith("peephole: ")


def test_without_a_file_to_write_is_one_line(trained_run: Path) -> None:
    result = runner.invoke(app, ["export", str(trained_run)])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (
        "charlm: error: give the file to write: charlm export [CHECKPOINT] -o model.onnx\n"
    )
