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

TOKENIZERS = ("char", "word", "sentencepiece")
TOKEN_CACHE = ("auto", "always", "never")
AMP_MODES = ("auto", "off", "bf16", "fp16")
OPTIMIZERS = ("adamw", "sgd")
ALGORITHMS = ("bptt", "rtrl")  # how the gradient is computed
SCHEDULES = ("cosine", "constant", "plateau")
PLATEAU_FACTOR = 4  # --schedule plateau: word_language_model's cut when validation stalls
STATE_PENALTIES = ("norm", "diff")  # charlm.training.state_penalty


SEED_LIMIT = 2**32  # seeds in [0, 2**32): what NumPy, torch and Python's random all accept


def option(default: Any, metavar: str, help: str, **facts: Any) -> Any:
    """A field that is also a `charlm train` option, declared here once: the CLI derives the
    option (flag, metavar, help) and the settings derive their tables from these facts.

    facts: ``flag`` when it is not the field's name (``--layers`` for ``num_layers``);
    ``typed``, the type the command line reads when it is not the field's (durations are
    text); ``tokenizer``, the one tokenizer that reads it; ``resume``, "bound" or "place" for
    what a resume may change; ``in_preset_help`` False for what is not a setting of the model
    or its training (where it runs, how data is read).
    """
    return field(default=default, metadata={"metavar": metavar, "help": help, **facts})


def _flag(name: str) -> str:
    """The option a field is set by, for messages: ``--layers`` for ``num_layers``."""
    for config in (ModelConfig, DataConfig, TrainConfig):
        for f in dataclasses.fields(config):
            if f.name == name and "flag" in f.metadata:
                return f.metadata["flag"]
    return "--" + name.replace("_", "-")


def _positive(name: str, value: float | None) -> None:
    _finite(name, value)
    if value is not None and value <= 0:
        raise ConfigError(f"{_flag(name)} must be greater than 0 (got {value})")


def _finite(name: str, value: float | None) -> None:
    # NaN passes every comparison check below unnoticed, and inf trains nothing.
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{_flag(name)} must be a finite number (got {value})")


def check_seed(seed: int | None) -> None:
    if seed is not None and not 0 <= seed < SEED_LIMIT:
        raise ConfigError(f"--seed must be in [0, {SEED_LIMIT - 1}] (got {seed})")


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"unknown {_flag(name)} '{value}': choose one of {', '.join(choices)}")


@dataclass
class ModelConfig:
    """The network: embedding, a stack of recurrent layers, a linear decoder."""

    # The recurrent cell: a name in charlm.models.registry, which checks it (and the options
    # below that only some cells take) when a run is set up or a model built.
    model: str = option("lstm", "MODEL", "")  # the help is the cell registry's
    vocab_size: int = 0  # filled in from the tokenizer
    embed_size: int = option(64, "N", "Embedding width.")
    # 1x768 with dropout 0.1: the 10-minute default (it beat 1x512 without dropout, in bf16
    # and in float32: docs/records/defaults.md, "bf16 on the CPU")
    hidden_size: int = option(768, "N", "Units per layer.")
    num_layers: int = option(1, "N", "Stacked recurrent layers.", flag="--layers")
    dropout: float = option(
        0.1, "P", "Dropout on the embedding output, between layers and on the top layer's output."
    )
    tie_weights: bool = option(False, "", "Share in/out matrices.")
    # Dropout on the embedding output alone; None gives it --dropout, as before this existed.
    embed_dropout: float | None = option(
        None,
        "P",
        "Dropout on the embedding output alone, in place of --dropout's there "
        "[default: --dropout].",
    )
    # A Jordan network's context units keep this share of their last value (s = mu * s + y).
    jordan_decay: float = option(0.0, "MU", "Context kept per step, in [0, 1) [default: 0].")
    spectral_radius: float = option(
        0.9, "R", "Largest |eigenvalue| of the fixed reservoir [default: 0.9]."
    )
    # A time-delay network reads the last D tokens (an n-gram model of order D + 1); a NARX
    # network the last a inputs and b of its own outputs (charlm.models.cells.tdnn, .narx).
    window: int = option(4, "D", "Tokens each layer's delay line reads, at least 2 [default: 4].")
    input_delays: int = option(2, "A", "Inputs on the delay line, at least 1 [default: 2].")
    output_delays: int = option(2, "B", "Outputs fed back, at least 1 [default: 2].")
    # A right-to-left model: trained on the tokens reversed, and given them reversed wherever
    # it reads text (scoring, charlm fill, inspect surprisal --backward).
    reverse: bool = option(False, "", "Read the text right to left: a backward model.")

    # The starting gate biases of the cells with an LSTM's gates. Forget 1 (Gers et al. 2000):
    # the cell keeps its memory until it learns to forget. Input below 0 (the lectures' -1)
    # makes writing to the cell something it learns to do.
    forget_bias: float = option(1.0, "B", "Forget-gate bias at start [default: 1].")
    input_bias: float = option(0.0, "B", "Input-gate bias at start [default: 0].")

    def __post_init__(self) -> None:
        for name in ("embed_size", "hidden_size", "num_layers", "spectral_radius"):
            _positive(name, getattr(self, name))
        for name in ("forget_bias", "input_bias", "jordan_decay"):
            _finite(name, getattr(self, name))
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


