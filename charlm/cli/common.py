"""What every subcommand shares: the stderr console, error handling, shared option types."""

from __future__ import annotations

import errno
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import torch
import typer
from rich.console import Console

from charlm.checkpoint import CheckpointError
from charlm.config import ConfigError
from charlm.data import DataError
from charlm.inference import LoadedModel, load_model
from charlm.runlock import RunLockedError
from charlm.textio import InputError
from charlm.tokenizers import UnknownCharactersError
from charlm.train import TrainingError

# Everything but data goes to stderr; markup off so text in [brackets] prints as it is.
err = Console(stderr=True, highlight=False, soft_wrap=True)

USER_ERRORS = (
    CheckpointError,
    ConfigError,
    DataError,
    InputError,
    RunLockedError,
    TrainingError,
    UnknownCharactersError,
)
# Writing failures a user can fix, not bugs: what to do about each.
_NO_SPACE = "free disk space or choose another place"
_NO_RIGHTS = "fix the permissions or choose another place"
_IN_THE_WAY = "a file is in the way: choose another path"
WRITE_FIXES = {
    errno.ENOSPC: _NO_SPACE,
    errno.EDQUOT: _NO_SPACE,
    errno.EFBIG: _NO_SPACE,
    errno.EACCES: _NO_RIGHTS,
    errno.EPERM: _NO_RIGHTS,
    errno.EROFS: _NO_RIGHTS,
    errno.EEXIST: _IN_THE_WAY,
    errno.ENOTDIR: _IN_THE_WAY,
    errno.EISDIR: _IN_THE_WAY,
}


def error(message: str) -> None:
    """The one `charlm: error:` line on stderr that every failure gets."""
    err.print(f"charlm: error: {message}", markup=False)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one line to stderr and return the Exit to raise."""
    error(message)
    return typer.Exit(code)


def info(message: str) -> None:
    err.print(message, markup=False)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn expected failures into one line on stderr and exit code 1; Ctrl-C into 130."""
    try:
        yield
    except USER_ERRORS as e:
        raise fail(str(e)) from None
    except KeyboardInterrupt:
        err.print("charlm: interrupted", markup=False)
        raise typer.Exit(130) from None
    except (MemoryError, RuntimeError) as e:
        if not is_out_of_memory(e):
            raise
        raise fail("out of memory: lower --batch-size, --bptt or --num-samples") from None
    except OSError as e:
        if e.errno not in WRITE_FIXES:
            raise
        raise fail(
            f"cannot write {e.filename or 'a file'} ({e.strerror}): {WRITE_FIXES[e.errno]}; "
            "files written before are intact"
        ) from None


def is_out_of_memory(e: BaseException) -> bool:
    """Host memory, or a device's (torch raises a RuntimeError naming it on some backends)."""
    return isinstance(e, MemoryError | torch.OutOfMemoryError) or (
        isinstance(e, RuntimeError) and "out of memory" in str(e)
    )


def stderr_is_terminal() -> bool:
    return sys.stderr is not None and sys.stderr.isatty()


