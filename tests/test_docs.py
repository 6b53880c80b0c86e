"""The docs stay true: the site builds, every module and cell is described, every command shown
names a real command and real options, and the README stays a front door whose links resolve."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from charlm.cli import app
from charlm.models import registry

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = [README, *sorted(DOCS.rglob("*.md"))]
SHELL_BLOCK = re.compile(r"^```(?:bash|sh)\n(.*?)^```", re.M | re.S)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def shell_lines(page: Path) -> list[str]:
    """The commands in a page's bash blocks: continuation lines joined, comments dropped."""
    lines = []
    for block in SHELL_BLOCK.findall(page.read_text(encoding="utf-8")):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"(^|\s)#.*", "", line).strip()
            if line:
                lines.append(line)
    return lines


def charlm_calls(line: str) -> list[list[str]]:
    """Each `charlm ...` (or `-m charlm ...`) in a pipeline, as its arguments after `charlm`."""
    calls = []
    for part in re.split(r"\|(?!\|)|&&|;", line):
        words = shlex.split(part.split(">")[0])
        for i, word in enumerate(words):
            if word == "charlm" and (i == 0 or words[i - 1] == "-m"):
                calls.append(words[i + 1 :])
                break
    return calls


ROOT_COMMAND = typer.main.get_command(app)
SHOWN = [
    (page, call) for page in PAGES for line in shell_lines(page) for call in charlm_calls(line)
]


def resolve(args: list[str]) -> tuple[Any, list[str]]:
    """The (sub)command the arguments name, and the arguments left for it (Typer's own Click
    classes, so found by what they hold rather than by type)."""
    command = ROOT_COMMAND
    while hasattr(command, "commands") and args and not args[0].startswith("-"):
        assert args[0] in command.commands, f"no command {args[0]!r} in charlm {command.name}"
        command, args = command.commands[args[0]], args[1:]
    return command, args


@pytest.mark.parametrize(
    "call", [c for _, c in SHOWN], ids=[f"{p.relative_to(ROOT)}: {' '.join(c)}" for p, c in SHOWN]
)
def test_every_command_shown_names_real_options(call: list[str]) -> None:
    command, args = resolve(call)
    options = {
        name: param
        for param in command.params
        if param.param_type_name == "option"
        for name in (*param.opts, *param.secondary_opts)
    }
    options.update({"-h": None, "--help": None, "--version": None})
    takes_value = False
    for arg in args:
        if takes_value:
            takes_value = False
        elif arg.startswith("-") and arg != "-":
            name = arg.split("=")[0]
            assert name in options, f"charlm {command.name} has no option {name}"
            param = options[name]
            takes_value = param is not None and not param.is_flag and "=" not in arg


def test_the_docs_show_a_command_of_every_kind() -> None:
    shown = {resolve(call)[0].name for _, call in SHOWN}
    for name in ("train", "sample", "prime", "evaluate", "prepare", "plot", "gradients", "units",
                 "surprisal", "check", "render"):  # fmt: skip
        assert name in shown


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_make_target_shown_exists(page: Path) -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for line in shell_lines(page):
        if line.startswith("make "):
            target = line.split()[1]
            assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"make {target}"


def test_every_module_is_named_in_the_architecture_page() -> None:
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    package = ROOT / "charlm"
    modules = [p.relative_to(package).as_posix() for p in package.rglob("*.py")]
    missing = [m for m in modules if not m.endswith("__init__.py") and f"`{m}`" not in text]
    assert not missing, f"docs/architecture.md does not name {missing}"
    named = re.findall(r"`([a-z_]+/[a-z0-9_/]+\.py)`", text)
    gone = [m for m in named if m.split("/")[0] not in ("tests", "bench") and m not in modules]
    assert not gone, f"docs/architecture.md names {gone}, which charlm/ does not hold"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_a_page_names_is_there(page: Path) -> None:
    named = re.findall(r"`((?:charlm|tests|bench)/[a-z0-9_/]+\.py)`", page.read_text("utf-8"))
    missing = [path for path in named if not (ROOT / path).exists()]
    assert not missing, f"{page.relative_to(ROOT)} names {missing}, which are not there"


def test_every_registered_cell_has_its_section_on_the_cells_page() -> None:
    text = (DOCS / "cells.md").read_text(encoding="utf-8")
    missing = [name for name in registry.names() if f"<!-- cell: {name} -->" not in text]
    assert not missing, f"docs/cells.md has no '<!-- cell: NAME -->' for {missing}"


def test_the_readme_is_a_front_door_whose_links_resolve() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300
    targets = [t for t in LINK.findall(text) if "://" not in t]
    assert targets
    for target in targets:
        assert (ROOT / target).exists(), f"README.md links to {target}, which is not there"


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None,
    reason="mkdocs and mkdocs-material are not installed: pip install -e '.[docs]'",
)
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    # --strict: a broken link or anchor, or a page left out of the nav, fails the build.
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr
    cells = (tmp_path / "site" / "cells" / "index.html").read_text(encoding="utf-8")
    for name in registry.names():  # each cell's equations, read from its spec
        assert f'id="{name}"' in cells
