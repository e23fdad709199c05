"""R(c): values against the formulas, gradients against autograd."""

from __future__ import annotations

import pytest
import torch

from cogflex.nta.config import Regularizer
from cogflex.nta.regularizers import GateRegularizer


def reference_value(c: torch.Tensor, lam: float, w: tuple[float, float, float]) -> torch.Tensor:
    total = sum(w)
    w_nn, w_l1, w_l2 = (x / total for x in w)
    nonneg = 10 * torch.clamp(-c, min=0).sum(-1)
    l1 = 10 * 0.5 * (c.abs().sum(-1) - 1) ** 2
    l2 = 0.5 * (torch.sqrt((c**2).sum(-1)) - 1) ** 2
    return lam * (w_nn * nonneg + w_l1 * l1 + w_l2 * l2)


@pytest.mark.parametrize("weights", [(1.0, 10.0, 0.0), (1.0, 5.0, 2.0), (0.0, 0.0, 1.0), (1.0, 0.0, 0.0)])
def test_value_matches_formula(weights):
    gen = torch.Generator().manual_seed(1)
    c = torch.randn(7, 3, generator=gen, dtype=torch.float64)
    lam = torch.tensor([0.1, 0.3, 0.0, 1.0, 0.2, 0.05, 2.0], dtype=torch.float64)
    reg = GateRegularizer.from_weights(Regularizer(*weights), lam)
    expected = torch.stack([reference_value(c[i], float(lam[i]), weights) for i in range(7)])
    torch.testing.assert_close(reg.value(c), expected)


@pytest.mark.parametrize("weights", [(1.0, 10.0, 0.0), (1.0, 5.0, 2.0), (0.0, 0.0, 1.0)])
def test_gradient_matches_autograd(weights):
    gen = torch.Generator().manual_seed(2)
    c = torch.randn(5, 2, generator=gen, dtype=torch.float64)  # mixed signs, none exactly zero
    lam = torch.linspace(0.05, 1.0, 5, dtype=torch.float64)
    reg = GateRegularizer.from_weights(Regularizer(*weights), lam)
    leaf = c.clone().requires_grad_(True)
    reg.value(leaf).sum().backward()
    torch.testing.assert_close(reg.gradient(c), leaf.grad)


def test_rows_share_their_network_strength():
    lam = torch.tensor([0.1, 0.7], dtype=torch.float64)
    reg = GateRegularizer.from_weights(Regularizer(1.0, 1.0, 0.0), lam, rows=3)
    assert reg.l1.shape == (6, 1)
    torch.testing.assert_close(reg.l1[:, 0], torch.tensor([0.05] * 3 + [0.35] * 3, dtype=torch.float64))


def test_nonnegativity_pushes_negative_gates_up():
    reg = GateRegularizer.from_weights(Regularizer(1.0, 0.0, 0.0), torch.tensor([1.0]))
    grad = reg.gradient(torch.tensor([[-0.2, 0.4]]))
    assert grad[0, 0] == pytest.approx(-10.0) and grad[0, 1] == pytest.approx(0.0)
