"""Dataclass configs: the single source of every default.

Options map onto these in one place (``charlm.config.options``); the resolved
config is saved with each run (``config.json``) and inside every checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

from charlm.errors import ConfigError
from charlm.text.pretokenised import WORD_SPLITS

MODELS = ("lstm", "gru", "rnn", "peephole", "jordan", "esn")
# Cells with an LSTM's gates and (h, c) state: --forget-bias and --input-bias apply to these.
LSTM_TYPES = ("lstm", "peephole")
TOKENIZERS = ("char", "word", "sentencepiece")
TOKEN_CACHE = ("auto", "always", "never")
AMP_MODES = ("auto", "off", "bf16", "fp16")
OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "constant", "plateau")
PLATEAU_FACTOR = 4  # --schedule plateau: word_language_model's cut when validation stalls
STATE_PENALTIES = ("norm", "diff")  # charlm.training.state_penalty


SEED_LIMIT = 2**32  # seeds in [0, 2**32): what NumPy, torch and Python's random all accept


def _positive(name: str, value: float | None) -> None:
    _finite(name, value)
    if value is not None and value <= 0:
        raise ConfigError(f"--{name.replace('_', '-')} must be greater than 0 (got {value})")


def _finite(name: str, value: float | None) -> None:
    # NaN passes every comparison check below unnoticed, and inf trains nothing.
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"--{name.replace('_', '-')} must be a finite number (got {value})")


def check_seed(seed: int | None) -> None:
    if seed is not None and not 0 <= seed < SEED_LIMIT:
        raise ConfigError(f"--seed must be in [0, {SEED_LIMIT - 1}] (got {seed})")


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(
            f"unknown --{name.replace('_', '-')} '{value}': choose one of {', '.join(choices)}"
        )


@dataclass
class ModelConfig:
    """The network: embedding, a stack of recurrent layers, a linear decoder."""

    # lstm (with forget gate), gru, rnn (Elman, tanh), peephole (LSTM whose gates see c),
    # jordan (charlm.models.jordan) or esn (echo-state: charlm.models.esn)
    model: str = "lstm"
    vocab_size: int = 0  # filled in from the tokenizer
    embed_size: int = 64
    # 1x768 with dropout 0.1: the 10-minute default (it beat 1x512 without dropout, in bf16
    # and in float32: bench/README.md, "bf16 on the CPU")
    hidden_size: int = 768
    num_layers: int = 1
    dropout: float = 0.1
    tie_weights: bool = False  # share the embedding and decoder matrices
    # Dropout on the embedding output alone; None gives it --dropout, as before this existed.
    embed_dropout: float | None = None
    # jordan: the context units keep this share of their last value (s = mu * s + y).
    jordan_decay: float = 0.0
    spectral_radius: float = 0.9  # esn: the largest |eigenvalue| of each fixed reservoir

    # LSTM-type cells' starting gate biases. Forget 1 (Gers et al. 2000): the cell keeps its
    # memory until it learns to forget. Input below 0 (the lectures' -1) makes writing to the
    # cell something it learns to do.
    forget_bias: float = 1.0
    input_bias: float = 0.0

    def __post_init__(self) -> None:
        _choice("model", self.model, MODELS)
        self._check_gate_biases()
        for name in ("embed_size", "hidden_size", "num_layers", "spectral_radius"):
            _positive(name, getattr(self, name))
        if self.model == "esn" and self.tie_weights:
            raise ConfigError(
                "--tie-weights would train the echo-state network's fixed input weights: "
                "add --no-tie-weights, or choose another --model"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"--dropout must be in [0, 1) (got {self.dropout})")
        if self.embed_dropout is not None and not 0.0 <= self.embed_dropout < 1.0:
            raise ConfigError(
                f"--embed-dropout must be in [0, 1), or left out to follow --dropout "
                f"(got {self.embed_dropout})"
            )
        if self.tie_weights and self.embed_size != self.hidden_size:
            raise ConfigError(
                "--tie-weights needs --embed-size equal to --hidden-size "
                f"(got {self.embed_size} and {self.hidden_size})"
            )
        self._check_jordan()

    def _check_jordan(self) -> None:
        _finite("jordan_decay", self.jordan_decay)
        if not 0.0 <= self.jordan_decay < 1.0:
            raise ConfigError(
                f"--jordan-decay must be in [0, 1), e.g. 0.5 (got {self.jordan_decay}): "
                "from 1 on the context units grow without bound"
            )
        if self.jordan_decay and self.model != "jordan":
            raise ConfigError(
                f"--jordan-decay applies to --model jordan only (got --model {self.model}): "
                "drop --jordan-decay or add --model jordan"
            )

    def _check_gate_biases(self) -> None:
        defaults = {"forget_bias": 1.0, "input_bias": 0.0}
        for name, default in defaults.items():
            _finite(name, getattr(self, name))
            if self.model not in LSTM_TYPES and getattr(self, name) != default:
                option = "--" + name.replace("_", "-")
                raise ConfigError(
                    f"{option} sets an LSTM gate and --model {self.model} has none: drop "
                    f"{option} or use --model {' or '.join(LSTM_TYPES)}"
                )


@dataclass
class DataConfig:
    """How the corpus becomes tokens, and how it is split."""

    tokenizer: str = "char"
    encoding: str = "utf-8"
    val_frac: float = 0.05  # taken from the end of the corpus, as char-rnn and nanoGPT do
    test_frac: float = 0.0  # taken from just before the validation split
    min_freq: int = 1  # word tokenizer: rarer words become <unk>
    max_vocab: int | None = None  # word tokenizer: keep the most frequent words
    # word tokenizer: punct splits raw text into words and punctuation; whitespace reads a
    # pre-tokenised corpus as word_language_model does; auto looks at the corpus to choose.
    word_split: str = "auto"
    vocab_size: int = 2000  # sentencepiece
    sp_model: str = "unigram"  # sentencepiece: bpe or unigram
    # auto: corpus files over 64 MB stream into a cached, memory-mapped token file;
    # always / never force either way (never holds the whole text in memory).
    token_cache: str = "auto"

    def __post_init__(self) -> None:
        _choice("tokenizer", self.tokenizer, TOKENIZERS)
        _choice("token_cache", self.token_cache, TOKEN_CACHE)
        _choice("sp_model", self.sp_model, ("bpe", "unigram"))
        _choice("word_split", self.word_split, WORD_SPLITS)
        if self.word_split != "auto" and self.tokenizer != "word":
            raise ConfigError(
                f"--word-split {self.word_split} applies to --tokenizer word only "
                f"(got --tokenizer {self.tokenizer}): drop --word-split or use --tokenizer word"
            )
        if not 0.0 < self.val_frac < 1.0:
            raise ConfigError(
                f"--val-frac must be between 0 and 1, exclusive (got {self.val_frac})"
            )
        if not 0.0 <= self.test_frac < 1.0 or self.val_frac + self.test_frac >= 1.0:
            raise ConfigError(
                f"--test-frac must be in [0, 1) and leave training data "
                f"(got val {self.val_frac} + test {self.test_frac})"
            )
        _positive("min_freq", self.min_freq)
        _positive("max_vocab", self.max_vocab)
        _positive("vocab_size", self.vocab_size)


@dataclass
class TrainConfig:
    """The optimisation: truncated BPTT, schedule, bounds, evaluation."""

    batch_size: int = 32  # contiguous stripes of the corpus
    bptt: int = 128  # steps per window; the hidden state carries across windows
    optimizer: str = "adamw"
    lr: float = 8e-3  # high, with warm-up and cosine decay: measured for 10 minutes at 1x768
    weight_decay: float = 0.0
    momentum: float = 0.0  # sgd only
    # cosine: decays to lr * min_lr_frac by the end of the run; plateau: lr / 4 after each
    # evaluation that does not improve on the best (word_language_model's rule), never below
    # lr * min_lr_frac, so the run need not know its length
    schedule: str = "cosine"
    warmup_steps: int = 50
    min_lr_frac: float = 0.02
    grad_clip: float = 5.0  # global norm; 0 disables
    epochs: int = 20
    max_steps: int | None = None
    max_time: float | None = 600.0  # seconds
    eval_every: int = 250  # steps
    eval_batch_size: int = 32
    patience: int | None = None  # evaluations without improvement before stopping
    sample_length: int = 200  # tokens sampled into samples.txt at each evaluation
    # Below `charlm sample`'s 1.0 on purpose: samples.txt is a glance at progress, and a
    # cooler draw keeps an early, unsure model's samples from reading as noise.
    sample_temperature: float = 0.8
    # Each window, each stripe's carried state goes back to zero with this probability, so the
    # model also learns to start cold, as every sample, prime and short text does. 0.1 and 0.05
    # both closed most of the cold/warm gap; 0.1 did a little better over four runs
    # (bench/README.md, "Cold start").
    reset_prob: float = 0.1
    seed: int | None = None
    device: str = "auto"
    threads: int | None = None
    # Mixed precision: bf16, fp16 (CUDA, loss-scaled), off, or auto: bf16 for the fused
    # cells on a CPU with bf16 instructions, else off (precision.py).
    amp: str = "auto"
    # From this share of the run on (0..1, as Trainer.progress counts it), scores and
    # checkpoints use the running mean of the weights; None never averages.
    average_from: float | None = None
    # beta of a penalty on the top layer's state changes, added to the training loss only;
    # 0 is off. norm: Krueger and Memisevic 2016; diff: Merity et al. 2017 (statepenalty.py).
    state_penalty: float = 0.0
    state_penalty_kind: str = "norm"

    def __post_init__(self) -> None:
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("state_penalty_kind", self.state_penalty_kind, STATE_PENALTIES)
        if self.state_penalty == 0 and self.state_penalty_kind != "norm":
            raise ConfigError(
                f"--state-penalty-kind {self.state_penalty_kind} needs --state-penalty BETA "
                "above 0: add one, or drop --state-penalty-kind"
            )
        _choice("amp", self.amp, AMP_MODES)
        _choice("schedule", self.schedule, SCHEDULES)
        for name in (
            "batch_size",
            "bptt",
            "lr",
            "epochs",
            "eval_every",
            "eval_batch_size",
            "sample_temperature",
        ):
            _positive(name, getattr(self, name))
        for name in ("max_steps", "max_time", "patience", "threads"):
            _positive(name, getattr(self, name))
        for name in ("weight_decay", "grad_clip", "min_lr_frac"):
            _finite(name, getattr(self, name))
        check_seed(self.seed)
        if not 0.0 <= self.reset_prob < 1.0:
            raise ConfigError(
                f"--reset-prob must be in [0, 1): 0 never resets (got {self.reset_prob})"
            )
        if self.grad_clip < 0:
            raise ConfigError(f"--grad-clip must be 0 (off) or positive (got {self.grad_clip})")
        _finite("state_penalty", self.state_penalty)
        if self.state_penalty < 0:
            raise ConfigError(
                f"--state-penalty must be 0 (off) or positive (got {self.state_penalty})"
            )
        if self.warmup_steps < 0 or self.weight_decay < 0 or self.sample_length < 0:
            raise ConfigError("--warmup-steps, --weight-decay and --sample-length must be >= 0")
        _choice("device", self.device.split(":")[0], ("auto", "cpu", "cuda"))
        if self.average_from is not None and not 0.0 <= self.average_from < 1.0:
            raise ConfigError(
                "--average-from must be in [0, 1): the share of the run after which the "
                f"weights are averaged, e.g. 0.8 (got {self.average_from})"
            )


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.model.model == "esn" and self.train.state_penalty:
            raise ConfigError(
                "--state-penalty acts through trained recurrent weights and --model esn trains "
                "none (only its read-out): drop --state-penalty, or choose another --model"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        return cls(
            model=from_known(ModelConfig, d.get("model", {})),
            data=from_known(DataConfig, d.get("data", {})),
            train=from_known(TrainConfig, d.get("train", {})),
        )


def from_known(cls: type, values: dict[str, Any]) -> Any:
    """Build a config from a dict, ignoring keys a newer version may have added."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})


_DURATION = re.compile(r"(\d+(?:\.\d+)?)([hms]?)")


def parse_duration(text: str) -> float:
    """Parse '90', '90s', '10m', '1h30m', '1.5h' into seconds."""
    s = text.strip().lower().replace(" ", "")
    pos, total = 0, 0.0
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "": 1.0}
    while pos < len(s):
        m = _DURATION.match(s, pos)
        if not m or (m.group(2) == "" and m.end() != len(s)):
            break
        total += float(m.group(1)) * units[m.group(2)]
        pos = m.end()
    if not s or pos != len(s) or total <= 0:
        raise ConfigError(
            f"cannot read the duration '{text}': write it like 90s, 10m, 1h30m or 1.5h"
        )
    return total
