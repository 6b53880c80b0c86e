"""Where should weight averaging start? One run, several running means kept side by side.

A run of the default preset on tiny-shakespeare (nanoGPT's 90/10 split) keeps, beside the
weights it trains, the uniform mean from each of several starts (what ``--average-from F``
keeps) and exponential means from half-way, and scores each on the whole validation split at
the end: one run answers what a run per start would, on the same weights. Progress on stderr,
a Markdown table on stdout. Results: docs/records/averaging.md.

    python -m bench.averaging --steps 200                      # about 2 minutes on one thread
    python -m bench.averaging --minutes 10 --set schedule=constant --starts 0.7,0.85,0.95
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import torch

from bench.words import SHAKESPEARE
from charlm.config.options import resolve_config
from charlm.data.corpus import read_corpus
from charlm.evaluation.scoring import score_tokens
from charlm.models.lm import RNNLM
from charlm.training.averaging import WeightAverage, lerp_all
from charlm.training.events import StepEvent
from charlm.training.setup import new_trainer


class SideBySide:
    """The means a run's StepEvents feed: uniform from each start, exponential from half-way."""

    def __init__(self, starts: list[float], decays: list[float]) -> None:
        self.uniform: dict[float, WeightAverage | None] = dict.fromkeys(starts)
        self.counts = dict.fromkeys(starts, 0)
        self.ema: dict[float, WeightAverage | None] = dict.fromkeys(decays)

    def step(self, model: RNNLM, progress: float) -> None:
        for f, mean in self.uniform.items():
            if progress >= f:  # as the Trainer decides (--average-from)
                self.uniform[f] = mean = mean or WeightAverage(model)
                self.counts[f] += 1
                mean.add(model, self.counts[f])
        for d, mean in self.ema.items():
            if progress >= 0.5:
                self.ema[d] = mean = mean or WeightAverage(model)
                with torch.no_grad():  # mean = d * mean + (1 - d) * weights
                    lerp_all(
                        list(mean.model.parameters()),
                        [p.detach() for p in model.parameters()],
                        1.0 - d,
                    )

    def models(self) -> dict[str, RNNLM]:
        named = {
            f"uniform from {f:g} ({self.counts[f]} steps)": m.model
            for f, m in self.uniform.items()
            if m is not None
        }
        return named | {f"EMA decay {d:g} from 0.5": m.model for d, m in self.ema.items() if m}


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(1)
    options: dict[str, Any] = {"val_frac": 0.1, "threads": 1, "sample_length": 0}
    options |= {"eval_every": 10**9, "max_time": args.minutes and f"{args.minutes}m"}
    if args.steps:
        options["max_steps"] = args.steps
    options |= dict(_setting(s) for s in args.set)
    options = {k: v for k, v in options.items() if v is not None}
    config, notes = resolve_config(None, options)
    side = SideBySide(_floats(args.starts), _floats(args.ema))
    with TemporaryDirectory() as tmp:
        corpus = read_corpus(str(args.corpus))
        trainer, _ = new_trainer(config, corpus, Path(tmp) / "run", seed=args.seed)

        def on_event(e: object) -> None:
            if isinstance(e, StepEvent):
                side.step(trainer.model, e.progress)
                if e.step % 50 == 0:
                    print(f"step {e.step}: {e.tokens_per_s:,.0f} tokens/s", file=sys.stderr)

        started = time.monotonic()
        trainer.run(on_event)
        seconds = time.monotonic() - started
        val, tc = trainer.splits.val, trainer.config.train
        scores = {}
        for name, model in {"raw (the weights trained)": trainer.model, **side.models()}.items():
            nats, count = score_tokens(model, val, tc.eval_batch_size, tc.bptt)
            scores[name] = nats / count
    return {
        "steps": trainer.state.step,
        "seconds": round(seconds),
        "settings": options,
        "notes": notes,
        "val_nats_per_char": scores,
    }


def _setting(text: str) -> tuple[str, Any]:
    name, _, value = text.partition("=")
    try:
        return name.replace("-", "_"), json.loads(value)
    except json.JSONDecodeError:
        return name.replace("-", "_"), value


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def table(result: dict[str, Any]) -> str:
    raw = result["val_nats_per_char"]["raw (the weights trained)"]
    lines = ["| weights | val nats/char | vs raw |", "|---|---:|---:|"]
    for name, nats in result["val_nats_per_char"].items():
        lines.append(f"| {name} | {nats:.4f} | {nats - raw:+.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m bench.averaging", description=__doc__.split("\n")[0]
    )
    p.add_argument("--steps", type=int, help="bound the run by steps (repeatable)")
    p.add_argument("--minutes", type=float, help="bound the run by time")
    p.add_argument("--starts", default="0.5,0.7,0.85,0.95", help="uniform means from these")
    p.add_argument("--ema", default="0.9,0.97,0.99", help="exponential means with these decays")
    p.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE",
                   help="a charlm train option, e.g. schedule=constant (repeatable)")  # fmt: skip
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--corpus", type=Path, default=SHAKESPEARE)
    args = p.parse_args(argv)
    if not args.steps and not args.minutes:
        p.error("give --steps or --minutes")
    result = run(args)
    print(json.dumps({k: v for k, v in result.items() if k != "val_nats_per_char"}))
    print(table(result))


if __name__ == "__main__":
    main()
