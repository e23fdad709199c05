"""Simulated participants: the generative process is the likelihood's model; files round-trip through the loader."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from cogflex.data import load_trials
from cogflex.errors import ConfigError
from cogflex.fit.models.descriptive import ACC_TERMS, RT_TERMS
from cogflex.fit.network import run_network
from cogflex.fit.prepare import covariates, prepare
from cogflex.fit.sequence import encode
from cogflex.fit.simulate import (
    Design,
    design_trials,
    draw_parameters,
    model_parameter_names,
    rt_shift_seconds,
    simulate_participant,
    simulate_trials,
    to_ebb_and_flow,
)

NTA_LINK = {"acc_intercept": 1.0, "acc_slope": 4.0, "rt_intercept": -0.8, "rt_slope": 1.5, "rt_sigma": 0.2,
            "rt_shift": 0.6}


@pytest.fixture(scope="module")
def design():
    return design_trials(Design(participants=2, sessions=2, trials_per_session=25, first_session=4, seed=8))


def test_design_trials(design):
    df = design.trials
    assert len(df) == 100 and design.participants == ["sim01", "sim02"]
    assert sorted(df["session"].unique()) == [4, 5]
    assert set(df["task"].astype(str)) == {"point", "move"}
    expected = np.where(df["task"].astype(str) == "point", df["stim_point"].astype(str), df["stim_move"].astype(str))
    assert (df["correct_response"].astype(str) == expected).all()
    assert (df["congruent"] == (df["stim_point"].astype(str) == df["stim_move"].astype(str))).all()
    again = design_trials(Design(participants=2, sessions=2, trials_per_session=25, first_session=4, seed=8))
    pd.testing.assert_frame_equal(again.trials, df)


@pytest.mark.parametrize(("field", "value"), [("sessions", 0), ("participants", 0), ("switch_rate", 1.5),
                                              ("congruent_rate", -0.1)])
def test_design_validation(field, value):
    with pytest.raises(ConfigError) as info:
        Design(**{field: value})
    assert info.value.field == f"design.{field}"


def test_nta_simulation_follows_the_observation_model(design, flexible):
    """Many replications of one participant: P(correct) = logistic(a + b m_t), log(RT - shift) ~ N(c + d L_t, s)."""
    (seq, _) = encode(design, np.ones(len(design.trials), dtype=bool))
    params = {"gate_timescale": 2.0, "weight_timescale": 40.0, "regularization": 0.1, **NTA_LINK}
    g = 2000
    p = {k: np.full(g, v) for k, v in params.items()}
    ok, rt, response = simulate_participant(flexible, p, seq, design.trials.iloc[seq.rows],
                                            np.random.default_rng(0))
    assert ok.shape == rt.shape == response.shape == (g, 50)
    pred = run_network(seq, 2.0, 40.0, 0.1, flexible.network)
    prob = expit(NTA_LINK["acc_intercept"] + NTA_LINK["acc_slope"] * pred.margin[0])
    assert 0.05 < prob.min() and prob.max() < 0.999  # informative: the margins move accuracy
    np.testing.assert_allclose(ok.mean(0), prob, atol=4 * np.sqrt(0.25 / g))
    # the shift is rt_shift x the fastest RT the fit keeps (not a session's first trial, 0.15-3 s)
    kept = np.r_[False, seq.session[1:] == seq.session[:-1]]
    fastest = np.where(kept & (rt >= 0.15) & (rt <= 3.0), rt, np.inf).min(1)
    log_rt = np.log(rt - NTA_LINK["rt_shift"] * fastest[:, None])
    mu = NTA_LINK["rt_intercept"] + NTA_LINK["rt_slope"] * pred.loss[0]
    np.testing.assert_allclose(log_rt.mean(0), mu, atol=4 * 0.2 / np.sqrt(g))
    np.testing.assert_allclose(log_rt.std(0), 0.2, rtol=0.1)
    # responses: the target when correct; on an error the irrelevant task's answer if it differs, else another one
    target = seq.target
    irrelevant = seq.features[np.arange(50), 1 - seq.task]
    labels = np.array(["U", "D", "L", "R"])
    assert (response[ok] == np.broadcast_to(labels[target], ok.shape)[ok]).all()
    err_incongruent = ~ok & (irrelevant != target)[None, :]
    assert (response[err_incongruent] == np.broadcast_to(labels[irrelevant], ok.shape)[err_incongruent]).all()
    err_congruent = ~ok & (irrelevant == target)[None, :]
    assert err_congruent.any()
    assert (response[err_congruent] != np.broadcast_to(labels[target], ok.shape)[err_congruent]).all()


def test_descriptive_simulation_follows_the_regression(design, descriptive):
    (seq, _) = encode(design, np.ones(len(design.trials), dtype=bool))
    rows = design.trials.iloc[seq.rows]
    rng = np.random.default_rng(1)
    params = {"acc_intercept": 1.5, "rt_intercept": -0.6, "rt_sigma": 0.3, "rt_shift": 0.4}
    params.update({f"rt_{t}": float(rng.normal(0, 0.3)) for t in RT_TERMS})
    params.update({f"acc_{t}": float(rng.normal(0, 1.0)) for t in ACC_TERMS})
    g = 3000
    ok, rt, _ = simulate_participant(descriptive, {k: np.full(g, v) for k, v in params.items()}, seq, rows,
                                     np.random.default_rng(2))
    log_session = np.log(rows["session"].to_numpy(dtype=float))
    table = pd.DataFrame({"switch": rows["switch"].to_numpy(dtype=bool), "congruent": seq.congruent,
                          "run_position": rows["run_position"].to_numpy(), "log_practice": log_session
                          - log_session.mean()})
    columns = covariates(table)
    x_rt = np.column_stack([columns[t] for t in RT_TERMS])
    x_acc = np.column_stack([columns[t] for t in ACC_TERMS])
    mu = params["rt_intercept"] + x_rt @ np.array([params[f"rt_{t}"] for t in RT_TERMS])
    prob = expit(params["acc_intercept"] + x_acc @ np.array([params[f"acc_{t}"] for t in ACC_TERMS]))
    np.testing.assert_allclose(ok.mean(0), prob, atol=4 * np.sqrt(0.25 / g))
    kept = np.r_[False, seq.session[1:] == seq.session[:-1]]
    fastest = np.where(kept & (rt >= 0.15) & (rt <= 3.0), rt, np.inf).min(1)
    np.testing.assert_allclose(np.log(rt - 0.4 * fastest[:, None]).mean(0), mu, atol=4 * 0.3 / np.sqrt(g))


def test_simulated_trials_round_trip_through_the_ebb_and_flow_loader(design, forgetful, tmp_path):
    params = {"timescale": {"sim01": 5.0, "sim02": 20.0}, **NTA_LINK}
    sim = simulate_trials(forgetful, params, design, seed=3)
    again = simulate_trials(forgetful, params, design, seed=3)
    pd.testing.assert_frame_equal(sim.trials, again.trials)
    df = sim.trials
    assert (df["correct"] == (df["response"].astype(str) == df["correct_response"].astype(str))).all()
    assert (df["rt"] > 0).all()
    path = tmp_path / "sim.csv"
    to_ebb_and_flow(sim).to_csv(path, index=False)
    loaded = load_trials(path, "ebb-and-flow")
    for col in ("participant", "task", "stim_point", "stim_move", "response", "correct_response"):
        assert (loaded.trials[col].astype(str) == df[col].astype(str)).all(), col
    for col in ("session", "trial", "switch", "run_position", "correct", "congruent"):
        assert (loaded.trials[col].to_numpy() == df[col].to_numpy()).all(), col
    np.testing.assert_allclose(loaded.trials["rt"], df["rt"], atol=5e-4)  # whole milliseconds in the file
    # and the loaded file encodes to the same network sequence
    for a, b in zip(prepare(loaded).sequences, prepare(sim).sequences):
        assert np.array_equal(a.task, b.task) and np.array_equal(a.features, b.features)
        assert np.array_equal(a.observed, b.observed)


def test_draw_parameters_lie_in_the_boxes_and_supports(flexible, forgetful, descriptive):
    rng = np.random.default_rng(4)
    for spec in (flexible, forgetful, descriptive):
        for _ in range(50):
            params = draw_parameters(spec, rng)
            assert set(params) == set(model_parameter_names(spec))
            for name in spec.grid_names:
                gp = spec.parameters[name]
                assert gp.lower <= params[name] <= gp.upper
            assert params["rt_sigma"] >= 0 and 0 <= params["rt_shift"] <= 1
    assert model_parameter_names(forgetful) == ("timescale", "acc_intercept", "rt_intercept", "rt_sigma", "rt_shift",
                                                "acc_slope", "rt_slope")
    assert len(model_parameter_names(descriptive)) == 4 + len(RT_TERMS) + len(ACC_TERMS)


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"timescale": None}, "params.timescale", "missing"),
    ({"bogus": 1.0}, "params.bogus", "not a parameter"),
    ({"rt_sigma": float("nan")}, "params.rt_sigma", "not a finite number"),
])
def test_simulate_trials_parameter_errors(design, forgetful, change, field, words):
    params = {"timescale": 5.0, **NTA_LINK, **change}
    params = {k: v for k, v in params.items() if v is not None}
    with pytest.raises(ConfigError) as info:
        simulate_trials(forgetful, params, design)
    assert info.value.field == field and words in str(info.value)


def test_simulated_shift_is_the_likelihoods_shift(descriptive):
    # The likelihood's shift is rt_shift x the fastest kept RT; the simulator must produce data for which
    # that holds: no kept RT below the shift, and the fastest kept one exactly shift / rt_shift.
    params = {"acc_intercept": 2.0, "rt_intercept": -0.8, "rt_sigma": 0.25, "rt_shift": 0.5,
              **{f"rt_{t}": 0.0 for t in RT_TERMS}, **{f"acc_{t}": 0.0 for t in ACC_TERMS}}
    rng = np.random.default_rng(3)
    decision = rng.lognormal(-0.8, 0.25, size=(2, 500))
    kept = np.r_[False, np.ones(499, dtype=bool)]
    shift = rt_shift_seconds(np.array([0.5, 0.9]), decision, kept)
    rt = shift[:, None] + decision
    fastest = np.where(kept & (rt >= 0.15) & (rt <= 3.0), rt, np.inf).min(1)
    np.testing.assert_allclose(shift, np.array([0.5, 0.9]) * fastest, rtol=1e-9)
    data = simulate_trials(descriptive, params, design_trials(Design(participants=1, sessions=30, seed=9)), seed=9)
    fd = prepare(data)
    assert fd.trials["rt"].min() > 0.15 and np.isfinite(fd.trials["rt"]).all()


def test_replication_shift_is_rt_shift_times_the_observed_fastest_rt(design, descriptive):
    """With the fitted data's fastest RT given, the shift is rt_shift x that RT (the likelihood's), not re-solved."""
    (seq, _) = encode(design, np.ones(len(design.trials), dtype=bool))
    rows = design.trials.iloc[seq.rows]
    params = {"acc_intercept": 2.0, "rt_intercept": -0.8, "rt_sigma": 0.2, "rt_shift": 0.95,
              **{f"rt_{t}": 0.0 for t in RT_TERMS}, **{f"acc_{t}": 0.0 for t in ACC_TERMS}}
    g = 2000
    _, rt, _ = simulate_participant(descriptive, {k: np.full(g, v) for k, v in params.items()}, seq, rows,
                                    np.random.default_rng(4), fastest=0.42)
    decision = rt - 0.95 * 0.42
    assert decision.min() > 0
    np.testing.assert_allclose(np.log(decision).mean(), -0.8, atol=4 * 0.2 / np.sqrt(rt.size))
    np.testing.assert_allclose(np.median(rt), 0.95 * 0.42 + np.exp(-0.8), rtol=0.01)
