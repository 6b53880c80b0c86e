"""Loading a trained model for inference: the one place sample, prime and evaluate get it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charlm.config.runtime import resolve_device
from charlm.config.schema import RunConfig
from charlm.data.tokenizers import Tokenizer, tokenizer_from_dict
from charlm.errors import CharlmError, CheckpointError
from charlm.models.lm import RNNLM
from charlm.rundir import checkpoint as ckpt_io

DEFAULT_ROOT = "checkpoints"
# sample and prime default to the CPU, unlike train and evaluate ("auto"): one stream is a
# chain of tiny steps that the exact NumPy step runs on the CPU anyway (docs/commands/sample.md),
# so a GPU would add start-up time and a copy per step. --device auto or cuda still asks for one.
GENERATION_DEVICE = "cpu"


@dataclass
class LoadedModel:
    model: RNNLM  # in eval mode, on ``device``
    tokenizer: Tokenizer
    config: RunConfig
    path: Path  # the checkpoint file read
    found: bool  # True when no path was given and the latest checkpoint was picked
    state: dict[str, Any] = field(default_factory=dict)  # training progress (step, best_val)


def load_model(
    checkpoint: str | Path | None = None,
    device: str = GENERATION_DEVICE,
    root: str | Path = DEFAULT_ROOT,
) -> LoadedModel:
    """A model ready to score and sample from.

    ``checkpoint`` is a checkpoint file or a run directory (its best checkpoint, else its
    latest); None picks the most recently written best checkpoint under ``root``.
    """
    path = ckpt_io.find_latest(root) if checkpoint is None else ckpt_io.resolve(checkpoint)
    ck = ckpt_io.load(path)
    try:
        tokenizer = tokenizer_from_dict(ck.tokenizer)
    except (CharlmError, ValueError, KeyError) as e:
        raise CheckpointError(
            f"{path}: cannot rebuild its tokenizer ({e}); upgrade charlm or retrain"
        ) from e
    if tokenizer.vocab_size != ck.config.model.vocab_size:  # ids the tokenizer cannot decode
        raise CheckpointError(
            f"{path}: its tokenizer has {tokenizer.vocab_size} tokens but its model "
            f"{ck.config.model.vocab_size}: the file is damaged; retrain with 'charlm train CORPUS'"
        )
    model = RNNLM(ck.config.model, loading=True)
    ckpt_io.load_weights(model, ck)
    model.to(resolve_device(device)).eval()
    return LoadedModel(model, tokenizer, ck.config, path, checkpoint is None, ck.state)


def require_forward(lm: LoadedModel, command: str) -> None:
    """Refuse a backward model where text can only grow to the right (completions, chat,
    serving): its continuations would be of the text read backwards."""
    if lm.model.cfg.reverse:
        raise CheckpointError(
            f"{lm.path} reads text right to left (trained with --reverse): {command} needs a "
            "forward run; charlm sample and prime write what comes before a text with it"
        )
