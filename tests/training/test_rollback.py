"""Non-finite steps: counted, then a rollback to the last good weights at half the rate."""

from __future__ import annotations

import pytest
import torch

from charlm.errors import TrainingError
from charlm.rundir.progress import TrainState
from charlm.training.rollback import MAX_BAD_STEPS, MAX_ROLLBACKS, Rollback


def _model_and_optimizer() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()  # optimizer state worth restoring
    return model, optimizer


def _spoil(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    optimizer.state[model.weight]["step"] += 99


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_fewer_bad_steps_than_the_limit_change_nothing() -> None:
    model, optimizer = _model_and_optimizer()
    rollback, state = Rollback(lr=0.1), TrainState(seed=0, step=3)
    rollback.start(model, optimizer)
    _spoil(model, optimizer)
    notes = [rollback.bad_step(model, optimizer, state) for _ in range(MAX_BAD_STEPS - 1)]
    assert notes == [""] * (MAX_BAD_STEPS - 1) and state.lr_scale == 1.0
    assert model.weight.isnan().all()


def test_the_limit_in_a_row_restores_the_target_and_halves_the_rate() -> None:
    model, optimizer = _model_and_optimizer()
    good = {k: v.clone() for k, v in model.state_dict().items()}
    good_steps = optimizer.state[model.weight]["step"].clone()
    rollback, state = Rollback(lr=0.1), TrainState(seed=0, step=6)
    rollback.remember(model, optimizer)
    _spoil(model, optimizer)
    notes = [rollback.bad_step(model, optimizer, state) for _ in range(MAX_BAD_STEPS)]
    assert notes[-1] == (
        f"step 7: {MAX_BAD_STEPS} non-finite losses in a row: rolled back to the last good "
        "weights, learning rate x0.5"
    )
    assert _equal(model.state_dict(), good)
    assert torch.equal(optimizer.state_dict()["state"][0]["step"], good_steps)
    assert state.lr_scale == 0.5 and rollback.bad_steps == 0


def test_a_good_step_restarts_the_count() -> None:
    model, optimizer = _model_and_optimizer()
    rollback, state = Rollback(lr=0.1), TrainState(seed=0)
    rollback.start(model, optimizer)
    for _ in range(3):
        for _ in range(MAX_BAD_STEPS - 1):
            rollback.bad_step(model, optimizer, state)
        rollback.good_step()
    assert state.lr_scale == 1.0


def test_without_a_target_nothing_is_rolled_back() -> None:
    model, optimizer = _model_and_optimizer()
    rollback, state = Rollback(lr=0.1), TrainState(seed=0)
    notes = {rollback.bad_step(model, optimizer, state) for _ in range(2 * MAX_BAD_STEPS)}
    assert notes == {""} and state.lr_scale == 1.0


def test_start_keeps_a_target_remember_replaces_it_with_a_copy() -> None:
    model, optimizer = _model_and_optimizer()
    first = {k: v.clone() for k, v in model.state_dict().items()}
    rollback = Rollback(lr=0.1)
    rollback.start(model, optimizer)
    with torch.no_grad():
        model.weight.add_(1.0)
    rollback.start(model, optimizer)  # a target exists: kept
    assert rollback.target is not None and _equal(rollback.target["model"], first)
    rollback.remember(model, optimizer)
    with torch.no_grad():
        model.weight.add_(1.0)  # the target is a copy, not the live weights
    assert torch.equal(rollback.target["model"]["weight"], first["weight"] + 1.0)


def test_after_the_last_rollback_it_stops_with_advice() -> None:
    model, optimizer = _model_and_optimizer()
    rollback, state = Rollback(lr=0.003), TrainState(seed=0)
    rollback.start(model, optimizer)
    for _ in range(MAX_ROLLBACKS):
        for _ in range(MAX_BAD_STEPS):
            rollback.bad_step(model, optimizer, state)
    assert state.lr_scale == 0.5**MAX_ROLLBACKS
    for _ in range(MAX_BAD_STEPS - 1):
        rollback.bad_step(model, optimizer, state)
    with pytest.raises(TrainingError, match=r"after 8 rollbacks: lower --lr \(now 0.003\)"):
        rollback.bad_step(model, optimizer, state)
