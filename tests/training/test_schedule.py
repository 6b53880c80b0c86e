"""The learning-rate schedule: warm-up, cosine to the floor, constant, plateau cuts."""

from __future__ import annotations

import pytest

from charlm.config.schema import PLATEAU_FACTOR, TrainConfig
from charlm.rundir.progress import TrainState
from charlm.training.schedule import Schedule

LR = 1e-2


def schedule(kind: str = "cosine", warmup_steps: int = 0, **more: object) -> Schedule:
    return Schedule(TrainConfig(lr=LR, schedule=kind, warmup_steps=warmup_steps, **more))  # type: ignore[arg-type]


def at(step: int, lr_scale: float = 1.0, plateau_cuts: int = 0) -> TrainState:
    return TrainState(seed=0, step=step, lr_scale=lr_scale, plateau_cuts=plateau_cuts)


def test_warm_up_rises_linearly_to_the_rate() -> None:
    s = schedule("constant", warmup_steps=4)
    assert [s.rate(at(k), 0.0) for k in range(6)] == pytest.approx(
        [LR / 4, LR / 2, 3 * LR / 4, LR, LR, LR]
    )


def test_cosine_decays_from_the_rate_to_its_floor_by_the_end() -> None:
    s = schedule(min_lr_frac=0.1)
    assert s.rate(at(0), 0.0) == pytest.approx(LR)
    assert s.rate(at(0), 0.5) == pytest.approx((LR + 0.1 * LR) / 2)
    assert s.rate(at(0), 1.0) == pytest.approx(0.1 * LR)


@pytest.mark.parametrize("kind", ["cosine", "constant", "plateau"])
def test_a_rollback_scales_every_schedule(kind: str) -> None:
    s = schedule(kind)
    assert s.rate(at(3, lr_scale=0.25), 0.3) == pytest.approx(0.25 * s.rate(at(3), 0.3))


def test_constant_ignores_progress() -> None:
    s = schedule("constant")
    assert s.rate(at(9), 0.0) == s.rate(at(9), 0.9) == LR


def test_plateau_divides_per_cut_down_to_the_floor() -> None:
    s = schedule("plateau", min_lr_frac=0.02)
    rates = [s.rate(at(0, plateau_cuts=k), 0.7) for k in range(5)]
    assert rates == pytest.approx(
        [LR, LR / PLATEAU_FACTOR, LR / PLATEAU_FACTOR**2, 0.02 * LR, 0.02 * LR]
    )


def test_a_stalled_evaluation_cuts_the_plateau_rate_and_says_so() -> None:
    s, state = schedule("plateau", min_lr_frac=0.02), at(40)
    assert s.stalled(state) == (
        "step 40: validation did not improve; learning rate 0.01 -> 0.0025 (--schedule plateau)"
    )
    assert state.plateau_cuts == 1
    for _ in range(2):  # to 1/16, then to the floor
        s.stalled(state)
    assert s.stalled(state) == ""  # at the floor already: counted, nothing to say
    assert state.plateau_cuts == 4


@pytest.mark.parametrize("kind", ["cosine", "constant"])
def test_other_schedules_do_not_cut_on_a_stall(kind: str) -> None:
    state = at(40)
    assert schedule(kind).stalled(state) == "" and state.plateau_cuts == 0
