"""The compiled network kernel: the torch reference network, the exact gate flow, and the cue-driven mechanism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cogflex.errors import ConfigError
from cogflex.fit.kernel import _reconfigure
from cogflex.fit.network import NetworkSettings, Reconfiguration, full_sequence, run_network, stimulus_moment
from cogflex.fit.prepare import prepare
from tests.fit.reference import reference_flow, reference_moment, run_reference

SETTINGS = NetworkSettings(substeps=4, tutorial_blocks=2, tutorial_block_trials=40, max_practice_trials=60,
                           dtype="float64", seed=3)
PARAMETERS = (np.array([0.7, 2.0, 3.0, 40.0]), np.array([30.0, 60.0, 200.0, 40.0]), np.array([0.05, 0.3, 0.1, 0.0]))


@pytest.fixture(scope="module")
def seq(trials):
    return prepare(trials).sequences[0]


@pytest.mark.parametrize("histories", [1, 3])
def test_compiled_engine_is_the_torch_network(seq, histories):
    """The numba kernel takes the same Euler steps as NetworkBatch: equal to rounding, every history averaged."""
    settings = NetworkSettings(**{**SETTINGS.__dict__, "histories": histories})
    torch_run = run_network(seq, *PARAMETERS, NetworkSettings(**{**settings.__dict__, "engine": "torch"}))
    compiled = run_network(seq, *PARAMETERS, settings)
    np.testing.assert_allclose(compiled.loss, torch_run.loss, rtol=0, atol=1e-12)
    np.testing.assert_allclose(compiled.margin, torch_run.margin, rtol=0, atol=1e-12)
    assert np.ptp(compiled.loss[:, -1]) > 1e-3  # the parameter sets did learn differently
    assert compiled.reconfig is None


def _specialised_state(rng, r=4):
    """Two paths near the two teachers plus unseen directions, gates set for task 0."""
    teachers = [np.hstack([np.eye(r), np.zeros((r, r))]), np.hstack([np.zeros((r, r)), np.eye(r)])]
    w = np.stack(teachers) * 0.9 + rng.normal(0, 0.05, (2, r, 2 * r))
    w[:, :, :r] += 0.1  # a direction one-hot inputs of both features cannot see
    w[:, :, r:] -= 0.1
    return w, teachers


def test_gate_flow_without_regulariser_is_the_linear_ode(trials):
    """lambda = 0: c(s) = c* + exp(-G s / tau_c)(c0 - c*); the time to criterion from a fine bisection of it."""
    from scipy.linalg import expm

    rng = np.random.default_rng(0)
    w, teachers = _specialised_state(rng)
    moment = reference_moment(rng.integers(0, 4, (500, 2)), 4)
    c0 = np.array([1.0, 0.05])
    tau_c, criterion = 1.7, 0.1
    gram = np.einsum("pij,jk,qik->pq", w, moment, w)
    b = np.einsum("pij,jk,ik->p", w, moment, teachers[1])
    const = 0.5 * np.trace(teachers[1] @ moment @ teachers[1].T)
    star = np.linalg.solve(gram, b)

    def cued(s):
        c = star + expm(-gram * s / tau_c) @ (c0 - star)
        return 0.5 * c @ gram @ c - b @ c + const

    lo, hi = 0.0, 30.0
    assert cued(lo) > criterion * const > cued(hi)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if cued(mid) > criterion * const else (lo, mid)
    c = c0.copy()
    got = _reconfigure(w, c, 1, 4, moment, 0.0, 0.0, tau_c, 30.0, 3000, criterion, 0.0, np.empty((4, 2)),
                       np.empty((2, 4, 8)))
    assert got == pytest.approx(lo, abs=2e-3)
    np.testing.assert_allclose(c, star + expm(-gram * got / tau_c) @ (c0 - star), atol=1e-4)
    assert c[1] > c[0]  # the gates moved to the cued task's path


@pytest.mark.parametrize("lam", [0.1, 0.3])
def test_gate_flow_with_regulariser_matches_expm_reference_and_fine_euler(lam):
    """Exact piecewise-linear steps (closed form) = scipy expm steps; both near a fine explicit Euler flow."""
    rng = np.random.default_rng(1)
    w, teachers = _specialised_state(rng)
    moment = reference_moment(rng.integers(0, 4, (500, 2)), 4)
    c0 = np.array([0.9, -0.05])  # one gate starts below zero: the non-negativity piece is used too
    args = (moment, 0.5 * lam, 0.5 * lam, 0.8, 16.0, 40, 0.1)
    c = c0.copy()
    got = _reconfigure(w, c, 1, 4, args[0], args[2], args[1], *args[3:], 0.0, np.empty((4, 2)), np.empty((2, 4, 8)))
    want_time, want_c = reference_flow(w, c0.copy(), teachers[1], moment, 0.8, 0.5 * lam, 0.5 * lam, 16.0, 40, 0.1)
    assert got == pytest.approx(want_time, abs=1e-9)
    np.testing.assert_allclose(c, want_c, atol=1e-9)
    # fine explicit Euler on the full regularised gradient (independent of the piecewise form)
    gram = np.einsum("pij,jk,qik->pq", w, moment, w)
    b = np.einsum("pij,jk,ik->p", w, moment, teachers[1])
    const = 0.5 * np.trace(teachers[1] @ moment @ teachers[1].T)
    cc, s, ds = c0.copy(), 0.0, 1e-4
    while 0.5 * cc @ gram @ cc - b @ cc + const > 0.1 * const:
        sign = np.sign(cc)
        grad = gram @ cc - b + lam * (0.5 * 10 * (np.abs(cc).sum() - 1) * sign - 0.5 * 10 * (cc < 0))
        cc -= ds / 0.8 * grad
        s += ds
    assert got == pytest.approx(s, rel=0.02)


@pytest.mark.parametrize("lam, spread", [(0.0, 0.3), (0.3, 0.3), (0.3, 0.9)])
def test_spread_criterion_flow_matches_expm_reference(lam, spread):
    """The expected time to a criterion uniform on criterion x [1 -+ spread], and the gates at that time."""
    rng = np.random.default_rng(2)
    w, teachers = _specialised_state(rng)
    moment = reference_moment(rng.integers(0, 4, (500, 2)), 4)
    c0 = np.array([0.9, -0.05])
    c = c0.copy()
    got = _reconfigure(w, c, 1, 4, moment, 0.5 * lam, 0.5 * lam, 0.8, 16.0, 40, 0.1, spread, np.empty((4, 2)),
                       np.empty((2, 4, 8)))
    want_time, want_c = reference_flow(w, c0.copy(), teachers[1], moment, 0.8, 0.5 * lam, 0.5 * lam, 16.0, 40, 0.1,
                                       spread)
    assert got == pytest.approx(want_time, abs=1e-9)
    np.testing.assert_allclose(c, want_c, atol=1e-9)
    # E[T] lies between the first crossings of the criterion's two ends, and a tiny spread is one criterion
    hard = [_reconfigure(w, c0.copy(), 1, 4, moment, 0.5 * lam, 0.5 * lam, 0.8, 16.0, 400, crit, 0.0,
                         np.empty((4, 2)), np.empty((2, 4, 8))) for crit in (0.1 * (1 + spread), 0.1 * (1 - spread))]
    assert hard[0] - 0.04 <= got <= hard[1] + 0.04
    tiny = _reconfigure(w, c0.copy(), 1, 4, moment, 0.5 * lam, 0.5 * lam, 0.8, 16.0, 400, 0.1, 1e-9,
                        np.empty((4, 2)), np.empty((2, 4, 8)))
    one = _reconfigure(w, c0.copy(), 1, 4, moment, 0.5 * lam, 0.5 * lam, 0.8, 16.0, 400, 0.1, 0.0,
                       np.empty((4, 2)), np.empty((2, 4, 8)))
    assert tiny == pytest.approx(one, abs=16.0 / 400)


def test_spread_criterion_is_continuous_where_the_first_crossing_is_not():
    """With the regulariser the cued loss can dip below the criterion and rise again: as the dip's depth passes
    the criterion, the first crossing jumps from the horizon to the dip's time. The expected time under a spread
    criterion (the running minimum of the loss against a uniform criterion) changes in small steps there."""
    rng = np.random.default_rng(3)
    w, teachers = _specialised_state(rng)
    moment = reference_moment(rng.integers(0, 4, (500, 2)), 4)
    scales = np.linspace(0.3, 1.5, 400)  # scaling the cued path's weights moves the dip

    def times(spread):
        out = []
        for k in scales:
            ww = w.copy()
            ww[1] *= k
            out.append(_reconfigure(ww, np.array([1.0, 0.0]), 1, 4, moment, 0.05, 0.05, 1.0, 16.0, 40, 0.1, spread,
                                    np.empty((4, 2)), np.empty((2, 4, 8))))
        return np.array(out)

    hard, soft = times(0.0), times(0.5)
    assert np.abs(np.diff(hard)).max() > 5.0  # a jump of more than 5 trials of gate time between neighbours
    assert np.abs(np.diff(soft)).max() < 0.1 * np.abs(np.diff(hard)).max()


@pytest.mark.parametrize("spread", [0.0, 0.5])
def test_reconfiguration_matches_the_numpy_reference_network(seq, spread):
    """The whole trial loop with the gate flow (kernel) against tests/fit/reference.py (scipy expm steps)."""
    tau_c, tau_w, lam = PARAMETERS
    settings = NetworkSettings(**{**SETTINGS.__dict__, "tutorial_blocks": 4, "tutorial_block_trials": 150})
    flow = Reconfiguration(horizon=8.0, flow_steps=20, criterion=0.3, criterion_spread=spread)
    got = run_network(seq, tau_c, tau_w, lam, settings, reconfiguration=flow)
    task, feat, observed = full_sequence(seq, settings)
    w0 = torch.randn(1, 2, 4, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(SETTINGS.seed))[0]
    moment = reference_moment(seq.features, seq.n_responses)
    np.testing.assert_allclose(stimulus_moment(seq), moment, atol=1e-15)
    loss, margin, _, times, mixed = run_reference(
        task, feat, observed, seq.target[seq.observed], seq.n_responses, w0.numpy() * SETTINGS.weight_init_std,
        SETTINGS.gate_init, tau_c, tau_w, lam, substeps=SETTINGS.substeps,
        reconfiguration=(flow.horizon, flow.flow_steps, flow.criterion, moment, flow.criterion_spread))
    for name, want in (("loss", loss), ("margin", margin), ("reconfig", times), ("margin_mixed", mixed)):
        np.testing.assert_allclose(getattr(got, name), want, atol=1e-8, err_msg=name)
    assert np.ptp(got.reconfig) > 0.1


def test_reconfiguration_settings_are_checked():
    for changes, field in (({"horizon": 0.0}, "reconfiguration.horizon"),
                           ({"criterion": 1.5}, "reconfiguration.criterion"),
                           ({"criterion_spread": -0.1}, "reconfiguration.criterion_spread"),
                           ({"criterion": 0.6, "criterion_spread": 0.7}, "reconfiguration.criterion_spread"),
                           ({"flow_steps": 0}, "reconfiguration.flow_steps")):
        with pytest.raises(ConfigError, match=field):
            Reconfiguration(**changes)


def test_reconfiguration_needs_the_compiled_engine(seq):
    with pytest.raises(ConfigError, match="compiled"):
        run_network(seq, 1.0, 50.0, 0.1, NetworkSettings(**{**SETTINGS.__dict__, "engine": "torch"}),
                    reconfiguration=Reconfiguration())


@pytest.fixture(scope="module")
def player():
    """Player 1089's first 60 observed sessions (real Ebb and Flow data, ../shared/data)."""
    import cogflex as cf
    from tests.data.helpers import SHARED

    data = cf.load_trials(SHARED)
    fd = prepare(data, participants=["1089"])
    seq = fd.sequences[0]
    keep = seq.session < np.unique(seq.session)[60]
    trials = fd.trials[fd.trials["pidx"] == 0]
    return seq, trials, keep


def test_cue_drives_a_switch_cost_that_the_feedback_network_lacks(player):
    """On a real sequence: with the cue, switch trials need reconfiguration and repeats hardly do.

    The mechanism's signature (DESIGN §4b): a fast-gated network reconfigures on the first trial of a run
    and not after it; a slow shared timescale (forgetful, tau = 200) cannot follow the cue within a trial.
    """
    seq, trials, _ = player
    settings = NetworkSettings(histories=2, max_practice_trials=3000)
    pred = run_network(seq, [1.0, 200.0], [60.0, 200.0], [0.1, 0.0], settings,
                       reconfiguration=Reconfiguration(horizon=16.0))
    switch = trials["switch"].to_numpy(bool)
    position = trials["run_position"].to_numpy()
    flexible, slow = pred.reconfig
    assert flexible[switch].mean() > 0.3 and flexible[position >= 3].mean() < 0.1 * flexible[switch].mean()
    assert slow.mean() == pytest.approx(16.0, rel=1e-3)  # never reaches the criterion
    # with the cue the flexible network answers its switch trials almost as well as its repeats
    assert pred.margin[0][switch].mean() > 0.5
