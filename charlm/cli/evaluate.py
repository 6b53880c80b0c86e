"""`charlm evaluate`: score texts in nats per token, bits per character and perplexity."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from charlm.cli.common import (
    DeviceOpt,
    JsonOpt,
    QuietOpt,
    ThreadsOpt,
    UnknownOpt,
    checkpoint_then,
    err,
    info,
    load_checkpoint,
    split_checkpoint,
    user_errors,
    wide_err,
    write_json,
)
from charlm.cli.generation import check_prime
from charlm.cli.progress import ScoringProgress
from charlm.config.runtime import set_threads
from charlm.data.corpus import run_split
from charlm.errors import ConfigError, InputError
from charlm.evaluation.baseline import (
    CACHE_DIR,
    Baseline,
    BaselineSpec,
    RunData,
    check_corpus,
    fit_baseline,
    score_ngram,
)
from charlm.evaluation.scoring import TextScore, oov_warning, score_text, total_score
from charlm.generation.load import LoadedModel
from charlm.text.reading import read_text
from charlm.text.sources import corpus_name, files_in


def evaluate(
    args: Annotated[
        list[str] | None,
        checkpoint_then(
            "[CHECKPOINT] FILE...|-",
            "text files or directories (each file inside, scored on its own); - or piped "
            "stdin reads stdin",
        ),
    ] = None,
    *,
    split: Annotated[
        str | None,
        typer.Option(
            metavar="val|test",
            help="Score the run's own val or test split of its corpus, instead of files.",
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            metavar="N", min=1, help="Parallel stripes [default: the run's eval batch size]."
        ),
    ] = None,
    bptt: Annotated[
        int | None,
        typer.Option(metavar="N", min=1, help="Steps per window [default: the run's bptt]."),
    ] = None,
    encoding: Annotated[str, typer.Option(metavar="NAME", help="Encoding of the files.")] = "utf-8",
    baseline: Annotated[
        str | None,
        typer.Option(
            metavar="ngram:N",
            help="Also score with an n-gram model fitted on the run's training split: "
            "ngram:N (order 1..20) or ngram:best (order chosen on the validation split).",
            show_default=False,
        ),
    ] = None,
    corpus: Annotated[
        str | None,
        typer.Option(
            metavar="PATH",
            help="The run's training corpus, for --baseline (default: the path the run recorded).",
            show_default=False,
        ),
    ] = None,
    unknown: UnknownOpt = "error",
    json_out: JsonOpt = False,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Score texts: per file and in total, nats per token, bits per character, perplexity.

    The hidden state is carried through each file, in batches, as training scores its
    validation split: the same text, batch size and bptt give the same loss. A file that
    cannot be scored is reported and skipped; the exit code is 1 only if none could be.
    """
    with user_errors():
        spec = BaselineSpec.parse(baseline) if baseline else None
        if corpus is not None and spec is None:
            raise ConfigError("--corpus only serves --baseline: add --baseline ngram:N or drop it")
        checkpoint, files = split_checkpoint(args or [])
        files = files_in(files)
        if split is not None and files:
            raise InputError("give text files or --split, not both")
        if split is None and not files:
            if sys.stdin is None or sys.stdin.isatty():
                raise InputError("give text files to score (or - for stdin), or --split val")
            files = ["-"]
        set_threads(threads)
        lm = load_checkpoint(checkpoint, device, quiet)
        run = _run_data(lm, corpus)
        if spec is not None:
            check_corpus(run)
        tc = lm.config.train
        b, t = batch_size or tc.eval_batch_size, bptt or tc.bptt
        texts = [_split_text(lm, split)] if split else [_file_text(f, encoding) for f in files]
        scores, skipped = _score_all(lm, texts, b, t, unknown, quiet)
        total = total_score(scores)
        if not quiet:
            _print_table(scores, total, lm.tokenizer.kind)
            for s in scores:
                if warning := oov_warning(s, lm.tokenizer.kind):
                    info(f"warning: {warning}")
        if spec is not None:
            fit = _fit(run, spec, quiet)
            scored = {s.name for s in scores}  # the files the RNN scored, not the skipped
            ngram = [score_ngram(fit.model, lm.tokenizer, x, n) for n, x, _ in texts if n in scored]
            if not quiet:
                _print_comparison(scores, ngram, fit.order)
        if json_out:
            doc = {
                "checkpoint": str(lm.path),
                "batch_size": b,
                "bptt": t,
                "files": [s.to_dict() for s in scores],
                "skipped": [{"name": n, "reason": r} for n, r in skipped],
                "total": total.to_dict(),
            }
            if spec is not None:
                doc["baseline"] = _baseline_doc(scores, ngram, fit)
            write_json(doc)


def _run_data(lm: LoadedModel, corpus: str | None) -> RunData:
    recorded = lm.state.get("corpus", "")
    sha = lm.state.get("corpus_sha256", "")
    return RunData(lm.path.parent, lm.config, lm.tokenizer, corpus or recorded, sha)


def _fit(run: RunData, spec: BaselineSpec, quiet: bool) -> Baseline:
    start = time.perf_counter()
    fit = fit_baseline(run, spec)
    if not quiet:
        for w in fit.warnings:
            info(f"warning: {w}")
        how = (
            "read from"
            if fit.cached
            else f"fitted in {time.perf_counter() - start:.1f} s, cached in"
        )
        info(f"{fit.order}-gram Kneser-Ney baseline {how} {run.run_dir / CACHE_DIR}")
    return fit


