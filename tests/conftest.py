"""Fixtures only: a tiny corpus and a trained micro run (shared helpers: tests/helpers)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tests.helpers import MICRO_ARGS
from tests.helpers.texts import VERSE

# Tests share two cores with whatever else runs: one thread keeps them fast and repeatable.
torch.set_num_threads(1)
os.environ.setdefault("NO_COLOR", "1")
os.environ.setdefault("COLUMNS", "120")


@pytest.fixture
def corpus_text() -> str:
    return VERSE * 12


@pytest.fixture
def corpus_file(tmp_path: Path, corpus_text: str) -> Path:
    path = tmp_path / "verse.txt"
    path.write_text(corpus_text, encoding="utf-8")
    return path


@pytest.fixture
def trained_run(tmp_path: Path, corpus_file: Path) -> Path:
    """A run directory holding a micro model trained for a few steps (best + latest)."""
    from typer.testing import CliRunner

    from charlm.cli import app

    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(corpus_file), "--out", str(out), *MICRO_ARGS])
    assert result.exit_code == 0, result.output
    return out
