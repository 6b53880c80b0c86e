"""Presets: each builds a valid config, and each description tells the truth about it."""

from __future__ import annotations

import re

import pytest

from charlm.cli.train import resolve_config
from charlm.config import ConfigError, ModelConfig, RunConfig, TrainConfig
from charlm.presets import DESCRIPTIONS, PRESETS, default_preset

CHAR_PRESETS = ["tiny", "small", "medium", "large"]
WORD_PRESETS = ["word-small", "word-medium"]


def test_every_preset_has_a_description_and_the_default_is_small() -> None:
    assert list(DESCRIPTIONS) == list(PRESETS) == CHAR_PRESETS + WORD_PRESETS
    assert PRESETS["small"] == {}  # the dataclass defaults, so `charlm train` = --preset small
    assert "default" in DESCRIPTIONS["small"]


def test_the_default_preset_follows_the_tokenizer() -> None:
    assert default_preset("char") == "small" and default_preset("sentencepiece") == "small"
    assert default_preset("word") == "word-small" and "default" in DESCRIPTIONS["word-small"]
    words, _ = resolve_config(None, {"tokenizer": "word"})
    chars, _ = resolve_config(None, {})
    assert (words.model.num_layers, words.model.hidden_size) == (2, 200)
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
def test_preset_builds_a_valid_config(name: str) -> None:
    config, notes = resolve_config(name, {})
    assert isinstance(config, RunConfig) and notes == []
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


def test_explicit_options_override_a_preset() -> None:
    config, notes = resolve_config("tiny", {"hidden_size": 24, "lr": 1e-3})
    assert config.model.hidden_size == 24 and config.train.lr == 1e-3
    assert notes == ["--hidden-size 24 overrides preset 'tiny'"]


def test_default_run_is_bounded_by_ten_minutes() -> None:
    # The defaults are tuned for a 10-minute run; the cosine schedule anneals over it.
    assert TrainConfig().max_time == 600.0
    assert TrainConfig().schedule == "cosine"
    assert ModelConfig().model == "lstm"
