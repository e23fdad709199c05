"""The Euler step: gradients against autograd and finite differences, exactness of the layouts."""

from __future__ import annotations

import copy

import pytest
import torch

from cogflex.nta.config import Regularizer
from cogflex.nta.dynamics import NetworkBatch, gradients, sample_input_covariance
from cogflex.nta.regularizers import GateRegularizer

S, P, M, D_OUT, D_IN, N = 2, 3, 2, 3, 7, 11  # seeds, paths, tasks, dims, batch size
DT = torch.float64


def make_batch(gating: str, compress: bool = False, grid_points: int = 2):
    gen = torch.Generator().manual_seed(7)
    weights = torch.randn(S, P, D_OUT, D_IN, generator=gen, dtype=DT) * 0.3
    teachers = torch.randn(S, M, D_OUT, D_IN, generator=gen, dtype=DT) * 0.3
    rows = D_OUT if gating == "unit" else 1
    gates = torch.randn(S, rows, P, generator=gen, dtype=DT)
    batch = NetworkBatch.build(weights, teachers, gates, grid_points=grid_points, gating=gating, compress=compress)
    task = torch.zeros(batch.n_networks, M, dtype=DT)
    task[::2, 0] = 1.0
    task[1::2, 1] = 1.0
    batch.set_task(task)
    lam = torch.linspace(0.1, 0.4, batch.n_networks, dtype=DT)
    reg = GateRegularizer.from_weights(Regularizer(1.0, 3.0, 1.0), lam, rows=rows)
    return batch, weights, teachers, gates, task, reg


def autograd_loss(weights, teachers, gates, task, reg, gating, x, grid_points=2):
    """The batch loss written directly from the definition, for every network."""
    losses = []
    for b in range(S * grid_points):
        s = b // grid_points
        w = weights[s]
        c = gates[s]  # (R, P)
        scale = c.T[:, :, None] if gating == "unit" else c[0][:, None, None]  # (P, d_out or 1, 1)
        student = (scale * w).sum(0)
        target = torch.einsum("m,mij->ij", task[b], teachers[s])
        err = x[s] @ (student - target).T  # (n, d_out)
        data = 0.5 * (err**2).sum(-1).mean()
        rows = slice(b * c.shape[0], (b + 1) * c.shape[0])
        sub = GateRegularizer(reg.nonnegative[rows], reg.l1[rows], reg.l2[rows])
        losses.append(data + sub.value(c).sum())
    return torch.stack(losses)


@pytest.mark.parametrize("gating", ["path", "unit"])
def test_gradients_equal_autograd_of_the_batch_loss(gating):
    batch, weights, teachers, gates, task, reg = make_batch(gating)
    x = torch.randn(S, N, D_IN, generator=torch.Generator().manual_seed(3), dtype=DT)
    cov = x.transpose(1, 2) @ x / N
    loss, grad_w, grad_c = gradients(batch, reg, cov)
    full_grad_w = batch.to_full(grad_w)  # (B, P, d_out, d_in)

    # autograd per seed-shared parameters: differentiate each network separately
    for b in range(batch.n_networks):
        w = weights.clone().requires_grad_(True)
        c = gates.clone().requires_grad_(True)
        total = autograd_loss(w, teachers, c, task, reg, gating, x)[b]
        total.backward()
        s = b // 2
        expected_w = w.grad[s]  # (P, d_out, d_in)
        torch.testing.assert_close(full_grad_w[b], expected_w)
        torch.testing.assert_close(grad_c[b], c.grad[s])
        data_only = autograd_loss(weights, teachers, gates, task, reg.__class__(
            reg.nonnegative * 0, reg.l1 * 0, reg.l2 * 0), gating, x)[b]
        torch.testing.assert_close(loss[b], data_only)


def test_expected_gradient_is_the_mean_of_sampled_gradients():
    batch, *_ , reg = make_batch("path")
    _, gw_exp, gc_exp = gradients(batch, reg, None)
    covs = sample_input_covariance(4000, D_IN, N, generator=torch.Generator().manual_seed(5), dtype=DT)
    mean_cov = covs.mean(0).expand(S, D_IN, D_IN)
    _, gw_mean, gc_mean = gradients(batch, reg, mean_cov)
    torch.testing.assert_close(gw_mean, gw_exp, atol=0.03, rtol=0.05)
    torch.testing.assert_close(gc_mean, gc_exp, atol=0.03, rtol=0.05)


