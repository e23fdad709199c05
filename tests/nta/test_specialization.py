"""Normalised adaptation and specialisation measures, and the correlated-teacher sweep."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from cogflex.errors import ConfigError
from cogflex.nta import load_config, simulate
from cogflex.nta.config import Curriculum, Learning, Network, Recording, Regularizer, SimulationConfig, Teachers
from cogflex.nta.simulation import InitialState, initial_state
from cogflex.nta.specialization import (
    alignment_difference,
    block_end_gates,
    gate_selectivity,
    gate_sparsity,
    gated_specialization,
    gates_by_task,
    half_time,
    late_segments,
    peak_decrease_rate,
    relative_decay_rate,
    weight_only_decay_rate,
    weight_specialization,
)
from cogflex.reproduce import correlated
from cogflex.reproduce.correlated import falls_monotonically, load_settings, overlap_config, sweep

# -- hand-built states -------------------------------------------------------------------------------


def teachers_with_overlap(overlap: float, seed: int = 0) -> np.ndarray:
    """Two correlated teachers (2, 3, 6) as drawn by the simulation."""
    config = SimulationConfig(seeds=1, first_seed=seed, network=Network(input_dim=6, output_dim=3),
                              teachers=Teachers(kind="correlated", tasks=2, overlap=overlap))
    return initial_state(config, dtype=torch.float64).teachers[0].numpy()


def test_exponential_loss_has_its_rate_and_half_time_whatever_the_jump():
    dt, rate = 0.001, 7.0
    t = np.arange(400) * dt
    curves = np.stack([0.5 * np.exp(-rate * t), 1e-3 * np.exp(-rate * t)])
    np.testing.assert_allclose(relative_decay_rate(curves, dt, steps=10), [rate, rate], rtol=1e-12)
    np.testing.assert_allclose(relative_decay_rate(curves, dt, steps=10, timescale=1.3), [rate * 1.3] * 2)
    np.testing.assert_allclose(half_time(curves, dt), [math.log(2) / rate] * 2, rtol=1e-9)
    np.testing.assert_allclose(half_time(curves, dt, fraction=0.1, timescale=2.0),
                               [math.log(10) / rate / 2.0] * 2, rtol=1e-9)
    # The paper's peak slope is not normalised: it scales with the jump.
    peak = peak_decrease_rate(curves, dt)
    np.testing.assert_allclose(peak, [0.5 * rate, 1e-3 * rate], rtol=1e-2)


def test_switch_measures_report_nan_where_undefined():
    flat = np.full((1, 50), 0.2)
    assert np.isnan(half_time(flat, 0.01)).all()
    assert np.isnan(relative_decay_rate(np.zeros((1, 20)), 0.01, steps=5)).all()
    assert np.isnan(peak_decrease_rate(np.full((1, 5), np.nan), 0.01)).all()
    with pytest.raises(ValueError, match="steps"):
        relative_decay_rate(flat, 0.01, steps=50)


def test_weight_only_rate_is_twice_the_sum_of_squared_gates():
    gates = np.array([[[1.0, 0.0]], [[0.5, 0.5]]])  # (2 networks, R = 1, P = 2)
    np.testing.assert_allclose(weight_only_decay_rate(gates), [2.0, 1.0])


@pytest.mark.parametrize("overlap", [0.0, 0.3, 0.9])
def test_correlated_teachers_have_row_and_matrix_cosine_equal_to_the_overlap(overlap):
    t = teachers_with_overlap(overlap, seed=3)
    a, b = t[0], t[1]
    assert (a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()) == pytest.approx(overlap, abs=1e-12)
    rows = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    np.testing.assert_allclose(rows, overlap, atol=1e-12)  # alignment_difference relies on this


@pytest.mark.parametrize("overlap", [0.0, 0.5])
def test_alignment_difference_is_one_minus_overlap_for_specialised_and_zero_for_identical_paths(overlap):
    specialised = np.array([[1.0, overlap], [overlap, 1.0]])
    swapped = specialised[::-1]
    identical = np.array([[0.8, 0.6], [0.8, 0.6]])
    got = alignment_difference(np.stack([specialised, swapped, identical]))
    np.testing.assert_allclose(got, [1 - overlap, 1 - overlap, 0.0], atol=1e-12)


@pytest.mark.parametrize("overlap", [0.0, 0.6, 0.95])
def test_weight_specialisation_is_one_for_specialised_and_zero_for_identical_paths(overlap):
    t = teachers_with_overlap(overlap)
    specialised, swapped = t, t[::-1]
    identical = np.stack([t.mean(0), t.mean(0)])
    tracking = np.stack([t[1], np.zeros_like(t[1])])  # one path re-learnt every block
    got = weight_specialization(np.stack([specialised, swapped, identical, tracking]), np.stack([t] * 4))
    np.testing.assert_allclose(got, [1.0, 1.0, 0.0, 0.5], atol=1e-9)


def test_specialisation_is_zero_for_identical_teachers():
    t = teachers_with_overlap(1.0)
    assert np.allclose(t[0], t[1])
    assert weight_specialization(t, t) == 0.0
    gates = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    assert gated_specialization(gates, t, t) == 0.0


def test_gated_specialisation_counts_only_what_the_gate_switch_delivers():
    t = teachers_with_overlap(0.4)
    switching = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])  # (M, R, P): task A gates, task B gates
    fixed = np.array([[[1.0, 0.0]], [[1.0, 0.0]]])
    equal = np.array([[[0.5, 0.5]], [[0.5, 0.5]]])
    assert gated_specialization(switching, t, t) == pytest.approx(1.0)
    assert gated_specialization(switching, t[::-1], t) == pytest.approx(-1.0)  # gates opposite to paths
    assert gated_specialization(fixed, t, t) == pytest.approx(0.0)
    assert gated_specialization(equal, t, t) == pytest.approx(0.0)
    identical_paths = np.stack([t.mean(0)] * 2)
    assert gated_specialization(switching, identical_paths, t) == pytest.approx(0.0)


def test_gated_specialisation_with_one_gate_per_output_unit():
    t = teachers_with_overlap(0.2)  # (2, 3, 6)
    # Path 0 holds teacher A's rows 0-1 and B's row 2; path 1 the rest: per-unit gates must pick rows.
    paths = np.stack([np.stack([t[0, 0], t[0, 1], t[1, 2]]), np.stack([t[1, 0], t[1, 1], t[0, 2]])])
    gates_a = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # (R = d_out, P)
    task_gates = np.stack([gates_a, 1.0 - gates_a])
    assert gated_specialization(task_gates, paths, t) == pytest.approx(1.0)


def test_gate_selectivity_and_sparsity():
    switching = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    same_one_hot = np.array([[[1.0, 0.0]], [[1.0, 0.0]]])
    equal = np.array([[[0.5, 0.5]], [[0.5, 0.5]]])
    np.testing.assert_allclose(gate_selectivity(np.stack([switching, same_one_hot, equal])), [1.0, 0.0, 0.0])
    # Sparsity cannot tell one path for both tasks from one path per task.
    np.testing.assert_allclose(gate_sparsity(np.stack([switching[0], same_one_hot[1], equal[0]])), [1.0, 1.0, 0.0])


def test_late_segments_are_the_last_share_of_the_switches():
    assert late_segments(22, 0.5).tolist() == list(range(12, 22))
    assert late_segments(3, 0.1).tolist() == [2]
    with pytest.raises(ValueError):
        late_segments(1)


# -- simulations --------------------------------------------------------------------------------------


def switch_config(overlap: float, *, gate_timescale: float = 0.05) -> SimulationConfig:
    return SimulationConfig(
        name="switch", seeds=2,
        network=Network(input_dim=6, output_dim=3, paths=2),
        teachers=Teachers(kind="correlated", tasks=2, overlap=overlap),
        curriculum=Curriculum(block_length=0.2, duration=0.4),
        learning=Learning(dt=1e-4, weight_timescale=0.5, gate_timescale=gate_timescale, regularization=0.0,
                          regularizer=Regularizer(nonnegative=0.0), mode="expected"),
        recording=Recording(switch_curve=20, log_every=100),
    )


@pytest.mark.parametrize("overlap", [0.0, 0.7])
def test_relative_decay_rate_of_a_specialised_network_matches_the_linear_response(overlap):
    """r = 2 sum c^2 / tau_W + 2 sum <W_p, d>^2 / tau_c = 2 / tau_W + 2 ||W*||^2 (1 - rho) / tau_c."""
    config = switch_config(overlap)
    teachers = initial_state(config, dtype=torch.float64).teachers
    gates = torch.tensor([1.0, 0.0], dtype=torch.float64).expand(config.seeds, 1, 2).clone()
    start = InitialState(weights=teachers.clone(), teachers=teachers, gates=gates)  # path p = teacher p
    ds = simulate(config, initial=start, dtype=torch.float64).dataset
    measured = relative_decay_rate(ds["switch_curve"].values[:, 1], config.learning.dt, steps=1)
    norm2 = float(teachers[0, 0].square().sum())
    predicted = 2 / 0.5 + 2 * norm2 * (1 - overlap) / 0.05
    np.testing.assert_allclose(measured, predicted, rtol=5e-3)


def test_block_end_gates_follow_the_blocks():
    config = dataclasses.replace(overlap_config(load_config("fig2-flexible"), 0.0, seeds=2, duration=4.0),
                                 recording=Recording(log_every=20, switch_curve=10))
    ds = simulate(config.with_learning(mode="expected")).dataset
    gates, tasks = block_end_gates(ds)
    assert gates.shape == (2, 4, 1, 2)
    assert tasks.tolist() == [[0, 1, 0, 1]] * 2
    np.testing.assert_allclose(gates[:, -1], ds["final_gates"].values)
    at_first_switch = ds["gates"].values[:, np.flatnonzero(ds["step"].values == 1000)[0]]
    np.testing.assert_allclose(gates[:, 0], at_first_switch)
    by_task = gates_by_task(ds, late_fraction=1.0)
    np.testing.assert_allclose(by_task[:, 1], gates[:, [1, 3]].mean(1))


def test_small_sweep_specialises_and_adapts_faster_with_orthogonal_than_with_similar_teachers():
    result = sweep("fig2-flexible", (0.0, 0.9), seeds=2, duration=14.0)
    for name in ("adaptation_speed_relative", "specialization_gated", "gate_selectivity",
                 "specialization_weights", "adaptation_speed_peak_rate"):
        orthogonal, similar = result.values[name]
        assert orthogonal.min() > similar.max(), name
    assert result.values["specialization_gated"][0].min() > 0.5
    assert result.values["specialization_gated"][1].max() < 0.1


# -- the monotone rule, settings and the figure -------------------------------------------------------


def test_falls_monotonically():
    se = np.full(5, 0.01)
    assert falls_monotonically(np.array([1.0, 0.8, 0.5, 0.2, 0.0]), se)
    assert falls_monotonically(np.array([1.0, 0.8, 0.81, 0.2, 0.0]), se)  # a rise within noise
    assert not falls_monotonically(np.array([1.0, 0.8, 0.9, 0.2, 0.0]), se)
    assert not falls_monotonically(np.full(5, 0.5), se)  # flat: no fall
    assert not falls_monotonically(np.array([1.0, 0.5, 0.515, 0.53, 0.545]), se)  # slow drift upwards
    assert not falls_monotonically(np.array([1.0, np.nan, 0.2, 0.1, 0.0]), se)
    zero_se = np.zeros(3)
    assert not falls_monotonically(np.array([1.0, 0.0, 0.0004]), zero_se, resolution=0.0)
    assert falls_monotonically(np.array([1.0, 0.0, 0.0004]), zero_se, resolution=1e-3)


def test_bundled_settings_load_and_bad_values_name_the_field(tmp_path):
    settings = load_settings()
    assert settings.base == "fig2-flexible" and settings.paper.overlaps[-1] == 1.0
    bad = tmp_path / "bad.toml"
    bad.write_text('[paper]\nseeds = 5\noverlaps = [0.0, 0.5, 0.4]\n')
    with pytest.raises(ConfigError, match=r"paper\.overlaps"):
        load_settings(bad)
    bad.write_text('base = "no-such-preset"\n')
    with pytest.raises(ConfigError, match="base"):
        load_settings(bad)


def test_quick_figure_writes_pngs_and_finite_quantities(tmp_path):
    quantities = correlated.FIGURE.run("quick", tmp_path)
    assert sorted(p.name for p in tmp_path.glob("correlated_*.png")) == [
        "correlated_metrics.png", "correlated_switch_curves.png"]
    names = [q.name for q in quantities]
    assert len(set(names)) == len(names)
    for name in correlated.METRICS:
        assert name in names
    for q in quantities:
        values = q.value if isinstance(q.value, list) else [q.value]
        assert np.isfinite(values).all(), q.name
        q.to_dict()
    checked = {q.name: q.passed for q in quantities if q.reference}
    assert set(checked) == set(correlated.METRICS)
