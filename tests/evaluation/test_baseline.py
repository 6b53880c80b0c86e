"""`charlm evaluate --baseline ngram:N|best` on runs made by `charlm train`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from charlm.cli import app
from charlm.data.corpus import prepare, read_corpus
from charlm.errors import ConfigError
from charlm.evaluation.baseline import BaselineSpec, RunData, fit_baseline, score_ngram
from charlm.evaluation.ngram import count_ngrams
from charlm.generation.load import load_model
from tests.helpers import MICRO_ARGS


def run_cli(*args: str) -> object:
    return CliRunner().invoke(app, list(args))


def run_data(run: Path) -> RunData:
    lm = load_model(run)
    state = lm.state
    return RunData(run, lm.config, lm.tokenizer, state["corpus"], state["corpus_sha256"])


def test_parse() -> None:
    assert BaselineSpec.parse("ngram:7").order == 7
    assert BaselineSpec.parse("ngram:best").order is None
    for bad in ("ngram", "ngram:0", "ngram:21", "ngram:x", "kenlm:3"):
        with pytest.raises(ConfigError, match="--baseline"):
            BaselineSpec.parse(bad)


def test_fitted_on_the_training_split_only(trained_run: Path) -> None:
    run = run_data(trained_run)
    fit = fit_baseline(run, BaselineSpec(3))
    train = prepare(run.config, read_corpus(run.corpus), run.tokenizer).splits.train
    want = count_ngrams(train, run.tokenizer.vocab_size, 3).model(3)
    text = np.asarray(train[-200:])
    np.testing.assert_array_equal(fit.model.log_probs(text), want.log_probs(text))
    assert fit.model.orders[-1].counts.sum() == len(train) - 2  # raw 3-gram counts


def test_best_is_the_lowest_validation_bpc_and_is_cached(trained_run: Path) -> None:
    run = run_data(trained_run)
    first = fit_baseline(run, BaselineSpec(None))
    assert not first.cached and sorted(first.val_bpc) == list(range(1, 21))
    assert first.order == min(first.val_bpc, key=first.val_bpc.__getitem__)
    prep = prepare(run.config, read_corpus(run.corpus), run.tokenizer)
    nats = -first.model.log_probs(prep.splits.val).sum()
    assert first.val_bpc[first.order] == pytest.approx(nats / (prep.val_chars * math.log(2)))
    again = fit_baseline(run, BaselineSpec(None))
    assert again.cached and again.order == first.order and again.val_bpc == first.val_bpc


def test_cache_is_keyed_by_the_corpus(trained_run: Path, tmp_path: Path) -> None:
    run = run_data(trained_run)
    fit_baseline(run, BaselineSpec(2))
    assert fit_baseline(run, BaselineSpec(2)).cached
    changed = tmp_path / "changed.txt"
    changed.write_text(Path(run.corpus).read_text() + "More words at the end.\n")
    other = fit_baseline(
        RunData(run.run_dir, run.config, run.tokenizer, str(changed), ""), BaselineSpec(2)
    )
    assert not other.cached and "not the text the run trained on" in other.warnings[0]
    files = sorted((trained_run / "ngram").glob("*.npz"))
    assert len(files) == 2
    with np.load(files[0], allow_pickle=False) as f:  # no pickle needed to read it
        assert "keys_1" in f.files and "counts_2" in f.files


def test_cli_table_json_and_second_call_from_cache(trained_run: Path, corpus_file: Path) -> None:
    r = run_cli("evaluate", str(trained_run), str(corpus_file), "--baseline", "ngram:4", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)  # stdout holds the JSON alone
    base = doc["baseline"]
    assert base["order"] == 4 and base["kind"] == "ngram"
    rnn_bpc, ngram_bpc = doc["total"]["bits_per_char"], base["total"]["bits_per_char"]
    assert base["ngram_minus_rnn_bits_per_char"] == pytest.approx(ngram_bpc - rnn_bpc)
    lm = load_model(trained_run)
    model = fit_baseline(run_data(trained_run), BaselineSpec(4)).model
    direct = score_ngram(model, lm.tokenizer, corpus_file.read_text())
    assert ngram_bpc == pytest.approx(direct.bits_per_char)
    assert "4-gram bits/char" in r.stderr and "fitted in" in r.stderr
    again = run_cli("evaluate", str(trained_run), str(corpus_file), "--baseline", "ngram:4")
    assert again.exit_code == 0 and "read from" in again.stderr
    assert f"{ngram_bpc:.4f}" in again.stderr


def test_word_tokenizer_run(tmp_path: Path, corpus_file: Path) -> None:
    out = tmp_path / "words"
    args = [*MICRO_ARGS, "--tokenizer", "word", "--bptt", "4", "--batch-size", "2"]
    r = run_cli("train", str(corpus_file), "--out", str(out), *args)
    assert r.exit_code == 0, r.output
    r = run_cli("evaluate", str(out), str(corpus_file), "--baseline", "ngram:best", "--json")
    assert r.exit_code == 0, r.output
    base = json.loads(r.stdout)["baseline"]
    # The toy corpus repeats one verse: a long enough word n-gram predicts it almost surely.
    assert base["total"]["bits_per_char"] < json.loads(r.stdout)["total"]["bits_per_char"]
    assert base["val_bits_per_char"]["1"] > base["val_bits_per_char"][str(base["order"])]


def test_errors_are_one_line(trained_run: Path, corpus_file: Path, tmp_path: Path) -> None:
    r = run_cli("evaluate", str(trained_run), str(corpus_file), "--baseline", "ngram:x")
    assert r.exit_code == 2 and r.stderr.startswith("charlm: error: unknown n-gram order")
    missing = str(tmp_path / "gone.txt")
    r = run_cli("evaluate", str(trained_run), str(corpus_file), "--baseline", "ngram:2",
                "--corpus", missing)  # fmt: skip
    assert r.exit_code == 1 and r.stderr.count("\n") == 1
    assert "is not there: give it with --corpus PATH" in r.stderr
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("F")
    r = run_cli("evaluate", str(trained_run), str(corpus_file), "--baseline", "ngram:2",
                "--corpus", str(tiny))  # fmt: skip
    assert r.exit_code == 1 and "too few to fit an n-gram" in r.stderr
    r = run_cli("evaluate", str(trained_run), str(corpus_file), "--corpus", str(corpus_file))
    assert r.exit_code == 2 and "--corpus only serves --baseline" in r.stderr
