"""Grid refinement (cogflex.fit.refine): windows, the refined PyMC model, and a refined fit end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import logit
from scipy.stats import norm

from cogflex.fit.fitting import FitOptions, _subset, fit
from cogflex.fit.prepare import prepare
from cogflex.fit.pymc_model import build_model
from cogflex.fit.refine import EDGE_SHARE, _best_round, box_positions, fitted_windows, next_window, window_edges
from cogflex.fit.tables import GridWindow, grid_points, predictor_table
from tests.fit.helpers import compile_values, evaluate

LINK = {"acc_intercept": [2.0], "acc_slope": [3.0], "rt_intercept": [-0.8], "rt_slope": [0.5], "rt_sigma": [0.3],
        "rt_shift": [0.5]}


@pytest.fixture(scope="module")
def one(trials):
    return _subset(prepare(trials), 0)


def test_full_window_is_the_models_grid(flexible):
    window = GridWindow.full(flexible)
    assert window.is_full(flexible) and window.is_full_box()
    for name, values in window.values(flexible).items():
        np.testing.assert_array_equal(values, grid_points(flexible)[name])


def test_window_nodes_sit_at_their_box_positions(flexible):
    window = GridWindow((0.2, 0.5, 0.0), (0.4, 0.9, 1.0), (5, 3, 2))
    values = window.values(flexible)
    assert all(len(v) == 5 * 3 * 2 for v in values.values())
    for d, (name, gp) in enumerate(flexible.grid.items()):
        positions = np.unique(np.round(gp.position(values[name]), 12))
        np.testing.assert_allclose(positions, np.linspace(window.lower[d], window.upper[d], window.points[d]))
    record = json.loads(json.dumps(window.record(flexible)))
    assert GridWindow.from_record(record) == window
    assert record["values"]["gate_timescale"] == pytest.approx([flexible.grid["gate_timescale"].value(0.2),
                                                                flexible.grid["gate_timescale"].value(0.4)])
    with pytest.raises(ValueError):
        GridWindow((0.5,), (0.4,), (3,))


def test_refined_table_is_exact_at_its_nodes_and_the_model_reads_it(flexible, one):
    """A window's table holds the network at the window's nodes, and the PyMC model at a node reproduces it."""
    window = GridWindow((0.25, 0.1, 0.3), (0.55, 0.6, 0.9), (3, 3, 3))
    seq = one.sequences[0]
    table = predictor_table(flexible, seq, window=window)
    node = {name: gp.value(window.node_positions(d)[1:2]) for d, (name, gp) in enumerate(flexible.grid.items())}
    exact = flexible.compute_predictors(seq, node)[0]
    np.testing.assert_allclose(table[1, 1, 1], exact, rtol=1e-10, atol=1e-12)
    model, pointwise = build_model(flexible, one, tables=[table], window=window)
    full_model, full_pointwise = build_model(flexible, one, tables=[exact[None, None, None].repeat(3, 0).repeat(
        3, 1).repeat(3, 2)])
    middle = {f"{n}_logit": [logit(window.node_positions(d)[1])] for d, n in enumerate(flexible.grid_names)}
    got = evaluate(model, pointwise, {**LINK, **middle})
    # a constant table is the exact predictors wherever it is read: the same trial terms
    want = evaluate(full_model, full_pointwise, {**LINK, **middle})
    np.testing.assert_allclose(got, want, rtol=1e-10)
    for name in flexible.grid_names:
        assert evaluate(model, model[name], {**LINK, **middle})[0] == pytest.approx(node[name][0], rel=1e-12)


def test_refined_prior_is_the_box_prior_truncated_to_the_window(flexible, one):
    """Inside the window the prior differs from the whole-box prior by a constant: log of the window's mass."""
    window = GridWindow((0.25, 0.1, 0.0), (0.55, 0.6, 1.0), (3, 3, 3))
    tables = [predictor_table(flexible, one.sequences[0], window=window)]
    model, _ = build_model(flexible, one, tables=tables, window=window)
    full, _ = build_model(flexible, one, tables=[predictor_table(flexible, one.sequences[0])])
    # densities of the variables themselves (no Jacobian: the refined logit has an interval transform)
    prior = compile_values(model, [model.logp(vars=model.free_RVs, jacobian=False)])
    full_prior = compile_values(full, [full.logp(vars=full.free_RVs, jacobian=False)])
    names = flexible.grid_names
    diffs = []
    for positions in ((0.3, 0.2, 0.5), (0.5, 0.55, 0.05)):
        values = {**LINK, **{f"{n}_logit": [logit(p)] for n, p in zip(names, positions)}}
        diffs.append(float(prior(values)[0]) - float(full_prior(values)[0]))
    assert diffs[0] == pytest.approx(diffs[1], abs=1e-9)
    mass = 1.0
    for d, name in enumerate(names):
        gp = flexible.grid[name]
        lo, hi = window.lower[d], window.upper[d]
        a = norm.cdf(logit(lo), gp.prior_mu, gp.prior_sigma) if lo > 0 else 0.0
        b = norm.cdf(logit(hi), gp.prior_mu, gp.prior_sigma) if hi < 1 else 1.0
        mass *= b - a
    assert diffs[0] == pytest.approx(-np.log(mass), rel=1e-6)


