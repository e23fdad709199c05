"""Fully connected two-layer network with a regularised second layer (Fig. 6)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from cogflex.errors import ConfigError
from cogflex.nta.config import Regularizer
from cogflex.nta.fully_connected import (
    FullyConnectedConfig,
    SecondLayerRegularizer,
    block_end_loss,
    euler_step,
    first_layer_alignment,
    fully_connected_gradients,
    hidden_unit_selectivity,
    load_fully_connected_config,
    simulate_fully_connected,
    sort_hidden_units,
    time_to_criterion,
)

SCOPES = ("matrix", "hidden_unit", "output_unit")


def small_config(**changes) -> FullyConnectedConfig:
    base = dict(seeds=3, blocks=12, measure_blocks=4)
    base.update(changes)
    return dataclasses.replace(load_fully_connected_config("fig6-fully-connected"), **base)


def random_state(batch=3, out=4, hidden=5, inp=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w1 = torch.randn(batch, hidden, inp, generator=gen, dtype=torch.float64) * 0.5
    w2 = torch.randn(batch, out, hidden, generator=gen, dtype=torch.float64) * 0.5  # mixed signs
    target = torch.randn(batch, out, inp, generator=gen, dtype=torch.float64) * 0.3
    x = torch.randn(batch, 50, inp, generator=gen, dtype=torch.float64)
    cov = x.transpose(1, 2) @ x / 50
    return w1, w2, target, cov


def formula(w2: torch.Tensor, lam: float, weights: tuple[float, float, float], scope: str) -> torch.Tensor:
    total = sum(weights)
    w_nn, w_l1, w_l2 = (w / total for w in weights)
    if scope == "matrix":
        vectors = w2.reshape(w2.shape[0], 1, -1)
    elif scope == "output_unit":
        vectors = w2
    else:
        vectors = w2.transpose(1, 2)
    nonneg = 10 * torch.clamp(-w2, min=0).sum((-2, -1))
    l1 = (10 * 0.5 * (vectors.abs().sum(-1) - 1) ** 2).sum(-1)
    l2 = (0.5 * (vectors.norm(dim=-1) - 1) ** 2).sum(-1)
    return lam * (w_nn * nonneg + w_l1 * l1 + w_l2 * l2)


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("weights", [(1.0, 0.0, 10.0), (1.0, 5.0, 2.0)])
def test_regularizer_matches_formula(scope, weights):
    _, w2, _, _ = random_state()
    lam = torch.tensor([0.22, 0.0, 0.5], dtype=torch.float64)
    reg = SecondLayerRegularizer.build(Regularizer(*weights), lam, scope, output_dim=4, hidden_dim=5)
    expected = torch.stack([formula(w2[i:i + 1], float(lam[i]), weights, scope)[0] for i in range(3)])
    torch.testing.assert_close(reg.value(w2), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("sampled", [False, True])
def test_euler_step_is_autograd_gradient_descent(scope, sampled):
    w1, w2, target, cov = random_state()
    cov = cov if sampled else None
    lam = torch.tensor([0.22, 0.1, 0.0], dtype=torch.float64)
    reg = SecondLayerRegularizer.build(Regularizer(1.0, 0.0, 10.0), lam, scope, output_dim=4, hidden_dim=5)
    a, b = w1.clone().requires_grad_(True), w2.clone().requires_grad_(True)
    error = b @ a - target
    weighted = error if cov is None else error @ cov
    total = 0.5 * (error * weighted).sum() + reg.value(b).sum()
    total.backward()

    loss, g1, g2 = fully_connected_gradients(w1, w2, target, cov)
    torch.testing.assert_close(g1, a.grad, rtol=0, atol=1e-10)
    torch.testing.assert_close(g2 + reg.gradient(w2), b.grad, rtol=0, atol=1e-10)
    torch.testing.assert_close(loss, 0.5 * (w2 @ w1 - target).square().sum((-2, -1)), rtol=0, atol=1e-12)

    config = FullyConnectedConfig(input_dim=8, hidden_dim=5, output_dim=4)
    n1, n2 = w1.clone(), w2.clone()
    returned = euler_step(n1, n2, target, reg, config, cov)
    torch.testing.assert_close(returned, loss)
    torch.testing.assert_close(n1, w1 - config.dt / config.first_layer_timescale * a.grad, rtol=0, atol=1e-10)
    torch.testing.assert_close(n2, w2 - config.dt / config.second_layer_timescale * b.grad, rtol=0, atol=1e-10)


@pytest.mark.parametrize("mode", ["expected", "sampled"])
def test_batched_seeds_and_conditions_equal_single_runs(mode):
    config = small_config(seeds=3, blocks=4, measure_blocks=2, mode=mode, batch_size=30)
    batched = simulate_fully_connected(config, regularized=(True, False, 0.3))
    assert batched.second_layer.shape == (3, 3, 4, 10, 20)
    assert batched.regularization == (0.22, 0.0, 0.3)
    for s, seed in enumerate(config.seed_values):
        for v, condition in enumerate((True, False, 0.3)):
            single = simulate_fully_connected(dataclasses.replace(config, seeds=1, first_seed=seed),
                                              regularized=condition)
            np.testing.assert_allclose(single.second_layer[0, 0], batched.second_layer[v, s], rtol=0, atol=1e-12)
            np.testing.assert_allclose(single.first_layer[0, 0], batched.first_layer[v, s], rtol=0, atol=1e-12)
            np.testing.assert_allclose(single.loss[0, 0], batched.loss[v, s], rtol=0, atol=1e-12)
            np.testing.assert_array_equal(single.teachers[0], batched.teachers[s])


def test_regulariser_makes_hidden_units_more_selective():
    config = small_config(seeds=4)
    result = simulate_fully_connected(config, regularized=(True, False))
    sel = hidden_unit_selectivity(result.second_layer, result.block_task, measure_blocks=config.measure_blocks)
    weighted = sel.weighted_selectivity
    assert np.all(weighted[0] >= 0.57), weighted
    assert np.all(weighted[1] <= 0.51), weighted
    assert np.all(weighted[0] - weighted[1] >= 0.08)
    # the regularised layer stays non-negative up to the Euler chatter and near unit Frobenius norm
    w2 = result.second_layer[0, :, -1]
    assert w2.min() > -0.05
    assert np.all(np.abs(np.linalg.norm(w2, axis=(-2, -1)) - 1.0) < 0.2)
    # fast switching with the regulariser, slow relearning without
    switch = np.nanmean(time_to_criterion(result)[:, :, -1], axis=1)
    assert switch[0] < 0.1 < switch[1]
    assert block_end_loss(result).shape == (2, 4, 12)


def test_unit_gating_grows_with_the_euler_step():
    config = small_config(seeds=3, blocks=16)
    selectivity = []
    for dt in (0.005, 0.014):
        result = simulate_fully_connected(dataclasses.replace(config, dt=dt))
        sel = hidden_unit_selectivity(result.second_layer, result.block_task, measure_blocks=config.measure_blocks)
        selectivity.append(sel.weighted_selectivity[0])
    assert np.all(selectivity[0] < 0.65), selectivity
    assert np.all(selectivity[1] > 0.72), selectivity


def blocks_of(per_task: list[np.ndarray], repeats: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Stack W2 snapshots cycling through the tasks ``repeats`` times."""
    snapshots = [per_task[b % len(per_task)] for b in range(repeats * len(per_task))]
    return np.stack(snapshots), np.arange(len(snapshots)) % len(per_task)


