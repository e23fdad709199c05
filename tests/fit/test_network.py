"""The network inside the fitting engine against a plain-numpy per-trial gradient flow, and the interpolant."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cogflex.errors import ConfigError, DivergenceError
from cogflex.fit.network import NetworkSettings, full_sequence, run_network
from cogflex.fit.prepare import prepare
from cogflex.fit.tables import grid_points, predictor_table
from tests.fit.reference import catmull_rom, multilinear, regularizer_gradient, run_reference

SETTINGS = NetworkSettings(substeps=4, tutorial_blocks=2, tutorial_block_trials=40, max_practice_trials=60,
                           dtype="float64", seed=3)

#: tau_c, tau_W, lambda per network: flexible (fast gates, regulariser on) and forgetful (one timescale, lambda 0).
PARAMETERS = {
    "flexible": (np.array([0.7, 2.0, 3.0]), np.array([30.0, 60.0, 200.0]), np.array([0.05, 0.3, 0.1])),
    "forgetful": (np.array([3.0, 12.0, 40.0]), np.array([3.0, 12.0, 40.0]), np.zeros(3)),
}


@pytest.fixture(scope="module")
def seq(trials):
    return prepare(trials).sequences[0]


def initial_weights(settings: NetworkSettings, r: int) -> np.ndarray:
    """The engine's documented initial paths: N(0, 1) * weight_init_std from a torch generator seeded with ``seed``."""
    gen = torch.Generator().manual_seed(settings.seed)
    return torch.randn(1, settings.paths, r, 2 * r, dtype=torch.float64, generator=gen)[0].numpy() \
        * settings.weight_init_std


def reference(seq, settings, tau_c, tau_w, lam, *, history=0, weights=None):
    task, feat, observed = full_sequence(seq, settings, history=history)
    w0 = initial_weights(settings, seq.n_responses) if weights is None else weights
    return run_reference(task, feat, observed, seq.target[seq.observed], seq.n_responses, w0, settings.gate_init,
                         tau_c, tau_w, lam, substeps=settings.substeps, nonnegative=settings.regularizer_nonnegative,
                         l1=settings.regularizer_l1)


