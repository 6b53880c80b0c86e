"""The benchmarks call charlm's public API only: a private name changes without notice (the
distributed section once broke on ``Trainer._agree``'s new signature)."""

from __future__ import annotations

import ast
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
THIRD_PARTY = {"torch"}  # their private names are used behind a fallback (bench.training)
OWN = {"self", "cls"}  # a benchmark's own class may have private members


def private_uses(source: str) -> list[str]:
    """Attributes and charlm imports named with a leading underscore (dunders aside)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if not (isinstance(root, ast.Name) and root.id in THIRD_PARTY | OWN):
                found.append(f"line {node.lineno}: .{node.attr}")
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("charlm"):
            found += [f"line {node.lineno}: {a.name}" for a in node.names if _private(a.name)]
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__")


def test_no_benchmark_reaches_into_charlm_privates() -> None:
    found = {p.name: private_uses(p.read_text()) for p in sorted(BENCH.glob("*.py"))}
    assert {k: v for k, v in found.items() if v} == {}


def test_the_check_sees_a_private_call_and_a_private_import() -> None:
    source = "from charlm.x import _f\ntrainer._agree(1)\ntorch._C._nn.f()\nself._g()\nx.__class__"
    assert sorted(private_uses(source)) == ["line 1: _f", "line 2: ._agree"]
