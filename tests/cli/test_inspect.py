"""`charlm inspect gradients` on a run made by `charlm train`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from charlm.cli import app
from tests.helpers import MICRO_ARGS

SMALL = ["--max-lag", "20", "--carry-in", "10", "--positions", "4", "--threads", "1"]


def _run(*args: str, input: str | None = None):
    return CliRunner().invoke(app, list(args), input=input)


def test_gradients_json_on_stdout_table_on_stderr_png_written(
    trained_run: Path, tmp_path: Path
) -> None:
    png = tmp_path / "flow.png"
    r = _run("inspect", "gradients", str(trained_run), *SMALL, "--json", "-o", str(png))
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    names = [m["name"] for m in doc["models"]]
    assert names[0] == "run (lstm, trained)" and names[2:] == ["fresh gru", "fresh lstm"]
    radius = doc["models"][1]["spectral_radius"]
    assert 0 < radius < 1 and names[1] == f"fresh rnn (radius {radius:.2f})"
    assert doc["text"] == "the validation text of verse.txt"
    for m in doc["models"]:
        assert all(len(c["mean_norm"]) == 21 for c in m["curves"])
    assert "k=20" in r.stderr and "fresh gru" in r.stderr and "k=50" not in r.stderr
    with Image.open(png) as im:
        assert im.size == (900, 560)


def test_gradients_compare_none_several_checkpoints_and_a_file(
    trained_run: Path, tmp_path: Path, corpus_file: Path
) -> None:
    latest = str(trained_run / "latest.safetensors")
    r = _run(
        "inspect", "gradients", str(trained_run), latest, "--compare", "none",
        "--file", str(corpus_file), *SMALL, "--json", "--quiet",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert [m["model"] for m in doc["models"]] == ["lstm", "lstm"]
    # One run's two checkpoints are told apart by their file names.
    assert [m["name"] for m in doc["models"]] == [
        "run/best (lstm, trained)",
        "run/latest (lstm, trained)",
    ]
    assert doc["text"] == "verse.txt" and r.stderr == ""


def test_the_table_ends_at_the_last_lag_measured(trained_run: Path) -> None:
    args = ["--max-lag", "3", "--carry-in", "10", "--positions", "2", "--compare", "none"]
    r = _run("inspect", "gradients", str(trained_run), *args, "--threads", "1")
    assert r.exit_code == 0, r.output
    header = next(line for line in r.stderr.splitlines() if "k=0" in line)
    columns = [c.strip() for c in header.split("┃")]
    assert columns[2:] == ["k=0", "k=1", "k=2", "k=3", "< 1e-3 x k=0 at"]


@pytest.mark.parametrize(("model", "tokenizer"), [("gru", "word"), ("rnn", "char")])
def test_gradients_on_word_and_other_model_runs(
    tmp_path: Path, corpus_file: Path, model: str, tokenizer: str
) -> None:
    out = tmp_path / "run2"
    args = ["--model", model, "--tokenizer", tokenizer, "--val-frac", "0.3"]
    r = _run("train", str(corpus_file), "--out", str(out), *MICRO_ARGS, *args)
    assert r.exit_code == 0, r.output
    r = _run("inspect", "gradients", str(out), "--compare", "lstm", *SMALL, "--json")
    assert r.exit_code == 0, r.output
    assert [m["model"] for m in json.loads(r.stdout)["models"]] == [model, "lstm"]
    r = _run("plot", str(out), "-o", str(tmp_path / "curves.svg"))
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--compare", "lstm,transformer"], "unknown --compare 'lstm,transformer'"),
        (["-o", "flow.jpg"], "name a .png or .svg file with -o"),
        (["--init-scale", "0"], "--init-scale must be a finite number above 0"),
        (["--max-lag", "500"], "give a longer text or lower them"),
    ],
)
def test_gradients_bad_input_is_one_line(trained_run: Path, args: list[str], message: str) -> None:
    r = _run("inspect", "gradients", str(trained_run), "--positions", "2", *args)
    assert r.exit_code == 2  # options that cannot work (with this text, this model)
    assert r.stderr.startswith("charlm: error: ") and message in r.stderr
    assert r.stderr.count("\n") == 1
    assert r.stdout == "" and "Traceback" not in r.stderr


def test_gradients_without_the_corpus_asks_for_a_file(trained_run: Path, corpus_file: Path) -> None:
    corpus_file.unlink()
    r = _run("inspect", "gradients", str(trained_run), *SMALL)
    assert r.exit_code == 1
    assert "cannot be read here: give a text with --file PATH" in r.stderr
