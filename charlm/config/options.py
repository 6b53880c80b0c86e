"""A run's settings: defaults, then a preset, then the user's options; what a resume may change.

The one place options meet the dataclass configs. Options arrive as ``{option: value}`` with
the option's Python name (``hidden_size`` for ``--hidden-size``); ``max_time`` as the user
typed it, so notes can quote it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from charlm.config.presets import OTHER_OPTIMIZER_LR, PRESETS, default_preset
from charlm.config.schema import (
    OPTIMIZERS,
    PLATEAU_FACTOR,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    parse_duration,
)
from charlm.errors import ConfigError


@dataclass(frozen=True)
class Option:
    """One `charlm train` option, read off the config field that declares it
    (``schema.option``): its name is the flag's (``layers`` for ``--layers``)."""

    name: str
    section: str  # model, data or train
    field: str
    metavar: str
    help: str
    typed: type | None  # what the command line reads, when not the field's type
    facts: dict[str, Any]

    @property
    def flag(self) -> str:
        return flag(self.name)


def _options() -> dict[str, Option]:
    sections = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}
    found: dict[str, Option] = {}
    for section, config in sections.items():
        for f in fields(config):
            if "help" not in f.metadata:
                continue  # a field no option sets (vocab_size of the model, momentum, ...)
            meta = dict(f.metadata)
            name = meta.pop("flag", "--" + f.name)[2:].replace("-", "_")
            found[name] = Option(
                name,
                section,
                f.name,
                meta.pop("metavar"),
                meta.pop("help"),
                meta.pop("typed", None),
                meta,
            )
    return found


OPTIONS: dict[str, Option] = _options()
# Option name -> (config section, dataclass field).
FIELDS: dict[str, tuple[str, str]] = {o.name: (o.section, o.field) for o in OPTIONS.values()}
# Options that may change when resuming: how long to go on, not what is being trained.
RESUME_BOUNDS = tuple(o.name for o in OPTIONS.values() if o.facts.get("resume") == "bound")
# Where it runs may change too: a run started with --device cuda must be resumable elsewhere,
# and a shared machine may need fewer --threads than when the run started.
RESUME_PLACES = tuple(o.name for o in OPTIONS.values() if o.facts.get("resume") == "place")
# Options that only one tokenizer reads, and which one.
TOKENIZER_OPTIONS = {
    o.name: o.facts["tokenizer"] for o in OPTIONS.values() if "tokenizer" in o.facts
}

NO_LIMIT = ("none", "off")  # what --max-time takes for "no time limit"


def check_tokenizer_options(tokenizer: str, given: dict[str, Any]) -> None:
    """Refuse an option meant for another tokenizer.

    Refused rather than warned: the run would otherwise train for minutes on a vocabulary the
    user did not ask for (--min-freq 5 with characters keeps every character), and the fix is
    one word on the command line.
    """
    for option, kind in TOKENIZER_OPTIONS.items():
        if option in given and kind != tokenizer:
            raise ConfigError(
                f"{flag(option)} applies to --tokenizer {kind} only, and this run uses "
                f"{tokenizer}: drop {flag(option)} or add --tokenizer {kind}"
            )


def flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def parse_max_time(text: str, trained: float = 0.0) -> float | None:
    """The run's total time limit in seconds, or None for 'none' (no time limit).

    Like --max-steps and --epochs, --max-time bounds the whole run, resumes included: the
    saved progress counts the time. ``+DURATION`` means that much more than the ``trained``
    seconds so far (on a new run, the same as DURATION). 0 is refused: it reads like 'stop
    at once'.
    """
    s = text.strip().lower()
    if s in NO_LIMIT:
        return None
    more = s.startswith("+")
    s = s.removeprefix("+").strip()
    if s.rstrip("hms").replace(".", "").strip("0") == "" and s[:1].isdigit():
        raise ConfigError(
            f"--max-time {text} is no time at all: write --max-time none for no time limit"
        )
    return parse_duration(s) + (trained if more else 0.0)


def resolve_config(preset: str | None, given: dict[str, Any]) -> tuple[RunConfig, list[str]]:
    """Defaults, then the preset, then explicit options (which win, with a note).

    Without a preset the tokenizer chooses one: characters and words want different nets.
    """
    if preset is None:
        preset = default_preset(given.get("tokenizer", DataConfig.tokenizer))
    if preset not in PRESETS:
        raise ConfigError(f"unknown --preset '{preset}': choose one of {', '.join(PRESETS)}")
    values: dict[str, dict[str, Any]] = {s: dict(v) for s, v in PRESETS[preset].items()}
    notes = []
    for option, typed in given.items():
        section, name = FIELDS[option]
        value = _value(option, typed)
        preset_value = PRESETS[preset].get(section, {}).get(name, value)
        if preset_value != value:
            notes.append(f"{_as_typed(option, typed)} overrides preset '{preset}'")
        values.setdefault(section, {})[name] = value
    notes += _follow_tied_sizes(values.setdefault("model", {}), given)
    notes += _follow_optimizer(preset, values.setdefault("train", {}), given)
    notes += _repeatable_bounds(preset, given, values.setdefault("train", {}))
    return RunConfig.from_dict(values), notes


