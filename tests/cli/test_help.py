"""Every help screen reads well at 80 columns: no long lines, no stray " .", no <bool>; -h works."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from charlm.cli import app
from charlm.config.options import parse_max_time, resolve_config
from charlm.config.presets import default_preset

ENV = {"COLUMNS": "80", "NO_COLOR": "1"}
# A space before a full stop that ends a sentence (not "./checkpoints" or "(.png").
STRAY_STOP = re.compile(r" \.(\s|$)")
# Typer's type labels: a metavar says what a value is; these say only how Python holds it.
PYTHON_TYPE = re.compile(r"<(bool|str|int|float|path|list\[\w+\])>")
# Typer's braces around a required argument in the usage line: {SOURCE}...
USAGE_BRACES = re.compile(r"\{[A-Z]")


def command_paths() -> list[list[str]]:
    """Every command and subcommand of the app, found by walking it (new ones are included)."""
    paths: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        paths.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


PATHS = command_paths()


def help_of(path: list[str], flag: str = "--help") -> str:
    r = CliRunner().invoke(app, [*path, flag], env=ENV)
    assert r.exit_code == 0, r.output
    return r.stdout


def test_every_command_is_walked() -> None:
    names = {" ".join(p) for p in PATHS}
    for name in ("train", "sample", "prime", "evaluate", "prepare", "plot", "inspect gradients",
                 "music check", "music render"):  # fmt: skip
        assert name in names


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "charlm")
def test_help_reads_well_at_80_columns(path: list[str]) -> None:
    text = help_of(path)
    assert text.strip()
    for line in text.splitlines():
        assert len(line) <= 80, line
        assert not STRAY_STOP.search(line), line
        assert not PYTHON_TYPE.search(line), line  # <bool>, CORPUS <list[str]>
    assert not re.search(r"x\s*[<>]=|[<>]=\s*x", " ".join(text.split())), text  # ranges in words
    assert not USAGE_BRACES.search(text.splitlines()[0]), text.splitlines()[0]
    assert help_of(path, "-h") == text  # -h is --help everywhere


def test_top_level_help_lists_every_command_on_one_line() -> None:
    text = help_of([])
    listed = text.split("Commands:")[1].splitlines()[1:]
    names = [line.split()[0] for line in listed if line.strip()]
    assert names == [
        "train", "sample", "fill", "prime", "complete", "chat", "evaluate", "prepare", "plot",
        "serve", "export", "inspect", "music",
    ]  # fmt: skip
    assert not any(line.rstrip().endswith("...") for line in listed)  # nothing cut short


# Command groups below the top level: those with subcommands of their own.
GROUPS = [p for p in PATHS if p and any(len(q) > len(p) and q[: len(p)] == p for q in PATHS)]


def test_groups_are_found() -> None:
    assert ["inspect"] in GROUPS and ["music"] in GROUPS


@pytest.mark.parametrize("group", GROUPS, ids=" ".join)
def test_group_help_lists_subcommands_uncut(group: list[str]) -> None:
    """inspect and music once listed 'how far back the loss's...'."""
    text = help_of(group)
    listed = text.split("Commands:")[1].splitlines()[1:]
    assert not any(line.rstrip().endswith("...") for line in listed), listed


def test_train_is_listed_with_its_several_corpora() -> None:
    assert "Train a model on text files or a directory." in help_of([])


def test_brackets_in_help_text_are_shown() -> None:
    """Rich markup once swallowed "[default: all cores but one]"."""
    assert "[default: all cores but one]" in " ".join(help_of(["train"]).split())


def test_train_help_shows_what_the_default_preset_sets() -> None:
    text = " ".join(help_of(["train"]).split())
    name = default_preset("char")
    assert "The default preset follows --tokenizer" in text and f"{name} sets:" in text
    sets = text.split(f"{name} sets:")[1]
    config, _ = resolve_config(name, {})
    assert f"--hidden-size {config.model.hidden_size} " in sets
    assert f"--lr {config.train.lr:g} " in sets
    shown = re.search(r"--max-time (\w+)", sets)  # written as --max-time takes it
    assert shown and parse_max_time(shown.group(1)) == config.train.max_time


def test_device_defaults_shown_are_the_ones_used() -> None:
    """sample and prime run on the CPU by default, train and evaluate on auto: help says so."""
    from charlm.generation.load import GENERATION_DEVICE

    for path, default in ((["sample"], GENERATION_DEVICE), (["prime"], GENERATION_DEVICE),
                          (["train"], "auto"), (["evaluate"], "auto")):  # fmt: skip
        text = " ".join(help_of(path).split())
        device_help = text.split("--device DEVICE")[1].split("]")[0] + "]"
        assert f"[default: {default}]" in device_help, (path, device_help)


def test_length_help_counts_tokens_not_characters() -> None:
    text = " ".join(help_of(["sample"]).split())
    assert "New tokens per sample: characters for a character model" in text
    # train's --sample-length counts tokens too (sample_ids draws N tokens)
    train = " ".join(help_of(["train"]).split())
    assert "--sample-length N Tokens sampled into samples.txt" in train


def test_prepare_help_lists_every_format_and_both_ascii_flags() -> None:
    from charlm.text.clean import FORMATS

    text = " ".join(help_of(["prepare"]).split())
    for fmt in FORMATS:
        assert f"{fmt}:" in text
    assert "--ascii / --no-ascii" in text


def test_one_prime_file_name_documented_in_both_commands() -> None:
    for path in (["sample"], ["prime"]):
        text = help_of(path)
        assert "--prime-file PATH" in text
        assert "--file" not in text.replace("--prime-file", "")
