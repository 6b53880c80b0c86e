"""The layers in pyproject.toml hold: nothing in charlm imports upward (import-linter), so
`make test` catches what `make lint` would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# `lint-imports`, run by the Python running the tests (the script may not be on PATH).
LINT = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports on the charlm package under ``root``, against ``root/pyproject.toml``."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-c", LINT, "--no-cache"],
        cwd=root, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_the_layers_hold() -> None:
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 broken" in result.stdout


def test_an_upward_import_breaks_them(tmp_path: Path) -> None:
    shutil.copytree(REPO / "charlm", tmp_path / "charlm", ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    with open(tmp_path / "charlm" / "text" / "clean.py", "a", encoding="utf-8") as f:
        f.write("\nimport charlm.cli  # text sits below cli: upward\n")
    result = _lint(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "charlm.text is not allowed to import charlm.cli" in result.stdout
    assert "charlm.text.clean -> charlm.cli" in result.stdout
