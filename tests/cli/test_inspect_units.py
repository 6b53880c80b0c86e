"""`charlm inspect units` and `charlm inspect surprisal` on runs made by `charlm train`."""

from __future__ import annotations

import json
import random
import sys
import types
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from charlm.cli import app
from tests.helpers import MICRO_ARGS

TEXT = "First Citizen:\nSpeak, speak.\n\nAll:\nResolved. resolved.\n"


def _run(*args: str, input: str | None = None):
    return CliRunner().invoke(app, list(args), input=input)


def _train(tmp_path: Path, corpus: Path, name: str, *extra: str) -> Path:
    out = tmp_path / name
    r = _run("train", str(corpus), "--out", str(out), *MICRO_ARGS, "--threads", "1", *extra)
    assert r.exit_code == 0, r.output
    return out


def _one_error_line(r, code: int = 1) -> str:
    assert r.exit_code == code and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("charlm: error: ") and "Traceback" not in r.stderr
    return lines[-1]


def test_surprisal_mean_equals_evaluate_bits_per_char(trained_run: Path, tmp_path: Path) -> None:
    text = tmp_path / "t.txt"
    text.write_text(TEXT * 3, encoding="utf-8")
    r = _run("inspect", "surprisal", str(trained_run), "--file", str(text), "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    ev = _run("evaluate", str(trained_run), str(text), "--batch-size", "1", "--json")
    want = json.loads(ev.stdout)["total"]["bits_per_char"]
    assert doc["bits_per_char"] == pytest.approx(want, rel=1e-4)
    bits = [t["bits"] for t in doc["tokens"][1:]]
    assert np.mean(bits) == pytest.approx(want, rel=1e-4)  # one character per token
    first = doc["tokens"][0]
    assert first["bits"] is None and first["top"] == []
    assert all(len(t["top"]) == 5 for t in doc["tokens"][1:])
    assert len(doc["hardest_spans"]) == 5
    assert "hardest spans" in r.stderr and "bits/char" in r.stderr


def test_units_json_on_stdout_ranking_and_saturation_on_stderr(trained_run: Path) -> None:
    r = _run("inspect", "units", str(trained_run), TEXT, "--find", "line-position", "--top", "4",
             "--saturation", "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["feature"] == "line-position" and len(doc["ranking"]) == 4
    rs = [abs(u["r"]) for u in doc["ranking"]]
    assert rs == sorted(rs, reverse=True) and 0 < rs[0] <= 1
    assert [s["gate"] for s in doc["saturation"]] == ["input", "forget", "output"]
    assert len(doc["saturation"][0]["left"]) == doc["hidden_size"] == 16
    assert "units most correlated with line-position" in r.stderr
    assert "gate saturation" in r.stderr and doc["ranking"][0]["unit"] in r.stderr


def test_unit_view_reads_stdin_and_bad_units_name_the_range(trained_run: Path) -> None:
    r = _run("inspect", "units", str(trained_run), "-", "--unit", "L0:forget:3", input=TEXT)
    assert r.exit_code == 0, r.output
    assert "Resolved. resolved." in r.stderr and "L0:forget:3: coloured white to orange" in r.stderr
    r = _run("inspect", "units", str(trained_run), TEXT, "--unit", "0:h:16")
    line = _one_error_line(r, code=2)
    assert "does not exist" in line and "units 0-15" in line and "layers 0-0" in line
    assert "reading" not in r.stderr  # refused before the pass


def test_unknown_characters_follow_prime_s_rule(trained_run: Path) -> None:
    line = _one_error_line(_run("inspect", "surprisal", str(trained_run), "Speak €uro"))
    assert "'€'" in line and "--unknown skip" in line
    r = _run("inspect", "surprisal", str(trained_run), "Speak €uro", "--unknown", "skip", "--json")
    assert r.exit_code == 0 and "skipped" in r.stderr
    assert "".join(t["token"] for t in json.loads(r.stdout)["tokens"]) == "Speak uro"


def test_npz_and_lstmvis_exports(trained_run: Path, tmp_path: Path) -> None:
    npz, vis = tmp_path / "states", tmp_path / "vis"  # written as named, no .npz added
    r = _run("inspect", "units", str(trained_run), TEXT, "--npz", str(npz), "--lstmvis", str(vis),
             "--max-chars", "20", "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert r.stdout == "" and r.stderr == ""
    a = np.load(npz)
    assert a["h"].shape == a["c"].shape == a["gate_forget"].shape == (20, 1, 16)
    assert "".join(a["tokens"]) == TEXT[:20] and len(a["ids"]) == 20
    assert "".join(a["vocab"][a["ids"]]) == TEXT[:20]
    with h5py.File(vis / "states.hdf5") as f:
        np.testing.assert_array_equal(f["states1"][:], a["c"][:, 0])
        np.testing.assert_array_equal(f["output1"][:], a["h"][:, 0])
    with h5py.File(vis / "train.hdf5") as f:
        np.testing.assert_array_equal(f["word_ids"][:], a["ids"])
    entries = (vis / "train.dict").read_text(encoding="utf-8").splitlines()
    assert len(entries) == len(a["vocab"]) and "\\n 0" in entries and "  1" in entries
    config = (vis / "lstm.yml").read_text()
    assert "path: word_ids" in config and "{type: state, layer: 1, path: states1}" in config


def test_page_gets_the_document(trained_run: Path, tmp_path: Path, monkeypatch) -> None:
    seen: list[dict] = []
    page = types.ModuleType("charlm.inspection.page")
    page.render_page = lambda doc: seen.append(doc) or "<html>page</html>"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "charlm.inspection.page", page)
    out = tmp_path / "page.html"
    r = _run("inspect", "units", str(trained_run), TEXT, "--find", "vowels", "-o", str(out))
    assert r.exit_code == 0, r.output
    assert out.read_text() == "<html>page</html>"
    doc = seen[0]
    assert doc["feature"] == "vowels" and "".join(doc["tokens"]) == TEXT
    assert len(doc["units"]) == 16 * 6 and "r" in doc["units"][0]
    line = _one_error_line(
        _run("inspect", "units", str(trained_run), TEXT, "-o", "page.png"), code=2
    )
    assert "page.html" in line
    r = _run("inspect", "units", str(trained_run), TEXT, "--npz", str(tmp_path))
    assert "is a directory" in _one_error_line(r, code=2) and "reading" not in r.stderr
    under_a_file = tmp_path / "page.html" / "vis"
    r = _run("inspect", "units", str(trained_run), TEXT, "--lstmvis", str(under_a_file))
    assert "is a file, not a directory" in _one_error_line(r, code=2) and "reading" not in r.stderr


MODELS = [("--model", "gru"), ("--model", "rnn"), ("--tokenizer", "word"),
          ("--tokenizer", "sentencepiece")]  # fmt: skip


@pytest.mark.parametrize("extra", MODELS)
def test_gru_rnn_and_word_models(tmp_path: Path, corpus_file: Path, extra: tuple[str, str]) -> None:
    run = _train(tmp_path, corpus_file, "run", *extra)
    r = _run("inspect", "units", str(run), TEXT, "--find", "capitals", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["model"] == ("lstm" if extra[0] == "--tokenizer" else extra[1])
    s = _run("inspect", "surprisal", str(run), TEXT, "--json")
    assert s.exit_code == 0, s.output
    tokens = [t["token"] for t in json.loads(s.stdout)["tokens"]]
    if extra[1] == "word":
        assert "Citizen" in tokens  # shown per word
    else:
        assert "".join(tokens) == TEXT
    assert len(tokens) < len(TEXT) or extra[0] == "--model"


def _quoted_corpus(path: Path, sentences: int = 1500) -> None:
    """Words in quotes are upper case: to predict the case, a model must know it is inside."""
    rng = random.Random(0)
    words = ["the", "a", "cat", "sat", "on", "mat", "dog", "ran", "far", "big", "red"]
    lines = []
    for _ in range(sentences):
        parts = []
        for _ in range(rng.randint(3, 8)):
            if rng.random() < 0.3:
                quoted = " ".join(rng.choice(words).upper() for _ in range(rng.randint(1, 4)))
                parts.append(f'"{quoted}"')
            else:
                parts.append(rng.choice(words))
        lines.append(" ".join(parts) + ".")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_find_quotes_finds_a_quote_unit(tmp_path: Path) -> None:
    corpus = tmp_path / "quotes.txt"
    _quoted_corpus(corpus)
    out = tmp_path / "q"
    r = _run("train", str(corpus), "--out", str(out), "--hidden-size", "32", "--embed-size", "16",
             "--layers", "1", "--batch-size", "16", "--bptt", "64", "--max-steps", "300",
             "--eval-every", "100", "--sample-length", "20", "--seed", "1", "--max-time", "none",
             "--threads", "1", "--lr", "1e-2")  # fmt: skip
    assert r.exit_code == 0, r.output
    text = corpus.read_text()[:1500]
    r = _run("inspect", "units", str(out), text, "--find", "quotes", "--top", "3", "--json")
    assert r.exit_code == 0, r.output
    best = json.loads(r.stdout)["ranking"][0]
    assert abs(best["r"]) >= 0.8, best


def test_a_feature_that_never_varies_and_an_unrecordable_model_are_one_line(
    trained_run: Path, monkeypatch
) -> None:
    line = _one_error_line(_run("inspect", "units", str(trained_run), TEXT, "--find", "quotes"))
    assert "'quotes' does not vary" in line

    def refuse(*_: object) -> None:
        raise ValueError("cannot record states: the model's forward pass is not the cells'")

    monkeypatch.setattr("charlm.cli.inspect_units.record", refuse)
    line = _one_error_line(_run("inspect", "surprisal", str(trained_run), TEXT))
    assert "cannot record states" in line and "charlm inspects the cells it trains" in line
