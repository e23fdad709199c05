"""Every node of every built-in network box integrates stably: the step-size rule on sequences built to be stiff."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cogflex.errors import DivergenceError
from cogflex.fit.models import builtin_models, load_model
from cogflex.fit.network import NetworkSettings, _history_seed, full_sequence, run_network
from cogflex.fit.prepare import prepare
from cogflex.fit.sequence import encode
from cogflex.fit.simulate import Design, design_trials
from tests.fit.reference import run_reference
from tests.fit.test_network import initial_weights

#: A long player-like life: 300 games x 70 trials in four stretches of 75 games, switch rates from 0.05 to
#: 0.9, all-incongruent to all-congruent (the forgetful network at tau = 0.5 diverged on it before the
#: step-size rule).
LONG = Design(participants=1, sessions=300, trials_per_session=70, first_session=150, seed=0,
              session_switch_rates=tuple(np.repeat([0.05, 0.5, 0.9, 0.2], 75)),
              session_congruent_rates=tuple(np.repeat([0.0, 0.25, 1.0, 0.5], 75)))


@pytest.fixture(scope="module")
def long_sequence():
    data = design_trials(LONG)
    return encode(data, np.ones(len(data.trials), dtype=bool))[0]


def _fixed_step_reference(seq, settings, tau, **rule):
    task, feat, observed = full_sequence(seq, settings)
    return run_reference(task, feat, observed, seq.target[seq.observed], seq.n_responses,
                         initial_weights(settings, seq.n_responses), settings.gate_init, tau, tau, 0.0,
                         substeps=settings.substeps, **rule)


def test_stiff_trials_take_the_refined_steps_of_the_reference(trials):
    """Fast unregularised units with one sub-step: the fixed Euler step blows up, the refined one matches."""
    seq = prepare(trials).sequences[0]
    settings = NetworkSettings(substeps=1, tutorial_blocks=2, tutorial_block_trials=40, max_practice_trials=60,
                               dtype="float64", seed=3)
    tau = np.array([0.3, 0.5, 500.0])
    with np.errstate(all="ignore"):
        fixed = _fixed_step_reference(seq, settings, tau, stiffness=np.inf, accuracy=np.inf)
    assert not np.isfinite(fixed[0][:2]).all()  # the sequence provokes the instability
    np.testing.assert_allclose(fixed[0][2], _fixed_step_reference(seq, settings, tau)[0][2])  # slow: untouched
    loss, margin, _ = _fixed_step_reference(seq, settings, tau)
    for engine in ("compiled", "torch"):
        pred = run_network(seq, tau, tau, 0.0, NetworkSettings(**{**settings.__dict__, "engine": engine}))
        np.testing.assert_allclose(pred.loss, loss, rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(pred.margin, margin, rtol=1e-7, atol=1e-10)


def test_fast_units_follow_the_fine_step_flow_where_the_stability_bound_alone_did_not(trials):
    """The accuracy bound: forgetful timescales 0.5-3 with the shipped 5 sub-steps against 400 sub-steps."""
    seq = prepare(trials).sequences[0]
    base = dict(tutorial_blocks=2, tutorial_block_trials=40, max_practice_trials=60, dtype="float64", seed=3)
    tau = np.array([0.5, 1.0, 2.0, 3.0])
    fine = run_network(seq, tau, tau, 0.0, NetworkSettings(substeps=400, **base)).margin
    coarse = NetworkSettings(substeps=5, **base)
    ruled = run_network(seq, tau, tau, 0.0, coarse).margin
    stable_only = _fixed_step_reference(seq, coarse, tau, accuracy=np.inf)[1]
    scale = np.abs(fine).mean()  # ~0.65
    assert np.abs(ruled - fine).max() < 0.15 * scale  # measured 0.085 at tau = 2
    assert np.abs(stable_only - fine).max(1).min() > 0.6 * scale  # measured 0.43 (tau = 3) to 1.03 (tau = 0.5)


def test_a_network_beyond_the_refinement_limit_still_reports_divergence(trials):
    seq = prepare(trials).sequences[0]
    settings = NetworkSettings(substeps=1, tutorial_blocks=0, max_practice_trials=0, dtype="float64")
    with pytest.raises(DivergenceError, match="tau_c=1e-05.*refined sub-steps"):
        run_network(seq, [1e-5, 1.0], 1e-5, 0.0, settings)


def test_the_long_sequence_provokes_the_instability_the_rule_removes(long_sequence):
    """Shipped forgetful settings, tau = 0.5: one history's fixed Euler steps blow up in its practice trials."""
    settings = load_model("forgetful").network
    task, feat, observed = full_sequence(long_sequence, settings, history=6)
    weights = torch.randn(settings.paths, 4, 8, dtype=torch.float64,
                          generator=torch.Generator().manual_seed(_history_seed(settings, 6))).numpy()
    with np.errstate(all="ignore"):
        fixed = run_reference(task, feat, observed, long_sequence.target[long_sequence.observed], 4,
                              weights * settings.weight_init_std, settings.gate_init, 0.5, 0.5, 0.0,
                              substeps=settings.substeps, stiffness=np.inf, accuracy=np.inf)[0]
    assert not np.isfinite(fixed).any()
    pred = load_model("forgetful").run(long_sequence, {"timescale": np.array([0.5])})
    assert np.isfinite(pred.loss).all() and np.isfinite(pred.margin).all()


def _edge_nodes(model) -> dict[str, np.ndarray]:
    """The box's corners and its two fastest nodes per axis, crossed (the stiff corner of every box)."""
    axes = [np.unique(np.r_[p.nodes()[:2], p.nodes()[-1]]) for p in model.grid.values()]
    mesh = [m.ravel() for m in np.meshgrid(*axes, indexing="ij")]
    return dict(zip(model.grid_names, mesh))


@pytest.mark.parametrize("name", [n for n in builtin_models() if load_model(n).family.startswith("nta")])
def test_builtin_network_boxes_hold_on_a_long_varied_sequence(long_sequence, name):
    """Shipped settings, 21,000 observed trials: no node of the stiff corner diverges, predictors finite."""
    model = load_model(name)
    nodes = _edge_nodes(model)
    pred = model.run(long_sequence, nodes)
    assert np.isfinite(pred.loss).all() and np.isfinite(pred.margin).all()
    assert pred.loss.shape == (len(next(iter(nodes.values()))), len(long_sequence))
    # the nodes ran networks of their own (not one state copied)
    assert np.ptp(pred.loss.mean(1)) > 1e-3


def test_long_design_has_the_varied_rates_it_declares():
    data = design_trials(LONG).trials
    assert len(data) == 21_000
    switches = data.groupby("session", observed=True)["task"].apply(
        lambda t: float((t.to_numpy()[1:] != t.to_numpy()[:-1]).mean()))
    by_rate = switches.groupby(data.groupby("session", observed=True)["cond_switch_rate"].first().astype(float)).mean()
    np.testing.assert_allclose(by_rate.to_numpy(), by_rate.index.to_numpy(), atol=0.03)
    congruent = data.groupby(data["cond_congruent_rate"].astype(float), observed=True)["congruent"].mean()
    np.testing.assert_allclose(congruent.to_numpy(dtype=float), congruent.index.to_numpy(), atol=0.03)
    assert {"cond_switch_rate", "cond_congruent_rate"} <= set(data.columns)
    assert "cond_switch_rate" not in design_trials(Design(participants=1, sessions=2)).trials
