"""Each default has one source: the commands and library functions read it from there."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from charlm.cli import app
from charlm.config.schema import TrainConfig
from charlm.evaluation.scoring import score_text, score_tokens
from charlm.generation.load import GENERATION_DEVICE, load_model

runner = CliRunner()


def _default(func: object, name: str) -> object:
    return inspect.signature(func).parameters[name].default  # type: ignore[arg-type]


@pytest.mark.parametrize("command", ["sample", "prime"])
def test_generation_commands_load_on_the_one_generation_device(
    command: str, trained_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    def spy(checkpoint: object, device: str = "?", *args: object, **kwargs: object):
        seen.append(device)
        return load_model(checkpoint, device)  # type: ignore[arg-type]

    monkeypatch.setattr(f"charlm.cli.{command}.load_checkpoint", spy)
    args = [command, str(trained_run), "-n", "1", "--length", "3", "--seed", "1", "--quiet"]
    result = runner.invoke(app, args + (["Fir"] if command == "prime" else []))
    assert result.exit_code == 0, result.output
    assert seen == [GENERATION_DEVICE]


def test_train_and_evaluate_default_to_the_training_configs_device(
    corpus_file: Path, tmp_path: Path
) -> None:
    from charlm.cli.evaluate import evaluate

    assert _default(evaluate, "device") == TrainConfig().device
    # train's --device is derived from the field: left out, the config's own default stands
    out = tmp_path / "run"
    args = ["train", str(corpus_file), "-o", str(out), "--batch-size", "2", "--bptt", "8"]
    result = runner.invoke(app, [*args, "--dry-run", "-q"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["config"]["train"]["device"] == TrainConfig().device


def test_scoring_defaults_are_trainings() -> None:
    for func in (score_tokens, score_text):
        assert _default(func, "bptt") == TrainConfig().bptt
        assert _default(func, "batch_size") == TrainConfig().eval_batch_size