def test_next_window_covers_the_draws_with_a_margin_and_stays_in_the_box():
    rng = np.random.default_rng(0)
    draws = [rng.normal(0.4, 0.01, 300), rng.uniform(0.9, 1.0, 300)]
    full = GridWindow((0.0, 0.0), (1.0, 1.0), (17, 11))
    window = next_window(full, draws, 9)
    assert next_window(full, [np.linspace(0, 1, 50)] * 2, 9, grow=True).points == (33, 33)
    for d, x in enumerate(draws):
        width = x.max() - x.min()
        assert window.lower[d] <= x.min() and window.upper[d] >= x.max()
        assert window.upper[d] - window.lower[d] <= 3.0 * width + 1e-12
    assert window.upper[1] == 1.0 and window.points == (9, 9)
    # a window that failed the tolerance and would not shrink gets more nodes; one that shrinks keeps them
    assert next_window(window, draws, 9, grow=True).points == (17, 17)
    assert next_window(window, [x[:10] * 0 + x.mean() + 1e-4 * np.arange(10) for x in draws], 9,
                       grow=True).points == (9, 9)


def test_the_fit_samples_on_the_best_refined_window():
    def rounds(*pilots, stop):
        out = [{"pilot_error": e, "pilot_at_edge": ["tau"] if edge else [], "stop": None} for e, edge in pilots]
        out[-1]["stop"] = stop
        return out

    assert _best_round(rounds((-50, False), (-3, False), (0.4, False), stop="within tolerance")) == 2
    # not within tolerance: the smallest error among the windows whose pilot stayed inside them
    assert _best_round(rounds((-50, False), (-20, False), (-9, True), (-15, False), stop="rounds exhausted")) == 3
    assert _best_round(rounds((-50, False), (-8, False), (-12, False), stop="not improving")) == 1
    assert _best_round(rounds((-50, False), (-8, True), (-12, True), stop="rounds exhausted")) == 2  # the last
    assert _best_round(rounds((-50, False), stop="rounds exhausted")) == 0  # no refined window at all


def test_a_posterior_at_its_window_edge_gets_a_window_over_its_own_draws(forgetful, one):
    """recentre(): the new window holds the fit's draws with a margin; its table, model and mode go with it."""
    import xarray as xr

    from cogflex.fit.refine import recentre

    gp = forgetful.grid["timescale"]
    window = GridWindow((0.3,), (0.4,), (9,))
    rng = np.random.default_rng(1)
    positions = rng.uniform(0.37, 0.43, (2, 50))  # beyond the window's upper edge
    draws = {"timescale_logit": logit(positions), "timescale": gp.value(positions),
             **{k: np.full((2, 50), v[0]) for k, v in LINK.items()}}
    post = xr.Dataset({k: (("chain", "draw", "participant"), v[..., None]) for k, v in draws.items()},
                      coords={"participant": one.participants})
    assert window_edges(forgetful, window, box_positions(forgetful, post))
    options = FitOptions(progress=False)
    new, tables, model, _, start = recentre(forgetful, one, None, options, window, post)
    assert new.lower[0] < positions.min() and new.upper[0] > positions.max() and new.points == (9,)
    assert tables[0].shape[0] == 9 and window_edges(forgetful, new, box_positions(forgetful, post)) == []
    assert new.lower[0] < float(1 / (1 + np.exp(-start["timescale_logit"][0]))) < new.upper[0]
    assert {rv.name for rv in model.free_RVs} == set(start)


