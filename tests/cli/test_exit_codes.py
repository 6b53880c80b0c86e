"""One exit code table for every command (charlm/errors.py, docs/errors.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from charlm.cli import app
from charlm.errors import (
    EXIT_FAILED,
    EXIT_USAGE,
    CharlmError,
    CheckpointError,
    ConfigError,
    InputError,
)

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["train", "{corpus}", "--no-such-option"], EXIT_USAGE),  # Click's own usage error
        (["train", "{corpus}", "--layers", "x"], EXIT_USAGE),  # the wrong type
        (["train", "{corpus}", "--tokenizer", "wrod"], EXIT_USAGE),  # a mistyped choice
        (["train", "{corpus}", "--layers", "0"], EXIT_USAGE),  # an impossible value
        (["sample", "{run}", "--top-p", "2"], EXIT_USAGE),
        (["evaluate", "{run}", "{corpus}", "--unknown", "drop"], EXIT_USAGE),
        (["train", "{missing}"], EXIT_FAILED),  # well formed, and cannot be done
        (["sample", "{missing}"], EXIT_FAILED),
        (["evaluate", "{run}", "{missing}"], EXIT_FAILED),
    ],
)
def test_each_kind_of_failure_has_its_code(
    args: list[str], code: int, corpus_file: Path, trained_run: Path, tmp_path: Path
) -> None:
    names = {"corpus": corpus_file, "run": trained_run, "missing": tmp_path / "missing.txt"}
    argv = [a.format(**names) for a in args]
    result = runner.invoke(app, [*argv, "--dry-run"] if argv[0] == "train" else argv)
    assert result.exit_code == code, result.output
    assert result.stderr.startswith("charlm: error: ") and result.stdout == ""


def test_the_error_classes_carry_the_table() -> None:
    assert ConfigError("x").exit_code == EXIT_USAGE
    for kind in (CharlmError, InputError, CheckpointError):
        assert kind("x").exit_code == EXIT_FAILED
