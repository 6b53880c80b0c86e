"""`charlm serve`: trained models behind an OpenAI-compatible HTTP API and a writing page."""

from __future__ import annotations

from typing import Annotated

import typer

from charlm.cli.common import QuietOpt, ThreadsOpt, info, user_errors, warn
from charlm.config.runtime import set_threads
from charlm.extras import require
from charlm.serving.settings import API_KEY_ENV, LOOPBACK, ServeConfig

EPILOG = (
    "Call it with any OpenAI client: base_url http://HOST:PORT/v1, model = the run's name. "
    "Open http://HOST:PORT/ in a browser to write with it. Details: docs/commands/serve.md."
)
_DEFAULTS = ServeConfig()


def serve(
    runs: Annotated[
        list[str],
        typer.Argument(
            metavar="RUN...",
            help="Run directories or checkpoint files, each served under its directory's name.",
            show_default=False,
        ),
    ],
    *,
    name: Annotated[
        list[str] | None,
        typer.Option(metavar="NAME", help="The model's name in requests, once per RUN."),
    ] = None,
    host: Annotated[
        str,
        typer.Option(metavar="ADDRESS", help="Address to listen on; 0.0.0.0 is every network."),
    ] = LOOPBACK,
    port: Annotated[int, typer.Option(metavar="N", help="Port; 0 picks a free one.")] = (
        _DEFAULTS.port
    ),
    max_streams: Annotated[
        int,
        typer.Option(
            metavar="N", help="Streams generated at once; a request beyond them gets 429."
        ),
    ] = _DEFAULTS.max_streams,
    max_tokens: Annotated[
        int, typer.Option(metavar="N", help="The largest max_tokens a request may ask for.")
    ] = _DEFAULTS.max_tokens,
    max_prompt_chars: Annotated[
        int, typer.Option(metavar="N", help="The longest prompt or text to score.")
    ] = _DEFAULTS.max_prompt_chars,
    max_body_bytes: Annotated[
        int, typer.Option(metavar="N", help="A larger request body is refused (413).")
    ] = _DEFAULTS.max_body_bytes,
    api_key: Annotated[
        str | None,
        typer.Option(
            metavar="KEY",
            envvar=API_KEY_ENV,
            show_envvar=True,
            help="Require 'Authorization: Bearer KEY' on the API.",
        ),
    ] = None,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(metavar="URL", help="Let pages from this origin call the API (repeatable)."),
    ] = None,
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Serve trained models over HTTP: OpenAI's /v1/completions, /v1/score, a writing page."""
    with user_errors():
        require("fastapi", "charlm serve")
        require("uvicorn", "charlm serve")
        settings = ServeConfig(
            host, port, max_streams, max_tokens, max_prompt_chars, max_body_bytes, api_key,
            tuple(cors_origin or ()), access_log=not quiet,
        )  # fmt: skip
        from charlm.serving.catalog import load_catalog
        from charlm.serving.server import address, listen, run

        set_threads(threads)
        catalog = load_catalog(runs, name, settings.max_streams)
        sock = listen(settings)
        warn(_exposure(settings), quiet)
        if not quiet:
            url = address(sock)
            info(f"serving {', '.join(catalog)} at {url}/ (the API under {url}/v1)")
        run(catalog, settings, sock)


def _exposure(settings: ServeConfig) -> list[str]:
    if not settings.public:
        return []
    note = f"--host {settings.host}: the server is reachable from the network"
    if settings.api_key is None:
        note += f", and anyone who reaches it may use it (set --api-key or {API_KEY_ENV})"
    return [note]
