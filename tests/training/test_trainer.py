"""The training loop: learning, clipping, detaching, exact resume, init-from, early stopping."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from charlm.config.schema import RunConfig
from charlm.data.corpus import read_corpus
from charlm.models.lm import hidden_tensors
from charlm.rundir import checkpoint as ckpt_io
from charlm.training.events import EvalEvent, StepEvent
from charlm.training.setup import new_trainer, resume_trainer
from charlm.training.trainer import Trainer
from tests.helpers import micro_config


def _trainer(corpus_file: Path, run_dir: Path, config: RunConfig | None = None) -> Trainer:
    config = config or micro_config()
    trainer, _ = new_trainer(config, read_corpus(str(corpus_file)), run_dir, seed=11)
    return trainer


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_training_lowers_validation_loss(corpus_file: Path, tmp_path: Path, kind: str) -> None:
    trainer = _trainer(corpus_file, tmp_path, micro_config(kind, epochs=6, eval_every=40, lr=2e-2))
    evals: list[EvalEvent] = []
    trainer.run(lambda e: evals.append(e) if isinstance(e, EvalEvent) else None)
    first_step_loss = math.log(trainer.tokenizer.vocab_size)
    assert evals[-1].best_val < first_step_loss - 0.8
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {"step", "tokens_seen", "train_loss", "lr", "grad_norm", "tokens_per_s"} <= set(rows[0])
    assert any("val_bpc" in r for r in rows)
    assert (tmp_path / "samples.txt").read_text().count("===== step") == len(evals)


def test_step_clips_global_norm_and_reports_it_before_clipping(
    corpus_file: Path, tmp_path: Path
) -> None:
    config = micro_config(grad_clip=0.01)
    trainer = _trainer(corpus_file, tmp_path, config)
    x, y = trainer.batcher.window(0)
    grads_after: list[float] = []
    real_step = trainer.optimizer.step

    def spy_step(*args: object, **kwargs: object) -> None:
        norms = [p.grad.norm() for p in trainer.model.parameters() if p.grad is not None]
        grads_after.append(float(torch.linalg.vector_norm(torch.stack(norms))))
        real_step(*args, **kwargs)

    trainer.optimizer.step = spy_step  # type: ignore[method-assign]
    _, norm, _ = trainer.train_step(x, y, total_steps=10)
    assert norm > 0.01  # the logged norm is the one before clipping
    assert grads_after[0] == pytest.approx(0.01, rel=1e-3)
    assert all(t.grad_fn is None for t in hidden_tensors(trainer.hidden))  # detached


def test_first_step_loss_is_close_to_ln_vocabulary(corpus_file: Path, tmp_path: Path) -> None:
    trainer = _trainer(corpus_file, tmp_path)
    losses: list[float] = []
    trainer.config.train.max_steps = 1
    trainer.run(lambda e: losses.append(e.loss) if isinstance(e, StepEvent) else None)
    assert losses[0] == pytest.approx(math.log(trainer.tokenizer.vocab_size), abs=0.15)


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return ckpt_io.load(run_dir / ckpt_io.LATEST).model


@pytest.mark.parametrize(
    ("kind", "penalty"), [("lstm", {}), ("esn", {}), ("gru", {"state_penalty": 0.5})]
)
def test_interrupted_then_resumed_run_equals_uninterrupted(
    corpus_file: Path, tmp_path: Path, kind: str, penalty: dict[str, float]
) -> None:
    # Dropout on, two epochs and several evaluations: resume must restore weights, optimizer,
    # schedule, position in the data, hidden state and random state exactly (and an echo-state
    # network its reservoir, a penalised run its penalty).
    def config() -> RunConfig:
        return micro_config(kind, epochs=2, max_steps=None, eval_every=7, **penalty)

    straight = _trainer(corpus_file, tmp_path / "a", config())
    total = straight.total_steps()
    assert total > 20
    straight.run()

    stopped = _trainer(corpus_file, tmp_path / "b", config())

    def stop_midway(e: object) -> None:
        if isinstance(e, StepEvent) and e.step == total // 2 + 3:  # inside the second epoch
            stopped.stop_requested = True

    result = stopped.run(stop_midway)
    assert result.reason == "interrupted" and result.state.epoch == 1
    resumed, _ = resume_trainer(tmp_path / "b")
    assert resumed.state.step == total // 2 + 3
    assert resumed.run().reason == "epochs"
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.state.best_val == straight.state.best_val


def test_init_from_reuses_weights_and_vocabulary_and_reports_unknown_characters(
    corpus_file: Path, trained_run: Path, tmp_path: Path
) -> None:
    new_corpus = tmp_path / "new.txt"
    new_corpus.write_text(corpus_file.read_text() + "Zebra! ~", encoding="utf-8")
    config = micro_config()
    trainer, warnings = new_trainer(
        config, read_corpus(str(new_corpus)), tmp_path / "ft", seed=1, init_from=str(trained_run)
    )
    source = ckpt_io.load(trained_run / ckpt_io.BEST)
    assert trainer.tokenizer.to_dict() == source.tokenizer
    assert all(torch.equal(trainer.model.state_dict()[k], v) for k, v in source.model.items())
    assert trainer.config.model.hidden_size == source.config.model.hidden_size
    assert len(warnings) == 1 and "'Z' at" in warnings[0] and "'~' at" in warnings[0]


def test_patience_stops_early(corpus_file: Path, tmp_path: Path) -> None:
    # lr 0 never improves after the first evaluation, so patience 2 stops at the third.
    trainer = _trainer(corpus_file, tmp_path, micro_config(lr=1e-9, epochs=50, eval_every=2))
    trainer.config.train.patience = 2
    result = trainer.run()
    assert result.reason == "patience" and result.state.step == 6


def test_plateau_schedule_cuts_by_four_when_validation_stalls_down_to_the_floor(
    corpus_file: Path, tmp_path: Path
) -> None:
    # lr 1e-9 never improves after the first evaluation (step 2): each later one cuts by 4,
    # down to lr * min_lr_frac; the cuts are part of the resumable state.
    config = micro_config(lr=1e-9, epochs=50, eval_every=2, warmup_steps=0, max_steps=12)
    config.train.schedule, config.train.min_lr_frac = "plateau", 0.02
    trainer = _trainer(corpus_file, tmp_path, config)
    lrs: dict[int, float] = {}
    trainer.run(lambda e: lrs.update({e.step: e.lr}) if isinstance(e, StepEvent) else None)
    expected = [1, 1, 1, 1, 1 / 4, 1 / 4, 1 / 16, 1 / 16] + [0.02] * 4
    assert [lrs[s] / 1e-9 for s in range(1, 13)] == pytest.approx(expected)
    assert resume_trainer(tmp_path)[0].state.plateau_cuts == 5


def test_non_finite_loss_skips_the_update(corpus_file: Path, tmp_path: Path) -> None:
    trainer = _trainer(corpus_file, tmp_path)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with torch.no_grad():
        trainer.model.decoder.bias[0] = float("nan")
    before["decoder.bias"] = trainer.model.decoder.bias.detach().clone()
    loss, norm, _ = trainer.train_step(*trainer.batcher.window(0), total_steps=10)
    assert loss is None and not math.isfinite(norm)
    after = trainer.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k != "decoder.bias")
