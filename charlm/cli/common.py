"""What every subcommand shares: the stderr console, error handling, shared option types."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console

from charlm.checkpoint import CheckpointError
from charlm.config import ConfigError
from charlm.data import DataError
from charlm.textio import InputError
from charlm.tokenizers import UnknownCharactersError

# Everything but data goes to stderr; markup off so text in [brackets] prints as it is.
err = Console(stderr=True, highlight=False, soft_wrap=True)

USER_ERRORS = (
    CheckpointError,
    ConfigError,
    DataError,
    InputError,
    UnknownCharactersError,
)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one line to stderr and return the Exit to raise."""
    err.print(f"charlm: error: {message}", markup=False)
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
    except MemoryError:
        raise fail("out of memory: lower --batch-size, --bptt or --hidden-size") from None


def stderr_is_terminal() -> bool:
    return sys.stderr is not None and sys.stderr.isatty()


SeedOpt = Annotated[
    int | None, typer.Option("--seed", help="Random seed; a random one is chosen and recorded.")
]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto (CUDA when present), cpu or cuda.")]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", min=1, help="CPU threads for torch.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on stderr.")]
