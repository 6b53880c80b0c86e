"""`charlm evaluate`: a progress bar on a terminal, files that cannot be scored, --split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from charlm.cli import app
from charlm.cli import evaluate as cli_evaluate
from charlm.data.corpus import split_text
from charlm.rundir.checkpoint import load
from tests.helpers import MICRO_ARGS


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args))


def test_a_file_that_cannot_be_scored_is_reported_and_the_rest_scored(
    trained_run: Path, corpus_file: Path, tmp_path: Path
) -> None:
    short = tmp_path / "short.txt"
    short.write_text("F")
    r = run("evaluate", str(trained_run), str(short), str(corpus_file), str(tmp_path / "no.txt"),
            "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert [f["name"] for f in doc["files"]] == [str(corpus_file)]
    assert [s["name"] for s in doc["skipped"]] == [str(short), str(tmp_path / "no.txt")]
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2  # one line each
    assert "too little to score" in warnings[0] and "no such file" in warnings[1]
    alone = json.loads(run("evaluate", str(trained_run), str(corpus_file), "--json").stdout)
    assert doc["total"] == alone["total"]


def test_a_directory_scores_each_file_inside_in_trainings_order(
    trained_run: Path, corpus_text: str, tmp_path: Path
) -> None:
    """train takes a directory as a corpus; evaluate takes one as its files."""
    texts = tmp_path / "texts"
    (texts / "sub").mkdir(parents=True)
    (texts / "b.txt").write_text(corpus_text)
    (texts / "sub" / "a.txt").write_text(corpus_text[:400])
    (texts / ".hidden.txt").write_text(corpus_text)
    r = run("evaluate", str(trained_run), str(texts), "--json")
    assert r.exit_code == 0, r.output
    names = [f["name"] for f in json.loads(r.stdout)["files"]]
    assert names == [str(texts / "b.txt"), str(texts / "sub" / "a.txt")]
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run("evaluate", str(trained_run), str(empty))
    assert r.exit_code == 1 and "charlm: error: " in r.stderr and "holds no files" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("width", [70, 80, 200])
def test_the_table_names_every_file_at_any_terminal_width(
    trained_run: Path, corpus_file: Path, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    """At 70 columns the full headers once squeezed the file column out of the table."""
    console = Console(stderr=True, force_terminal=True, width=width, color_system=None)
    monkeypatch.setattr(cli_evaluate, "err", console)
    other = corpus_file.with_name("other.txt")
    other.write_text(corpus_file.read_text()[:300])
    r = run("evaluate", str(trained_run), str(corpus_file), str(other))
    assert r.exit_code == 0, r.output
    rows = [line for line in r.stderr.splitlines() if "│" in line]
    assert [row.split("│")[0].strip() for row in rows][-1] == "total"
    # A long path folds over several rows of the file column: read it back whole.
    names = "".join(row.split("│")[0].strip() for row in rows)
    assert str(corpus_file) in names and str(other) in names
    assert all(len(row) <= width for row in rows)  # (the progress bar's lines hold escapes)
    assert ("bits/char" in r.stderr) == (width == 200) and ("bpc" in r.stderr) == (width < 200)


def test_nothing_scored_is_an_error_at_the_end(trained_run: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("F")
    b.write_text("")
    r = run("evaluate", str(trained_run), str(a), str(b))
    assert r.exit_code == 1 and r.stdout == ""
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("charlm: error: none of the 2 files could be scored")
    assert "Traceback" not in r.stderr


def test_progress_shows_on_a_terminal_and_stdout_keeps_only_the_json(
    trained_run: Path, corpus_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_evaluate, "err", Console(stderr=True, force_terminal=True, width=100))
    r = run("evaluate", str(trained_run), str(corpus_file), "--json", "--batch-size", "1",
            "--bptt", "8")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "scoring" in r.stderr and "verse.txt" in r.stderr
    assert json.loads(r.stdout)["total"]["tokens"] > 0  # nothing but the JSON on stdout
    quiet = run("evaluate", str(trained_run), str(corpus_file), "--json", "-q")
    assert quiet.stderr == ""


def test_split_val_reproduces_the_runs_validation_loss(trained_run: Path) -> None:
    ck = load(trained_run / "best.safetensors")
    r = run("evaluate", str(trained_run), "--split", "val", "--json")
    assert r.exit_code == 0, r.output
    (score,) = json.loads(r.stdout)["files"]
    assert score["name"] == "val split of verse"
    assert score["nats_per_token"] == pytest.approx(ck.state["best_val"], rel=1e-6)


def test_split_test_scores_the_held_out_text(
    corpus_file: Path, corpus_text: str, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    args = ["train", str(corpus_file), "--out", str(out), "--test-frac", "0.2", *MICRO_ARGS]
    assert run(*args).exit_code == 0
    test_file = tmp_path / "test.txt"
    test_file.write_text(split_text(corpus_text, 0.05, 0.2)[1], encoding="utf-8")
    by_split = run("evaluate", str(out), "--split", "test", "--json")
    by_file = run("evaluate", str(out), str(test_file), "--json")
    assert by_split.exit_code == 0, by_split.output
    a, b = (json.loads(r.stdout)["total"] for r in (by_split, by_file))
    assert a["nats"] == pytest.approx(b["nats"]) and a["tokens"] == b["tokens"]


def one_error(r) -> str:  # type: ignore[no-untyped-def]
    assert r.exit_code == 1 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("charlm: error: "), r.stderr
    return lines[0]


def test_split_refuses_what_it_cannot_score(trained_run: Path, corpus_file: Path) -> None:
    assert "no test split" in one_error(run("evaluate", str(trained_run), "--split", "test"))
    assert "val or test" in one_error(run("evaluate", str(trained_run), "--split", "train"))
    both = run("evaluate", str(trained_run), str(corpus_file), "--split", "val")
    assert "not both" in one_error(both)
    corpus_file.write_text(corpus_file.read_text() + "more\n")
    changed = one_error(run("evaluate", str(trained_run), "--split", "val"))
    assert "changed since training" in changed
    corpus_file.unlink()
    gone = one_error(run("evaluate", str(trained_run), "--split", "val"))
    assert "cannot read the run's corpus again" in gone and "no such file" in gone


def test_split_reads_the_corpus_with_the_runs_encoding(tmp_path: Path, corpus_text: str) -> None:
    latin = tmp_path / "latin.txt"
    latin.write_bytes((corpus_text + "caf\xe9\n").encode("latin-1"))
    out = tmp_path / "run"
    assert (
        run("train", str(latin), "--out", str(out), "--encoding", "latin-1", *MICRO_ARGS).exit_code
        == 0
    )
    r = run("evaluate", str(out), "--split", "val", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["files"][0]["oov_chars"] == 0
