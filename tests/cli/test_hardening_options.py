"""Bad options: each gets one line naming the option and what it accepts, before any work.

Options with a Typer bound (``min=``) fail as usage errors (exit 2); the rest are checked by
the dataclass configs and fail with exit 1 and one `charlm: error:` line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from charlm.cli import app
from tests.helpers import MICRO_ARGS
from tests.helpers.results import one_line_error

runner = CliRunner()


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


@pytest.mark.parametrize(
    ("option", "value", "phrase"),
    [
        ("--batch-size", "0", "--batch-size must be greater than 0"),
        ("--batch-size", "-4", "--batch-size must be greater than 0 (got -4)"),
        ("--bptt", "0", "--bptt must be greater than 0"),
        ("--embed-size", "-1", "--embed-size must be greater than 0"),
        ("--layers", "0", "--layers must be greater than 0"),
        ("--lr", "0", "--lr must be greater than 0"),
        ("--epochs", "-1", "--epochs must be greater than 0"),
        ("--max-steps", "0", "--max-steps must be greater than 0"),
        ("--eval-every", "0", "--eval-every must be greater than 0"),
        ("--dropout", "1", "--dropout must be in [0, 1)"),
        ("--grad-clip", "-1", "--grad-clip must be 0 (off) or positive"),
        ("--val-frac", "0", "--val-frac must be between 0 and 1"),
        ("--val-frac", "1.5", "--val-frac must be between 0 and 1"),
        ("--test-frac", "0.96", "--test-frac must be in [0, 1) and leave training data"),
        ("--model", "transformer", "choose one of lstm, gru, rnn"),
        ("--tokenizer", "bpe", "unknown --tokenizer 'bpe': choose one of char, word"),
        ("--optimizer", "adam", "unknown --optimizer 'adam': choose one of adamw, sgd"),
        ("--device", "tpu", "unknown --device 'tpu'"),
        ("--max-time", "10 minutes", "cannot read the duration '10 minutes': write it like 90s"),
        ("--max-time", "-5m", "cannot read the duration '-5m'"),
        ("--max-time", "1.5.2h", "cannot read the duration '1.5.2h'"),
        ("--max-time", "m", "cannot read the duration 'm'"),
        ("--preset", "huge", "unknown --preset 'huge': choose one of"),
    ],
)
def test_bad_training_options(
    corpus_file: Path, tmp_path: Path, option: str, value: str, phrase: str
) -> None:
    out = tmp_path / "run"
    result = invoke("train", str(corpus_file), "--out", str(out), *MICRO_ARGS, option, value)
    one_line_error(result, phrase, code=2)  # options that cannot work: a usage error
    assert not out.exists()


def test_tied_weights_need_equal_sizes(corpus_file: Path) -> None:
    result = invoke("train", str(corpus_file), "--tie-weights", "--embed-size", "8",
                    "--hidden-size", "16", "--dry-run")  # fmt: skip
    one_line_error(result, "--tie-weights needs --embed-size equal to --hidden-size", code=2)


def test_resume_checks_new_bounds_too(trained_run: Path) -> None:
    one_line_error(invoke("train", "--resume", str(trained_run), "--max-steps", "-3"),
                   "--max-steps must be greater than 0", code=2)  # fmt: skip


def test_explicit_options_beat_the_preset_and_each_is_named(corpus_file: Path) -> None:
    result = invoke("train", str(corpus_file), "--preset", "tiny", "--dry-run",
                    "--hidden-size", "24", "--bptt", "9", "--layers", "1")  # fmt: skip
    assert result.exit_code == 0, result.output
    model = json.loads(result.stdout)["config"]
    assert (model["model"]["hidden_size"], model["train"]["bptt"]) == (24, 9)
    notes = [line for line in result.stderr.splitlines() if "overrides preset" in line]
    assert "warning: --hidden-size 24 overrides preset 'tiny'" in notes
    assert "warning: --bptt 9 overrides preset 'tiny'" in notes


def test_an_explicit_option_equal_to_the_preset_is_not_a_conflict(corpus_file: Path) -> None:
    tiny = json.loads(invoke("train", str(corpus_file), "--preset", "tiny", "--dry-run").stdout)
    same = str(tiny["config"]["model"]["hidden_size"])
    result = invoke("train", str(corpus_file), "--preset", "tiny", "--hidden-size", same,
                    "--dry-run")  # fmt: skip
    assert result.exit_code == 0 and "overrides" not in result.stderr


@pytest.mark.parametrize(
    ("option", "value", "phrase"),
    [
        ("--temperature", "-0.5", "--temperature must be greater than 0 (got -0.5)"),
        ("--top-p", "0", "--top-p must be in (0, 1]"),
        ("--top-p", "1.01", "--top-p must be in (0, 1]"),
        ("--top-p", "-1", "--top-p must be in (0, 1]"),
        ("--bias", "-0.1", "--bias must be 0 or more"),
        ("--unknown", "drop", "unknown --unknown 'drop': choose error or skip"),
        ("--device", "tpu", "unknown --device 'tpu': use auto, cpu or cuda"),
        ("--separator", "\\x", "cannot read the escapes"),
    ],
)
@pytest.mark.parametrize("command", ["sample", "prime"])
def test_bad_sampling_options(
    trained_run: Path, command: str, option: str, value: str, phrase: str
) -> None:
    text = ["All:"] if command == "prime" else []
    one_line_error(
        invoke(command, str(trained_run), *text, "-n", "5", option, value), phrase, code=2
    )


def test_temperature_zero_points_to_greedy(trained_run: Path) -> None:
    one_line_error(invoke("sample", str(trained_run), "--temperature", "0"), "use --greedy", code=2)


@pytest.mark.parametrize(
    ("command", "option", "value"),
    [
        ("sample", "--length", "-1"),
        ("sample", "--num-samples", "0"),
        ("sample", "--top-k", "0"),
        ("sample", "--threads", "0"),
        ("prime", "--candidates", "0"),
        ("evaluate", "--batch-size", "0"),
        ("evaluate", "--bptt", "-2"),
        ("train", "--nproc", "0"),
    ],
)
def test_typer_bounds_are_usage_errors_naming_the_option(
    trained_run: Path, command: str, option: str, value: str
) -> None:
    result = invoke(command, str(trained_run), option, value)
    one_line_error(result, f"Invalid value for '{option}'", f"{command} --help'", code=2)


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["train", "corpus.txt", "--bogus"], "No such option: --bogus"),
        (["sample", "--temperature", "warm"], "Invalid value for '--temperature'"),
        (["prime", "--length"], "'--length' requires an argument"),
        (["sampel"], "No such command 'sampel'"),
    ],
)
def test_click_usage_errors_are_one_line_too(args: list[str], phrase: str) -> None:
    """Not Rich's boxed panel under a usage line: one line, exit 2, the help to read."""
    one_line_error(invoke(*args), phrase, "--help'", code=2)


def test_charlm_alone_still_prints_its_help() -> None:
    result = invoke()
    assert result.exit_code == 2 and "train" in result.output and "evaluate" in result.output
    assert result.output.count("Usage:") == 1