@pytest.mark.parametrize("variant", ["flexible", "forgetful"])
def test_run_network_matches_numpy_gradient_flow(seq, variant):
    tau_c, tau_w, lam = PARAMETERS[variant]
    pred = run_network(seq, tau_c, tau_w, lam, SETTINGS, record_gates=True)
    loss, margin, gates = reference(seq, SETTINGS, tau_c, tau_w, lam)
    n_obs = int(seq.observed.sum())
    assert pred.loss.shape == pred.margin.shape == (3, n_obs) and pred.gates.shape == (3, n_obs, 2)
    np.testing.assert_allclose(pred.loss, loss, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(pred.margin, margin, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(pred.gates, gates, rtol=1e-5, atol=1e-7)
    # the networks did learn something different per parameter set (the check is not vacuous)
    assert np.ptp(pred.loss[:, -1]) > 1e-3 and np.ptp(pred.gates[:, -1, 0]) > 1e-3


def test_flexible_gates_separate_and_forgetful_gates_do_not(seq):
    """The regimes the models stand for: fast regularised gates pick one path per task; slow unregularised do not."""
    settings = NetworkSettings(substeps=5, tutorial_blocks=6, tutorial_block_trials=300, max_practice_trials=0,
                               dtype="float64")
    flex = run_network(seq, 0.5, 100.0, 0.01, settings, record_gates=True)
    forget = run_network(seq, 100.0, 100.0, 0.0, settings, record_gates=True)
    task = seq.task[seq.observed]
    # flexible: the gate vector differs between the two tasks (one path per task)
    gate_gap = np.abs(flex.gates[0, task == 0].mean(0) - flex.gates[0, task == 1].mean(0)).max()
    assert gate_gap > 0.5
    # forgetful: slow gates hardly move between tasks
    assert np.abs(forget.gates[0, task == 0].mean(0) - forget.gates[0, task == 1].mean(0)).max() < 0.05


def test_histories_are_averaged(seq):
    """With several histories the predictors are the mean over the independent draws of the unobserved past."""
    settings = NetworkSettings(substeps=3, tutorial_blocks=2, tutorial_block_trials=25, max_practice_trials=40,
                               dtype="float64", histories=3, weight_init_std=0.0, seed=5)
    tau_c, tau_w, lam = PARAMETERS["flexible"]
    pred = run_network(seq, tau_c, tau_w, lam, settings, record_gates=True)
    zeros = np.zeros((2, seq.n_responses, 2 * seq.n_responses))
    runs = [reference(seq, settings, tau_c, tau_w, lam, history=h, weights=zeros) for h in range(3)]
    # the histories really differ (otherwise the average says nothing)
    assert np.abs(runs[0][0] - runs[1][0]).max() > 1e-3
    for i, got in enumerate((pred.loss, pred.margin, pred.gates)):
        np.testing.assert_allclose(got, np.mean([run[i] for run in runs], axis=0), rtol=1e-5, atol=1e-7)
    # the observed part of every history is the participant's own sequence
    lives = [full_sequence(seq, settings, history=h) for h in range(3)]
    for task, feat, observed in lives:
        assert np.array_equal(observed, lives[0][2])
        assert np.array_equal(task[observed], seq.task[seq.observed])
        assert np.array_equal(feat[observed], seq.features[seq.observed])


def test_float32_default_is_close_to_float64(seq):
    tau_c, tau_w, lam = PARAMETERS["flexible"]
    p32 = run_network(seq, tau_c, tau_w, lam, NetworkSettings(**{**SETTINGS.__dict__, "dtype": "float32"}))
    p64 = run_network(seq, tau_c, tau_w, lam, SETTINGS)
    np.testing.assert_allclose(p32.loss, p64.loss, atol=1e-4)
    np.testing.assert_allclose(p32.margin, p64.margin, atol=1e-4)


def test_scalar_parameters_broadcast(seq):
    one = run_network(seq, 2.0, 60.0, 0.3, SETTINGS)
    many = run_network(seq, np.array([0.7, 2.0]), np.array([30.0, 60.0]), 0.3, SETTINGS)
    assert one.loss.shape == (1, int(seq.observed.sum()))
    np.testing.assert_allclose(many.loss[1], one.loss[0], rtol=1e-12)


@pytest.mark.parametrize(("args", "field"), [((0.0, 10.0, 0.1), "timescale"), ((1.0, -1.0, 0.1), "timescale"),
                                             ((1.0, 10.0, -0.1), "regularization")])
def test_invalid_network_parameters(seq, args, field):
    with pytest.raises(ConfigError) as info:
        run_network(seq, *args, SETTINGS)
    assert info.value.field == field


def test_too_fast_gates_diverge_with_a_clear_error(seq):
    settings = NetworkSettings(substeps=1, tutorial_blocks=0, max_practice_trials=0, dtype="float64")
    with pytest.raises(DivergenceError, match="tau_c=0.001"):
        run_network(seq, [0.001, 1.0], 50.0, 0.1, settings)


def test_regularizer_gradient_reference_matches_gate_regularizer():
    """The reference's dR/dc is the gradient of GateRegularizer.value (finite differences) and its own gradient."""
    from cogflex.nta.config import Regularizer
    from cogflex.nta.regularizers import GateRegularizer

    rng = np.random.default_rng(0)
    c = rng.normal(0.3, 0.8, size=(6, 2))
    lam = np.array([0.0, 0.05, 0.1, 0.3, 1.0, 2.0])
    reg = GateRegularizer.from_weights(Regularizer(nonnegative=1.0, l1=1.0), torch.as_tensor(lam))
    ours = regularizer_gradient(c, lam, 1.0, 1.0)
    np.testing.assert_allclose(reg.gradient(torch.as_tensor(c)).numpy(), ours, rtol=1e-12, atol=1e-12)
    eps = 1e-6
    for p in range(2):
        step = np.zeros_like(c)
        step[:, p] = eps
        fd = (reg.value(torch.as_tensor(c + step)) - reg.value(torch.as_tensor(c - step))).numpy() / (2 * eps)
        np.testing.assert_allclose(ours[:, p], fd, rtol=1e-5, atol=1e-6)


# -- predictor tables and the multilinear interpolant ------------------------------------------------------------


def test_predictor_table_is_the_grid_of_network_runs(trials, flexible, tmp_path):
    seq = prepare(trials).sequences[1]
    table = predictor_table(flexible, seq, cache_dir=tmp_path)
    n_obs = int(seq.observed.sum())
    assert table.shape == (3, 3, 3, n_obs, 2)
    points = grid_points(flexible)
    tau_c, tau_w, lam = flexible.network_values(points)
    loss, margin, _ = reference(seq, flexible.network, tau_c, tau_w, lam)
    np.testing.assert_allclose(table[..., 0].reshape(27, n_obs), loss, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(table[..., 1].reshape(27, n_obs), margin, rtol=1e-6, atol=1e-9)
    # grid order: C order over (gate_timescale, weight_timescale, regularization)
    assert points["gate_timescale"][9] == flexible.parameters["gate_timescale"].nodes()[1]
    assert points["regularization"][1] == pytest.approx(flexible.parameters["regularization"].nodes()[1])
    # cached: the second call reads the file and returns the same table
    cached = list(tmp_path.glob("predictors-flexible-*.npy"))
    assert len(cached) == 1
    np.testing.assert_array_equal(predictor_table(flexible, seq, cache_dir=tmp_path), table)


def test_predictor_table_cache_ignores_a_table_of_the_wrong_shape(trials, forgetful, tmp_path):
    seq = prepare(trials).sequences[0]
    table = predictor_table(forgetful, seq, cache_dir=tmp_path)
    (path,) = tmp_path.glob("predictors-forgetful-*.npy")
    np.save(path, np.zeros((2, 5, 2)))
    np.testing.assert_array_equal(predictor_table(forgetful, seq, cache_dir=tmp_path), table)


def _interpolate(table, positions, pidx):
    """The engine's interpolant (PyTensor) at per-participant positions, trials indexed by ``pidx``."""
    import pytensor.tensor as pt

    from cogflex.fit.interpolate import multilinear as interpolant
    from cogflex.fit.link import pytensor_namespace

    flat = pt.constant(table.reshape(-1, table.shape[-1]))
    out = interpolant(pytensor_namespace(), flat, table.shape[:-2], table.shape[-2], [p[pidx] for p in positions])
    return out[:, 0], out[:, 1]


def _interpolant(table, positions, pidx):
    import pytensor
    import pytensor.tensor as pt

    pos = [pt.dvector(f"p{d}") for d in range(len(positions))]
    loss, margin = _interpolate(table, pos, pidx)
    fn = pytensor.function(pos, [loss, margin])
    return fn(*[np.asarray(p, dtype=float) for p in positions])


def test_interpolation_is_exact_at_nodes_and_linear_between():
    rng = np.random.default_rng(1)
    table = rng.normal(size=(3, 4, 5, 2))  # grid 3 x 4, 5 trials (one participant), 2 predictors
    pidx = np.zeros(5, dtype=int)
    for i in range(3):
        for j in range(4):
            loss, margin = _interpolant(table, [[i / 2], [j / 3]], pidx)
            np.testing.assert_allclose(loss, table[i, j, :, 0], rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(margin, table[i, j, :, 1], rtol=1e-12, atol=1e-12)
    # linear along each axis between neighbouring nodes, bilinear inside a cell
    for frac in (0.25, 0.5, 0.9):
        loss, _ = _interpolant(table, [[(1 + frac) / 2], [2 / 3]], pidx)
        np.testing.assert_allclose(loss, (1 - frac) * table[1, 2, :, 0] + frac * table[2, 2, :, 0], rtol=1e-12)
        loss, _ = _interpolant(table, [[0.0], [frac / 3]], pidx)
        np.testing.assert_allclose(loss, (1 - frac) * table[0, 0, :, 0] + frac * table[0, 1, :, 0], rtol=1e-12)
    for pos in ([0.3, 0.55], [0.77, 0.01], [1.0, 1.0], [0.0, 0.999]):
        loss, margin = _interpolant(table, [[pos[0]], [pos[1]]], pidx)
        np.testing.assert_allclose(np.stack([loss, margin], -1), multilinear(table, np.array(pos)), rtol=1e-12)


def test_interpolation_uses_each_participants_own_position_and_rows():
    """Tables of two participants are concatenated along trials; pidx picks the position per trial."""
    rng = np.random.default_rng(2)
    first, second = rng.normal(size=(3, 4, 2)), rng.normal(size=(3, 6, 2))
    table = np.concatenate([first, second], axis=-2)
    pidx = np.r_[np.zeros(4, int), np.ones(6, int)]
    loss, margin = _interpolant(table, [[0.2, 0.85]], pidx)
    got = np.stack([loss, margin], -1)
    np.testing.assert_allclose(got[:4], multilinear(first, np.array([0.2])), rtol=1e-12)
    np.testing.assert_allclose(got[4:], multilinear(second, np.array([0.85])), rtol=1e-12)


def test_interpolation_gradient_is_the_cell_slope():
    import pytensor
    import pytensor.tensor as pt

    rng = np.random.default_rng(3)
    table = rng.normal(size=(4, 3, 2))
    pos = pt.dvector("pos")
    loss, _ = _interpolate(table, [pos], np.zeros(3, dtype=int))
    grad = pytensor.function([pos], pt.grad(loss.sum(), pos))
    # position 0.5 lies in cell [1/3, 2/3]: slope (t[2] - t[1]) * (points - 1)
    np.testing.assert_allclose(grad([0.5]), [(table[2, :, 0] - table[1, :, 0]).sum() * 3], rtol=1e-10)


@pytest.mark.parametrize("method", ["linear", "cubic"])
def test_grouped_interpolation_reads_each_participant_at_its_own_position(method):
    """Hierarchical fits read padded per-participant tables (weights once per participant): the same values and
    gradients as the per-trial read of the concatenated tables, participants of unequal trial counts."""
    import pytensor
    import pytensor.tensor as pt

    from cogflex.fit.interpolate import interpolate, interpolate_grouped, pad_tables
    from cogflex.fit.link import pytensor_namespace

    rng = np.random.default_rng(4)
    tables = [rng.normal(size=(5, 4, n, 2)) for n in (7, 3, 9)]
    padded, rows = pad_tables(tables)
    assert padded.shape == (3 * 20, 9, 2) and len(rows) == 19
    pidx = np.repeat(np.arange(3), [7, 3, 9])
    flat = pt.constant(np.concatenate(tables, axis=-2).reshape(-1, 2))
    pos = [pt.dvector("a"), pt.dvector("b")]
    xp = pytensor_namespace()
    grouped = interpolate_grouped(xp, padded, (5, 4), pos, rows, method)
    per_trial = interpolate(xp, flat, (5, 4), 19, [p[pidx] for p in pos], method)
    weights = pt.constant(rng.normal(size=(19, 2)))
    fn = pytensor.function(pos, [grouped, per_trial, *pt.grad((grouped * weights).sum(), pos),
                                 *pt.grad((per_trial * weights).sum(), pos)])
    for a, b in (([0.1, 0.5, 0.93], [0.0, 1.0, 0.37]), ([2 / 4, 1 / 3, 0.999], [0.61, 0.05, 0.5])):
        g, t, ga, gb, ta, tb = fn(np.array(a), np.array(b))
        np.testing.assert_allclose(g, t, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose([ga, gb], [ta, tb], rtol=1e-10, atol=1e-10)
    # the third participant at a node reads that node's own trials
    g = fn(np.array([0.2, 0.2, 0.5]), np.array([0.3, 0.3, 1 / 3]))[0]
    np.testing.assert_allclose(g[10:], tables[2][2, 1], rtol=1e-12)


def test_tables_of_very_unequal_length_are_read_per_trial():
    from cogflex.fit.pymc_model import _pads_cheaply

    assert _pads_cheaply([np.zeros((3, n, 2)) for n in (500, 480, 510)])
    assert not _pads_cheaply([np.zeros((3, n, 2)) for n in (500, 480, 5000)])
    assert not _pads_cheaply([np.zeros((3, 500, 2))])


# -- the cubic (C1) interpolant, the models' default ------------------------------------------------------------


def _cubic(table, positions, pidx=None, *, shared=False, grad=False):
    """The engine's cubic interpolant in PyTensor (per-trial or shared positions); optionally d/dpos."""
    import pytensor
    import pytensor.tensor as pt

    from cogflex.fit.interpolate import interpolate
    from cogflex.fit.link import pytensor_namespace

    flat = pt.constant(table.reshape(-1, table.shape[-1]))
    if shared:
        pos = [pt.dscalar(f"p{d}") for d in range(len(positions))]
        args = pos
    else:
        pos = [pt.dvector(f"p{d}") for d in range(len(positions))]
        args = [p[pidx] for p in pos]
    out = interpolate(pytensor_namespace(), flat, table.shape[:-2], table.shape[-2], args, "cubic")
    outputs = pt.grad(out.sum(), pos) if grad else out
    return pytensor.function(pos, outputs)(*[np.asarray(p, dtype=float) for p in positions])


@pytest.mark.parametrize("shared", [False, True])
def test_cubic_interpolation_matches_the_hermite_reference(shared):
    """Exact at every node, and the Catmull-Rom cubic (edge nodes extrapolated linearly) in between."""
    from cogflex.fit.interpolate import interpolate_table

    rng = np.random.default_rng(4)
    table = rng.normal(size=(5, 4, 6, 2))  # grid 5 x 4, 6 trials, 2 predictors
    pidx = np.zeros(6, dtype=int)
    for i, j in ((0, 0), (2, 1), (4, 3), (1, 3)):
        pos = [i / 4, j / 3]
        got = _cubic(table, pos if shared else [[p] for p in pos], pidx, shared=shared)
        np.testing.assert_allclose(got, table[i, j], rtol=1e-12, atol=1e-12)
    for pos in ([0.3, 0.55], [0.77, 0.01], [1.0, 1.0], [0.0, 0.999], [0.1, 0.9], [0.6, 0.4]):
        want = catmull_rom(table, np.array(pos))
        got = _cubic(table, pos if shared else [[p] for p in pos], pidx, shared=shared)
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(interpolate_table(table, pos, "cubic"), want, rtol=1e-11, atol=1e-12)


def test_cubic_interpolation_reproduces_linear_and_interior_quadratic_functions():
    from cogflex.fit.interpolate import interpolate_table

    x = np.linspace(0, 1, 7)
    linear = (2.0 - 3.0 * x)[:, None, None]
    quadratic = (1.0 + x - 4.0 * x**2)[:, None, None]
    for u in (0.0, 0.05, 0.4, 0.77, 0.95, 1.0):
        assert interpolate_table(linear, [u], "cubic")[0, 0] == pytest.approx(2.0 - 3.0 * u, abs=1e-12)
    for u in (1 / 6 + 0.03, 0.4, 0.61, 5 / 6 - 0.01):  # cells away from the box's ends
        assert interpolate_table(quadratic, [u], "cubic")[0, 0] == pytest.approx(1.0 + u - 4.0 * u**2, abs=1e-12)


def test_cubic_interpolation_has_a_continuous_gradient_at_nodes_and_a_higher_order():
    """The multilinear slope jumps at a node; the cubic one does not, and its error falls ~h^3."""
    table = np.sin(3 * np.linspace(0, 1, 6))[:, None, None] * np.array([1.0, -2.0])
    pidx = np.zeros(1, dtype=int)
    node = 2 / 5
    left, right = (_cubic(table, [[node + d]], pidx, grad=True)[0] for d in (-1e-9, 1e-9))
    np.testing.assert_allclose(left, right, rtol=1e-6)
    lin_left, lin_right = (_interpolant(table, [[node + d]], pidx)[0].sum() for d in (-1e-3, 1e-3))
    assert abs(_interpolant(table, [[node]], pidx)[0].sum() * 2 - lin_left - lin_right) > 1e-5

    from cogflex.fit.interpolate import interpolate_table

    u = np.linspace(0.01, 0.99, 97)

    def error(points, method):
        grid = np.sin(3 * np.linspace(0, 1, points))[:, None, None]
        return max(abs(interpolate_table(grid, [v], method)[0, 0] - np.sin(3 * v)) for v in u)

    assert error(9, "cubic") < error(9, "linear") / 5
    assert error(17, "cubic") < error(9, "cubic") / 4  # h^3 in the interior, h^2 at the ends at worst
