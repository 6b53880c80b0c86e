"""Presets and options: how they reach the config, and what the user is told about it."""

from __future__ import annotations

import re
from dataclasses import fields

import pytest

from charlm.config.options import (
    FIELDS,
    parse_max_time,
    resolve_config,
    resume_config,
    schedule_bound,
)
from charlm.config.presets import DESCRIPTIONS, OTHER_OPTIMIZER_LR, PRESETS, default_preset
from charlm.config.schema import RunConfig
from charlm.errors import ConfigError

CHAR_PRESETS = ["tiny", "small", "medium", "large"]
WORD_PRESETS = ["word-small", "word-medium"]


def test_every_preset_has_a_description_and_the_default_is_the_dataclass_defaults() -> None:
    assert list(DESCRIPTIONS) == list(PRESETS)
    assert PRESETS["small"] == {}  # the dataclass defaults
    config, notes = resolve_config("small", {})
    assert config == RunConfig() and notes == []  # `charlm train` alone = --preset small
    assert f"dropout {config.model.dropout:g}" in DESCRIPTIONS["small"]
    assert "default" in DESCRIPTIONS["small"]


def test_the_default_preset_follows_the_tokenizer() -> None:
    assert default_preset("char") == "small" and default_preset("sentencepiece") == "small"
    assert default_preset("word") == "word-small" and "default" in DESCRIPTIONS["word-small"]
    words, _ = resolve_config(None, {"tokenizer": "word"})
    chars, _ = resolve_config(None, {})
    for key, value in PRESETS["word-small"]["model"].items():
        assert getattr(words.model, key) == value, key
    assert words.model.tie_weights and words.model.dropout > 0
    assert chars == resolve_config("small", {})[0]


def test_a_tied_preset_follows_the_sizes_given() -> None:
    config, notes = resolve_config("word-small", {"hidden_size": 64})
    assert config.model.embed_size == 64 and config.model.tie_weights
    config, notes = resolve_config("word-small", {"hidden_size": 64, "embed_size": 32})
    assert not config.model.tie_weights and any("untied" in n for n in notes)
    with pytest.raises(ConfigError, match="--tie-weights needs"):
        resolve_config("word-small", {"hidden_size": 64, "embed_size": 32, "tie_weights": True})


@pytest.mark.parametrize("name", list(PRESETS))
def test_a_presets_values_reach_the_config(name: str) -> None:
    config, notes = resolve_config(name, {})
    assert notes == []
    for section, values in PRESETS[name].items():
        for key, value in values.items():
            assert getattr(getattr(config, section), key) == value


@pytest.mark.parametrize("name", list(PRESETS))
def test_description_names_the_network_and_budget(name: str) -> None:
    config, _ = resolve_config(name, {})
    m, t = config.model, config.train
    assert f"{m.num_layers}x{m.hidden_size} {m.model.upper()}" in DESCRIPTIONS[name]
    minutes = re.search(r"(\d+) (minute|second)", DESCRIPTIONS[name])
    if t.max_time is None:
        assert minutes is None and "GPU" in DESCRIPTIONS[name]
    else:
        assert minutes is not None
        unit = 60 if minutes.group(2) == "minute" else 1
        assert int(minutes.group(1)) * unit == t.max_time


@pytest.mark.parametrize("names", [CHAR_PRESETS, WORD_PRESETS])
def test_presets_grow_from_tiny_to_large(names: list[str]) -> None:
    sizes = []
    for name in names:
        m = resolve_config(name, {})[0].model
        sizes.append(m.num_layers * m.hidden_size * (m.embed_size + m.hidden_size))
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)


def test_every_option_names_a_real_field() -> None:
    config = RunConfig()
    sections = {f.name: {g.name for g in fields(getattr(config, f.name))} for f in fields(config)}
    for option, (section, name) in FIELDS.items():
        assert name in sections[section], option


def _other_value(value: object) -> object:
    if isinstance(value, bool):
        return not value
    if isinstance(value, str):  # a choice: another valid one
        return {"adamw": "sgd", "sgd": "adamw", "cosine": "constant", "off": "bf16"}[value]
    if isinstance(value, float) and value < 1:  # a fraction (dropout): stay below 1
        return value / 2 if value else 0.3
    return value * 2 if value else 7  # 0 doubled is no change


@pytest.mark.parametrize("name", [p for p in PRESETS if PRESETS[p]])
def test_an_explicit_option_beats_each_preset_value_and_says_so(name: str) -> None:
    by_field = {v: k for k, v in FIELDS.items()}
    for section, values in PRESETS[name].items():
        for key, value in values.items():
            option = by_field[(section, key)]
            typed = "97m" if key == "max_time" else _other_value(value)  # no preset says 97m
            rate = {"lr": 0.5} if key == "optimizer" else {}  # a rate belongs to its optimizer
            config, notes = resolve_config(name, {option: typed} | rate)
            expected = 5820.0 if key == "max_time" else typed
            assert getattr(getattr(config, section), key) == expected
            flag = "--" + ("no-" if typed is False else "") + option.replace("_", "-")
            assert any(n.startswith(flag) and f"preset '{name}'" in n for n in notes), notes


def test_an_option_equal_to_the_preset_is_not_a_conflict() -> None:
    hidden = PRESETS["tiny"]["model"]["hidden_size"]
    assert resolve_config("tiny", {"hidden_size": hidden})[1] == []


def test_notes_quote_the_option_as_typed() -> None:
    """Not Python values: `--max-time None`, `--tie-weights True` mean nothing to a user."""
    _, notes = resolve_config("tiny", {"max_time": "none"})
    assert notes == ["--max-time none overrides preset 'tiny'"]
    _, notes = resolve_config("medium", {"max_time": "10m"})
    assert notes == ["--max-time 10m overrides preset 'medium'"]
    _, notes = resolve_config("medium", {"dropout": 0.0})
    assert notes == ["--dropout 0 overrides preset 'medium'"]


