"""Weight averaging (--average-from): the mean itself, what uses it, exact resume, the options."""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from bench import averaging as bench_averaging
from charlm.cli import app
from charlm.config.options import resolve_config, resume_config
from charlm.config.schema import ModelConfig, RunConfig
from charlm.data.corpus import read_corpus
from charlm.errors import ConfigError
from charlm.evaluation.scoring import score_tokens
from charlm.models.lm import RNNLM
from charlm.rundir import checkpoint as ckpt_io
from charlm.training import averaging
from charlm.training.averaging import WeightAverage
from charlm.training.events import EvalEvent, InfoEvent, StepEvent
from charlm.training.setup import new_trainer, resume_trainer
from charlm.training.trainer import Trainer
from tests.helpers import MICRO_ARGS, micro_config


def _trainer(corpus_file: Path, run_dir: Path, config: RunConfig) -> Trainer:
    trainer, _ = new_trainer(config, read_corpus(str(corpus_file)), run_dir, seed=5)
    return trainer


def _params(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_the_average_is_the_mean_of_the_weights_after_each_step_from_the_start(
    corpus_file: Path, tmp_path: Path
) -> None:
    # 8 steps from 0.5 on: steps 4..8 (progress 4/8 = 0.5 counts), each the weights after it.
    trainer = _trainer(corpus_file, tmp_path, micro_config(max_steps=8, average_from=0.5))
    after: dict[int, list[torch.Tensor]] = {}
    notes: list[str] = []

    def record(e: object) -> None:
        if isinstance(e, StepEvent):
            after[e.step] = _params(trainer.model)
        elif isinstance(e, InfoEvent):
            notes.append(e.message)

    trainer.run(record)
    assert trainer.average is not None and trainer.state.averaged_steps == 5
    for i, mean in enumerate(trainer.average.model.parameters()):
        by_hand = torch.stack([after[s][i] for s in range(4, 9)]).mean(0)
        torch.testing.assert_close(mean, by_hand, rtol=0, atol=1e-6)
    assert not torch.equal(next(trainer.average.model.parameters()), after[8][0])
    assert [n for n in notes if "averaging" in n] == [
        "step 4: averaging the weights from here on (--average-from 0.5); scores and "
        "checkpoints use the mean"
    ]


def test_adding_steps_gives_their_uniform_mean_and_the_first_is_exact() -> None:
    torch.manual_seed(0)
    model = RNNLM(ModelConfig(vocab_size=7, embed_size=4, hidden_size=5, tie_weights=False))
    states = []
    average = WeightAverage(model)
    for n in range(1, 5):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        states.append(_params(model))
        average.add(model, n)
        if n == 1:
            assert all(
                torch.equal(a, b)
                for a, b in zip(average.model.parameters(), states[0], strict=True)
            )
    for i, mean in enumerate(average.model.parameters()):
        torch.testing.assert_close(mean, torch.stack([s[i] for s in states]).mean(0))
        assert not mean.requires_grad


def test_tied_weights_stay_tied_in_the_average() -> None:
    model = RNNLM(ModelConfig(vocab_size=7, embed_size=6, hidden_size=6, tie_weights=True))
    average = WeightAverage(model)
    assert average.model.decoder.weight is average.model.embed.weight
    assert len(list(average.model.parameters())) == len(list(model.parameters()))


def test_scores_samples_and_checkpoints_use_the_average_training_the_raw_weights(
    corpus_file: Path, tmp_path: Path
) -> None:
    config = micro_config(max_steps=10, eval_every=5, average_from=0.3)
    trainer = _trainer(corpus_file, tmp_path, config)
    evals = []
    trainer.run(lambda e: evals.append(e) if isinstance(e, EvalEvent) else None)
    assert trainer.average is not None
    mean, raw = trainer.average.model, trainer.model
    tc = trainer.config.train
    scored = [score_tokens(m, trainer.splits.val, tc.eval_batch_size, tc.bptt) for m in (mean, raw)]
    last = scored[0][0] / scored[0][1]
    assert evals[-1].val_loss == pytest.approx(last, rel=1e-6)
    assert abs(scored[1][0] / scored[1][1] - last) > 1e-4  # the raw weights score otherwise
    latest = ckpt_io.load(tmp_path / ckpt_io.LATEST)
    for name, p in mean.state_dict().items():
        assert torch.equal(latest.model[name], p)
        assert torch.equal(latest.raw[name], raw.state_dict()[name])
    if evals[-1].improved:
        best = ckpt_io.load(tmp_path / ckpt_io.BEST)
        assert all(torch.equal(best.model[k], v) for k, v in mean.state_dict().items())
        assert best.raw == {}  # not resumable: only what sample and evaluate read
    assert latest.state["averaged_steps"] == 8  # steps 3..10


def test_before_averaging_starts_nothing_changes(corpus_file: Path, tmp_path: Path) -> None:
    trainer = _trainer(corpus_file, tmp_path, micro_config(max_steps=10, average_from=0.9))

    def stop(e: object) -> None:
        if isinstance(e, StepEvent) and e.step == 8:
            trainer.stop_requested = True

    trainer.run(stop)
    assert trainer.average is None and trainer.state.averaged_steps == 0
    assert ckpt_io.load(tmp_path / ckpt_io.LATEST).raw == {}


@pytest.mark.parametrize("stop_at", [2, 9], ids=["before-averaging", "while-averaging"])
def test_interrupted_then_resumed_run_equals_uninterrupted(
    corpus_file: Path, tmp_path: Path, stop_at: int
) -> None:
    # Dropout on, several evaluations; averaging starts at step 6 of 14.
    def config() -> RunConfig:
        return micro_config(max_steps=14, eval_every=4, average_from=0.4)

    straight = _trainer(corpus_file, tmp_path / "a", config())
    straight.run()
    stopped = _trainer(corpus_file, tmp_path / "b", config())

    def stop(e: object) -> None:
        if isinstance(e, StepEvent) and e.step == stop_at:
            stopped.stop_requested = True

    assert stopped.run(stop).reason == "interrupted"
    resumed, _ = resume_trainer(tmp_path / "b")
    assert (resumed.average is not None) == (stop_at >= 6)
    assert resumed.run().reason == "max_steps"
    a, b = (ckpt_io.load(tmp_path / run / ckpt_io.LATEST) for run in ("a", "b"))
    assert a.state["averaged_steps"] == b.state["averaged_steps"] == 9
    for name in a.model:
        assert torch.equal(a.model[name], b.model[name]) and torch.equal(a.raw[name], b.raw[name])
    assert resumed.state.best_val == straight.state.best_val


def test_impossible_starts_are_refused() -> None:
    for value in (-0.1, 1.0, float("nan")):
        with pytest.raises(ConfigError, match=r"--average-from must be in \[0, 1\)"):
            resolve_config(None, {"average_from": value})


def test_the_option_is_recorded_and_kept_on_resume(corpus_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", str(corpus_file), "--out", str(out), *MICRO_ARGS, "--average-from", "0.5"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "averaging the weights from here on" in result.stderr and result.stdout == ""
    assert json.loads((out / "config.json").read_text())["train"]["average_from"] == 0.5
    config = ckpt_io.load(out / ckpt_io.LATEST).config
    kept, notes = resume_config(config, {"average_from": 0.1, "max_steps": 20})
    assert kept.train.average_from == 0.5 and kept.train.max_steps == 20
    assert notes == ["--average-from ignored when resuming: the run keeps its own settings"]
    result = CliRunner().invoke(app, ["train", "--resume", str(out), "--max-steps", "14"])
    assert result.exit_code == 0, result.output
    assert ckpt_io.load(out / ckpt_io.LATEST).state["averaged_steps"] == 14 - 6 + 1


def test_off_by_default() -> None:
    config, _ = resolve_config(None, {})
    assert config.train.average_from is None and config.model.embed_dropout is None


def test_the_bench_keeps_the_same_mean_as_the_trainer(corpus_file: Path, tmp_path: Path) -> None:
    micro = ["hidden_size=16", "embed_size=8", "batch_size=4", "bptt=16", "warmup_steps=2"]
    args = argparse.Namespace(
        steps=8, minutes=None, starts="0.5", ema="0.9", set=micro, seed=5, corpus=corpus_file
    )
    result = bench_averaging.run(args)
    options = result["settings"] | {"average_from": 0.5}
    config, _ = resolve_config(None, options)
    trainer = _trainer(corpus_file, tmp_path, config)
    evals = []
    trainer.run(lambda e: evals.append(e) if isinstance(e, EvalEvent) else None)
    scores = result["val_nats_per_char"]
    assert scores["uniform from 0.5 (5 steps)"] == pytest.approx(evals[-1].val_loss, rel=1e-6)
    assert len(scores) == 3 and "| EMA decay 0.9 from 0.5 |" in bench_averaging.table(result)


@pytest.mark.parametrize("private", ["missing", "raising"])
def test_without_torchs_fused_lerp_the_mean_is_the_same(
    monkeypatch: pytest.MonkeyPatch, private: str
) -> None:
    def fold(model: RNNLM) -> list[torch.Tensor]:
        average = WeightAverage(model)
        for n in range(2, 5):
            with torch.no_grad():
                for p in model.parameters():
                    p.mul_(0.9).add_(0.1 * n)
            average.add(model, n)
        return _params(average.model)

    torch.manual_seed(0)
    model = RNNLM(ModelConfig(vocab_size=7, embed_size=4, hidden_size=5, tie_weights=False))
    fused = fold(copy.deepcopy(model))
    if private == "missing":
        monkeypatch.delattr(torch, "_foreach_lerp_")
    else:
        monkeypatch.setattr(torch, "_foreach_lerp_", _raises)
    averaging._fused_lerp_works.cache_clear()
    try:
        assert not averaging._fused_lerp_works()
        looped = fold(model)
    finally:
        averaging._fused_lerp_works.cache_clear()
    for a, b in zip(fused, looped, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-7)


def _raises(*args: object) -> None:
    raise RuntimeError("a changed private call")
