"""The time loops' products on oneDNN, through torch's private operators, and without them."""

from __future__ import annotations

import types

import pytest
import torch

from charlm.models import timeloop


def _products() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    w, a = torch.randn(12, 8), torch.randn(3, 8)
    d, x = torch.randn(5, 12), torch.randn(5, 8)
    return timeloop.StepProduct(w, rows=3)(a), timeloop.weight_grad(d, x)


def _raises(*args: object) -> None:
    raise RuntimeError("a changed private call")


@pytest.mark.parametrize("private", ["missing", "raising"])
def test_without_the_private_operators_the_products_are_the_same(
    monkeypatch: pytest.MonkeyPatch, private: str
) -> None:
    with_them = _products()
    if private == "missing":
        monkeypatch.setattr(torch.ops, "mkldnn", types.SimpleNamespace())
    else:
        monkeypatch.setattr(torch.ops.mkldnn, "_reorder_linear_weight", _raises)
        monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", _raises)
    without = _products()
    for a, b in zip(with_them, without, strict=True):
        torch.testing.assert_close(a, b)


def test_a_product_refused_after_packing_falls_back_for_good(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    torch.manual_seed(0)
    w, a = torch.randn(12, 8), torch.randn(3, 8)
    step = timeloop.StepProduct(w, rows=3)
    assert step.packed is not None  # torch's CPU builds carry oneDNN
    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", _raises)
    torch.testing.assert_close(step(a), a @ w.t())
    assert step.packed is None