@pytest.mark.parametrize("text", ["0", "0s", "0m", "0.0h", "00"])
def test_a_zero_time_limit_is_refused_with_the_word_to_use(text: str) -> None:
    with pytest.raises(ConfigError, match=r"is no time at all: write --max-time none"):
        parse_max_time(text)


def test_none_and_durations_parse() -> None:
    assert parse_max_time("none") is None and parse_max_time("OFF") is None
    assert parse_max_time("1h30m") == 5400.0 and parse_max_time("10") == 10.0


def test_a_step_bound_replaces_the_presets_clock() -> None:
    """A hidden time limit would end the run, and shape its schedule, by the wall clock."""
    config, notes = resolve_config("tiny", {"max_steps": 50})
    assert config.train.max_time is None and config.train.max_steps == 50
    tiny = PRESETS["tiny"]["train"]["max_time"]
    assert any(
        f"--max-steps replaces the preset 'tiny' time limit of {tiny:g}s" in n for n in notes
    )
    config, notes = resolve_config("small", {"epochs": 2})
    assert config.train.max_time is None
    default = RunConfig().train.max_time
    assert any(f"--epochs replaces the default time limit of {default:g}s" in n for n in notes)


def test_an_explicit_clock_with_a_step_bound_is_kept() -> None:
    config, notes = resolve_config("tiny", {"max_steps": 50, "max_time": "2m"})
    assert config.train.max_time == 120.0 and not any("replaces" in n for n in notes)
    assert "whichever comes first" in schedule_bound(config.train, steps_per_epoch=10)


def test_schedule_bound_names_the_bound_that_comes_first() -> None:
    steps, _ = resolve_config("tiny", {"max_steps": 50})
    assert schedule_bound(steps.train, 100) == "the schedule follows --max-steps 50"
    epochs, _ = resolve_config("tiny", {"epochs": 2, "max_steps": 500})
    assert schedule_bound(epochs.train, 100) == "the schedule follows --epochs 2 (200 steps)"


def test_resume_changes_bounds_only_and_names_what_it_ignores() -> None:
    config, _ = resolve_config("tiny", {})
    resumed, notes = resume_config(config, {"max_steps": 9, "max_time": "none", "lr": 1.0})
    assert resumed.train.max_steps == 9 and resumed.train.max_time is None
    assert resumed.train.lr == config.train.lr and config.train.max_steps is None
    assert notes == ["--lr ignored when resuming: the run keeps its own settings"]


def test_resume_may_move_the_run_to_another_device_or_thread_count() -> None:
    config, _ = resolve_config("small", {"device": "cuda", "threads": 4})
    resumed, notes = resume_config(config, {"device": "cpu", "threads": 1})
    assert (resumed.train.device, resumed.train.threads, notes) == ("cpu", 1, [])


def test_resume_validates_the_new_bounds() -> None:
    with pytest.raises(ConfigError, match="--max-steps must be greater than 0"):
        resume_config(RunConfig(), {"max_steps": -1})


def test_another_optimizer_takes_a_rate_measured_for_it_or_asks_for_one() -> None:
    # word-small's SGD rate (20) would blow AdamW up: AdamW gets the rate measured for it.
    measured = OTHER_OPTIMIZER_LR["word-small"]["adamw"]
    config, notes = resolve_config(None, {"tokenizer": "word", "optimizer": "adamw"})
    assert (config.train.optimizer, config.train.lr) == ("adamw", measured)
    assert (
        f"--optimizer adamw takes lr {measured:g}, measured with preset 'word-small'" in notes[-1]
    )
    # No rate measured for SGD with the character preset: one clear refusal naming --lr.
    own = re.escape(f"lr {RunConfig().train.lr:g} for adamw")
    with pytest.raises(ConfigError, match=rf"--optimizer sgd needs --lr too: .* {own}"):
        resolve_config(None, {"optimizer": "sgd"})
    config, _ = resolve_config(None, {"optimizer": "sgd", "lr": 1.0})
    assert (config.train.optimizer, config.train.lr) == ("sgd", 1.0)
    config, notes = resolve_config("word-medium", {"optimizer": "sgd"})  # its own: unchanged
    assert config.train.lr == PRESETS["word-medium"]["train"]["lr"] and notes == []


def test_another_optimizer_drops_the_presets_adamw_weight_decay_unless_one_is_given() -> None:
    # medium's decay is AdamW's: as SGD's L2 term at a rate like 20 it would wreck the weights.
    decay = PRESETS["medium"]["train"]["weight_decay"]
    assert resolve_config("medium", {})[0].train.weight_decay == decay > 0
    config, notes = resolve_config("medium", {"optimizer": "sgd", "lr": 1.0})
    assert (config.train.optimizer, config.train.weight_decay) == ("sgd", 0.0)
    assert f"--optimizer sgd drops the weight decay {decay:g} of preset 'medium'" in notes[-1]
    assert "--weight-decay to set one" in notes[-1]
    config, notes = resolve_config("medium", {"optimizer": "sgd", "lr": 1.0, "weight_decay": 1e-4})
    assert config.train.weight_decay == 1e-4 and not any("drops" in n for n in notes)
    with pytest.raises(ConfigError, match="--optimizer sgd needs --lr too"):
        resolve_config("medium", {"optimizer": "sgd"})
    config, notes = resolve_config("medium", {"optimizer": "adamw"})  # its own: kept
    assert config.train.weight_decay == decay and notes == []
