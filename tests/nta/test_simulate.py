"""Whole runs: batching, reproducibility, curricula, the reduced model, divergence."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from cogflex.errors import ConfigError, DivergenceError
from cogflex.nta import simulate
from cogflex.nta.config import Network, Sweep
from cogflex.nta.reduced import project, reduced_rhs, simulate_reduced
from cogflex.nta.regularizers import GateRegularizer
from cogflex.nta.simulation import InitialState, initial_state
from tests.conftest import small_config

RUN_VARS = ("loss", "gates", "alignment", "total_alignment", "time_to_criterion", "block_end_loss", "final_gates")


def assert_same_networks(a, b, rtol=1e-5, atol=1e-7):
    segments = min(a.sizes["segment"], b.sizes["segment"])  # a grid pads to its longest curriculum
    a, b = a.isel(segment=slice(segments)), b.isel(segment=slice(segments))
    for name in RUN_VARS:
        np.testing.assert_allclose(a[name].values, b[name].values, rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.parametrize("mode", ["sampled", "expected"])
def test_batched_seeds_equal_runs_one_by_one(mode):
    config = small_config(mode=mode)
    batched = simulate(config).dataset
    for i, seed in enumerate(config.seed_values):
        alone = simulate(dataclasses.replace(config, seeds=1, first_seed=seed)).dataset
        assert_same_networks(batched.isel(network=[i]), alone)


def test_batched_grid_equals_grid_points_one_by_one(small_grid):
    batched = simulate(small_grid)
    for g, point in enumerate(small_grid.sweep.points()):
        single = dataclasses.replace(small_grid, sweep=Sweep(), curriculum=dataclasses.replace(
            small_grid.curriculum, block_length=point["block_length"]))
        single = single.with_learning(gate_timescale=point["gate_timescale"])
        assert_same_networks(batched.grid_point(g), simulate(single).dataset)


def test_same_seed_same_result_and_seeds_recorded(small):
    a, b = simulate(small).dataset, simulate(small).dataset
    assert_same_networks(a, b, rtol=0, atol=0)
    assert list(a["seed"].values) == [0, 1, 2]


def test_explicit_task_sequence_equals_the_blocked_curriculum(small):
    steps = small.n_steps
    per_block = round(small.curriculum.block_length / small.learning.dt)
    sequence = (np.arange(steps) // per_block) % 2
    assert_same_networks(simulate(small).dataset, simulate(small, task_sequence=sequence).dataset, rtol=0, atol=0)


def test_initial_state_shapes_are_validated(small):
    init = initial_state(small)
    bad = InitialState(init.weights[:, :1], init.teachers, init.gates)
    with pytest.raises(ConfigError, match=r"initial.weights: has shape \(3, 1, 3, 6\)"):
        simulate(small, initial=bad)


def test_explicit_task_sequence_is_validated(small):
    with pytest.raises(ConfigError, match="task_sequence"):
        simulate(small, task_sequence=np.array([0, 1, 2]))


def test_compressed_expected_mode_equals_full_weights(small):
    dense = simulate(small, compress=False, dtype=torch.float64).dataset
    compact = simulate(small, compress=True, dtype=torch.float64).dataset
    assert_same_networks(dense, compact, rtol=1e-9, atol=1e-12)


def test_per_unit_gates_run_and_record_one_gate_per_unit(small):
    config = dataclasses.replace(small, network=Network(input_dim=6, output_dim=3, gating="unit"))
    ds = simulate(config).dataset
    assert ds["gates"].sizes["unit"] == 3 and ds["final_gates"].shape == (3, 3, 2)


def test_reduced_model_tracks_full_network_over_fig2_run():
    """Expected mode, teachers as basis, same initial state: the loss agrees to 1e-3 over all of Fig. 2."""
    from cogflex.nta import load_config

    config = dataclasses.replace(load_config("fig2-flexible").with_learning(mode="expected"), seeds=2)
    init = initial_state(config, dtype=torch.float64)
    w0 = project(init.weights, init.teachers)
    in_subspace = torch.einsum("spm,smij->spij", w0, init.teachers)
    full = simulate(config, initial=InitialState(in_subspace, init.teachers, init.gates), compress=False)
    reduced = simulate_reduced(config, weights=w0, gates=init.gates[:, 0])
    diff = np.abs(full.dataset["loss"].values - reduced.dataset["loss"].values).max()
    assert diff < 1e-3
    assert full.summary()["total_alignment"] > 0.99  # and it is the flexible regime, not a trivial run


def test_reduced_rhs_is_the_stepper_increment():
    config = small_config()
    init = initial_state(config, dtype=torch.float64)
    w0 = project(init.weights, init.teachers)
    c0 = init.gates[:, 0]
    one_step = dataclasses.replace(
        config, curriculum=dataclasses.replace(config.curriculum, duration=config.learning.dt))
    ds = simulate_reduced(one_step, weights=w0, gates=c0, dtype=torch.float64).dataset
    reg = GateRegularizer.from_weights(config.learning.regularizer,
                                       torch.full((3,), config.learning.regularization, dtype=torch.float64))
    s = init.teachers[0, 0].square().sum()  # S, one teacher's squared norm
    _, dc = reduced_rhs(w0, c0, torch.tensor([[1.0, 0.0]] * 3, dtype=torch.float64), norm=s, regularizer=reg)
    expected = c0 + config.learning.dt / config.learning.gate_timescale * dc
    np.testing.assert_allclose(ds["final_gates"].values[:, 0], expected.numpy(), rtol=1e-10)


def test_divergence_stops_the_run_and_names_the_network(small):
    config = dataclasses.replace(small, network=Network(input_dim=6, output_dim=3, gate_init=60.0))
    with pytest.raises(DivergenceError, match=r"diverged .* at step \d+ .*\(seed 0"):
        simulate(config)


def test_recorded_size_does_not_grow_with_the_number_of_steps():
    """A long run keeps ~1,000 log points (analyses/bench_simulator.py measures 10^6 steps)."""
    config = small_config()
    config = dataclasses.replace(config, seeds=1,
                                 curriculum=dataclasses.replace(config.curriculum, duration=1e5 * config.learning.dt))
    ds = simulate(config).dataset
    assert ds.sizes["time"] == 1000
    assert ds.nbytes < 5e6
