"""Every output: missing parent directories made, nothing half-written under the final name
after a kill at any moment, and no orphaned temporary file after the next command."""

from __future__ import annotations

import ast
import fcntl
import multiprocessing
import os
import random
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

import charlm.cli
from charlm.cli import app
from charlm.rundir import atomic

TEXTS = ("First Citizen:\nSpeak, speak.\n" * 4, "All:\nResolved. resolved.\n" * 3)


def _run(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_missing_parent_directories_are_made_for_every_output(
    trained_run: Path, corpus_file: Path, tmp_path: Path
) -> None:
    new = tmp_path / "not" / "yet"
    run = str(trained_run)
    _run("inspect", "units", run, TEXTS[0], "-o", str(new / "a" / "page.html"),
         "--npz", str(new / "b" / "s.npz"), "--lstmvis", str(new / "c" / "vis"))  # fmt: skip
    _run("inspect", "gradients", run, "-o", str(new / "d" / "g.png"), "--max-lag", "4")
    _run("plot", run, "-o", str(new / "e" / "p.png"))
    _run("prepare", str(corpus_file), "-o", str(new / "f" / "out.txt"))
    assert (new / "a" / "page.html").read_text().startswith("<!")
    assert set(np.load(new / "b" / "s.npz")) >= {"h", "tokens"}
    assert (new / "c" / "vis" / "lstm.yml").is_file()
    for image in (new / "d" / "g.png", new / "e" / "p.png"):
        assert image.read_bytes().startswith(b"\x89PNG")
    assert (new / "f" / "out.txt").stat().st_size > 0


def _units_npz(run: Path, text: str, npz: Path, delay: float) -> None:
    """The child: `charlm inspect units RUN TEXT --npz NPZ`, its writes paused halfway."""
    os.environ[atomic.DELAY_ENV] = str(delay)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    sys.argv = ["charlm", "inspect", "units", str(run), text, "--npz", str(npz), "--quiet"]
    charlm.cli.main()


def _launch(run: Path, text: str, npz: Path, delay: float) -> multiprocessing.Process:
    # Forked: the imports are the parent's, so a launch costs milliseconds, not seconds.
    proc = multiprocessing.get_context("fork").Process(
        target=_units_npz, args=(run, text, npz, delay)
    )
    proc.start()
    return proc


def _tokens(npz: Path) -> str | None:
    """The text the archive recorded; None when there is no file (a valid zip or nothing)."""
    if not npz.exists():
        return None
    assert zipfile.is_zipfile(npz), "a half-written archive under the final name"
    with np.load(npz) as f:
        return "".join(f["tokens"].tolist())


def test_a_kill_at_any_moment_leaves_the_old_archive_or_the_new(
    trained_run: Path, tmp_path: Path
) -> None:
    npz, delay, rng = tmp_path / "s.npz", 0.3, random.Random(5)
    start = time.monotonic()
    whole = _launch(trained_run, TEXTS[0], npz, delay)
    whole.join(60)
    span = time.monotonic() - start  # one whole command, its paused write included
    assert whole.exitcode == 0 and _tokens(npz) == TEXTS[0]
    for k in range(8):
        before = _tokens(npz)
        proc = _launch(trained_run, TEXTS[k % 2], npz, delay)
        time.sleep(rng.uniform(0.0, span))
        proc.kill()
        proc.join()
        assert _tokens(npz) in (before, TEXTS[k % 2])
    last = _launch(trained_run, TEXTS[0], npz, 0.0)
    last.join(60)
    assert last.exitcode == 0 and _tokens(npz) == TEXTS[0]
    assert atomic.orphans(tmp_path) == []  # the next write of s.npz tidied what kills left


def _hold_flock(path: Path, ready: multiprocessing.Event) -> None:  # type: ignore[valid-type]
    """The child: holds ``path`` as a live atomic writer does, until killed."""
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    ready.set()
    time.sleep(120)


def test_the_ngram_cache_is_tidied_and_a_live_write_there_left_alone(
    trained_run: Path, corpus_file: Path
) -> None:
    cache = trained_run / "ngram"
    cache.mkdir()
    dead = cache / ".0123456789abcdef-5.npz.k2_9xq0a.tmp"  # a kill during another fit
    live = cache / ".fedcba9876543210-3.npz.abcdefgh.tmp"
    dead.write_bytes(b"\0" * 1000)
    live.write_bytes(b"\0" * 10)
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold_flock, args=(live, ready), daemon=True)
    holder.start()
    try:
        assert ready.wait(30)
        _run("evaluate", str(trained_run), str(corpus_file), "--baseline", "ngram:2")
        assert not dead.exists() and live.exists()
    finally:
        holder.kill()
        holder.join()
    assert [p.name for p in atomic.orphans(cache)] == [live.name]


