"""Errors are imported from charlm.errors only: no module passes them on (issue 29)."""

from __future__ import annotations

import ast
from pathlib import Path

import charlm.errors as errors

ROOT = Path(__file__).resolve().parents[1]
NAMES = {
    name
    for name, value in vars(errors).items()
    if isinstance(value, type) and issubclass(value, Exception)
} | {"describe_unknown", "cannot_write"}


def test_every_error_is_imported_from_charlm_errors() -> None:
    found = []
    for path in [
        *ROOT.glob("charlm/**/*.py"),
        *ROOT.glob("tests/**/*.py"),
        *ROOT.glob("bench/*.py"),
    ]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("charlm"):
                continue
            if node.module != "charlm.errors":
                found += [f"{path.relative_to(ROOT)}:{node.lineno} {a.name}" for a in node.names
                          if a.name in NAMES]  # fmt: skip
    assert found == []