def test_gradient_matches_finite_differences():
    batch, weights, teachers, gates, task, reg = make_batch("path", grid_points=1)
    _, _, grad_c = gradients(batch, reg, None)
    eps = 1e-6
    for p in range(P):
        for sign in (+1, -1):
            shifted = copy.deepcopy(batch)
            shifted.z[0, p, -1] += sign * eps
            loss_shift, *_ = gradients(shifted, reg, None)
            reg_shift = reg.value(shifted.gates.reshape(-1, P))[0]
            if sign > 0:
                up = loss_shift[0] + reg_shift
            else:
                down = loss_shift[0] + reg_shift
        assert ((up - down) / (2 * eps)).item() == pytest.approx(grad_c[0, 0, p].item(), rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("gating", ["path", "unit"])
@pytest.mark.parametrize(("compress", "sampled"), [(False, False), (True, False), (False, True)])
def test_step_is_theta_minus_rate_times_gradient(gating, compress, sampled):
    batch, *_, reg = make_batch(gating, compress=compress)
    cov = None
    if sampled:
        cov = sample_input_covariance(S, D_IN, N, generator=torch.Generator().manual_seed(9), dtype=DT)
    w_rate = torch.linspace(0.01, 0.02, batch.n_networks, dtype=DT)
    c_rate = torch.linspace(0.05, 0.1, batch.n_networks, dtype=DT)
    batch.set_learning(w_rate, c_rate, reg)
    loss, grad_w, grad_c = gradients(batch, reg, cov)
    before_w, before_c = batch.weights.clone(), batch.gates.clone()
    out = torch.empty(batch.n_networks, 1, 1, dtype=DT)
    batch.step(cov, out)
    torch.testing.assert_close(out[:, 0, 0] / 2, loss)
    torch.testing.assert_close(batch.weights, before_w - w_rate[:, None, None, None] * grad_w)
    torch.testing.assert_close(batch.gates, before_c - c_rate[:, None, None] * grad_c)


@pytest.mark.parametrize("gating", ["path", "unit"])
def test_compressed_coordinates_preserve_losses_and_reconstruct_weights(gating):
    full, weights, *_ , reg = make_batch(gating, compress=False)
    small, *_ = make_batch(gating, compress=True)
    assert small.dim < full.dim
    torch.testing.assert_close(gradients(small, reg)[0], gradients(full, reg)[0])
    torch.testing.assert_close(small.to_full(small.weights), full.to_full(full.weights))
    torch.testing.assert_close(full.to_full(full.weights)[0], weights[0])


def test_wishart_covariances_have_the_right_moments():
    d, n, k = 4, 10, 40000
    cov = sample_input_covariance(k, d, n, generator=torch.Generator().manual_seed(11), dtype=DT)
    torch.testing.assert_close(cov.mean(0), torch.eye(d, dtype=DT), atol=0.02, rtol=0)
    var = cov.var(0)
    expected = (torch.ones(d, d, dtype=DT) + torch.eye(d, dtype=DT)) / n  # Var of Wishart(n, I)/n entries
    torch.testing.assert_close(var, expected, atol=0.01, rtol=0.1)
    assert torch.allclose(cov, cov.transpose(1, 2))


def test_small_batches_are_drawn_directly():
    cov = sample_input_covariance(100, 6, 3, generator=torch.Generator().manual_seed(1), dtype=DT)
    ranks = torch.linalg.matrix_rank(cov)
    assert (ranks == 3).all()


@pytest.mark.parametrize("gating", ["path", "unit"])
@pytest.mark.parametrize("compress", [False, True])
def test_output_error_is_student_minus_teacher_times_input(gating, compress):
    batch, weights, teachers, gates, task, _ = make_batch(gating, compress=compress)
    x = torch.randn(S, D_IN, generator=torch.Generator().manual_seed(4), dtype=DT)
    got = batch.output_error(x)
    assert got.shape == (S, 2, D_OUT)
    for b in range(batch.n_networks):
        s = b // 2
        scale = gates[s].T[:, :, None] if gating == "unit" else gates[s][0][:, None, None]
        student = (scale * weights[s]).sum(0)
        target = torch.einsum("m,mij->ij", task[b], teachers[s])
        torch.testing.assert_close(got[s, b % 2], (student - target) @ x[s])
