"""'-' is stdin or stdout wherever a stream is taken, and refused where a directory is meant:
never a file or directory called '-' in the current directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from charlm.cli import app
from tests.helpers import MICRO_ARGS


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_train_refuses_out_dash_and_makes_nothing(corpus_file: Path, in_tmp: Path) -> None:
    r = CliRunner().invoke(app, ["train", str(corpus_file), *MICRO_ARGS, "-o", "-"])
    assert r.exit_code == 2
    assert r.stderr.startswith("charlm: error: ") and r.stderr.count("\n") == 1
    assert "name a directory" in r.stderr and "Traceback" not in r.stderr
    assert not (in_tmp / "-").exists()
    assert r.stdout == ""


def test_prepare_out_dash_writes_stdout(corpus_file: Path, in_tmp: Path) -> None:
    r = CliRunner().invoke(app, ["prepare", str(corpus_file), "-o", "-", "-q"])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() and r.stdout.split()[0] in corpus_file.read_text()
    assert not (in_tmp / "-").exists()
