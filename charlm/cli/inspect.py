"""`charlm inspect`: look inside trained models: `gradients` here, `units` and `surprisal`
in `charlm.cli.inspect_units`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from charlm.cli.common import (
    PLAIN_HELP,
    DeviceOpt,
    EncodingOpt,
    JsonOpt,
    PlainCommand,
    QuietOpt,
    ThreadsOpt,
    err,
    info,
    load_checkpoint,
    user_errors,
    wide_err,
    write_json,
)
from charlm.cli.inspect_units import surprisal, units
from charlm.config.runtime import set_threads
from charlm.config.schema import check_seed
from charlm.data.corpus import split_text
from charlm.data.tokenizers import Tokenizer, drop_unknown
from charlm.errors import ConfigError, InputError, describe_unknown
from charlm.extras import require
from charlm.generation.load import LoadedModel
from charlm.inspection.figures import check_output, gradient_flow_figure
from charlm.inspection.gradflow import Flow, FlowConfig, check_length, fresh_model, measure
from charlm.models import registry
from charlm.text.reading import read_text

app = typer.Typer(
    name="inspect",
    help="Look inside trained models: units, gates, surprisal, gradient flow through time.",
    no_args_is_help=True,
    rich_markup_mode=PLAIN_HELP,
)
app.command(
    "units", cls=PlainCommand, short_help="Units and gates: ranked, saturated, coloured, exported."
)(units)
app.command(
    "surprisal", cls=PlainCommand, short_help="Per token -log2 p, top 5, the hardest spans."
)(surprisal)

TABLE_LAGS = (0, 1, 2, 5, 10, 20, 50, 100, 200)


@app.command("gradients", cls=PlainCommand, short_help="How far back the loss's gradient reaches.")
def gradients(
    checkpoints: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[CHECKPOINT]...",
            help="Checkpoint files or run directories, e.g. one run's before and after "
            "[default: the newest best checkpoint under ./checkpoints].",
            show_default=False,
        ),
    ] = None,
    *,
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            metavar="PATH",
            help="Text to measure on; - reads stdin [default: the run's validation text].",
        ),
    ] = None,
    max_lag: Annotated[int, typer.Option(metavar="K", min=0, help="Largest lag K: lags 0..K.")] = (
        FlowConfig.max_lag
    ),
    positions: Annotated[
        int, typer.Option(metavar="N", min=1, help="Text positions averaged over.")
    ] = (FlowConfig.positions),
    carry_in: Annotated[
        int,
        typer.Option(metavar="N", min=0, help="Tokens read before each window to warm the state."),
    ] = FlowConfig.carry_in,
    compare: Annotated[
        str,
        typer.Option(
            metavar="MODELS",
            help=f"Fresh models of the same size beside it: a list of {','.join(registry.names())}"
            " or none.",
        ),
    ] = "rnn,gru,lstm",
    init_scale: Annotated[
        float,
        typer.Option(
            metavar="X", help="Multiply the fresh models' recurrent weights (explode past 1)."
        ),
    ] = 1.0,
    seed: Annotated[
        int, typer.Option(metavar="N", help="Seed for the positions and the fresh models.")
    ] = FlowConfig.seed,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", metavar="PATH", help="Write the plot (.png or .svg)."),
    ] = None,
    width: Annotated[
        int, typer.Option(metavar="PIXELS", min=200, help="Plot width in pixels.")
    ] = 900,
    height: Annotated[
        int, typer.Option(metavar="PIXELS", min=150, help="Plot height in pixels.")
    ] = 560,
    json_out: JsonOpt = False,
    encoding: EncodingOpt = "utf-8",
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Mean |dL_t/dh_(t-k)| against lag k: how far back the loss's gradient reaches.

    For the trained model (the top layer's h, and an LSTM's cell c) and freshly initialised
    Elman RNN, GRU and LSTM models of the same size, on the run's validation text.
    """
    with user_errors():
        if output is not None:
            require("matplotlib", "charlm inspect gradients -o")
            check_output(output)
        kinds = _compare(compare)
        cfg = FlowConfig(max_lag=max_lag, positions=positions, carry_in=carry_in, seed=seed)
        if not 0 < init_scale < math.inf:  # NaN fails this too
            raise ConfigError(f"--init-scale must be a finite number above 0 (got {init_scale})")
        check_seed(seed)
        set_threads(threads)
        models = [load_checkpoint(c, device, quiet) for c in (checkpoints or [None])]
        text, source = _text(file, encoding, models[0])
        ids = _ids(models[0].tokenizer, text, quiet)
        check_length(len(ids), cfg)  # before minutes of measuring, not after
        names = _model_names([lm.path for lm in models])
        flows = [
            _measure_trained(
                lm, name, ids if i == 0 else _ids(lm.tokenizer, text, quiet), cfg, quiet
            )
            for i, (lm, name) in enumerate(zip(models, names, strict=True))
        ]
        for kind in kinds:
            name = f"fresh {kind}" + (f" x{init_scale:g}" if init_scale != 1 else "")
            _say(quiet, f"measuring {name} ...")
            on = next(models[0].model.parameters()).device
            fresh = fresh_model(models[0].config.model, kind, init_scale, seed).to(on)
            flow = measure(fresh, ids, cfg, name)
            if flow.spectral_radius is not None:  # above 1 a tanh RNN's gradient can explode
                flow.name += f" (radius {flow.spectral_radius:.2f})"
            flows.append(flow)
        if not quiet:
            _print_table(_table(flows, max_lag))
        if output is not None:
            title = f"Gradient flow on {source}: mean over {positions} positions"
            gradient_flow_figure(flows, output, width, height, title)
            _say(quiet, f"wrote {output}")
        if json_out:
            write_json(_doc(flows, cfg, source, len(ids)))


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        info(message)