def _follow_tied_sizes(model: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """A preset that ties weights (the word presets) follows a size the user changed: the
    embedding takes --hidden-size, or the tie goes when both sizes differ; --tie-weights given
    explicitly is left to fail validation with its own message."""
    if not model.get("tie_weights") or "tie_weights" in given:
        return []
    if "hidden_size" in given and "embed_size" not in given:
        model["embed_size"] = model["hidden_size"]
        return []
    if model.get("embed_size", 0) == model.get("hidden_size", -1):
        return []
    model["tie_weights"] = False
    return ["--embed-size differs from --hidden-size: the preset's tied weights are untied"]


def _follow_optimizer(preset: str, train: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """--optimizer without --lr: the preset's rate is its own optimizer's, so take a rate
    measured for the chosen one, or ask for --lr."""
    chosen = train.get("optimizer", TrainConfig.optimizer)
    ours = PRESETS[preset].get("train", {})
    own = ours.get("optimizer", TrainConfig.optimizer)
    if "optimizer" not in given or chosen == own or chosen not in OPTIMIZERS:
        return []
    notes = _drop_preset_decay(preset, ours.get("weight_decay", 0.0), train, given, chosen)
    if "lr" in given:
        return notes
    lr = OTHER_OPTIMIZER_LR.get(preset, {}).get(chosen)
    if lr is None:
        own_lr = ours.get("lr", TrainConfig.lr)
        raise ConfigError(
            f"--optimizer {chosen} needs --lr too: preset '{preset}' sets lr {own_lr:g} for "
            f"{own}, and no rate for {chosen} has been measured with it"
        )
    train["lr"] = lr
    took = f"--optimizer {chosen} takes lr {lr:g}, measured with preset '{preset}' (--lr to change)"
    return [*notes, took]


def _drop_preset_decay(
    preset: str, decay: float, train: dict[str, Any], given: dict[str, Any], chosen: str
) -> list[str]:
    """A preset's weight decay is AdamW's, decoupled from the rate; SGD's is an L2 term
    scaled by the rate (0.1 at SGD's lr 20 would flip every weight's sign each step), so
    another optimizer starts without it unless --weight-decay is given."""
    if decay == 0 or "weight_decay" in given:
        return []
    train["weight_decay"] = 0.0
    return [
        f"--optimizer {chosen} drops the weight decay {decay:g} of preset '{preset}', measured "
        "with adamw (--weight-decay to set one)"
    ]


def _value(option: str, typed: Any, trained: float = 0.0) -> Any:
    if option == "max_time" and isinstance(typed, str):
        return parse_max_time(typed, trained)
    return typed


def _as_typed(option: str, typed: Any) -> str:
    """The option as the user wrote it: a flag alone for booleans, the text for durations."""
    if isinstance(typed, bool):
        return flag(option) if typed else flag("no_" + option)
    return f"{flag(option)} {typed:g}" if isinstance(typed, float) else f"{flag(option)} {typed}"


def _repeatable_bounds(preset: str, given: dict[str, Any], train: dict[str, Any]) -> list[str]:
    """A step or epoch bound the user gives makes the run repeatable: no hidden clock.

    A preset's (or the default) time limit would otherwise end the run, and shape its cosine
    schedule, by the wall clock, so the same seed would give different models.
    """
    bounds = [o for o in ("max_steps", "epochs") if o in given]
    max_time = train.get("max_time", TrainConfig.max_time)
    if not bounds or "max_time" in given or max_time is None:
        return []
    train["max_time"] = None
    source = f"preset '{preset}'" if "max_time" in PRESETS[preset].get("train", {}) else "default"
    return [
        f"{' and '.join(flag(o) for o in bounds)} replaces the {source} time limit of "
        f"{max_time:g}s, so the run is repeatable (add --max-time to keep a clock)"
    ]


def schedule_bound(tc: TrainConfig, steps_per_epoch: int) -> str:
    """Which bound the learning-rate schedule anneals over, in words, for the user."""
    steps = tc.epochs * steps_per_epoch
    by_steps = (
        f"--max-steps {tc.max_steps}"
        if tc.max_steps and tc.max_steps < steps
        else f"--epochs {tc.epochs} ({steps:,} steps)"
    )
    if tc.schedule == "plateau":
        until = by_steps if tc.max_time is None else f"{by_steps} or --max-time {tc.max_time:g}s"
        return (
            f"the learning rate is cut by {PLATEAU_FACTOR} whenever validation stalls; "
            f"the run stops at {until}"
        )
    if tc.max_time is None:
        return f"the schedule follows {by_steps}"
    return (
        f"the schedule follows {by_steps} or --max-time {tc.max_time:g}s, whichever comes "
        "first (the clock makes the run unrepeatable)"
    )


def resume_config(
    config: RunConfig, given: dict[str, Any], trained: float = 0.0
) -> tuple[RunConfig, list[str]]:
    """The run's own config with its bounds and place changed; other options are dropped, noted.

    ``trained``: the seconds the run has trained, which ``--max-time +DURATION`` adds to."""
    allowed = RESUME_BOUNDS + RESUME_PLACES
    bounds = {FIELDS[k][1]: _value(k, v, trained) for k, v in given.items() if k in allowed}
    ignored = [k for k in given if k not in allowed]
    notes = []
    if ignored:
        opts = ", ".join(flag(k) for k in sorted(ignored))
        notes.append(f"{opts} ignored when resuming: the run keeps its own settings")
    return replace(config, train=replace(config.train, **bounds)), notes
