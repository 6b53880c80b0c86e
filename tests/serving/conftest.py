"""Fixtures only: a trained micro run, and one `charlm serve` of it for the module's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers import MICRO_ARGS
from tests.helpers.serving import Server, running_server
from tests.helpers.texts import VERSE

pytest.importorskip("fastapi", reason="charlm serve needs the serve extra: make install")


@pytest.fixture(scope="session")
def served_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A micro model trained once, in a run directory named "verse"."""
    from charlm.cli import app

    home = tmp_path_factory.mktemp("serving")
    corpus = home / "verse.txt"
    corpus.write_text(VERSE * 12, encoding="utf-8")
    out = home / "verse"
    result = CliRunner().invoke(app, ["train", str(corpus), "--out", str(out), *MICRO_ARGS, "-q"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def server(served_run: Path) -> Iterator[Server]:
    with running_server(served_run, "--max-streams", "32") as s:
        yield s
