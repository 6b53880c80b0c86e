"""A plain `pip install .` in a fresh virtual environment: charlm trains, samples and evaluates,
and each command of an extra says in one line which extra to install.

Slow (a minute or more: pip installs the core dependencies), so `make test-slow` runs it.
torch comes from the pin `make install` uses, which resolves to a local file here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import MICRO_ARGS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("charlm", "pyproject.toml", "README.md")  # all a build reads
OPTIONAL = ("music21", "matplotlib", "plotext", "h5py")


def _torch_pin() -> str:
    return re.search(r"^TORCH_PIN \?= (\S+)$", (REPO / "Makefile").read_text(), re.M).group(1)


def _run(*cmd: str | Path, cwd: Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"NO_COLOR": "1", "COLUMNS": "100"}
    result = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=1800
    )
    if ok:
        assert result.returncode == 0, f"{cmd}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment holding the pinned torch and `pip install <copy of repo>`."""
    root = tmp_path_factory.mktemp("packaging")
    src = root / "src"
    src.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(REPO / name, src / name)
    _run(sys.executable, "-m", "venv", root / "venv", cwd=root)
    pip = (root / "venv" / "bin" / "python", "-m", "pip", "install", "--quiet")
    _run(*pip, _torch_pin(), cwd=root)
    _run(*pip, src, cwd=root)
    return root / "venv"


def test_no_extra_is_installed_by_a_plain_install(venv: Path, tmp_path: Path) -> None:
    probe = f"import importlib.util as u; print([u.find_spec(p) for p in {OPTIONAL!r}])"
    found = _run(venv / "bin" / "python", "-c", probe, cwd=tmp_path).stdout
    assert found.strip() == str([None] * len(OPTIONAL))


def test_the_core_commands_work(venv: Path, tmp_path: Path, corpus_file: Path) -> None:
    charlm, run = venv / "bin" / "charlm", tmp_path / "run"
    assert "train" in _run(charlm, "--help", cwd=tmp_path).stdout
    steps = [a if a != "12" else "5" for a in MICRO_ARGS]  # --max-steps 5
    _run(charlm, "train", corpus_file, "--out", run, *steps, "--eval-every", "5", cwd=tmp_path)
    sample = _run(charlm, "sample", run, "--length", "40", "--seed", "1", cwd=tmp_path)
    assert len(sample.stdout) >= 40
    scored = _run(charlm, "evaluate", run, corpus_file, "--json", cwd=tmp_path)
    assert json.loads(scored.stdout)["total"]["bits_per_char"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plot", "{run}"], "charlm plot needs plotext: pip install 'charlm[plot]'"),
        (["plot", "{run}", "-o", "{run}/c.png"],
         "charlm plot -o needs matplotlib: pip install 'charlm[plot]'"),
        (["music", "render", "{run}/t.abc", "-o", "{run}/midi"],
         "charlm music render needs music21: pip install 'charlm[music]'"),
    ],
)  # fmt: skip
def test_an_extras_command_names_its_extra(
    venv: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "t.abc").write_text("X:1\nT:A\nM:2/4\nK:D\nAB cd|\n", encoding="utf-8")
    cmd = [a.format(run=tmp_path) for a in args]
    result = _run(venv / "bin" / "charlm", *cmd, cwd=tmp_path, ok=False)
    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        f"charlm: error: {message}\n",
    )
