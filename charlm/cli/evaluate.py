"""`charlm evaluate`: score texts in nats per token, bits per character and perplexity."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from charlm.cli.common import (
    DeviceOpt,
    JsonOpt,
    QuietOpt,
    ThreadsOpt,
    checkpoint_then,
    err,
    info,
    load_checkpoint,
    split_checkpoint,
    user_errors,
    write_json,
)
from charlm.runtime import set_threads
from charlm.scoring import TextScore, oov_warning, score_text, total_score
from charlm.textio import InputError, read_text


def evaluate(
    args: Annotated[
        list[str] | None,
        checkpoint_then("[CHECKPOINT] FILE...|-", "text files; - or piped stdin reads stdin"),
    ] = None,
    *,
    batch_size: Annotated[
        int | None,
        typer.Option(min=1, help="Parallel stripes [default: the run's eval batch size]."),
    ] = None,
    bptt: Annotated[
        int | None, typer.Option(min=1, help="Steps per window [default: the run's bptt].")
    ] = None,
    encoding: Annotated[str, typer.Option(help="Encoding of the files.")] = "utf-8",
    json_out: JsonOpt = False,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Score texts: per file and in total, nats per token, bits per character, perplexity.

    The hidden state is carried through each file, in batches, as training scores its
    validation split: the same text, batch size and bptt give the same loss.
    """
    with user_errors():
        checkpoint, files = split_checkpoint(args or [])
        if not files:
            if sys.stdin is None or sys.stdin.isatty():
                raise InputError("give text files to score (or - for stdin)")
            files = ["-"]
        texts = [(("stdin" if f == "-" else f), read_text(f, encoding)) for f in files]
        set_threads(threads)
        lm = load_checkpoint(checkpoint, device, quiet)
        tc = lm.config.train
        b, t = batch_size or tc.eval_batch_size, bptt or tc.bptt
        device_used = next(lm.model.parameters()).device
        scores = [score_text(lm.model, lm.tokenizer, x, n, b, t, device_used) for n, x in texts]
        total = total_score(scores)
        if not quiet:
            _print_table(scores, total, lm.tokenizer.kind)
            for s in scores:
                if warning := oov_warning(s, lm.tokenizer.kind):
                    info(f"warning: {warning}")
        if json_out:
            doc = {
                "checkpoint": str(lm.path),
                "batch_size": b,
                "bptt": t,
                "files": [s.to_dict() for s in scores],
                "total": total.to_dict(),
            }
            write_json(doc)


_CAPTIONS = {
    "word (with <eos>)": "perplexity per word, with <eos> at every line end, as "
    "word_language_model and the papers count it: compare it with theirs on the same corpus; "
    "bits/char compare across tokenizers",
    "token": "perplexity per token of this tokenizer: compare bits/char, not perplexity, "
    "with other tokenizers",
}


def _print_table(scores: list[TextScore], total: TextScore, kind: str) -> None:
    table = _table(scores, total, kind)
    # A log file has no width: make it as wide as the table, so nothing is cut.
    console = err
    if not err.is_terminal:
        width = max(80, 84 + max(len(s.name) for s in scores))
        console = Console(stderr=True, highlight=False, width=width)
    console.print(table)


def _table(scores: list[TextScore], total: TextScore, kind: str) -> Table:
    oov = "OOV chars" if kind == "char" else "OOV tokens"
    table = Table(show_edge=False, caption=_CAPTIONS.get(total.unit), caption_justify="left")
    table.add_column("file", overflow="fold")  # long paths wrap; the figures never do
    for name in ("chars", "tokens", "nats/token", "bits/char", "perplexity", oov):
        table.add_column(name, justify="right", no_wrap=True)
    rows = [*scores, total] if len(scores) > 1 else scores
    for s in rows:
        rate = s.oov_char_rate if kind == "char" else s.oov_token_rate
        table.add_row(
            s.name,
            f"{s.text_chars:,}",
            f"{s.text_tokens:,}",
            f"{s.nats_per_token:.4f}",
            f"{s.bits_per_char:.4f}",
            f"{s.perplexity:.2f}",
            f"{100 * rate:.2f}%",
        )
    return table
