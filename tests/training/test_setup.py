"""Run setup: configs are derived, not changed in place; a Trainer is built without side effects."""

from __future__ import annotations

import copy
import shutil
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from charlm.data import corpus as corpus_module
from charlm.data import token_cache, tokenizers
from charlm.data.corpus import prepare, read_corpus
from charlm.data.tokenizers import CharTokenizer
from charlm.models.lm import RNNLM
from charlm.rundir.progress import TrainState
from charlm.training import distributed
from charlm.training.setup import new_trainer, resume_trainer
from charlm.training.trainer import Trainer
from tests.helpers import micro_config


def test_new_trainer_leaves_the_callers_config_as_it_was(corpus_file: Path, tmp_path: Path) -> None:
    config = micro_config()
    before = copy.deepcopy(config)
    trainer, _ = new_trainer(config, read_corpus(str(corpus_file)), tmp_path / "run", seed=4)
    assert config == before
    assert trainer.config.model.vocab_size == trainer.tokenizer.vocab_size > 0
    assert trainer.config.train.seed == 4 and before.train.seed is None


def test_init_from_takes_the_architecture_without_touching_either_config(
    corpus_file: Path, trained_run: Path, tmp_path: Path
) -> None:
    config = micro_config()  # 2 layers of 16; the trained run has 1
    before = copy.deepcopy(config)
    corpus = read_corpus(str(corpus_file))
    trainer, _ = new_trainer(config, corpus, tmp_path / "ft", seed=1, init_from=str(trained_run))
    assert config == before and trainer.config.model.num_layers == 1


def test_resume_applies_bounds_through_validation(trained_run: Path) -> None:
    trainer, notes = resume_trainer(trained_run, options={"max_steps": 30, "hidden_size": 99})
    assert trainer.config.train.max_steps == 30 and trainer.config.model.hidden_size == 16
    assert any("--hidden-size ignored when resuming" in n for n in notes)


def test_a_trainer_is_built_without_seeding_or_joining_anything(
    corpus_file: Path, tmp_path: Path
) -> None:
    prep = prepare(micro_config(), read_corpus(str(corpus_file)))
    config = micro_config()
    config = replace(config, model=replace(config.model, vocab_size=prep.tokenizer.vocab_size))
    model = RNNLM(config.model)
    rng = torch.get_rng_state()
    trainer = Trainer(
        config, prep.tokenizer, prep.splits, prep.val_chars, tmp_path, TrainState(seed=99),
        model, model, torch.device("cpu"),
    )  # fmt: skip
    assert torch.equal(torch.get_rng_state(), rng)  # the global stream is the caller's
    assert not distributed.is_initialized()
    assert trainer.main and trainer.world == 1 and not tmp_path.joinpath("config.json").exists()


def test_resuming_a_finished_run_says_so_and_trains_nothing(trained_run: Path) -> None:
    from typer.testing import CliRunner

    from charlm.cli import app

    latest = trained_run / "latest.safetensors"
    before = latest.read_bytes()
    result = CliRunner().invoke(app, ["train", "--resume", str(trained_run)])
    assert result.exit_code == 0, result.output  # finished is no error
    assert "is finished (max_steps reached at step 12)" in result.stderr
    assert "--max-steps 24" in result.stderr
    assert latest.read_bytes() == before  # not one step more, nothing rewritten


def test_a_finished_run_resumes_with_a_larger_bound(trained_run: Path) -> None:
    trainer, _ = resume_trainer(trained_run, options={"max_steps": 14})
    assert trainer.state.step == 12 and trainer.run().state.step == 14


@pytest.mark.parametrize("streamed", [False, True])
def test_a_new_run_and_its_resume_each_read_tokenize_and_make_tokens_once(
    corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, streamed: bool
) -> None:
    monkeypatch.setenv("CHARLM_CACHE_DIR", str(tmp_path / "cache"))
    if streamed:  # the file stays on disk and goes through the token cache
        monkeypatch.setattr(corpus_module, "STREAM_ABOVE_BYTES", 0)
    calls: Counter[str] = Counter()

    def count(owner: object, name: str, what: str) -> None:
        real = getattr(owner, name)

        def counted(*args: object, **kwargs: object) -> object:
            calls[what] += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)

    count(corpus_module, "read_text", "reads")  # the whole text into memory
    count(token_cache, "_scan", "reads")  # a streamed text counted and hashed
    count(corpus_module.Corpus, "_chunks", "reads")  # a streamed text hashed alone
    count(token_cache, "_write_tokens", "token files")

    class CountedChars(CharTokenizer):
        @classmethod
        def from_dict(cls, d: dict[str, Any]) -> CharTokenizer:
            calls["tokenizers"] += 1
            return super().from_dict(d)

        @classmethod
        def train_chunks(cls, chunks: Iterable[str], config: object = None) -> CharTokenizer:
            calls["tokenizers"] += 1
            return super().train_chunks(chunks)

    monkeypatch.setitem(tokenizers._REGISTRY, "char", CountedChars)
    once = {"reads": 1, "tokenizers": 1, "token files": int(streamed)}

    config = micro_config(max_steps=2, eval_every=2, sample_length=0)
    trainer, _ = new_trainer(config, read_corpus(str(corpus_file)), tmp_path / "run", seed=1)
    assert calls == +Counter(once)
    trainer.run()
    calls.clear()
    resume_trainer(tmp_path / "run")
    # A streamed resume finds its token file cached (with the text's hash): nothing to read.
    cached = once | {"reads": 0, "token files": 0}
    assert calls == +Counter(cached if streamed else once)
    if streamed:
        shutil.rmtree(tmp_path / "cache")
        calls.clear()
        resume_trainer(tmp_path / "run")
        assert calls == +Counter(once)