def test_window_edges_flags_inner_edges_only(flexible):
    names = flexible.grid_names
    window = GridWindow((0.2, 0.0, 0.3), (0.4, 0.5, 1.0), (9, 9, 9))
    inside = [np.full(200, 0.3), np.full(200, 0.25), np.full(200, 0.6)]
    assert window_edges(flexible, window, inside) == []
    # draws at the lower edge of the first axis (an inner edge) and at the box's own lower bound (not a window edge)
    pressed = [np.r_[np.full(190, 0.3), np.full(10, 0.201)], np.full(200, 0.001), np.full(200, 0.999)]
    edges = window_edges(flexible, window, pressed)
    assert [(e["parameter"], e["bound"]) for e in edges] == [(names[0], "window lower")]
    assert edges[0]["share"] == pytest.approx(10 / 200) and edges[0]["share"] > EDGE_SHARE


@pytest.mark.slow
def test_refined_fit_records_its_windows_and_is_exact_enough(trials, tmp_path, forgetful):
    """A per-participant fit refines until its pilot is within the tolerance, and the final check is recorded."""
    options = FitOptions(draws=100, tune=100, chains=2, seed=5, progress=False, refine_tolerance=0.05)
    fd = prepare(trials)
    result = fit(fd, forgetful, options=options, out=tmp_path)
    tree = result.tree
    records = json.loads(tree.attrs["grid_refinement"])
    assert [r["participant"] for r in records] == fd.participants
    assert json.loads(tree.attrs["refine"]) == {"refine": True, "points": 9, "tolerance": 0.05, "rounds": 3}
    windows = fitted_windows(tree)
    checks = {c["participant"]: c for c in json.loads(tree.attrs["interpolation_check"])}
    for record in records:
        pid, rounds = record["participant"], record["rounds"]
        assert rounds[0]["window"]["lower"] == [0.0] and rounds[0]["window"]["upper"] == [1.0]
        assert GridWindow.from_record(record["window"]) == windows[pid]
        assert windows[pid] != GridWindow.full(forgetful)  # (a posterior as wide as the box keeps the box)
        last = rounds[-1]
        assert last["stop"] in ("within tolerance", "not improving", "rounds exhausted")
        assert (abs(last["pilot_error"]) <= 0.05) == (last["stop"] == "within tolerance")
        assert all(r["stop"] is None for r in rounds[:-1]) and (last["stop"] != "rounds exhausted" or len(rounds) == 4)
        chosen = [r for r in rounds if r["chosen"]]
        assert len(chosen) == 1 and GridWindow.from_record(chosen[0]["window"]) == windows[pid]
        # the posterior lies in its window (the prior is truncated there)
        x = box_positions(forgetful, tree["posterior"].to_dataset().sel(participant=pid))[0]
        assert windows[pid].lower[0] <= x.min() and x.max() <= windows[pid].upper[0]
        assert abs(checks[pid]["difference"]) < abs(rounds[0]["pilot_error"]) + 0.05
    assert result.summary["seconds"]["refinement"] > 0
    # without refinement: the model's own grid, nothing recorded
    plain = fit(fd, forgetful, options=FitOptions(draws=30, tune=30, chains=1, seed=5, progress=False, refine=False,
                                                  sampler="pymc"))
    assert json.loads(plain.tree.attrs["grid_refinement"]) == []
