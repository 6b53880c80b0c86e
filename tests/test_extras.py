"""Each optional package serves one command or flag; without it, one line names the extra."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from charlm.cli import app
from charlm.extras import EXTRAS, require

# (args after `charlm`, with {tmp} for a scratch directory; the package; the command named)
CASES = [
    (["music", "render", "{tmp}/tunes.abc", "-o", "{tmp}/midi"], "music21", "charlm music render"),
    (["prepare", "abc", "-o", "{tmp}/folk.abc"], "music21",
     "charlm prepare abc without ABC files (music21's collections)"),
    (["plot", "{tmp}", "-o", "{tmp}/curves.png"], "matplotlib", "charlm plot -o"),
    (["plot", "{tmp}"], "plotext", "charlm plot"),
    (["inspect", "gradients", "{tmp}", "-o", "{tmp}/flow.png"], "matplotlib",
     "charlm inspect gradients -o"),
    (["inspect", "units", "{tmp}", "--lstmvis", "{tmp}/vis"], "h5py",
     "charlm inspect units --lstmvis"),
    (["serve", "{tmp}"], "fastapi", "charlm serve"),
    (["serve", "{tmp}"], "uvicorn", "charlm serve"),
    (["export", "{tmp}", "-o", "{tmp}/m.onnx"], "onnx", "charlm export"),
    (["export", "{tmp}", "-o", "{tmp}/m.onnx"], "onnxruntime", "charlm export"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "package", "command"), CASES)
def test_a_missing_extra_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], package: str, command: str
) -> None:
    (tmp_path / "tunes.abc").write_text("X:1\nT:A\nM:2/4\nK:D\nAB cd|\n", encoding="utf-8")
    before = sorted(tmp_path.iterdir())
    monkeypatch.setitem(sys.modules, package, None)  # import fails, as when not installed
    result = CliRunner().invoke(app, [a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr == (
        f"charlm: error: {command} needs {package}: pip install 'charlm[{EXTRAS[package]}]'\n"
    )
    assert sorted(tmp_path.iterdir()) == before  # nothing half-written


def test_every_extra_is_declared_in_pyproject() -> None:
    import tomllib

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    for package, extra in EXTRAS.items():
        assert any(req.startswith(package) for req in extras[extra]), (package, extra)
    assert extras["all"] == [f"charlm[{','.join(dict.fromkeys(EXTRAS.values()))}]"]
    core = pyproject["project"]["dependencies"]
    assert not any(req.startswith(tuple(EXTRAS)) for req in core)


def test_an_installed_package_passes() -> None:
    require("numpy", "anything")  # no error: numpy is a core dependency
