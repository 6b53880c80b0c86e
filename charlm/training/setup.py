"""Setting up a training run: its directory, a fresh start (maybe from other weights), a resume."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import torch

from charlm.config.options import FIELDS, flag, resume_config
from charlm.config.runtime import new_seed, resolve_device
from charlm.config.schema import RunConfig, check_seed
from charlm.data.batching import Splits, check_splits
from charlm.data.corpus import Corpus, Prepared, prepare, read_corpus
from charlm.data.tokenizers import Tokenizer, tokenizer_from_dict
from charlm.errors import ConfigError, InputError
from charlm.models import registry
from charlm.models.lm import RNNLM, count_parameters
from charlm.rundir import checkpoint as ckpt_io
from charlm.rundir.progress import TrainState
from charlm.training import distributed, rtrl
from charlm.training.distributed import rank_zero_first, rebatch, world_from_env
from charlm.training.trainer import Trainer


def choose_run_dir(out: str | None, corpus_name: str, model: str, force: bool) -> Path:
    """``--out`` as given, or checkpoints/<corpus>-<model>[-N] that holds no run yet."""
    if out is not None:
        path = _usable_out(Path(out))
        if _holds_run(path) and not force:
            raise InputError(
                f"{path} already holds a run: continue it with 'charlm train --resume {path}', "
                "or pass --force to overwrite it"
            )
        return path
    base = Path("checkpoints") / f"{corpus_name}-{model}"
    path, n = base, 1
    while _holds_run(path):
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def _usable_out(path: Path) -> Path:
    """``--out`` checked before any work: a name the system can look up. (A file in the
    way is reported when the directory is made, as for every other write.)"""
    if "\x00" in str(path):
        raise InputError(f"{path!r}: a NUL byte cannot be in a file name; choose another --out")
    try:
        path.exists()
    except OSError as e:  # a name too long, a loop of links
        raise InputError(f"{path}: cannot use it ({e.strerror}); choose another --out") from None
    return path


def _holds_run(path: Path) -> bool:
    return path.is_dir() and any(
        (path / f).exists() for f in (ckpt_io.LATEST, ckpt_io.BEST, "metrics.jsonl")
    )


# Options --init-from cannot honour: the weights fix the architecture, the vocabulary the
# tokenizer.
_TOKENIZER_OPTIONS = ("tokenizer", "min_freq", "max_vocab", "vocab_size", "sp_model")
INIT_FIXED = (*(o for o, (sec, _) in FIELDS.items() if sec == "model"), *_TOKENIZER_OPTIONS)
# Fine-tuning text with more characters outside the vocabulary than this is refused unless
# they are to be skipped: a model that cannot read much of its corpus is the wrong start.
MAX_UNKNOWN_FRAC = 0.01
UNKNOWN_MODES = ("error", "skip")


def new_trainer(
    config: RunConfig,
    corpus: Corpus,
    run_dir: Path,
    seed: int | None = None,
    init_from: str | None = None,
    given: dict[str, Any] | None = None,
    unknown: str = "error",
) -> tuple[Trainer, list[str]]:
    """A fresh run (optionally starting from another checkpoint's weights and vocabulary).

    ``given`` holds the options the user typed (as for ``settings.resolve_config``): with
    ``init_from`` those the checkpoint fixes are refused unless they agree with it.
    """
    if unknown not in UNKNOWN_MODES:
        raise ConfigError(f"unknown --unknown '{unknown}': choose error or skip")
    check_seed(seed)
    init = ckpt_io.load(ckpt_io.resolve(init_from)) if init_from else None
    if init is not None:
        # A damaged file says so before any option is judged against its config. (Building a
        # model draws from the global random stream; build_trainer seeds it afterwards.)
        ckpt_io.load_weights(RNNLM(init.config.model), init)
        check_init_options(init, init_from or "", given or {})
        # The architecture must match the weights; the data and training settings are ours.
        data = replace(config.data, tokenizer=init.config.data.tokenizer)
        config = replace(config, model=init.config.model, data=data)
    # The cell's own rules (charlm.models.registry), before any tokenizing.
    config, notes = registry.fit(config, given)
    rtrl.check(config, world_from_env())
    tokenizer = tokenizer_from_dict(init.tokenizer) if init else None
    with rank_zero_first(config.train.device):  # one rank builds a token cache
        prep = prepare(config, corpus, tokenizer)
    if init is not None:
        check_unknown(prep, init_from or "", unknown)
    check_splits(prep.splits, config.train.batch_size * world_from_env(), config.train.bptt)
    seed = new_seed() if seed is None else seed
    config = replace(
        config,
        model=replace(config.model, vocab_size=prep.tokenizer.vocab_size),
        train=replace(config.train, seed=seed),
    )
    state = TrainState(seed=seed, corpus=corpus.source, corpus_sha256=corpus.sha256)
    if init is not None and init.path is not None:
        state.init_from = str(init.path.resolve())
    trainer = build_trainer(config, prep.tokenizer, prep.splits, prep.val_chars, run_dir, state)
    if init is not None:
        trainer.load(init, weights_only=True)
    return trainer, notes + prep.warnings


def check_init_options(init: ckpt_io.Checkpoint, source: str, given: dict[str, Any]) -> None:
    """Refuse, in one line, every given option that disagrees with the checkpoint's own."""
    sections = {"model": init.config.model, "data": init.config.data}
    clashes = []
    for option in INIT_FIXED:
        if option not in given:
            continue
        section, name = FIELDS[option]
        theirs = getattr(sections[section], name)
        if given[option] != theirs:
            clashes.append(f"{flag(option)} {_shown(given[option])} (it has {_shown(theirs)})")
    if clashes:
        raise ConfigError(
            f"--init-from {source} fixes the architecture and tokenizer: {', '.join(clashes)}; "
            "leave these out, or train a new model without --init-from"
        )


def _shown(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def check_unknown(prep: Prepared, source: str, mode: str) -> None:
    """Refuse a corpus the checkpoint cannot read much of, unless told to skip what it cannot."""
    frac = prep.dropped / max(1, prep.dropped + prep.kept_chars)
    if mode == "error" and frac > MAX_UNKNOWN_FRAC:
        raise InputError(
            f"{prep.dropped:,} characters ({frac:.1%}) of the corpus are not in the vocabulary "
            f"of --init-from {source}: pass --unknown skip to drop them, or train a new model "
            "without --init-from"
        )


def resume_trainer(
    run_dir: Path,
    corpus: Corpus | str | list[str] | None = None,
    options: dict[str, Any] | None = None,
    allow_corpus_change: bool = False,
) -> tuple[Trainer, list[str]]:
    """Continue a run exactly where its latest checkpoint left it.

    ``corpus`` may be a path (or '-') or several, read with the run's own --encoding. Of ``options``
    (as for ``settings.resolve_config``) only the bounds apply; the others come back as a note.
    """
    ck = ckpt_io.load(ckpt_io.resolve(run_dir, prefer=ckpt_io.LATEST))
    if ck.optimizer is None:
        raise InputError(f"{run_dir} has no resumable checkpoint ({ckpt_io.LATEST}); start anew")
    state = TrainState(**ck.state)
    if corpus is None:
        if state.corpus in ("", "-"):
            raise InputError(
                "this run read its corpus from stdin: pipe it again with 'charlm train - --resume "
                f"{run_dir}'"
            )
        corpus = state.corpus
    if not isinstance(corpus, Corpus):
        corpus = read_corpus(corpus, ck.config.data.encoding)
    config, notes = resume_config(ck.config, options or {}, state.elapsed)
    batch_size, note = rebatch(config.train.batch_size, state.world_size, world_from_env())
    config = replace(config, train=replace(config.train, batch_size=batch_size))
    check = partial(_check_corpus, state.corpus_sha256, run_dir, allow_corpus_change)
    with rank_zero_first(config.train.device):
        prep = prepare(config, corpus, tokenizer_from_dict(ck.tokenizer), check)
    warnings = notes + ([note] if note else [])
    if corpus.sha256 != state.corpus_sha256:  # allowed, or the check had refused it
        warnings.insert(0, "the corpus changed since this run started: resuming on the new text")
    trainer = build_trainer(config, prep.tokenizer, prep.splits, prep.val_chars, run_dir, state)
    trainer.load(ck)
    return trainer, warnings + prep.warnings


def _check_corpus(expected: str, run_dir: Path, allowed: bool, sha256: str) -> None:
    """Refuse a corpus other than the run's own unless allowed: told its hash by ``prepare``
    as soon as it is known, before any tokenizing."""
    if sha256 != expected and not allowed:
        raise InputError(
            f"the corpus differs from the one {run_dir} started on (its sha256 changed): give "
            "the original text, or pass --allow-corpus-change to go on with this one"
        )


def build_trainer(
    config: RunConfig,
    tokenizer: Tokenizer,
    splits: Splits,
    val_chars: int,
    run_dir: Path,
    state: TrainState,
) -> Trainer:
    """Join the process group (under torchrun), seed, build the model, then the Trainer.

    The process-wide side effects live here, so a Trainer can be built without them (tests).
    """
    device = distributed.setup(resolve_device(config.train.device))
    torch.manual_seed(state.seed)  # the initial weights follow the run's seed
    model = RNNLM(config.model).to(device)
    net = distributed.data_parallel(model, device)
    rank, world = distributed.rank(), distributed.world()
    state = replace(state, world_size=world)
    return Trainer(
        config, tokenizer, splits, val_chars, run_dir, state, model, net, device, rank, world
    )


def describe(trainer: Trainer) -> dict[str, Any]:
    """What --dry-run prints: the resolved config and the sizes that follow from it."""
    return {
        "config": trainer.config.to_dict(),
        "parameters": count_parameters(trainer.model),
        "trained_parameters": count_parameters(trainer.model, trained_only=True),
        "vocab_size": trainer.tokenizer.vocab_size,
        "tokenizer": trainer.tokenizer.kind,
        "tokens": {k: len(getattr(trainer.splits, k)) for k in ("train", "val", "test")},
        "tokens_per_epoch": trainer.batcher.tokens_per_epoch,
        "steps_per_epoch": len(trainer.batcher),
        "run_dir": str(trainer.run_dir),
    }
