"""The benchmark suite's plumbing, on micro shapes: no timing is asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench import memory, quality, report, training
from bench.training import Shape, charlm_rate, reference_rate
from charlm.cli import app
from tests.helpers.marks import needs_bf16


def test_flops_count_every_matrix_multiply() -> None:
    s = Shape(layers=2, hidden=10, bptt=5, batch=3, steps=1, embed=4, vocab=7)
    # layer 1: 2*4*10*(4+10); layer 2: 2*4*10*(10+10); decoder 2*10*7; times 3 for training
    assert s.flops_per_token() == 3 * (1120 + 1600 + 140)
    assert s.name == "2x10 seq 5 batch 3"


class _TickClock:
    """A perf_counter that advances one second per reading: a rate then counts tokens."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 1.0
        return self.now


@pytest.mark.parametrize("rate", [charlm_rate, reference_rate])
def test_both_loops_time_exactly_the_steps_after_warm_up(rate, monkeypatch) -> None:
    # Each loop reads the clock once before its timed steps and once after them, so with a
    # clock that ticks one second per reading its rate is the tokens it timed: exactly
    # steps x batch x bptt, with no warm-up step, no evaluation and no other rank counted.
    monkeypatch.setattr(training, "time", _TickClock())
    shape, steps = Shape(1, 16, 8, 4, steps=3), 3
    assert rate(shape, steps, 1) == steps * shape.batch * shape.bptt


@pytest.mark.parametrize("kind", training.CELLS)
def test_a_cell_row_times_both_cells_through_charlm(kind, monkeypatch) -> None:
    monkeypatch.setattr(training, "time", _TickClock())
    shape = Shape(1, 8, 8, 4, steps=2)
    row = training.compare_cell(kind, shape, threads=1, reps=2, steps=2)
    tokens = 2 * shape.batch * shape.bptt  # per run, with a clock ticking once per reading
    assert row["runs"] == {kind: [tokens] * 2, "lstm": [tokens] * 2}
    assert row["ratio"] == 1.0 and row["paired_ratios"] == "1.00, 1.00"
    assert "| config | model | threads | model_tok_s |" in "\n".join(report.table([row]))


def test_charlm_is_timed_on_the_reference_loops_network(monkeypatch) -> None:
    # The reference loop has no dropout; charlm's default preset has some: timed on the
    # preset's dropout, charlm would be timing masks the reference never draws.
    seen = []
    real = training.new_trainer
    monkeypatch.setattr(
        training, "new_trainer", lambda c, *a, **k: seen.append(c) or real(c, *a, **k)
    )
    charlm_rate(Shape(2, 16, 32, 8, steps=3), 3, 1)
    m = seen[0].model
    assert (m.model, m.num_layers, m.hidden_size, m.embed_size) == ("lstm", 2, 16, 64)
    assert m.dropout == 0.0 and m.embed_dropout in (None, 0.0) and not m.tie_weights


@needs_bf16
def test_a_loop_row_times_the_same_run_through_the_loop_and_through_nn_lstm(monkeypatch) -> None:
    from charlm.models import lstmloop

    monkeypatch.setattr(training, "time", _TickClock())
    calls: list[int] = []
    real = lstmloop.lstm_forward
    monkeypatch.setattr(lstmloop, "lstm_forward", lambda *a: calls.append(1) or real(*a))
    shape = Shape(1, 8, 8, 4, steps=2)
    row = training.compare_loop(shape, threads=1, reps=2, steps=2)
    tokens = 2 * shape.batch * shape.bptt
    assert row["runs"] == {"loop": [tokens] * 2, "nn.LSTM": [tokens] * 2}
    assert len(calls) == 2 * (training.WARM + 2)  # every step of the two loop runs, no other
    assert row["charlm_uses"] == "nn.LSTM"  # 8 units: below the rule's width
    assert lstmloop.LOOP_FROM_HIDDEN > 8  # the rule is put back


def test_markdown_renders_rows_and_scalars_and_skips_nested_values() -> None:
    host = {"date": "today", "cpu": "cpu", "cores": 2, "torch": "2", "load_average_1min": 0.1}
    sections = {
        "training": {"threads": 1, "rows": [{"config": "a|b", "ratio": 0.987, "runs": [1, 2]}]},
        "quality": {"skipped": "no corpus"},
    }
    text = report.markdown(sections, host, quick=True)
    assert "## Benchmarks (--quick)" in text
    assert "| config | ratio |" in text and "| a\\|b | 0.987 |" in text
    assert "runs" not in text
    assert "skipped: no corpus" in text


def test_save_writes_json(tmp_path: Path) -> None:
    path = report.save("x", {"a": 1}, tmp_path)
    assert path.read_text().strip().startswith("{") and '"a": 1' in path.read_text()


def test_quality_skips_without_the_corpus(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(quality, "CORPUS", tmp_path / "absent.txt")
    assert "absent" in quality.run(quick=True)["skipped"]


def test_memory_configs_train_the_speed_shapes(tmp_path: Path) -> None:
    """The memory rows must measure the networks the speed rows time, not the default preset."""
    corpus = tmp_path / "c.txt"
    corpus.write_text("to be or not to be, that is the question.\n" * 200)
    shape = Shape(layers=2, hidden=16, bptt=8, batch=3, steps=1, embed=4)
    result = CliRunner().invoke(app, ["train", str(corpus), *memory.shape_args(shape), "--dry-run"])
    assert result.exit_code == 0, result.output
    config = json.loads(result.stdout)["config"]
    assert (config["model"]["num_layers"], config["model"]["hidden_size"]) == (2, 16)
    assert config["model"]["model"] == "lstm" and config["model"]["embed_size"] == 4
    assert (config["train"]["bptt"], config["train"]["batch_size"]) == (8, 3)


def test_ngram_child_fits_scores_and_reports_its_memory(tmp_path: Path) -> None:
    from bench import ngram

    corpus = tmp_path / "c.txt"
    corpus.write_text("to be or not to be, that is the question.\n" * 300)
    result = ngram.measure(corpus, 3, score=True)
    assert result["order"] == 3 and set(result["val_bpc"]) == {"1", "2", "3"}
    assert result["val_bpc"]["3"] < result["val_bpc"]["1"]  # a repeated line is predictable
    assert result["peak_rss_mb"] >= result["rss_before_fit_mb"] > 0
    assert result["cache_mb"] > 0