def test_prepare_tidies_its_outputs_orphan_and_nothing_else_in_a_users_directory(
    corpus_file: Path, tmp_path: Path
) -> None:
    mine = tmp_path / ".out.txt.abcdefgh.tmp"
    theirs = tmp_path / ".notes.md.abcdefgh.tmp"  # named like ours, but not our output
    for p in (mine, theirs):
        p.write_bytes(b"half")
    _run("prepare", str(corpus_file), "-o", str(tmp_path / "out.txt"))
    assert not mine.exists() and theirs.exists()


# Writes that do not go through charlm.rundir.atomic, each for the reason given:
# module -> (reason, what the exempt calls contain).
NOT_ATOMIC = {
    "rundir/log.py": ("metrics.jsonl, samples.txt: appended; recovery cuts a torn row", "'a'"),
    "rundir/lock.py": ("the lock lives on its inode: written in place", "O_CREAT"),
    "data/token_cache.py": (
        "written into a private temporary directory that is renamed into place whole",
        "tmp / 'meta.json'|open(out, 'wb')",
    ),
}
# Savers that take a file name or a buffer (fig.savefig, any object's): a name bypasses.
_SAVERS = {"savefig", "np.save", "np.savez", "np.savez_compressed", "torch.save", "h5py.File"}
_COPIERS = {"shutil.copy", "shutil.copy2", "shutil.copyfile", "shutil.move", "os.rename"}


def _safe_names(tree: ast.AST) -> set[str]:
    """Names of memory buffers (io.BytesIO()) and of the atomic writer's temporary paths
    (``with replacing(path) as tmp``): writing into those is not writing the file itself."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and "BytesIO" in ast.unparse(node.value):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        if (
            isinstance(node, ast.withitem)
            and "replacing(" in ast.unparse(node.context_expr)
            and isinstance(node.optional_vars, ast.Name)
        ):
            names.add(node.optional_vars.id)
    return names


def _writes(tree: ast.AST) -> list[str]:
    """Calls in ``tree`` that write a file by name, bypassing the atomic writer."""
    safe = _safe_names(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        called = ast.unparse(node.func)
        name = node.func.attr if isinstance(node.func, ast.Attribute) else called
        mode = next((ast.unparse(k.value) for k in node.keywords if k.arg == "mode"), "")
        if name == "open" and len(node.args) > 1:
            mode = ast.unparse(node.args[1])
        fp = next((k.value for k in node.keywords if k.arg == "fp"), None)
        target = fp if fp is not None else (node.args[0] if node.args else None)
        into_safe = target is not None and bool(
            {n.id for n in ast.walk(target) if isinstance(n, ast.Name)} & safe
        )
        if (
            name in ("write_text", "write_bytes")
            or (name == "open" and any(c in mode for c in "wax+") and not into_safe)
            or "O_CREAT" in ast.unparse(node)
            or ((called in _SAVERS or name == "savefig" or fp is not None) and not into_safe)
            or called in _COPIERS
        ):
            found.append(f"line {node.lineno}: {ast.unparse(node)[:80]}")
    return found


def test_every_file_is_written_through_the_atomic_writer() -> None:
    package = Path(charlm.cli.__file__).parents[1]
    bypass = {}
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        exempt = NOT_ATOMIC.get(rel, ("", "\0"))[1].split("|")
        found = [
            call
            for call in _writes(ast.parse(path.read_text(encoding="utf-8")))
            if not any(snippet in call for snippet in exempt)
        ]
        if found:
            bypass[rel] = found
    assert bypass == {}
