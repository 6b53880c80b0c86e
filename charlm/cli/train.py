"""`charlm train`: options mapped onto the dataclass configs in one place, then the loop."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

from charlm import checkpoint as ckpt_io
from charlm import distributed
from charlm.cli.common import (
    DeviceOpt,
    QuietOpt,
    SeedOpt,
    ThreadsOpt,
    err,
    fail,
    info,
    is_out_of_memory,
    stderr_is_terminal,
    user_errors,
    write_json,
)
from charlm.cli.progress import TrainReporter
from charlm.config import ConfigError, DataConfig, ModelConfig, RunConfig, TrainConfig
from charlm.config import parse_duration as _parse_duration
from charlm.events import FinishEvent
from charlm.presets import DESCRIPTIONS, PRESETS, default_preset
from charlm.run import choose_run_dir, describe, new_trainer, read_corpus, resume_trainer
from charlm.runlock import run_lock
from charlm.runtime import set_threads
from charlm.tokenizers import Tokenizer, WordTokenizer
from charlm.train import Trainer

# CLI option name -> (config section, dataclass field). The one place options meet configs.
FIELDS: dict[str, tuple[str, str]] = {
    "model": ("model", "model"),
    "layers": ("model", "num_layers"),
    "hidden_size": ("model", "hidden_size"),
    "embed_size": ("model", "embed_size"),
    "dropout": ("model", "dropout"),
    "tie_weights": ("model", "tie_weights"),
    "tokenizer": ("data", "tokenizer"),
    "encoding": ("data", "encoding"),
    "val_frac": ("data", "val_frac"),
    "test_frac": ("data", "test_frac"),
    "min_freq": ("data", "min_freq"),
    "max_vocab": ("data", "max_vocab"),
    "vocab_size": ("data", "vocab_size"),
    "word_split": ("data", "word_split"),
    "sp_model": ("data", "sp_model"),
    "token_cache": ("data", "token_cache"),
    "batch_size": ("train", "batch_size"),
    "bptt": ("train", "bptt"),
    "optimizer": ("train", "optimizer"),
    "lr": ("train", "lr"),
    "weight_decay": ("train", "weight_decay"),
    "schedule": ("train", "schedule"),
    "warmup_steps": ("train", "warmup_steps"),
    "grad_clip": ("train", "grad_clip"),
    "epochs": ("train", "epochs"),
    "max_steps": ("train", "max_steps"),
    "max_time": ("train", "max_time"),
    "eval_every": ("train", "eval_every"),
    "patience": ("train", "patience"),
    "sample_length": ("train", "sample_length"),
    "device": ("train", "device"),
    "threads": ("train", "threads"),
    "amp": ("train", "amp"),
}
# Options that may change when resuming: how long to go on, not what is being trained.
RESUME_BOUNDS = ("epochs", "max_steps", "max_time", "patience", "eval_every")
_SECTIONS = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}
_PRESET_HELP = "; ".join(f"{k}: {v}" for k, v in DESCRIPTIONS.items())


def parse_max_time(text: str | None) -> float | str | None:
    """Seconds, or 'none' for no time limit; None when the option was not given."""
    if text is None:
        return None
    if text.strip().lower() in ("none", "0", "off"):
        return "none"
    return _parse_duration(text)


def resolve_config(preset: str | None, given: dict[str, Any]) -> tuple[RunConfig, list[str]]:
    """Defaults, then the preset, then explicit options (which win, with a note).

    Without a preset the tokenizer chooses one: characters and words want different nets.
    """
    if preset is None:
        preset = default_preset(given.get("tokenizer", DataConfig.tokenizer))
    if preset not in PRESETS:
        raise ConfigError(f"unknown --preset '{preset}': choose one of {', '.join(PRESETS)}")
    values: dict[str, dict[str, Any]] = {s: {} for s in _SECTIONS}
    for section, items in PRESETS[preset].items():
        values[section].update(items)
    notes = []
    for option, value in given.items():
        section, name = FIELDS[option]
        if name in PRESETS[preset].get(section, {}) and PRESETS[preset][section][name] != value:
            notes.append(f"--{option.replace('_', '-')} {value} overrides preset '{preset}'")
        values[section][name] = value
    notes += _follow_tied_sizes(values["model"], given)
    for section, cls in _SECTIONS.items():
        known = {f.name for f in fields(cls)}
        try:
            values[section] = cls(**{k: v for k, v in values[section].items() if k in known})
        except ConfigError as e:  # name the flag the user typed, not the field
            raise ConfigError(str(e).replace("--num-layers", "--layers")) from None
    return RunConfig(**values), notes


def _follow_tied_sizes(model: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """A preset that ties weights (the word presets) follows a size the user changed: the
    embedding takes --hidden-size, or the tie goes when both sizes differ; --tie-weights given
    explicitly is left to fail validation with its own message."""
    if not model.get("tie_weights") or "tie_weights" in given:
        return []
    if "hidden_size" in given and "embed_size" not in given:
        model["embed_size"] = model["hidden_size"]
        return []
    if model.get("embed_size", 0) == model.get("hidden_size", -1):
        return []
    model["tie_weights"] = False
    return ["--embed-size differs from --hidden-size: the preset's tied weights are untied"]


@contextmanager
def graceful_stop(trainer: Trainer) -> Iterator[None]:
    """First Ctrl-C or SIGTERM: finish the step, save, exit 130. A second: stop at once."""

    def handler(signum: int, frame: Any) -> None:
        if trainer.stop_requested:
            raise KeyboardInterrupt
        trainer.stop_requested = True

    try:
        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: leave signals alone
        old = {}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def train(
    corpus: Annotated[
        str | None,
        typer.Argument(help="Text file to train on, or - for stdin.", show_default=False),
    ] = None,
    *,
    preset: Annotated[
        str | None,
        typer.Option(help=f"Settings bundle [default: follows --tokenizer]. {_PRESET_HELP}."),
    ] = None,
    model: Annotated[str | None, typer.Option(help="lstm, gru or rnn (Elman, tanh).")] = None,
    layers: Annotated[int | None, typer.Option(help="Stacked recurrent layers.")] = None,
    hidden_size: Annotated[int | None, typer.Option(help="Units per layer.")] = None,
    embed_size: Annotated[int | None, typer.Option(help="Embedding width.")] = None,
    dropout: Annotated[float | None, typer.Option(help="Dropout between layers.")] = None,
    tie_weights: Annotated[
        bool | None, typer.Option("--tie-weights/--no-tie-weights", help="Share in/out matrices.")
    ] = None,
    tokenizer: Annotated[str | None, typer.Option(help="char, word or sentencepiece.")] = None,
    encoding: Annotated[str | None, typer.Option(help="Corpus encoding [default: utf-8].")] = None,
    val_frac: Annotated[float | None, typer.Option(help="Validation share, from the end.")] = None,
    test_frac: Annotated[float | None, typer.Option(help="Test share, before validation.")] = None,
    min_freq: Annotated[int | None, typer.Option(help="word: rarer words become <unk>.")] = None,
    max_vocab: Annotated[int | None, typer.Option(help="word: keep the most frequent.")] = None,
    word_split: Annotated[
        str | None,
        typer.Option(
            help="word: punct (raw text), whitespace (pre-tokenised, <unk> and <eos> as in "
            "word_language_model) or auto (whitespace if the corpus looks pre-tokenised)."
        ),
    ] = None,
    vocab_size: Annotated[int | None, typer.Option(help="sentencepiece vocabulary.")] = None,
    sp_model: Annotated[str | None, typer.Option(help="sentencepiece: bpe or unigram.")] = None,
    token_cache: Annotated[
        str | None,
        typer.Option(help="auto (files over 64 MB), always or never: stream into a token file."),
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Parallel stripes of the corpus.")] = None,
    bptt: Annotated[int | None, typer.Option(help="Steps per truncated-BPTT window.")] = None,
    optimizer: Annotated[str | None, typer.Option(help="adamw or sgd.")] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate.")] = None,
    weight_decay: Annotated[float | None, typer.Option(help="Decoupled weight decay.")] = None,
    schedule: Annotated[str | None, typer.Option(help="cosine or constant.")] = None,
    warmup_steps: Annotated[int | None, typer.Option(help="Linear warm-up steps.")] = None,
    grad_clip: Annotated[float | None, typer.Option(help="Global-norm clip; 0 = off.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Passes over the training split.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps.")] = None,
    max_time: Annotated[
        str | None, typer.Option(help="Stop after this long: 90s, 10m, 1h30m; 'none' for no limit.")
    ] = None,
    eval_every: Annotated[int | None, typer.Option(help="Steps between evaluations.")] = None,
    patience: Annotated[
        int | None, typer.Option(help="Stop after this many evaluations without improvement.")
    ] = None,
    sample_length: Annotated[
        int | None, typer.Option(help="Characters sampled into samples.txt per evaluation.")
    ] = None,
    seed: SeedOpt = None,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    amp: Annotated[
        str | None, typer.Option(help="CUDA mixed precision: bf16, fp16 (loss-scaled) or off.")
    ] = None,
    nproc: Annotated[
        int, typer.Option(min=1, help="Data-parallel processes on this machine (via torchrun).")
    ] = 1,
    out: Annotated[
        str | None, typer.Option("--out", "-o", help="Run directory [default: checkpoints/NAME].")
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite the run in --out.")] = False,
    resume: Annotated[
        Path | None, typer.Option(help="Continue the run in this directory exactly.")
    ] = None,
    init_from: Annotated[
        str | None, typer.Option(help="Start a new run from this checkpoint's weights.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Print the resolved config and sizes as JSON, then exit.")
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """Train a recurrent language model on a text file."""
    given = {k: v for k, v in locals().items() if k in FIELDS and v is not None}
    _data_parallel(nproc, corpus, resume)
    with user_errors():
        if "max_time" in given:
            mt = parse_max_time(given["max_time"])
            given["max_time"] = None if mt == "none" else mt
        if device == "auto":
            given.pop("device", None)
        if resume is not None:
            trainer, warnings = _resume(resume, corpus, given)
        else:
            if corpus is None:
                raise fail("give a corpus file (or - for stdin), or --resume RUN_DIR", code=2)
            trainer, warnings = _start(corpus, preset, given, seed, out, force, init_from, quiet)
        threads_used = set_threads(trainer.config.train.threads)
        quiet = quiet or not trainer.main  # one voice: rank 0's
        for w in warnings:
            if not quiet:
                info(f"warning: {w}")
        if not quiet and (note := split_note(trainer.tokenizer, trainer.config.data)):
            info(note)
        if dry_run:
            if not trainer.main:
                return
            write_json(describe(trainer) | {"threads": threads_used}, indent=2)
            return
        with run_lock(trainer.run_dir) if trainer.main else nullcontext():  # ranks: rank 0's
            _run(trainer, threads_used, quiet)


def _start(
    source: str,
    preset: str | None,
    given: dict[str, Any],
    seed: int | None,
    out: str | None,
    force: bool,
    init_from: str | None,
    quiet: bool,
) -> tuple[Trainer, list[str]]:
    config, notes = resolve_config(preset, given)
    corpus = read_corpus(source, config.data.encoding)
    run_dir = choose_run_dir(out, corpus.name, config.model.model, force)
    trainer, warnings = new_trainer(config, corpus, run_dir, seed, init_from)
    return trainer, notes + warnings


def _resume(run_dir: Path, source: str | None, given: dict[str, Any]) -> tuple[Trainer, list[str]]:
    bounds = {k: v for k, v in given.items() if k in RESUME_BOUNDS}
    ignored = sorted(set(given) - set(bounds))
    trainer, warnings = resume_trainer(run_dir, source, bounds)
    if ignored:
        opts = ", ".join("--" + k.replace("_", "-") for k in ignored)
        warnings.append(f"{opts} ignored when resuming: the run keeps its own settings")
    return trainer, warnings


def _data_parallel(nproc: int, corpus: str | None, resume: Path | None) -> None:
    """Refuse what ranks cannot do; with --nproc N, run this command as N torchrun ranks."""
    under_torchrun = distributed.world_from_env() > 1
    if (nproc > 1 or under_torchrun) and corpus == "-":
        raise fail("data-parallel training needs a corpus file: ranks cannot share stdin", code=2)
    if nproc == 1:
        return
    if under_torchrun:
        raise fail("--nproc starts torchrun itself: leave it out when torchrun starts charlm", 2)
    if resume is not None:  # refuse here once, rather than once per rank
        with user_errors():
            ck = ckpt_io.load(ckpt_io.resolve(resume, prefer=ckpt_io.LATEST))
            distributed.rebatch(ck.config.train.batch_size, ck.state.get("world_size", 1), nproc)
    raise typer.Exit(distributed.launch(nproc, distributed.strip_option(sys.argv[1:], "--nproc")))


def _run(trainer: Trainer, threads: int, quiet: bool) -> None:
    run_dir = trainer.run_dir
    if not quiet:
        st, cfg = trainer.state, trainer.config
        info(
            f"training {cfg.model.num_layers}x{cfg.model.hidden_size} {cfg.model.model} "
            f"({describe(trainer)['parameters']:,} parameters, vocabulary "
            f"{trainer.tokenizer.vocab_size}) on {_where(trainer, threads)}, "
            f"seed {st.seed}, into {run_dir}"
        )
    with graceful_stop(trainer), TrainReporter(err, stderr_is_terminal(), quiet) as reporter:
        result = _out_of_memory_hint(trainer, reporter)
    if not quiet:
        best = result.state.best_val
        best_s = f"{best:.4f} nats/token" if best is not None else "n/a"
        info(f"stopped ({result.reason}) at step {result.state.step}; best val loss {best_s}")
        info(f"checkpoints in {run_dir}; sample with: charlm sample {run_dir}")
    distributed.teardown()
    # Ranks end an agreed stop successfully: torchrun kills every rank when one exits
    # non-zero, and the --nproc launcher reports the interruption itself.
    if result.reason == "interrupted" and trainer.world == 1:
        raise typer.Exit(130)


def _out_of_memory_hint(trainer: Trainer, reporter: TrainReporter) -> FinishEvent:
    """Run; running out of memory names the concrete smaller setting to try."""
    try:
        return trainer.run(reporter)
    except (MemoryError, RuntimeError) as e:
        if not is_out_of_memory(e):
            raise
        tc, mc = trainer.config.train, trainer.config.model
        smaller = (
            f"--batch-size {tc.batch_size // 2}"
            if tc.batch_size > 1
            else f"--bptt {max(1, tc.bptt // 2)} or --hidden-size {max(1, mc.hidden_size // 2)}"
        )
        raise fail(
            f"out of memory on {trainer.device} at --batch-size {tc.batch_size} --bptt {tc.bptt}"
            f" --hidden-size {mc.hidden_size}: try {smaller}; resume from the last checkpoint "
            f"with 'charlm train --resume {trainer.run_dir}'"
        ) from None


def split_note(tokenizer: Tokenizer, data: DataConfig) -> str | None:
    """Which word split --word-split auto chose, and why; None when nothing was chosen."""
    if not isinstance(tokenizer, WordTokenizer) or data.word_split != "auto":
        return None
    why = f": {tokenizer.reason}" if tokenizer.reason else ""
    return f"word split {tokenizer.split}{why} (choose with --word-split punct|whitespace)"


def _where(trainer: Trainer, threads: int) -> str:
    if trainer.world == 1:
        return f"{trainer.device}, {threads} thread(s)"
    return (
        f"{trainer.world} {trainer.device.type} processes x {threads} thread(s), global batch "
        f"{trainer.world} x {trainer.config.train.batch_size}"
    )