def test_selectivity_of_hand_built_second_layers():
    eye = np.eye(3)
    zeros = np.zeros((3, 3))
    gated = [np.hstack([eye, zeros]), np.hstack([zeros, 2 * eye])]  # units 0-2 for task A, 3-5 for B
    w2, tasks = blocks_of(gated)
    sel = hidden_unit_selectivity(w2, tasks, measure_blocks=4)
    np.testing.assert_allclose(sel.selectivity, 1.0)
    np.testing.assert_allclose(sel.weighted_selectivity, 1.0)
    np.testing.assert_array_equal(sel.preferred_task, [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(sel.gating_units(0.9), [3, 3])
    np.testing.assert_allclose(sel.weight[:, 0], [1, 1, 1, 0, 0, 0])

    uniform = np.full((3, 6), 0.4)
    w2, tasks = blocks_of([uniform, uniform])
    sel = hidden_unit_selectivity(w2, tasks, measure_blocks=4)
    np.testing.assert_allclose(sel.selectivity, 0.5)
    np.testing.assert_allclose(sel.weighted_selectivity, 0.5)
    np.testing.assert_array_equal(sel.gating_units(0.9), [0, 0])

    # rerouting a unit to another output between tasks is not gating: same column norm
    rerouted = [np.hstack([eye, zeros]), np.hstack([eye[[1, 2, 0]], zeros])]
    w2, tasks = blocks_of(rerouted)
    assert hidden_unit_selectivity(w2, tasks, measure_blocks=4).weighted_selectivity == pytest.approx(0.5)


def test_weak_units_count_little_and_are_not_carrying():
    a = np.zeros((2, 4))
    a[0, :2] = [1.0, 1.0]  # two strong gates for task A
    b = np.zeros((2, 4))
    b[0, 2] = 1.0  # one strong gate for task B
    b[1, 3] = 0.01  # a weak unit used in task B ...
    a[1, 3] = 0.01  # ... and equally in task A
    w2, tasks = blocks_of([a, b])
    sel = hidden_unit_selectivity(w2, tasks, measure_blocks=4, carrying_share=0.9)
    np.testing.assert_array_equal(sel.carrying, [True, True, True, False])
    assert sel.selectivity[3] == pytest.approx(0.5)
    assert sel.weighted_selectivity == pytest.approx(3.01 / 3.02)
    assert sel.carrying_selectivity == pytest.approx(1.0)
    np.testing.assert_array_equal(sel.gating_units(0.9), [2, 1])


def test_selectivity_needs_every_task_in_the_window():
    w2, tasks = blocks_of([np.eye(2), np.eye(2)])
    with pytest.raises(ValueError, match="task 0"):
        hidden_unit_selectivity(w2, tasks, measure_blocks=1)


def test_sort_hidden_units_recovers_block_diagonal_order():
    rng = np.random.default_rng(0)
    eye = np.eye(3)
    zeros = np.zeros((3, 3))
    gated = np.stack([np.hstack([eye, zeros]), np.hstack([zeros, eye])])
    perm = rng.permutation(6)
    shuffled = gated[..., perm]
    w2, tasks = blocks_of(list(shuffled))
    sel = hidden_unit_selectivity(w2, tasks, measure_blocks=4)
    order = sort_hidden_units(sel.weight, shuffled)
    np.testing.assert_array_equal(shuffled[..., order], gated)


def test_first_layer_alignment_of_teacher_rows():
    gen = torch.Generator().manual_seed(3)
    q = torch.linalg.qr(torch.randn(6, 6, generator=gen, dtype=torch.float64))[0].numpy()
    teachers = np.stack([q[:3], q[3:]])  # two orthogonal 3 x 6 teachers
    rows = np.stack([q[0] * 2.0, q[4], (q[1] + q[5]) / math.sqrt(2)])
    np.testing.assert_allclose(first_layer_alignment(rows, teachers), [[1, 0], [0, 1], [0.5, 0.5]], atol=1e-12)


def test_preset_is_the_authors_setting():
    config = load_fully_connected_config("fig6-fully-connected")
    assert (config.input_dim, config.hidden_dim, config.output_dim) == (20, 20, 10)
    assert (config.first_layer_timescale, config.second_layer_timescale, config.dt) == (0.06, 0.01, 0.01)
    assert config.regularization == 0.22
    assert config.regularizer.normalized() == pytest.approx((1 / 11, 0.0, 10 / 11))
    assert config.regularizer_scope == "matrix"
    assert config.blocks == 32 and config.block_steps == 100


@pytest.mark.parametrize(("changes", "field"), [
    (dict(dt=0.03), "dt"),
    (dict(measure_blocks=40), "measure_blocks"),
    (dict(tasks=3), "tasks"),
    (dict(first_layer_timescale=-1.0), "first_layer_timescale"),
    (dict(selectivity_threshold=0.4), "selectivity_threshold"),
    (dict(carrying_share=0.0), "carrying_share"),
    (dict(hidden_dim=0), "hidden_dim"),
    (dict(block_length=0.001), "block_length"),
])
def test_config_errors_name_the_field(changes, field):
    with pytest.raises(ConfigError) as info:
        FullyConnectedConfig(**changes)
    assert info.value.field == field


def test_toml_errors_name_the_field(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('seeds = 2\nsecond_layer_timescal = 0.01\n')
    with pytest.raises(ConfigError) as info:
        load_fully_connected_config(bad)
    assert info.value.field == "second_layer_timescal"
    bad.write_text('[regularizer]\nnonnegative = -1.0\n')
    with pytest.raises(ConfigError) as info:
        load_fully_connected_config(bad)
    assert info.value.field == "regularizer.nonnegative"
    bad.write_text('regularizer_scope = "columns"\n')
    with pytest.raises(ConfigError, match="regularizer_scope"):
        load_fully_connected_config(bad)
    with pytest.raises(ConfigError, match="unknown preset"):
        load_fully_connected_config("no-such-preset")
    with pytest.raises(ConfigError, match="regularized"):
        simulate_fully_connected(small_config(), regularized=-0.1)


def test_fig6_quick_writes_pngs_and_finite_numbers(tmp_path):
    from cogflex.reproduce.fig6 import FIGURE

    quantities = FIGURE.run("quick", tmp_path)
    pngs = sorted(p.name for p in tmp_path.glob("fig6_*.png"))
    assert pngs == ["fig6_selectivity.png", "fig6_sorted_second_layer.png", "fig6_sorted_second_layer_long.png",
                    "fig6_sorted_second_layer_mean.png"]
    assert all((tmp_path / p).stat().st_size > 10_000 for p in pngs)
    names = {q.name for q in quantities}
    assert {"selectivity_regularized", "selectivity_unregularized", "gating_units_per_task_regularized"} <= names
    for q in quantities:
        values = np.atleast_1d(np.asarray(q.value, dtype=float))
        assert np.all(np.isfinite(values)), q
    by_name = {q.name: q for q in quantities}
    assert by_name["selectivity_unregularized"].passed is True
    assert by_name["selectivity_regularized"].value > by_name["selectivity_unregularized"].value
