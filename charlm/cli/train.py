"""`charlm train`: options handed to the library's run setup (settings, runsetup), then the loop."""

from __future__ import annotations

import shutil
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
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
from charlm.dataset import read_corpus
from charlm.events import FinishEvent
from charlm.presets import DESCRIPTIONS
from charlm.runlock import run_lock
from charlm.runsetup import INIT_FIXED, choose_run_dir, describe, new_trainer, resume_trainer
from charlm.runtime import set_threads
from charlm.settings import FIELDS, resolve_config, schedule_bound
from charlm.train import Trainer

_PRESET_HELP = "; ".join(f"{k}: {v}" for k, v in DESCRIPTIONS.items())


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
    preset: Annotated[str, typer.Option(help=f"Settings bundle. {_PRESET_HELP}.")] = "small",
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
    reset_prob: Annotated[
        float | None,
        typer.Option(
            help="Chance a stripe's carried state restarts from zero, per window; 0 = never."
        ),
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
    allow_corpus_change: Annotated[
        bool,
        typer.Option(
            "--allow-corpus-change", help="--resume: go on with a corpus other than the run's own."
        ),
    ] = False,
    init_from: Annotated[
        str | None, typer.Option(help="Start a new run from this checkpoint's weights.")
    ] = None,
    unknown: Annotated[
        str,
        typer.Option(
            help="--init-from: corpus characters outside its vocabulary: error (over 1%) or skip."
        ),
    ] = "error",
    dry_run: Annotated[
        bool, typer.Option(help="Print the resolved config and sizes as JSON, then exit.")
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """Train a recurrent language model on a text file."""
    given = {k: v for k, v in locals().items() if k in FIELDS and v is not None}
    _data_parallel(nproc, corpus, resume)
    with user_errors():
        if device == "auto":
            given.pop("device", None)
        if resume is not None:
            trainer, warnings = resume_trainer(resume, corpus, given, allow_corpus_change)
        else:
            if corpus is None:
                raise fail("give a corpus file (or - for stdin), or --resume RUN_DIR", code=2)
            start = _Start(preset, seed, out, force, init_from, unknown)
            trainer, warnings = _start(corpus, given, start)
        threads_used = set_threads(trainer.config.train.threads)
        quiet = quiet or not trainer.main  # one voice: rank 0's
        for w in warnings:
            if not quiet:
                info(f"warning: {w}")
        if dry_run:
            if not trainer.main:
                return
            write_json(describe(trainer) | {"threads": threads_used}, indent=2)
            return
        if resume is not None and _finished(trainer, quiet):
            return
        if resume is not None and not quiet:
            st = trainer.state
            info(
                f"resuming {trainer.run_dir} at step {st.step:,} of {trainer.total_steps():,} "
                f"(epoch {st.epoch_number})"
            )
        new_dir = not trainer.run_dir.exists()
        try:
            with run_lock(trainer.run_dir) if trainer.main else nullcontext():  # ranks: rank 0's
                _run(trainer, threads_used, quiet)
        except KeyboardInterrupt:  # a second Ctrl-C: stopped at once
            if trainer.main:
                _nothing_saved(trainer.run_dir, new_dir, quiet)
            raise


@dataclass
class _Start:
    """How a new run starts, besides its settings."""

    preset: str
    seed: int | None
    out: str | None
    force: bool
    init_from: str | None
    unknown: str


def _start(source: str, given: dict[str, Any], start: _Start) -> tuple[Trainer, list[str]]:
    # With --init-from the checkpoint fixes the architecture and tokenizer: new_trainer
    # refuses options that disagree, so the preset's notes must not speak of them.
    ours = {k: v for k, v in given.items() if not start.init_from or k not in INIT_FIXED}
    config, notes = resolve_config(start.preset, ours)
    corpus = read_corpus(source, config.data.encoding)
    run_dir = choose_run_dir(start.out, corpus.name, config.model.model, start.force)
    trainer, warnings = new_trainer(
        config, corpus, run_dir, start.seed, start.init_from, given, start.unknown
    )
    return trainer, notes + warnings


def _finished(trainer: Trainer, quiet: bool) -> bool:
    """A finished run says so and how to extend it, and is left untouched."""
    reason = trainer.finished()
    if reason and not quiet:
        tc, st = trainer.config.train, trainer.state
        longer = {
            "max_steps": f"--max-steps {2 * (tc.max_steps or 0)}",
            "epochs": f"--epochs {2 * tc.epochs}",
            "max_time": f"--max-time {2 * (tc.max_time or 0):g}s",
            "patience": f"--patience {st.evals_since_best + (tc.patience or 0)}",
        }[reason]
        info(
            f"{trainer.run_dir} is finished ({reason} reached at step {st.step:,}): to train on, "
            f"raise the bound, e.g. 'charlm train --resume {trainer.run_dir} {longer}'"
        )
    return bool(reason)


def _nothing_saved(run_dir: Path, new_dir: bool, quiet: bool) -> None:
    """After a stop at once: say when nothing was saved, and remove a directory made for it."""
    if any((run_dir / name).exists() for name in (ckpt_io.LATEST, ckpt_io.BEST)):
        return
    removed = new_dir and run_dir.is_dir()
    if removed:
        shutil.rmtree(run_dir)
    if not quiet:
        gone = f"; removed {run_dir}" if removed else ""
        info(f"stopped before the first checkpoint: nothing was saved{gone}")


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
        info(schedule_bound(cfg.train, len(trainer.batcher)))
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


def _where(trainer: Trainer, threads: int) -> str:
    if trainer.world == 1:
        return f"{trainer.device}, {threads} thread(s)"
    return (
        f"{trainer.world} {trainer.device.type} processes x {threads} thread(s), global batch "
        f"{trainer.world} x {trainer.config.train.batch_size}"
    )
