"""The run's bounds: which one ends it, the steps the schedule plans for, progress."""

from __future__ import annotations

import pytest

from charlm.config.schema import TrainConfig
from charlm.rundir.progress import TrainState
from charlm.training.stopping import StopRules


def rules(**train: object) -> StopRules:
    bounds = {"epochs": 3, "max_steps": None, "max_time": None} | train
    return StopRules(TrainConfig(**bounds))  # type: ignore[arg-type]


def state(**progress: object) -> TrainState:
    return TrainState(seed=0, **progress)  # type: ignore[arg-type]


def test_a_run_within_its_bounds_is_not_finished() -> None:
    r = rules(max_steps=10, max_time=60.0, patience=2)
    assert r.finished(state(step=9, epoch=2, elapsed=59.0, evals_since_best=1)) == ""


@pytest.mark.parametrize(
    ("train", "progress", "reason"),
    [
        ({"max_steps": 10}, {"step": 10}, "max_steps"),
        ({}, {"epoch": 3}, "epochs"),
        ({"max_time": 60.0}, {"elapsed": 60.0}, "max_time"),
        ({"patience": 2}, {"evals_since_best": 2}, "patience"),
        # Several at once: the steps first, then the epochs, the clock, patience.
        ({"max_steps": 10, "max_time": 1.0}, {"step": 10, "epoch": 3, "elapsed": 5.0}, "max_steps"),
        ({"max_time": 1.0, "patience": 1}, {"elapsed": 5.0, "evals_since_best": 1}, "max_time"),
    ],
)
def test_finished_names_the_bound_reached(
    train: dict[str, object], progress: dict[str, object], reason: str
) -> None:
    assert rules(**train).finished(state(**progress)) == reason


def test_after_a_step_an_interrupt_comes_first_and_patience_is_left_to_evaluation() -> None:
    r = rules(max_steps=5, patience=1)
    spent = state(step=5, evals_since_best=3)
    assert r.after_step(spent, interrupted=True, late=True) == "interrupted"
    assert r.after_step(spent, interrupted=False, late=True) == "max_steps"
    assert r.after_step(state(step=4), interrupted=False, late=True) == "max_time"
    assert r.after_step(state(step=4, evals_since_best=3), interrupted=False, late=False) == ""


def test_late_only_with_a_clock() -> None:
    assert not rules().late(state(elapsed=1e9))
    assert rules(max_time=10.0).late(state(elapsed=10.0))
    assert not rules(max_time=10.0).late(state(elapsed=9.9))


def test_total_steps_are_the_epochs_or_max_steps_if_fewer() -> None:
    assert rules().total_steps(7) == 21
    assert rules(max_steps=5).total_steps(7) == 5
    assert rules(max_steps=500).total_steps(7) == 21


def test_progress_is_the_further_of_steps_and_time_and_stops_at_one() -> None:
    assert rules().progress(state(step=5), 20) == 0.25
    assert rules(max_time=100.0).progress(state(step=5, elapsed=50.0), 20) == 0.5
    assert rules(max_time=100.0).progress(state(step=15, elapsed=50.0), 20) == 0.75
    assert rules(max_time=100.0).progress(state(step=5, elapsed=500.0), 20) == 1.0
