"""The `charlm` command: a thin Typer router; each subcommand lives in its own module."""

from __future__ import annotations

from typing import Annotated

import typer

from charlm import __version__
from charlm.cli import evaluate as _evaluate
from charlm.cli import prepare as _prepare
from charlm.cli import prime as _prime
from charlm.cli import sample as _sample
from charlm.cli import train as _train

app = typer.Typer(
    name="charlm",
    help="Character- and word-level recurrent language models: train, sample, prime, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
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
    """Character- and word-level recurrent language models: train, sample, prime, evaluate."""


app.command("train")(_train.train)
app.command("sample")(_sample.sample)
app.command("prime")(_prime.prime)
app.command("evaluate")(_evaluate.evaluate)
app.command("prepare")(_prepare.prepare)


def main() -> None:
    app()
