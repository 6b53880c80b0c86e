"""Every section of the benchmark suite, end to end at its smallest: a broken section fails here.

The loop is over ``bench.__main__.SECTIONS``, so a section added later is covered for free. A
section may skip only for something outside the code (a corpus or a package absent), and the
test then says so. No figure is checked: smoke runs measure nothing worth keeping.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import __main__ as suite
from bench import report


def errors(value: Any, where: str = "") -> list[str]:
    """Every "error" in a result, in its rows too, with where it sits."""
    if isinstance(value, dict):
        found = [f"{where}: {value['error']}"] if "error" in value else []
        return found + [e for k, v in value.items() for e in errors(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [e for i, v in enumerate(value) for e in errors(v, f"{where}[{i}]")]
    return []


def listing(directory: Path) -> dict[str, int]:
    """Each file under ``directory`` and when it last changed."""
    return (
        {str(p): p.stat().st_mtime_ns for p in directory.rglob("*")} if directory.exists() else {}
    )


@pytest.mark.parametrize("name", suite.SECTIONS)
def test_each_section_runs_end_to_end_in_smoke_mode(name: str) -> None:
    before = listing(report.RESULTS)
    result = suite.run_section(name, quick=False, smoke=True)
    assert listing(report.RESULTS) == before, "a smoke run must write into a temporary directory"
    if "skipped" in result:
        pytest.skip(f"bench {name}: {result['skipped']}")
    assert not errors(result), errors(result)
    assert result, f"bench {name} returned no figures"


def test_errors_are_found_in_rows_too() -> None:
    assert errors({"rows": [{"a": 1}, {"error": "boom"}]}) == [".rows[1]: boom"]
    assert errors({"rows": [{"a": 1}]}) == []


def test_a_smoke_run_of_the_suite_writes_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(report, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(suite, "run_section", lambda name, *a: {"figure": 1.0})
    assert suite.main(["--smoke", "--only", "training"]) == 0
    assert "## Benchmarks (--smoke)" in capsys.readouterr().out
    assert not (tmp_path / "results").exists()
