"""The `charlm` command: a thin Typer router; each subcommand lives in its own module."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from charlm import __version__
from charlm.cli import chat as _chat
from charlm.cli import complete as _complete
from charlm.cli import evaluate as _evaluate
from charlm.cli import export as _export
from charlm.cli import fill as _fill
from charlm.cli import inspect as _inspect
from charlm.cli import music as _music
from charlm.cli import plot as _plot
from charlm.cli import prepare as _prepare
from charlm.cli import prime as _prime
from charlm.cli import sample as _sample
from charlm.cli import serve as _serve
from charlm.cli import train as _train
from charlm.cli.common import HELP_CONTEXT, PLAIN_HELP, PlainCommand, error
from charlm.cli.usage import UsageFailure, usage_line
from charlm.training import distributed


class _OneLineUsageErrors(TyperGroup):
    """Usage errors (unknown option, bad value) as one `charlm: error:` line on stderr, like
    every other error of ours, instead of Rich's boxed panel with the usage above it."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except UsageFailure as e:
            line = usage_line(e)
            if line is not None:
                error(line)
            elif e.format_message().strip():
                # `charlm` alone: with Rich the help was printed while the error was made;
                # plain Click carries it in the message.
                e.show()
            sys.exit(e.exit_code)
        except typer.Abort:
            error("aborted")
            sys.exit(1)
        # Non-standalone Click returns the exit code of an Exit, else the command's value,
        # which is None for every charlm command.
        sys.exit(result if isinstance(result, int) else 0)


_HELP = "Character- and word-level recurrent language models, from corpus to samples."

app = typer.Typer(
    cls=_OneLineUsageErrors,
    name="charlm",
    help=_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=PLAIN_HELP,
    context_settings=HELP_CONTEXT,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"charlm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Character- and word-level recurrent language models, from corpus to samples."""


# One line each in `charlm --help` (Click cuts a longer docstring with "..." at 80 columns).
app.command(
    "train",
    cls=PlainCommand,
    short_help="Train a model on text files or a directory.",
    epilog=_train.EPILOG,
)(_train.train)
app.command("sample", cls=PlainCommand, short_help="Generate text from a trained model.")(
    _sample.sample
)
app.command("fill", cls=PlainCommand, short_help="Fill a text's gaps from both directions.")(
    _fill.fill_command
)
app.command("prime", cls=PlainCommand, short_help="Continue a given text in the model's style.")(
    _prime.prime
)
app.command(
    "complete", cls=PlainCommand, short_help="The most probable next words of a text (beam)."
)(_complete.complete_command)
app.command("chat", cls=PlainCommand, short_help="Talk with a model; it keeps its state.")(
    _chat.chat
)
app.command(
    "evaluate", cls=PlainCommand, short_help="Score texts: bits per character, perplexity."
)(_evaluate.evaluate)
app.command("prepare", cls=PlainCommand, short_help="Clean raw text into a training corpus.")(
    _prepare.prepare
)
app.command("plot", cls=PlainCommand, short_help="Plot the learning curves of runs.")(_plot.plot)
app.command(
    "serve",
    cls=PlainCommand,
    short_help="Serve models over an OpenAI-compatible HTTP API.",
    epilog=_serve.EPILOG,
)(_serve.serve)
app.command("export", cls=PlainCommand, short_help="Export a model to ONNX, one step a call.")(
    _export.export
)
app.add_typer(_inspect.app, name="inspect", short_help="Look inside trained models.")
app.add_typer(_music.app, name="music", short_help="Check and render ABC folk tunes.")


def main() -> None:
    if distributed.world_from_env() <= 1:
        app()
        return
    # A torchrun rank leaves without interpreter finalization: gloo's worker threads outlive
    # destroy_process_group, and finalizing Python under them aborts the process
    # ("terminate called without an active exception") now and then on a loaded machine,
    # which makes torchrun report a clean run as failed.
    try:
        app()
        code = 0
    except SystemExit as e:
        code = _exit_code(e.code)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _exit_code(code: object) -> int:
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)  # sys.exit("message") prints and exits 1
    return 1
