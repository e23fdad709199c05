"""The Fig. 4 mechanism: mirror modes, the two-variable reduction, its conserved quantity, block length."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from cogflex.nta import load_config, simulate
from cogflex.nta import mechanism as mech
from cogflex.nta.config import (
    Composition,
    Curriculum,
    Learning,
    Network,
    Recording,
    Regularizer,
    SimulationConfig,
    Sweep,
)
from cogflex.nta.reduced import reduced_rhs, teacher_norm
from cogflex.nta.regularizers import GateRegularizer
from cogflex.nta.simulation import InitialState, initial_state

NORM, TAU_W, TAU_C, DT = 0.5, 1.3, 0.03, 1e-3
FLEXIBLE = Regularizer(nonnegative=1.0, l1=10.0)
MIXED = Regularizer(nonnegative=1.0, l1=3.0, l2=2.0)


def _reduced_rhs(w, c, task, lam, regularizer):
    reg = GateRegularizer.from_weights(regularizer, torch.full((len(w),), lam, dtype=torch.float64))
    dw, dc = reduced_rhs(torch.as_tensor(w), torch.as_tensor(c), torch.as_tensor(task, dtype=torch.float64),
                         norm=NORM, regularizer=reg)
    return dw.numpy(), dc.numpy()


def test_regularizer_gradient_matches_the_network_regularizer():
    gates = np.array([[0.3, 0.9], [-0.2, 0.7], [0.0, 1.4], [-0.5, -0.1], [0.5, 0.5]])
    for weights in (FLEXIBLE, MIXED, Regularizer()):
        reg = GateRegularizer.from_weights(weights, torch.full((len(gates),), 0.3, dtype=torch.float64))
        expected = reg.gradient(torch.as_tensor(gates)).numpy()
        np.testing.assert_allclose(mech.regularizer_gradient(gates, 0.3, weights), expected, rtol=1e-14, atol=1e-15)


def test_mirror_state_round_trips_through_mirror_modes():
    w, c = mech.mirror_state([0.3, -0.7], [0.4, 1.2], common=[1.0, 0.2], gate_sum=[1.0, 0.0])
    modes = mech.mirror_modes(w, c)
    np.testing.assert_allclose(modes.specialization, [0.3, -0.7])
    np.testing.assert_allclose(modes.gate_contrast, [0.4, 1.2])
    np.testing.assert_allclose(modes.common, [1.0, 0.2])
    np.testing.assert_allclose(modes.gate_sum, [1.0, 0.0])
    np.testing.assert_allclose(modes.shared, 0.0, atol=1e-15)
    np.testing.assert_allclose(modes.common_asymmetry, 0.0, atol=1e-15)


@pytest.mark.parametrize("gate_sum", [0.0, 1.0, 0.8])
@pytest.mark.parametrize("task", [(1.0, 0.0), (0.0, 1.0), (0.5, -0.5), (0.3, 0.6)])
def test_two_variable_rhs_is_the_reduced_rhs_on_the_symmetric_subspace(gate_sum, task):
    rng = np.random.default_rng(1)
    wbar, cbar, common = rng.normal(size=(3, 5))
    w, c = mech.mirror_state(wbar, cbar, common=common, gate_sum=gate_sum)
    a = task[0] - task[1]
    for lam, regularizer in ((0.0, Regularizer()), (0.1, FLEXIBLE), (0.2, MIXED)):
        dw, dc = _reduced_rhs(w, c, np.tile(task, (5, 1)), lam, regularizer)
        projected = mech.mirror_modes(dw, dc)
        two_w, two_c = mech.two_variable_rhs(wbar, cbar, a, norm=NORM, gate_sum=gate_sum, regularization=lam,
                                             regularizer=regularizer)
        np.testing.assert_allclose(projected.specialization, two_w, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(projected.gate_contrast, two_c, rtol=1e-12, atol=1e-14)


def test_exact_mode_equations_hold_off_the_subspace():
    """The module's exact 6-variable equations in mirror modes (m, d, g, sigma terms included), any state."""
    rng = np.random.default_rng(2)
    w, c = rng.normal(size=(6, 2, 2)), rng.normal(size=(6, 2))
    task = rng.normal(size=(6, 2))
    lam = 0.15
    dw, dc = _reduced_rhs(w, c, task, lam, MIXED)
    rates = mech.mirror_modes(dw, dc)
    m = mech.mirror_modes(w, c)
    a, total = task[:, 0] - task[:, 1], task[:, 0] + task[:, 1]
    eps = a - m.gate_contrast * m.specialization - m.gate_sum * m.shared
    sigma = total - m.gate_sum * m.common - m.gate_contrast * m.common_asymmetry / 2
    grad = mech.regularizer_gradient(c, lam, MIXED)
    np.testing.assert_allclose(rates.specialization, m.gate_contrast * eps / 2, rtol=1e-12)
    np.testing.assert_allclose(rates.shared, m.gate_sum * eps / 2, rtol=1e-12)
    np.testing.assert_allclose(rates.common, m.gate_sum * sigma / 2, rtol=1e-12)
    np.testing.assert_allclose(rates.common_asymmetry, m.gate_contrast * sigma, rtol=1e-12)
    np.testing.assert_allclose(rates.gate_contrast, NORM * m.specialization * eps
                               + NORM * m.common_asymmetry * sigma / 2 - (grad[:, 0] - grad[:, 1]), rtol=1e-12)
    np.testing.assert_allclose(rates.gate_sum, NORM * (m.shared * eps + m.common * sigma)
                               - (grad[:, 0] + grad[:, 1]), rtol=1e-12)
    # and the conserved quantity's exact rate: dQ/dt = -S c_bar d sigma + 2 lambda c_bar DeltaR
    q_rate = 4 * NORM * TAU_W * m.specialization * rates.specialization / TAU_W \
        - 2 * TAU_C * m.gate_contrast * rates.gate_contrast / TAU_C
    np.testing.assert_allclose(q_rate, -NORM * m.gate_contrast * m.common_asymmetry * sigma
                               + 2 * m.gate_contrast * (grad[:, 0] - grad[:, 1]), rtol=1e-11)


