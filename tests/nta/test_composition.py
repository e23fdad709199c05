"""Composed tasks (Fig. 3): config, targets, the two-phase schedule, grouped regulariser, runs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from cogflex.errors import ConfigError
from cogflex.nta import load_config, simulate
from cogflex.nta.config import Composition, Regularizer, config_from_dict
from cogflex.nta.curricula import BlockedSchedule
from cogflex.nta.reduced import simulate_reduced
from cogflex.nta.regularizers import GateRegularizer
from cogflex.nta.simulation import initial_state
from cogflex.nta.teachers import compose_tasks, orthogonal_teachers
from cogflex.reproduce.fig3 import composed_gate_prediction, composition_summary


def small(name: str, **composition) -> object:
    """A short composition run: 3 seeds, expected mode, composed phase from block 8 of 11."""
    config = load_config(name)
    comp = dataclasses.replace(config.composition, start_block=8, **composition)
    curriculum = dataclasses.replace(config.curriculum, duration=11.0)
    return dataclasses.replace(config, seeds=3, composition=comp, curriculum=curriculum).with_learning(
        mode="expected")


# -- configuration ----------------------------------------------------------------


@pytest.mark.parametrize(("composition", "words"), [
    ({"kind": "mixture", "tasks": [[0.5, 0.5]]}, ["composition.tasks[0]", "one weight per teacher (3)"]),
    ({"kind": "rows", "tasks": [[0, 1, 0, 1, 0]]}, ["composition.tasks[0]", "one teacher index per output unit (6)"]),
    ({"kind": "rows", "tasks": [[0, 1, 0, 1, 0, 3]]}, ["composition.tasks[0]", "teacher 3 does not exist"]),
    ({"kind": "rows", "tasks": [[0, 1.5, 0, 1, 0, 1]]}, ["tasks[0]", "teacher indices"]),
    ({"kind": "mixture", "tasks": [[]]}, ["tasks[0]", "must not be empty"]),
    ({"kind": "mixture", "start_block": -1, "tasks": [[1, 0, 0]]}, ["start_block", "zero or positive"]),
    ({"kind": "sum", "tasks": [[1, 0, 0]]}, ["kind"]),
])
def test_bad_compositions_name_the_field(composition, words):
    data = {"network": {"input_dim": 20, "output_dim": 6, "paths": 3}, "teachers": {"tasks": 3},
            "composition": composition}
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, source="x.toml")
    message = str(info.value)
    for word in words:
        assert word in message


def test_composed_targets_are_mixtures_or_rows_of_the_teachers():
    teachers = orthogonal_teachers(3, 6, 20, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    mix = compose_tasks(teachers, Composition(kind="mixture", tasks=((0.5, 0.5, 0.0), (0.0, 2.0, -1.0))))
    torch.testing.assert_close(mix[0], 0.5 * teachers[0] + 0.5 * teachers[1])
    torch.testing.assert_close(mix[1], 2.0 * teachers[1] - teachers[2])
    rows = compose_tasks(teachers, Composition(kind="rows", tasks=((0, 1, 0, 1, 0, 1), (2, 2, 2, 2, 2, 0))))
    for i in range(6):
        assert torch.equal(rows[0, i], teachers[i % 2, i])
        assert torch.equal(rows[1, i], teachers[2 if i < 5 else 0, i])
    assert compose_tasks(teachers, Composition()).shape == (0, 6, 20)


def test_schedule_switches_to_the_composed_phase_at_the_start_block():
    schedule = BlockedSchedule([3, 2], (0, 1, 2), then=(3, 4, 5), switch_block=4)
    tasks = schedule.tasks(0, 24)
    blocks_a = tasks[0, ::3]  # network 0: blocks of 3 steps
    assert blocks_a.tolist() == [0, 1, 2, 0, 3, 4, 5, 3]
    blocks_b = tasks[1, ::2]  # network 1: blocks of 2 steps
    assert blocks_b.tolist() == [0, 1, 2, 0, 3, 4, 5, 3, 4, 5, 3, 4]
    assert (tasks[0, :3] == 0).all() and (tasks[0, 12:15] == 3).all()


# -- the regulariser over all gates of a network ---------------------------------------


def test_grouped_regulariser_is_the_formula_on_the_flat_gate_vector():
    rows, paths = 4, 3
    gates = torch.randn(2 * rows, paths, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    lam = torch.tensor([0.3, 0.7], dtype=torch.float64)
    weights = Regularizer(nonnegative=1.0, l1=2.0, l2=3.0, per_unit=False)
    reg = GateRegularizer.from_weights(weights, lam, rows=rows, per_row=False)
    w_nn, w_l1, w_l2 = weights.normalized()
    for b in range(2):
        flat = gates[b * rows:(b + 1) * rows].reshape(-1)
        expected = lam[b] * (w_nn * 10 * torch.relu(-flat).sum() + w_l1 * 5 * (flat.abs().sum() - 1) ** 2
                             + w_l2 * 0.5 * (flat.norm() - 1) ** 2)
        torch.testing.assert_close(reg.value(gates).view(2, rows)[b].sum(), expected)
    leaf = gates.clone().requires_grad_(True)
    reg.value(leaf).sum().backward()
    torch.testing.assert_close(reg.gradient(gates), leaf.grad)
    out = torch.zeros_like(gates)
    reg.bind(gates)(out)
    torch.testing.assert_close(out, leaf.grad)


def test_per_unit_and_network_norms_differ_only_with_several_rows():
    gates = torch.rand(6, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    lam = torch.tensor([0.2], dtype=torch.float64)
    weights = Regularizer(nonnegative=1.0, l2=10.0)
    per_row = GateRegularizer.from_weights(weights, lam, rows=6).value(gates).sum()
    whole = GateRegularizer.from_weights(weights, lam, rows=6, per_row=False).value(gates).sum()
    assert not torch.isclose(per_row, whole)
    one = GateRegularizer.from_weights(weights, lam, rows=1)
    assert torch.equal(one.value(gates[:1]), GateRegularizer.from_weights(weights, lam, rows=1,
                                                                          per_row=False).value(gates[:1]))


# -- simulation ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fig3-task-composition", "fig3-subtask-composition"])
def test_compressed_run_equals_the_full_one_with_composed_targets(name):
    config = small(name)
    config = dataclasses.replace(config, curriculum=dataclasses.replace(config.curriculum, duration=9.5))
    a = simulate(config, compress=True, dtype=torch.float64).dataset
    b = simulate(config, compress=False, dtype=torch.float64).dataset
    np.testing.assert_allclose(a["loss"].values, b["loss"].values, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a["final_gates"].values, b["final_gates"].values, rtol=1e-9, atol=1e-12)


def test_composed_phase_trains_on_the_composed_target():
    config = small("fig3-task-composition")
    ds = simulate(config, dtype=torch.float64).dataset
    task = ds["current_task"].values[0]
    time = ds["time"].values
    assert set(np.unique(task[time < 8])) == {0, 1, 2}
    assert set(np.unique(task[time >= 8])) == {3, 4, 5}
    # The loss at the first step of the composed phase is 1/2 ||sum_p c_p W_p - W_{(A+B)/2}||^2 of the
    # state at that step: check it against an explicit sequence that starts on the composed task.
    init = initial_state(config, dtype=torch.float64)
    seq = np.full(1, 3)
    first = simulate(config, task_sequence=seq, dtype=torch.float64).dataset["loss"].values[:, 0]
    target = 0.5 * init.teachers[:, 0] + 0.5 * init.teachers[:, 1]
    student = (init.gates[:, 0, :, None, None] * init.weights).sum(1)
    expected = 0.5 * ((student - target) ** 2).sum((-2, -1))
    np.testing.assert_allclose(first, expected.numpy(), rtol=1e-10)
    # alignment is measured against the 3 teachers only
    assert ds.sizes["task"] == 3


def test_task_sequence_may_use_composed_tasks_but_not_more():
    config = small("fig3-task-composition")
    with pytest.raises(ConfigError, match="task indices in 0..5"):
        simulate(config, task_sequence=np.full(10, 6))


def test_reduced_model_refuses_composed_tasks():
    with pytest.raises(ConfigError, match="composition"):
        simulate_reduced(small("fig3-task-composition"))


@pytest.mark.parametrize("name", ["fig3-task-composition", "fig3-subtask-composition"])
def test_flexible_network_solves_composed_tasks_by_composing_its_gates(name):
    flexible = simulate(small(name))
    forgetful = simulate(small(name).with_learning(regularization=0.0))
    s = composition_summary(flexible, forgetful)
    assert s["ratio"] < 0.5
    assert s["gate_error"] < 0.1
    assert s["forgetful_composed"] > 0.3


def test_gate_prediction_on_hand_built_gates():
    # network 0: teacher m used path m one-hot (one unit); blocks A, B, C, A, then composed
    end = np.zeros((1, 6, 1, 3))
    end[0, 0, 0] = end[0, 3, 0] = [1, 0, 0]
    end[0, 1, 0] = [0, 1, 0]
    end[0, 2, 0] = [0, 0, 1]
    blocks = np.array([0, 1, 2, 0, 3, 4])
    comp = Composition(kind="mixture", start_block=4, tasks=((1, 1, 0), (0, 1, 1)))
    pred = composed_gate_prediction(end, blocks, comp, 3)
    np.testing.assert_allclose(pred[0, :, 0], [[0.5, 0.5, 0], [0, 0.5, 0.5]])
    rows = np.zeros((1, 4, 2, 2))
    rows[0, 0] = [[1, 0], [1, 0]]  # teacher 0 -> path 0 on both units
    rows[0, 1] = [[0, 1], [0, 1]]  # teacher 1 -> path 1
    comp = Composition(kind="rows", start_block=2, tasks=((0, 1), (1, 0)))
    pred = composed_gate_prediction(rows, np.array([0, 1, 2, 3]), comp, 2)
    np.testing.assert_allclose(pred[0, 0], [[1, 0], [0, 1]])
    np.testing.assert_allclose(pred[0, 1], [[0, 1], [1, 0]])