def _baseline_doc(rnn: list[TextScore], ngram: list[TextScore], fit: Baseline) -> dict[str, Any]:
    total_rnn, total_ngram = total_score(rnn), total_score(ngram)
    return {
        "kind": "ngram",
        "order": fit.order,
        "val_bits_per_char": {str(k): v for k, v in fit.val_bpc.items()},
        "files": [s.to_dict() for s in ngram],
        "total": total_ngram.to_dict(),
        # Positive: the RNN needs fewer bits per character than the n-gram.
        "ngram_minus_rnn_bits_per_char": total_ngram.bits_per_char - total_rnn.bits_per_char,
    }


def _print_comparison(rnn: list[TextScore], ngram: list[TextScore], order: int) -> None:
    table = Table(show_edge=False)
    table.add_column("file", overflow="fold")
    for name in ("RNN bits/char", f"{order}-gram bits/char", "n-gram - RNN"):
        table.add_column(name, justify="right", no_wrap=True)
    pairs = list(zip(rnn, ngram, strict=True))
    if len(pairs) > 1:
        pairs.append((total_score(rnn), total_score(ngram)))
    for r, g in pairs:
        diff = g.bits_per_char - r.bits_per_char
        table.add_row(r.name, f"{r.bits_per_char:.4f}", f"{g.bits_per_char:.4f}", f"{diff:+.4f}")
    _console_for([s.name for s in rnn]).print(table)


# A text to score, or why it cannot be: (name, text or None, the reason it is None).
Named = tuple[str, str | None, str]


def _file_text(path: str, encoding: str) -> Named:
    name = "stdin" if path == "-" else path
    try:
        return name, read_text(path, encoding), ""
    except InputError as e:
        return name, None, str(e)


def _split_text(lm: LoadedModel, which: str) -> Named:
    """The run's own split, named for the run; any problem ends the command (one line)."""
    corpus = lm.state.get("corpus", "")
    text = run_split(corpus, lm.state.get("corpus_sha256", ""), lm.config.data, which)
    name = corpus_name(corpus if isinstance(corpus, list) else [corpus])
    return f"{which} split of {name}", text, ""


def _score_all(
    lm: LoadedModel, texts: list[Named], batch: int, bptt: int, unknown: str, quiet: bool
) -> tuple[list[TextScore], list[tuple[str, str]]]:
    """Score each text; one that cannot be is reported and skipped. None scored: an error.

    Characters the model never saw follow prime's and inspect's rule (--unknown): an error,
    or dropped with a warning; scoring counts what it dropped (the table's OOV column)."""
    device = next(lm.model.parameters()).device
    scores: list[TextScore] = []
    skipped: list[tuple[str, str]] = []
    with ScoringProgress(err, live=err.is_terminal and not quiet) as progress:
        for name, text, reason in texts:
            try:
                if text is None:
                    raise InputError(reason)
                check_prime(lm.tokenizer, text, unknown, quiet, what=name)
                args = (text, name, batch, bptt, device, progress.file(name))
                scores.append(score_text(lm.model, lm.tokenizer, *args))
            except InputError as e:
                skipped.append((name, str(e)))
                if len(texts) > 1 and not quiet:
                    info(f"warning: {e}; skipped")
    if not scores:
        if len(texts) == 1:
            raise InputError(skipped[0][1])
        raise InputError(
            f"none of the {len(texts)} files could be scored (the first: {skipped[0][1]})"
        )
    return scores, skipped


_CAPTIONS = {
    "word (with <eos>)": "perplexity per word, with <eos> at every line end, as "
    "word_language_model and the papers count it: compare it with theirs on the same corpus; "
    "bits/char compare across tokenizers",
    "token": "perplexity per token of this tokenizer: compare bits/char, not perplexity, "
    "with other tokenizers",
}
# Room kept for the file column: at 70 columns the full headers left it none, and the rows
# could not be told apart.
FILE_ROOM = 12
# Short headers for a narrow terminal: the figures keep their full width either way.
HEADERS = ("chars", "tokens", "nats/token", "bits/char", "perplexity", "OOV {}")
SHORT_HEADERS = ("chars", "tokens", "nats/tok", "bpc", "ppl", "OOV")


def _print_table(scores: list[TextScore], total: TextScore, kind: str) -> None:
    console = _console_for([s.name for s in scores])
    table = _table(scores, total, kind, HEADERS)
    if console.measure(table).minimum + FILE_ROOM > console.width:
        table = _table(scores, total, kind, SHORT_HEADERS)
    console.print(table)


def _console_for(names: list[str]) -> Console:
    # A log file has no width: make it as wide as the table, so nothing is cut.
    if err.is_terminal:
        return err
    width = max(80, 84 + max(len(n) for n in names))
    return wide_err(width)


def _table(scores: list[TextScore], total: TextScore, kind: str, headers: tuple[str, ...]) -> Table:
    unit = "chars" if kind == "char" else "tokens"
    table = Table(show_edge=False, caption=_CAPTIONS.get(total.unit), caption_justify="left")
    table.add_column("file", overflow="fold")  # long paths wrap; the figures never do
    for name in headers:
        table.add_column(name.format(unit), justify="right", no_wrap=True)
    rows = [*scores, total] if len(scores) > 1 else scores
    for s in rows:
        rate = s.oov_char_rate if kind == "char" else s.oov_token_rate
        count = s.oov_chars if kind == "char" else s.oov_tokens
        table.add_row(
            s.name,
            f"{s.text_chars:,}",
            f"{s.text_tokens:,}",
            f"{s.nats_per_token:.4f}",
            f"{s.bits_per_char:.4f}",
            f"{s.perplexity:.2f}",
            f"{count:,} ({100 * rate:.2f}%)" if count else "0",  # never a rounded 0.00%
        )
    return table
