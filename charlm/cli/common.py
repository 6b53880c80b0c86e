"""What every subcommand shares: the stderr console, error handling, shared option types."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, get_args

import torch
import typer
from rich.console import Console
from typer.core import TyperArgument, TyperCommand, TyperOption

from charlm.cli.stderr import DroppingStderr
from charlm.errors import EXIT_INTERRUPTED, CharlmError, ConfigError, InputError, cannot_write
from charlm.generation.load import GENERATION_DEVICE, LoadedModel, load_model

# Everything but data goes to stderr; markup and emoji codes off so text in [brackets] or
# like :x: (file names, model output, table cells) prints as it is. A stderr whose reader
# went away (`2>&1 | head`) is dropped, not fatal: see cli/stderr.py.
err = Console(file=DroppingStderr(), highlight=False, soft_wrap=True, emoji=False, markup=False)


def wide_err(width: int) -> Console:
    """A stderr console of a given width (a log file has none), as plain as ``err``."""
    return Console(file=err.file, highlight=False, width=width, emoji=False, markup=False)


# Help screens in Click's plain two-column layout rather than Rich's panels: at 80 columns the
# panels squeezed each help text into 20 columns, showed <bool> for flags and read "[default:
# all cores but one]" in a help text as markup and dropped it.
PLAIN_HELP = None
# -h as well as --help, on every command (Click passes it down to subcommands).
HELP_CONTEXT = {"help_option_names": ["-h", "--help"]}


class _NamedArgument(TyperArgument):
    """A positional argument shown by its metavar alone: Typer appends the Python type
    (``CORPUS <list[str]>``) and wraps a required one in braces (``{SOURCE}...``)."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        if not self.required:
            name = f"[{name}]"
        if self.nargs != 1 and "..." not in name:
            name += "..."
        return name


class _PlainRangeOption(TyperOption):
    """An option whose range reads as words in its help ("at least 1"), not ``x>=1``."""

    def _get_number_range_help_str(self) -> str | None:  # Typer's hook for the range text
        low, high = getattr(self, "min", None), getattr(self, "max", None)
        if low is None and high is None:
            return None
        if high is None:
            return f"at least {low}"
        return f"at most {high}" if low is None else f"{low} to {high}"


class PlainCommand(TyperCommand):
    """Every charlm command: its positional arguments named by their metavars, no types, an
    option without a metavar of its own named by its kind (N, X, PATH, TEXT) rather than
    Typer's ``<int range>``, and ranges in words."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if type(param) is TyperArgument:
                param.__class__ = _NamedArgument
                continue
            if type(param) is TyperOption:
                param.__class__ = _PlainRangeOption
            if not getattr(param, "is_flag", True) and param.metavar is None:
                param.metavar = _kind(getattr(param, "type_descriptor", None))


def _kind(descriptor: Any) -> str:
    annotation = getattr(descriptor, "annotation", None)
    kinds = {int: "N", float: "X", Path: "PATH"}
    return next((kinds[a] for a in get_args(annotation) or (annotation,) if a in kinds), "TEXT")


def error(message: str) -> None:
    """The one `charlm: error:` line on stderr that every failure gets."""
    err.print(f"charlm: error: {message}", markup=False)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one line to stderr and return the Exit to raise."""
    error(message)
    return typer.Exit(code)


def info(message: str) -> None:
    err.print(message, markup=False)


def warn(warnings: list[str], quiet: bool = False) -> None:
    """Each as a `warning:` line on stderr, unless --quiet."""
    for w in [] if quiet else warnings:
        info(f"warning: {w}")


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn expected failures into one line on stderr and their exit code (charlm.errors:
    1 for a failure, 2 for options that cannot work); Ctrl-C into 130."""
    try:
        yield
    except CharlmError as e:
        raise fail(str(e), e.exit_code) from None
    except KeyboardInterrupt:
        err.print("charlm: interrupted", markup=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (MemoryError, RuntimeError) as e:
        if not is_out_of_memory(e):
            raise
        raise fail("out of memory: lower --batch-size, --bptt or --num-samples") from None
    except OSError as e:
        # A net for writers that do not translate yet (the run log, samples.txt, the lock);
        # write_atomic raises OutputError itself.
        translated = cannot_write(e)
        if translated is None:
            raise
        raise fail(str(translated)) from None


def is_out_of_memory(e: BaseException) -> bool:
    """Host memory, or a device's (torch raises a RuntimeError naming it on some backends)."""
    return isinstance(e, MemoryError | torch.OutOfMemoryError) or (
        isinstance(e, RuntimeError) and "out of memory" in str(e)
    )