def _compare(compare: str) -> list[str]:
    if compare.strip().lower() == "none":
        return []
    kinds = [k.strip().lower() for k in compare.split(",") if k.strip()]
    bad = [k for k in kinds if k not in registry.names()]
    if bad or not kinds:
        raise ConfigError(
            f"unknown --compare '{compare}': give a list of {', '.join(registry.names())}, or none"
        )
    return kinds


def _text(file: str | None, encoding: str, lm: LoadedModel) -> tuple[str, str]:
    """(text, its name): --file, else the validation split of the run's corpus."""
    if file is not None:
        return read_text(file, encoding), ("stdin" if file == "-" else Path(file).name)
    corpus = str(lm.state.get("corpus", ""))
    if corpus in ("", "-") or not Path(corpus).is_file():
        where = "stdin" if corpus == "-" else (corpus or "an unrecorded corpus")
        raise InputError(
            f"this run's corpus ({where}) cannot be read here: give a text with --file PATH"
        )
    dc = lm.config.data
    _, _, val = split_text(read_text(corpus, dc.encoding), dc.val_frac, dc.test_frac)
    return val, f"the validation text of {Path(corpus).name}"


def _ids(tokenizer: Tokenizer, text: str, quiet: bool) -> np.ndarray:
    """The text's ids; characters the model never saw are dropped, as training drops them."""
    unknown = tokenizer.unknown(text)
    if unknown:
        _say(quiet, f"warning: {describe_unknown(unknown)}; they are dropped")
        text = drop_unknown(text, unknown)
    return tokenizer.encode(text)


def _measure_trained(
    lm: LoadedModel, run_name: str, ids: np.ndarray, cfg: FlowConfig, quiet: bool
) -> Flow:
    name = f"{run_name} ({lm.config.model.model}, trained)"
    _say(quiet, f"measuring {name} ...")
    return measure(lm.model, ids, cfg, name)


def _run_name(path: Path) -> str:
    return path.parent.name if path.name.endswith(".safetensors") else path.name


def _model_names(paths: list[Path]) -> list[str]:
    """Each checkpoint by its run's name; by run and file (``demo/latest``) when one run gives
    several, as when comparing a run's latest and best checkpoints."""
    runs = [_run_name(p) for p in paths]
    return [
        f"{run}/{p.stem}" if runs.count(run) > 1 and p.name.endswith(".safetensors") else run
        for run, p in zip(runs, paths, strict=True)
    ]


def _table(flows: list[Flow], max_lag: int) -> Table:
    lags = [k for k in TABLE_LAGS if k < max_lag] + [max_lag]  # the last lag measured too
    table = Table(title="mean |dL_t/d state_(t-k)|, top layer", show_edge=False)
    table.add_column("model")
    table.add_column("state")
    for k in lags:
        table.add_column(f"k={k}", justify="right", no_wrap=True)
    table.add_column("< 1e-3 x k=0 at", justify="right")
    for flow in flows:
        for state in registry.get(flow.kind).states:
            curve = flow.curve(state)
            at = curve.vanished_at()
            cells = [_figure(curve.mean_norm[k]) for k in lags]
            table.add_row(flow.name, state, *cells, "-" if at is None else f"k={at}")
    return table


def _figure(v: float) -> str:
    return f"{v:.1e}" if v else "0"


def _print_table(table: Table) -> None:
    # A log file has no width: make it wide enough that no figure is cut.
    console = err if err.is_terminal else wide_err(160)
    console.print(table)


def _doc(flows: list[Flow], cfg: FlowConfig, source: str, tokens: int) -> dict:
    return {
        "text": source,
        "tokens": tokens,
        "max_lag": cfg.max_lag,
        "positions": cfg.positions,
        "carry_in": cfg.carry_in,
        "seed": cfg.seed,
        "models": [f.to_dict() for f in flows],
    }