SeedOpt = Annotated[
    int | None, typer.Option("--seed", help="Random seed; a random one is chosen and recorded.")
]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto (CUDA when present), cpu or cuda.")]
ThreadsOpt = Annotated[
    int | None, typer.Option("--threads", min=1, help="CPU threads [default: all cores but one].")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on stderr.")]


# ---- shared by sample, prime and evaluate -----------------------------------------------
CheckpointArg = Annotated[
    str | None,
    typer.Argument(
        help="Checkpoint file or run directory [default: the newest best checkpoint under "
        "./checkpoints].",
        show_default=False,
    ),
]


def checkpoint_then(metavar: str, what: str) -> Any:
    """The positional arguments of prime and evaluate: an optional checkpoint, then input."""
    return typer.Argument(
        metavar=metavar,
        help=f"A checkpoint file or run directory (optional), then {what}.",
        show_default=False,
    )


LengthOpt = Annotated[
    int, typer.Option("--length", "-n", min=0, help="New tokens per sample (characters).")
]
NumSamplesOpt = Annotated[
    int, typer.Option("--num-samples", "-k", min=1, help="Samples, generated as one batch.")
]
SeparatorOpt = Annotated[
    str, typer.Option(help="Written between samples; escapes like \\n are understood.")
]
TemperatureOpt = Annotated[
    float,
    typer.Option(
        "--temperature", "-t", help="Logits are divided by T (> 0): lower is safer, higher wilder."
    ),
]
GreedyOpt = Annotated[bool, typer.Option("--greedy", help="Always take the most likely token.")]
TopKOpt = Annotated[
    int | None, typer.Option("--top-k", min=1, help="Sample only from the k most likely tokens.")
]
TopPOpt = Annotated[
    float | None,
    typer.Option("--top-p", help="Sample from the most likely tokens holding this probability."),
]
BiasOpt = Annotated[
    float,
    typer.Option(
        "--bias",
        help="Graves' biased sampling (B >= 0): p ~ exp((1 + B) * logit), the same as "
        "temperature 1/(1+B). 0 samples the model; larger B reads easier, varies less.",
    ),
]
StopOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--stop",
        metavar="TEXT",
        help="End a sample where this string appears (repeatable; \\n\\n understood).",
    ),
]
ShowPrimeOpt = Annotated[
    bool, typer.Option("--show-prime/--no-show-prime", help="Echo the prime before each sample.")
]
UnknownOpt = Annotated[
    str,
    typer.Option(
        "--unknown", help="Prime characters the model never saw: error (stop) or skip (drop)."
    ),
]
ShowUnkOpt = Annotated[
    bool,
    typer.Option(
        "--show-unk", help="Word models: let samples contain <unk> (masked out by default)."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


def unescape(text: str) -> str:
    """Backslash escapes typed on a command line (\\n, \\t, \\\\, \\x41, \\u00e9) as characters."""
    try:
        return text.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError as e:
        raise ConfigError(f"cannot read the escapes in {text!r} ({e.reason})") from None


# .safetensors, and what torch.save files are called: named so load() can refuse them clearly.
CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".ckpt")


def split_checkpoint(args: list[str]) -> tuple[str | None, list[str]]:
    """Leading positional arguments -> (checkpoint or None, the rest).

    The first argument names a checkpoint when it is a directory or a .safetensors file;
    otherwise every argument is input and the newest checkpoint is used.
    """
    if args and (Path(args[0]).is_dir() or args[0].endswith(CHECKPOINT_SUFFIXES)):
        return args[0], args[1:]
    return None, args


def load_checkpoint(
    checkpoint: str | None, device: str = "cpu", quiet: bool = False
) -> LoadedModel:
    """The model for sample, prime and evaluate; names the checkpoint when it was found."""
    lm = load_model(checkpoint, device)
    if lm.found and not quiet:
        info(f"using checkpoint {lm.path}")
    return lm


class DataOut:
    """Data on stdout: plain writes (no markup), flushed as produced but at most every
    ``every`` seconds, so `| head` and `| tee` see text at once without a syscall a token.

    The stdout handle is taken once, up front: a progress display started later cannot
    divert the data.
    """

    def __init__(self, every: float = 0.05) -> None:
        if sys.stdout is None:  # started with stdout closed (`>&-`): nowhere to put the data
            raise InputError("stdout is closed: redirect it to a file (> out.txt) or a pipe")
        self.file = sys.stdout
        self.every = every
        self._last = time.monotonic()

    def write(self, text: str) -> None:
        if not text:
            return
        self.file.write(text)
        if time.monotonic() - self._last >= self.every:
            self.flush()

    def flush(self) -> None:
        self.file.flush()
        self._last = time.monotonic()

    def is_terminal(self) -> bool:
        return self.file.isatty()


@contextmanager
def closed_pipe_ok() -> Iterator[None]:
    """A reader that went away (`| head`) ends the command quietly, with exit code 0."""
    try:
        yield
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):  # no file descriptor (e.g. in tests)
            pass
        raise typer.Exit(0) from None


def write_data(text: str) -> None:
    """Write a whole piece of data to stdout at once; a reader that went away ends quietly."""
    with closed_pipe_ok():
        out = DataOut()
        out.write(text)
        out.flush()


def write_json(doc: object, indent: int | None = None) -> None:
    write_data(json.dumps(doc, ensure_ascii=False, indent=indent) + "\n")
