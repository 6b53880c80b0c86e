"""Named bundles of settings for `charlm train --preset`. Explicit options override them.

Each preset's expected validation bits per character on tiny-shakespeare is measured by
the benchmark suite, not guessed: docs/records/defaults.md has how each was chosen.
"""

from __future__ import annotations

from typing import Any

# section -> field -> value, applied over the dataclass defaults.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {  # its own dropout and rate: a 30-second net does not want the default's
        "model": {"hidden_size": 128, "num_layers": 1, "embed_size": 32, "dropout": 0.0},
        "train": {"batch_size": 16, "bptt": 64, "max_time": 30.0, "eval_every": 100, "lr": 1.2e-2},
    },
    "small": {},  # the dataclass defaults: tuned for 10 minutes on a 2-core CPU
    # Weight decay (AdamW's, decoupled) is what lifted the 30-minute net's floor when every other
    # change tried did not (docs/records/defaults.md, "Weight decay for the medium preset"); with
    # the more steps of the LSTM's own loop (lstmloop.py), a decay of 0.2 did best
    # (docs/records/defaults.md, "The LSTM's own loop in bf16").
    "medium": {
        "model": {"hidden_size": 1024, "num_layers": 1, "dropout": 0.25},
        "train": {
            "lr": 6e-3,
            "weight_decay": 0.2,
            "max_time": 1800.0,
            "eval_every": 500,
            "epochs": 100,
        },
    },
    "large": {
        "model": {"hidden_size": 1024, "num_layers": 3, "embed_size": 256, "dropout": 0.25},
        "train": {"batch_size": 64, "bptt": 256, "lr": 2e-3, "max_time": None, "epochs": 50},
    },
}

# ABC tunes (charlm prepare abc): an hour, for whole tunes whose bars add up. Run twice (the
# second time --init-from the first at --lr 3e-3), its tunes' bars add up at temperature 1.0 too
# (docs/records/music.md): one two-hour cosine run was not measured.
PRESETS["music"] = {
    "model": {"hidden_size": 1024, "num_layers": 1, "dropout": 0.2},
    "train": {"lr": 6e-3, "max_time": 3600.0, "eval_every": 500, "epochs": 100},
}

# Word presets, chosen by 15-minute runs against word_language_model (docs/records/word-level.md):
# on a small corpus the wider, more dropped-out net with plain SGD generalises best.
# They were measured in float32: bf16 with SGD at lr 20 is not, so they keep float32.
_WORD_TRAIN = {"batch_size": 20, "bptt": 35, "grad_clip": 0.25, "warmup_steps": 0,
               "optimizer": "sgd", "lr": 20.0, "amp": "off"}  # fmt: skip
PRESETS["word-small"] = {
    "model": {"hidden_size": 400, "embed_size": 400, "num_layers": 2, "dropout": 0.5,
              "tie_weights": True},
    "train": _WORD_TRAIN | {"max_time": 600.0},
}  # fmt: skip
PRESETS["word-medium"] = {
    "model": {"hidden_size": 650, "embed_size": 650, "num_layers": 2, "dropout": 0.5,
              "tie_weights": True},
    "train": _WORD_TRAIN | {"max_time": 3600.0},
}  # fmt: skip

# A preset's learning rate belongs to its optimizer (SGD wants lr 20 where AdamW diverges):
# rates measured with another optimizer, taken when --optimizer changes without --lr
# (docs/records/word-level.md). Where none was measured, --lr is asked for.
OTHER_OPTIMIZER_LR: dict[str, dict[str, float]] = {"word-small": {"adamw": 5e-3}}

# The preset a run gets without --preset: words need smaller steps and dropout, not chars'.
DEFAULT_PRESET = {"char": "small", "word": "word-small", "sentencepiece": "small"}


def default_preset(tokenizer: str) -> str:
    return DEFAULT_PRESET.get(tokenizer, "small")


DESCRIPTIONS = {
    "tiny": "1x128 LSTM, 30 seconds: a smoke test",
    "small": "1x768 LSTM, dropout 0.1, 10 minutes on a 2-core CPU (the char and "
    "sentencepiece default)",
    "medium": "1x1024 LSTM, dropout 0.25, weight decay 0.2, 30 minutes on a 2-core CPU",
    "large": "3x1024 LSTM, 50 epochs: for a GPU",
    "music": "1x1024 LSTM, dropout 0.2, 60 minutes: ABC tunes (charlm prepare abc)",
    "word-small": "2x400 LSTM, tied, dropout 0.5, SGD, 10 minutes (the --tokenizer word default)",
    "word-medium": "2x650 LSTM, tied, dropout 0.5, SGD, 60 minutes",
}