def _exact_mixtures(n_steps, per_block):
    first = (np.arange(n_steps) // per_block) % 2 == 0
    return np.where(first[:, None], [0.5, -0.5], [-0.5, 0.5])


def test_symmetric_subspace_is_invariant_in_the_exact_case_and_equals_the_two_variable_run():
    n_steps, per_block = 3000, 1000
    w0, c0 = mech.mirror_state(0.5, 0.1, common=0.0, gate_sum=0.0)
    red = mech.integrate_reduced(w0[None], c0[None], _exact_mixtures(n_steps, per_block), dt=DT,
                                 weight_timescale=TAU_W, gate_timescale=TAU_C, norm=NORM, record_every=50)
    modes = mech.mirror_modes(red.weights[0], red.gates[0])
    for tied in (modes.shared, modes.common_asymmetry, modes.gate_sum, modes.common):
        assert np.abs(tied).max() < 1e-13
    two = mech.simulate_two_variable(0.5, 0.1, mech.block_task_signs(n_steps, per_block), dt=DT,
                                     weight_timescale=TAU_W, gate_timescale=TAU_C, norm=NORM, gate_sum=0.0,
                                     record_every=50)
    np.testing.assert_allclose(two.specialization[0], modes.specialization, atol=1e-12)
    np.testing.assert_allclose(two.gate_contrast[0], modes.gate_contrast, atol=1e-12)
    assert np.abs(modes.gate_contrast).max() > 1.0  # the gates really switched


def test_flexible_regime_breaks_the_mirror_symmetry_only_through_the_shared_mode():
    n_steps, per_block = 3000, 1000
    w0, c0 = mech.mirror_state(0.5, 0.0, common=1.0, gate_sum=1.0)
    task = np.eye(2)[(np.arange(n_steps) // per_block) % 2]
    red = mech.integrate_reduced(w0[None], c0[None], task, dt=DT, weight_timescale=TAU_W, gate_timescale=TAU_C,
                                 norm=NORM, regularization=0.1, regularizer=FLEXIBLE, record_every=50)
    modes = mech.mirror_modes(red.weights[0], red.gates[0])
    assert np.abs(modes.shared).max() > 0.05  # the approximation is not exact here ...
    assert np.abs(modes.common_asymmetry).max() < 0.25 * np.abs(modes.shared).max()  # ... m carries it (d: 2nd order)


def test_full_network_stays_on_the_exact_subspace():
    """The full network (simulate, float64) started in the symmetric configuration equals the two-variable run."""
    from cogflex.reproduce.fig4 import full_network_trajectory

    config = SimulationConfig(
        seeds=1, network=Network(input_dim=6, output_dim=3), curriculum=Curriculum(block_length=0.5, duration=1.5),
        learning=Learning(dt=DT, mode="expected", regularization=0.0, weight_timescale=TAU_W,
                          gate_timescale=TAU_C),
        composition=Composition(kind="mixture", start_block=0, tasks=((0.5, -0.5), (-0.5, 0.5))),
        recording=Recording(log_every=10))
    init = initial_state(config, dtype=torch.float64)
    norm = float(teacher_norm(init.teachers)[0])
    w0, c0 = mech.mirror_state(0.4, 0.2, common=0.0, gate_sum=0.0)
    weights = torch.einsum("pm,smij->spij", torch.as_tensor(w0), init.teachers)
    start = InitialState(weights, init.teachers, torch.as_tensor(c0).reshape(1, 1, 2))
    sequence = np.where((np.arange(config.n_steps) // 500) % 2 == 0, 2, 3)
    times, w, c = full_network_trajectory(config, start, sequence, chunk_steps=250)
    modes = mech.mirror_modes(w, c)
    two = mech.simulate_two_variable(0.4, 0.2, mech.block_task_signs(config.n_steps, 500), dt=DT,
                                     weight_timescale=TAU_W, gate_timescale=TAU_C, norm=norm, gate_sum=0.0,
                                     record_every=250)
    np.testing.assert_allclose(times, two.time)
    np.testing.assert_allclose(modes.specialization, two.specialization[0], atol=1e-12)
    np.testing.assert_allclose(modes.gate_contrast, two.gate_contrast[0], atol=1e-12)


def test_conserved_quantity_changes_only_by_the_euler_error():
    """Q_{n+1} - Q_n = 2 S tau_W dw^2 - tau_c dc^2 exactly (the first-order terms cancel); drift ~ dt."""
    signs = mech.block_task_signs(4000, 1000)
    kw = dict(weight_timescale=TAU_W, gate_timescale=TAU_C, norm=NORM, gate_sum=0.0)
    run = mech.simulate_two_variable(0.5, 0.0, signs, dt=DT, **kw)
    wbar, cbar = run.specialization[0], run.gate_contrast[0]
    q = mech.conserved_quantity(wbar, cbar, norm=NORM, weight_timescale=TAU_W, gate_timescale=TAU_C)
    euler = 2 * NORM * TAU_W * np.diff(wbar) ** 2 - TAU_C * np.diff(cbar) ** 2
    np.testing.assert_allclose(np.diff(q), euler, atol=1e-14)
    drift = np.abs(q - q[0]).max() / abs(q[0])
    assert 1e-4 < drift < 3e-2
    fine = mech.simulate_two_variable(0.5, 0.0, mech.block_task_signs(8000, 2000), dt=DT / 2, **kw)
    q_fine = mech.conserved_quantity(fine.specialization[0], fine.gate_contrast[0], norm=NORM,
                                     weight_timescale=TAU_W, gate_timescale=TAU_C)
    assert np.abs(q_fine - q_fine[0]).max() / abs(q_fine[0]) == pytest.approx(drift / 2, rel=0.05)


def test_path_balancedness_is_conserved_without_the_regulariser():
    """Q_p = S tau_W |w_p|^2 - tau_c c_p^2 of any (non-symmetric) state, blocked curriculum, lambda = 0."""
    rng = np.random.default_rng(3)
    w0, c0 = rng.normal(scale=0.3, size=(4, 2, 2)), rng.uniform(0.2, 0.8, size=(4, 2))
    drifts = []
    for dt in (DT, DT / 2):
        task = np.eye(2)[(np.arange(round(2.0 / dt)) // round(0.5 / dt)) % 2]
        red = mech.integrate_reduced(w0, c0, task, dt=dt, weight_timescale=TAU_W, gate_timescale=0.1, norm=NORM)
        q = mech.path_conserved_quantity(NORM * (red.weights**2).sum(-1), red.gates, weight_timescale=TAU_W,
                                         gate_timescale=0.1)
        drifts.append(np.abs(q - q[:, :1]).max())
        assert np.abs(red.gates[:, -1] - c0).max() > 0.1  # the gates moved a lot meanwhile
    assert drifts[0] < 3e-3
    assert drifts[1] == pytest.approx(drifts[0] / 2, rel=0.1)


def test_hyperbolic_solution_matches_the_integrator():
    """lambda = 0, one task: t(u) of the closed form equals the Euler time to O(dt)."""
    w0, c0, a = 0.6, -0.3, 1.0
    q = float(mech.conserved_quantity(w0, c0, norm=NORM, weight_timescale=TAU_W, gate_timescale=TAU_C))
    kw = dict(weight_timescale=TAU_W, gate_timescale=TAU_C, norm=NORM)
    for dt in (1e-3, 1e-4):
        run = mech.simulate_two_variable(w0, c0, np.full(round(0.4 / dt), a), dt=dt, gate_sum=0.0, **kw)
        u = run.gate_contrast[0] * run.specialization[0]
        keep = u < 0.95 * a  # away from the fixed point, where t(u) is flat
        t = mech.hyperbolic_time(u[keep], start=c0 * w0, task_sign=a, conserved=q, **kw)
        assert np.abs(t - run.time[keep]).max() < 3 * dt
        wbar, cbar = mech.hyperbolic_state(u[keep], conserved=q, **kw)
        np.testing.assert_allclose(wbar, run.specialization[0][keep], atol=30 * dt)
        np.testing.assert_allclose(cbar, run.gate_contrast[0][keep], atol=300 * dt)
    assert u[-1] > 0.9 * a  # it learned the task


def test_level_set_is_the_switch_trajectory_for_fast_gates():
    wbar = mech.level_set(0.0, mech.conserved_quantity(1.0, 1.0, norm=NORM, weight_timescale=TAU_W,
                                                       gate_timescale=TAU_C),
                          norm=NORM, weight_timescale=TAU_W, gate_timescale=TAU_C)
    assert float(wbar) == pytest.approx(np.sqrt(1 - TAU_C / (2 * NORM * TAU_W)))
    run = mech.simulate_two_variable(1.0, 1.0, -np.ones(1500), dt=DT, weight_timescale=TAU_W, gate_timescale=TAU_C,
                                     norm=NORM, gate_sum=1.0, regularization=0.1, regularizer=FLEXIBLE)
    crossing = np.argmax(run.gate_contrast[0] < 0)
    assert run.specialization[0, crossing] == pytest.approx(float(wbar), abs=2e-3)


def test_longer_blocks_specialise_faster_at_small_size():
    config = load_config("fig2-flexible").with_learning(mode="expected")
    config = dataclasses.replace(config, seeds=2, sweep=Sweep(axes=(("block_length", (0.5, 2.0)),)),
                                 curriculum=dataclasses.replace(config.curriculum, duration=15.0))
    ds = simulate(config).dataset
    times = mech.specialization_time(ds["total_alignment"].values, ds["time"].values, threshold=0.9)
    short, long = times[ds["grid_point"].values == 0], times[ds["grid_point"].values == 1]
    assert np.all(np.isfinite(long)) and np.all(long < 6.0)
    assert np.all(np.nan_to_num(short, nan=np.inf) > long.max())


def test_figure_runs_quick_and_returns_finite_quantities(tmp_path):
    from cogflex.reproduce.fig4 import FIGURE

    quantities = FIGURE.run("quick", tmp_path)
    names = {p.name for p in tmp_path.glob("fig4_*.png")}
    assert names == {"fig4_phase_portrait.png", "fig4_reduced_vs_full.png", "fig4_block_length.png"}
    for q in quantities:
        assert np.all(np.isfinite(q.value)), q.name
    by_name = {q.name: q for q in quantities}
    assert by_name["conserved_quantity_relative_drift"].passed
    assert by_name["two_variable_vs_full_max_abs"].value < 1e-9
    assert by_name["reduced_vs_full_max_abs_flexible"].value < 1e-9
