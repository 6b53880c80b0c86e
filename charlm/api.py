"""charlm from Python: load a trained model, sample and prime it, score text; train a run.

The same library calls the command line makes, without the command line::

    import charlm

    run = charlm.train("corpus.txt", out="runs/mine", preset="tiny", max_steps=200, seed=1)
    model = charlm.load(run)
    print(model.sample(200, temperature=0.8, seed=1))
    print(model.prime("To be, or not", 100, greedy=True))
    print(model.score("Some held-out text.").bits_per_char)

Nothing here prints; errors are ``charlm.errors.CharlmError`` with a message that says what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charlm.config.options import check_tokenizer_options, resolve_config
from charlm.config.runtime import set_threads
from charlm.data.corpus import read_corpus
from charlm.data.tokenizers import Tokenizer
from charlm.evaluation.scoring import TextScore, score_text
from charlm.generation.generate import GenerateConfig, generate_text
from charlm.generation.load import GENERATION_DEVICE, LoadedModel, load_model
from charlm.generation.sampling import SamplingConfig
from charlm.models.lm import RNNLM
from charlm.rundir.lock import run_lock
from charlm.training.events import Callback
from charlm.training.setup import choose_run_dir, new_trainer


@dataclass
class Model:
    """A trained model and its tokenizer, in eval mode, ready to sample and score."""

    loaded: LoadedModel

    @property
    def network(self) -> RNNLM:
        return self.loaded.model

    @property
    def tokenizer(self) -> Tokenizer:
        return self.loaded.tokenizer

    def sample(self, length: int = 200, *, num_samples: int = 1, **how: Any) -> str | list[str]:
        """New text from the start context; ``how``: temperature, bias, top_k, top_p, greedy
        (as ``SamplingConfig``), seed and stop. One sample is a string, several a list."""
        return self.prime("", length, num_samples=num_samples, **how)

    def prime(
        self, text: str, length: int = 200, *, num_samples: int = 1, **how: Any
    ) -> str | list[str]:
        """The continuation of ``text`` (without it). Characters the model never saw raise
        ``UnknownCharactersError`` naming them."""
        seed, stop = how.pop("seed", None), tuple(how.pop("stop", ()))
        cfg = GenerateConfig(length, num_samples, stop, seed, SamplingConfig(**how))
        ids = self.tokenizer.encode(text) if text else []
        texts = generate_text(self.network, self.tokenizer, ids, cfg)
        return texts[0] if num_samples == 1 else texts

    def score(self, text: str) -> TextScore:
        """``text`` scored as ``charlm evaluate`` scores it: ``.bits_per_char``,
        ``.perplexity``, ``.nats_per_token``."""
        tc = self.loaded.config.train  # the run's own windows, as evaluate's defaults are
        device = next(self.network.parameters()).device
        net, tok = self.network, self.tokenizer
        return score_text(net, tok, text, "", tc.eval_batch_size, tc.bptt, device)


def load(run: str | Path, device: str = GENERATION_DEVICE) -> Model:
    """A run directory (its best checkpoint, else its latest) or a checkpoint file."""
    return Model(load_model(run, device))


def train(
    corpus: str | Path | list[str | Path],
    *,
    out: str | Path,
    preset: str | None = None,
    seed: int | None = None,
    force: bool = False,
    on_event: Callback | None = None,
    **options: Any,
) -> Path:
    """Train a new run in ``out`` and return its directory.

    ``options`` are `charlm train`'s, by their Python names (``hidden_size=128``,
    ``max_steps=500``, ``max_time="5m"``); ``on_event`` receives the training events (steps,
    evaluations, the finish) as the command line's progress display does.
    """
    sources = [str(c) for c in corpus] if isinstance(corpus, list) else [str(corpus)]
    config, _ = resolve_config(preset, options)
    check_tokenizer_options(config.data.tokenizer, options)
    data = read_corpus(sources, config.data.encoding)
    run_dir = choose_run_dir(str(out), data.name, config.model.model, force)
    trainer, _ = new_trainer(config, data, run_dir, seed, given=options)
    set_threads(config.train.threads)
    with run_lock(trainer.run_dir):
        trainer.run(on_event or (lambda event: None))
    return trainer.run_dir
