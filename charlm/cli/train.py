"""`charlm train`: options handed to the library's run setup (settings, runsetup), then the loop."""

from __future__ import annotations

import shutil
import signal
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from charlm.cli.common import (
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
from charlm.cli.config_options import given_options, with_config_options
from charlm.cli.progress import TrainReporter
from charlm.config import presets
from charlm.config.options import (
    OPTIONS,
    TOKENIZER_OPTIONS,
    check_tokenizer_options,
    flag,
    resolve_config,
    schedule_bound,
)
from charlm.config.presets import DESCRIPTIONS, default_preset
from charlm.config.runtime import set_threads
from charlm.config.schema import DataConfig, RunConfig
from charlm.data.corpus import Corpus, read_corpus
from charlm.data.tokenizers import Tokenizer, WordTokenizer
from charlm.models import registry
from charlm.rundir import checkpoint as ckpt_io
from charlm.rundir.lock import run_lock
from charlm.training import distributed
from charlm.training.events import FinishEvent
from charlm.training.setup import INIT_FIXED, choose_run_dir, describe, new_trainer, resume_trainer
from charlm.training.trainer import Trainer

_PRESET_HELP = "; ".join(f"{k}: {v}" for k, v in DESCRIPTIONS.items())
DEFAULT_PRESET = default_preset("char")  # word models get their own: see presets.py
# Help texts that name the cells (the registry's): --model's, and the options some cells take.
CELL_HELPS = {"model": registry.model_help()} | {
    option: f"{', '.join(registry.takers(option))}: "
    + OPTIONS[option].help[0].lower()
    + OPTIONS[option].help[1:]
    for option in registry.cell_options()
}


def preset_settings(name: str) -> str:
    """What a preset sets, as the options that would set it: '--layers 1 --dropout 0.1 ...'."""
    config, _ = resolve_config(name, {})
    parts = []
    for option, o in OPTIONS.items():
        value = getattr(getattr(config, o.section), o.field)
        # where it runs and how data is read are no settings of a preset; nor are the other
        # tokenizers' options settings of char's
        skip = not o.facts.get("in_preset_help", True) or option in TOKENIZER_OPTIONS
        skip = skip or not _applies(option, config)
        if skip or value is None or value is False:
            continue
        if value is True:
            parts.append(flag(option))
        elif option == "max_time":
            parts.append(f"{flag(option)} {_duration(value)}")
        else:
            parts.append(
                f"{flag(option)} {value:g}"
                if isinstance(value, float)
                else f"{flag(option)} {value}"
            )
    return " ".join(parts)


def _applies(option: str, config: RunConfig) -> bool:
    """An option that only matters with another: a cell's own, the state penalty's kind."""
    if option in registry.cell_options():
        return option in registry.get(config.model.model).options
    if option.startswith("state_penalty"):
        return bool(config.train.state_penalty)
    return True


def _duration(seconds: float) -> str:
    """600 -> '10m', 5400 -> '1h30m', 45 -> '45s', 0.25 -> '0.25s': as --max-time takes it."""
    if seconds < 1:
        return f"{seconds:g}s"
    s = round(seconds)
    h, m, sec = s // 3600, s % 3600 // 60, s % 60
    return "".join(f"{n}{unit}" for n, unit in ((h, "h"), (m, "m"), (sec, "s")) if n) or "0s"


# The epilog of `charlm train --help`: the options left out take the default preset's values,
# which the options' own help cannot show (each defaults to "the preset's"). Wrapped here, and
# marked (\b) for Click to keep as it is: its own wrapping splits flags at their hyphens.
EPILOG = "\b\n" + textwrap.fill(
    f"Options left out take the preset's values. The default preset follows --tokenizer "
    f"({', '.join(f'{k}: {v}' for k, v in presets.DEFAULT_PRESET.items())}); "
    f"{DEFAULT_PRESET} sets: {preset_settings(DEFAULT_PRESET)}.",
    width=76,
    break_on_hyphens=False,
    break_long_words=False,
)


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


def _run_dir_not_stdout(value: str | None) -> str | None:
    """-o - means stdout for prepare; a run is a directory of files, so here it is refused
    rather than made into a directory called '-'."""
    if value == "-":
        raise typer.BadParameter(
            "a run is a directory of files, not a stream: name a directory (e.g. -o runs/mine)"
        )
    return value


@with_config_options(after="preset", declared=("threads",), helps=CELL_HELPS)
def train(
    corpus: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="CORPUS",
            help="Text files or directories (every text file inside), joined in order; "
            "or - for stdin.",
            show_default=False,
        ),
    ] = None,
    *,
    preset: Annotated[
        str | None,
        typer.Option(
            metavar="NAME", help=f"Settings bundle [default: follows --tokenizer]. {_PRESET_HELP}."
        ),
    ] = None,
    seed: SeedOpt = None,
    threads: ThreadsOpt = None,
    nproc: Annotated[
        int,
        typer.Option(
            metavar="N", min=1, help="Data-parallel processes on this machine (via torchrun)."
        ),
    ] = 1,
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            metavar="DIR",
            callback=_run_dir_not_stdout,
            help="Run directory [default: checkpoints/NAME].",
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite the run in --out.")] = False,
    resume: Annotated[
        Path | None, typer.Option(metavar="DIR", help="Continue the run in this directory exactly.")
    ] = None,
    allow_corpus_change: Annotated[
        bool,
        typer.Option(
            "--allow-corpus-change", help="--resume: go on with a corpus other than the run's own."
        ),
    ] = False,
    init_from: Annotated[
        str | None,
        typer.Option(metavar="CHECKPOINT", help="Start a new run from this checkpoint's weights."),
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
    **options: Any,
) -> None:
    """Train a recurrent language model on text files (or a directory of them)."""
    given = given_options({**options, "threads": threads})
    corpus = corpus or None  # Typer gives [] for no argument
    _data_parallel(nproc, corpus, resume)
    with user_errors():
        if given.get("device") == "auto":
            given.pop("device")
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
        if not quiet and (note := split_note(trainer.tokenizer, trainer.config.data)):
            info(note)
        if dry_run:
            if not trainer.main:
                return
            write_json(describe(trainer) | {"threads": threads_used}, indent=2)
            return
        if resume is not None and _finished(trainer, quiet):
            return
        if resume is not None and not quiet:
            st = trainer.state
            limit = trainer.config.train.max_time
            clock = f", {_duration(st.elapsed)} of --max-time {_duration(limit)}" if limit else ""
            info(
                f"resuming {trainer.run_dir} at step {st.step:,} of {trainer.total_steps():,} "
                f"(epoch {st.epoch_number}{clock})"
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

    preset: str | None
    seed: int | None
    out: str | None
    force: bool
    init_from: str | None
    unknown: str


def _start(source: list[str], given: dict[str, Any], start: _Start) -> tuple[Trainer, list[str]]:
    # With --init-from the checkpoint fixes the architecture and tokenizer: new_trainer
    # refuses options that disagree, so the preset's notes must not speak of them.
    ours = {k: v for k, v in given.items() if not start.init_from or k not in INIT_FIXED}
    config, notes = resolve_config(start.preset, ours)
    if start.init_from is None:  # a fine-tune's tokenizer is the source's, checked below
        check_tokenizer_options(config.data.tokenizer, given)
    corpus = read_corpus(source, config.data.encoding)
    run_dir = choose_run_dir(start.out, corpus.name, config.model.model, start.force)
    trainer, warnings = new_trainer(
        config, corpus, run_dir, start.seed, start.init_from, given, start.unknown
    )
    return trainer, notes + _skipped_note(corpus) + warnings


def _skipped_note(corpus: Corpus) -> list[str]:
    if not corpus.skipped:
        return []
    example = corpus.skipped[0]
    return [
        f"skipped {len(corpus.skipped)} file(s) that are not {corpus.encoding} text "
        f"(e.g. {example}); pass --encoding if they are text in another one"
    ]


def _finished(trainer: Trainer, quiet: bool) -> bool:
    """A finished run says so and how to extend it, and is left untouched."""
    reason = trainer.finished()
    if reason and not quiet:
        tc, st = trainer.config.train, trainer.state
        longer = {
            "max_steps": f"--max-steps {2 * (tc.max_steps or 0)}",
            "epochs": f"--epochs {2 * tc.epochs}",
            "max_time": f"--max-time +{_duration(tc.max_time or 0)}",  # as long again
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


def _data_parallel(nproc: int, corpus: list[str] | None, resume: Path | None) -> None:
    """Refuse what ranks cannot do; with --nproc N, run this command as N torchrun ranks."""
    under_torchrun = distributed.world_from_env() > 1
    if (nproc > 1 or under_torchrun) and corpus and "-" in corpus:
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
        st, cfg, sizes = trainer.state, trainer.config, describe(trainer)
        fixed = sizes["parameters"] - sizes["trained_parameters"]
        counts = f"{sizes['parameters']:,} parameters" + (
            f", {fixed:,} of them fixed" if fixed else ""
        )
        info(
            f"training {cfg.model.num_layers}x{cfg.model.hidden_size} {cfg.model.model} "
            f"({counts}, vocabulary "
            f"{trainer.tokenizer.vocab_size}) on {_where(trainer, threads)}, "
            f"seed {st.seed}, into {run_dir}"
        )
        if st.init_from:  # a fine-tune looks like a fresh run otherwise
            info(f"starting from the weights of {st.init_from}")
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


def split_note(tokenizer: Tokenizer, data: DataConfig) -> str | None:
    """Which word split --word-split auto chose, and why; None when nothing was chosen."""
    if not isinstance(tokenizer, WordTokenizer) or data.word_split != "auto":
        return None
    why = f": {tokenizer.reason}" if tokenizer.reason else ""
    return f"word split {tokenizer.split}{why} (choose with --word-split punct|whitespace)"


def _where(trainer: Trainer, threads: int) -> str:
    mode = trainer.precision.mode
    # Said when auto chose it: a user who never asked for bf16 learns why, and how to leave it.
    amp = "" if mode == "off" else f" in {mode}"
    if mode == "bf16":
        amp += " (--amp off for float32)"
    if trainer.world == 1:
        return f"{trainer.device}{amp}, {threads} thread(s)"
    return (
        f"{trainer.world} {trainer.device.type} processes{amp} x {threads} thread(s), global "
        f"batch {trainer.world} x {trainer.config.train.batch_size}"
    )
