"""`charlm train`'s config options are declared once, on the config fields, and cannot drift."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from charlm.cli import app
from charlm.cli import train as train_cli
from charlm.cli.config_options import _cli_type
from charlm.config.options import FIELDS, OPTIONS
from charlm.config.schema import DataConfig, ModelConfig, TrainConfig

runner = CliRunner()
_VALUES = {int: "3", float: "0.5", str: "x"}


class _Stop(Exception):
    pass


def _argv(option: str) -> list[str]:
    o = OPTIONS[option]
    kind = _cli_type(o)
    return [o.flag] if kind is bool else [o.flag, _VALUES[kind]]


def test_every_field_with_help_is_an_option_and_nothing_else_is() -> None:
    declared = {
        (section, f.name)
        for section, config in (
            ("model", ModelConfig),
            ("data", DataConfig),
            ("train", TrainConfig),
        )
        for f in dataclasses.fields(config)
        if "help" in f.metadata
    }
    assert set(FIELDS.values()) == declared
    assert FIELDS["layers"] == ("model", "num_layers")  # a flag other than the field's name


def test_every_option_is_in_help_with_its_metavar() -> None:
    text = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).stdout
    for o in OPTIONS.values():
        shown = o.flag if _cli_type(o) is bool else f"{o.flag} {o.metavar}"
        assert shown in text, shown


def test_every_option_given_reaches_the_settings(
    corpus_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def spy(preset: str | None, given: dict[str, Any]) -> Any:
        seen.update(given)
        raise _Stop

    monkeypatch.setattr(train_cli, "resolve_config", spy)
    argv = [arg for option in OPTIONS for arg in _argv(option) if option != "device"]
    result = runner.invoke(app, ["train", str(corpus_file), *argv, "--device", "cpu"])
    assert isinstance(result.exception, _Stop), result.output
    assert set(seen) == set(OPTIONS)
    assert seen["layers"] == 3 and seen["tie_weights"] is True and seen["max_time"] == "x"


def test_messages_name_the_flag_not_the_field(corpus_file: Path) -> None:
    result = runner.invoke(app, ["train", str(corpus_file), "--layers", "0", "--dry-run"])
    assert result.exit_code != 0
    assert "--layers must be greater than 0" in result.stderr
    assert "num-layers" not in result.stderr
