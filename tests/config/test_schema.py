"""Config validation and duration parsing."""

from __future__ import annotations

import pytest

from charlm.config.schema import DataConfig, RunConfig, TrainConfig, parse_duration
from charlm.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("10m", 600), ("1h30m", 5400), ("1.5h", 5400)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "10x", "m10", "-5m", "0"])
def test_parse_duration_rejects_malformed(text: str) -> None:
    with pytest.raises(ConfigError, match="write it like 90s, 10m"):
        parse_duration(text)


def test_round_trip_through_dict_ignores_unknown_keys() -> None:
    cfg = RunConfig(train=TrainConfig(lr=1e-3))
    d = cfg.to_dict()
    d["train"]["a_future_field"] = 1
    assert RunConfig.from_dict(d) == cfg


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"val_frac": 0.0}, "--val-frac"), ({"val_frac": 0.5, "test_frac": 0.5}, "--test-frac")],
)
def test_data_config_rejects_splits_without_data(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DataConfig(**kwargs)