def given_options(ctx: typer.Context) -> set[str]:
    """The parameters the user typed (not left at their defaults), by Python name."""
    return {
        name
        for name in ctx.params
        if getattr(ctx.get_parameter_source(name), "name", "DEFAULT") != "DEFAULT"
    }


def shares_terminal(a: Any, b: Any) -> bool:
    """Whether two streams write to the same terminal (so their lines interleave)."""
    try:
        if not (a.isatty() and b.isatty()):
            return False
        return os.fstat(a.fileno()).st_rdev == os.fstat(b.fileno()).st_rdev
    except (AttributeError, OSError, ValueError):
        return False


def stderr_is_terminal() -> bool:
    return sys.stderr is not None and sys.stderr.isatty()


SeedOpt = Annotated[
    int | None,
    typer.Option("--seed", metavar="N", help="Random seed; a random one is chosen and recorded."),
]
DeviceOpt = Annotated[
    str, typer.Option("--device", metavar="DEVICE", help="auto (CUDA when present), cpu or cuda.")
]
# sample and prime: the default is charlm.generation.load.GENERATION_DEVICE, whose comment says why.
GenerationDeviceOpt = Annotated[
    str,
    typer.Option("--device", metavar="DEVICE", help="cpu, auto (CUDA when present) or cuda."),
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option("--threads", min=1, metavar="N", help="CPU threads [default: all cores but one]."),
]
EncodingOpt = Annotated[
    str, typer.Option("--encoding", metavar="NAME", help="Encoding of text files read.")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on stderr.")]


# ---- shared by sample, prime and evaluate -----------------------------------------------
CheckpointArg = Annotated[
    str | None,
    typer.Argument(
        metavar="CHECKPOINT",
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
    int,
    typer.Option(
        "--length",
        "-n",
        min=0,
        metavar="N",
        help="New tokens per sample: characters for a character model, else words or pieces.",
    ),
]
NumSamplesOpt = Annotated[
    int,
    typer.Option(
        "--num-samples", "-k", min=1, metavar="K", help="Samples, generated as one batch."
    ),
]
SeparatorOpt = Annotated[
    str,
    typer.Option(metavar="TEXT", help="Written between samples; escapes like \\n are understood."),
]
TemperatureOpt = Annotated[
    float,
    typer.Option(
        "--temperature",
        "-t",
        metavar="T",
        help="Logits are divided by T (> 0): lower is safer, higher wilder.",
    ),
]
GreedyOpt = Annotated[bool, typer.Option("--greedy", help="Always take the most likely token.")]
TopKOpt = Annotated[
    int | None,
    typer.Option("--top-k", min=1, metavar="K", help="Sample only from the k most likely tokens."),
]
TopPOpt = Annotated[
    float | None,
    typer.Option(
        "--top-p",
        metavar="P",
        help="Sample from the most likely tokens holding this probability.",
    ),
]
BiasOpt = Annotated[
    float,
    typer.Option(
        "--bias",
        metavar="B",
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
        "--unknown",
        metavar="MODE",
        help="Characters the model never saw: error (stop) or skip (drop them, with a warning).",
    ),
]
ShowUnkOpt = Annotated[
    bool,
    typer.Option(
        "--show-unk", help="Word models: let samples contain <unk> (masked out by default)."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
# The prime's file is `--prime-file` (-f) in both sample and prime; `--file`, prime's old name,
# is taken too (hidden), so scripts and habits from either command work in the other.
PrimeFileOpt = Annotated[
    str | None,
    typer.Option(
        "--prime-file", "-f", metavar="PATH", help="Continue the text of this file; - is stdin."
    ),
]
PrimeFileAliasOpt = Annotated[str | None, typer.Option("--file", hidden=True)]


def prime_file_of(prime_file: str | None, alias: str | None) -> str | None:
    """--prime-file, or --file (the same option under prime's old name)."""
    if prime_file is not None and alias is not None:
        raise InputError("--file and --prime-file name the same thing: give one")
    return prime_file if prime_file is not None else alias


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
    checkpoint: str | None, device: str = GENERATION_DEVICE, quiet: bool = False
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
        self.ends_line = True  # nothing written, or the last text ended with a newline

    def write(self, text: str) -> None:
        if not text:
            return
        self.file.write(text)
        self.ends_line = text.endswith("\n")
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