@dataclass
class DataConfig:
    """How the corpus becomes tokens, and how it is split."""

    tokenizer: str = option("char", "KIND", "char, word or sentencepiece.")
    encoding: str = option("utf-8", "NAME", "Corpus encoding.", in_preset_help=False)
    # taken from the end of the corpus, as char-rnn and nanoGPT do
    val_frac: float = option(0.05, "F", "Validation share, from the end.")
    test_frac: float = option(0.0, "F", "Test share, before validation.")
    min_freq: int = option(1, "N", "word: rarer words become <unk>.", tokenizer="word")
    max_vocab: int | None = option(None, "N", "word: keep the most frequent.", tokenizer="word")
    # word tokenizer: punct splits raw text into words and punctuation; whitespace reads a
    # pre-tokenised corpus as word_language_model does; auto looks at the corpus to choose.
    word_split: str = option(
        "auto",
        "MODE",
        "word: punct (raw text), whitespace (pre-tokenised, <unk> and <eos> as in "
        "word_language_model) or auto (whitespace if the corpus looks pre-tokenised).",
    )
    vocab_size: int = option(2000, "N", "sentencepiece vocabulary.", tokenizer="sentencepiece")
    sp_model: str = option(
        "unigram", "KIND", "sentencepiece: bpe or unigram.", tokenizer="sentencepiece"
    )
    # auto: corpus files over 64 MB stream into a cached, memory-mapped token file;
    # always / never force either way (never holds the whole text in memory).
    token_cache: str = option(
        "auto",
        "WHEN",
        "auto (files over 64 MB), always or never: stream into a token file.",
        in_preset_help=False,
    )

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

    batch_size: int = option(32, "N", "Parallel stripes of the corpus.")
    # steps per window; the hidden state carries across windows
    bptt: int = option(128, "N", "Steps per truncated-BPTT window.")
    # bptt: backpropagation through each window; rtrl: real-time recurrent learning, the exact
    # gradient carried forward through every window (charlm.training.rtrl; small nets only).
    algorithm: str = option(
        "bptt",
        "NAME",
        "bptt (truncated at each window) or rtrl (exact, carried forward; one small rnn or "
        "lstm layer).",
    )
    optimizer: str = option("adamw", "NAME", "adamw or sgd.")
    # high, with warm-up and cosine decay (docs/records: the default preset)
    lr: float = option(8e-3, "LR", "Peak learning rate.")
    weight_decay: float = option(
        0.0, "X", "Weight decay: decoupled under adamw, an L2 term under sgd."
    )
    momentum: float = 0.0  # sgd only
    # cosine: decays to lr * min_lr_frac by the end of the run; plateau: lr / 4 after each
    # evaluation that does not improve on the best (word_language_model's rule), never below
    # lr * min_lr_frac, so the run need not know its length
    schedule: str = option(
        "cosine", "NAME", "cosine, constant or plateau (/4 when validation stalls)."
    )
    warmup_steps: int = option(50, "N", "Linear warm-up steps.")
    min_lr_frac: float = 0.02
    grad_clip: float = option(5.0, "NORM", "Global-norm clip; 0 = off.")
    epochs: int = option(20, "N", "Passes over the training split.", resume="bound")
    max_steps: int | None = option(None, "N", "Stop after this many steps.", resume="bound")
    max_time: float | None = option(  # seconds; the CLI reads durations
        600.0,
        "TIME",
        "Stop when the run has trained this long in all, resumes included: 90s, 10m, "
        "1h30m; +10m on --resume for ten minutes more; 'none' for no limit.",
        typed=str,
        resume="bound",
    )
    eval_every: int = option(250, "N", "Steps between evaluations.", resume="bound")
    eval_batch_size: int = 32
    patience: int | None = option(
        None, "N", "Stop after this many evaluations without improvement.", resume="bound"
    )
    sample_length: int = option(
        200,
        "N",
        "Tokens sampled into samples.txt per evaluation: characters for a character "
        "model, else words or pieces.",
    )
    # Below `charlm sample`'s 1.0 on purpose: samples.txt is a glance at progress, and a
    # cooler draw keeps an early, unsure model's samples from reading as noise.
    sample_temperature: float = 0.8
    # Each window, each stripe's carried state goes back to zero with this probability, so the
    # model also learns to start cold, as every sample, prime and short text does. 0.1 and 0.05
    # both closed most of the cold/warm gap; 0.1 did a little better over four runs
    # (docs/records/defaults.md, "Cold start").
    reset_prob: float = option(
        0.1, "P", "Chance a stripe's carried state restarts from zero, per window; 0 = never."
    )
    seed: int | None = None
    device: str = option(
        "auto",
        "DEVICE",
        "auto (CUDA when present), cpu or cuda; --resume keeps the run's unless given.",
        resume="place",
        in_preset_help=False,
    )
    threads: int | None = option(
        None, "N", "", resume="place", in_preset_help=False
    )  # declared with the other commands' --threads (cli/common.py)
    # Mixed precision: bf16, fp16 (CUDA, loss-scaled), off, or auto: bf16 for the fused
    # cells on a CPU with bf16 instructions, else off (precision.py).
    amp: str = option(
        "auto",
        "MODE",
        "Mixed precision: auto (bf16 for the cells torch fuses, on a CPU with bf16 "
        "instructions, else off), bf16, fp16 (CUDA, loss-scaled) or off.",
        in_preset_help=False,
    )
    # From this share of the run on (0..1, as Trainer.progress counts it), scores and
    # checkpoints use the running mean of the weights; None never averages.
    average_from: float | None = option(
        None,
        "F",
        "From this share of the run on (e.g. 0.8), average the weights: scores, "
        "samples and checkpoints use their running mean [default: off].",
    )
    # beta of a penalty on the top layer's state changes, added to the training loss only;
    # 0 is off. norm: Krueger and Memisevic 2016; diff: Merity et al. 2017 (statepenalty.py).
    state_penalty: float = option(
        0.0, "BETA", "Penalise top-layer state changes in training; 0 = off."
    )
    state_penalty_kind: str = option(
        "norm",
        "KIND",
        "norm: (|h_t| - |h_t-1|)^2 (Krueger 2016); diff: |h_t - h_t-1|^2 (Merity 2017).",
    )

    def __post_init__(self) -> None:
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("algorithm", self.algorithm, ALGORITHMS)
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
