"""Lab-scale data: many participants with few trials, only cue / congruency / accuracy / RT, fitted hierarchically.

A lab's dataset (tens of participants x a few hundred trials, no response columns) goes through the two-task
mapping and a hierarchical fit whose start is the participants' profile values carried to the group level and
refined by one mode search; a start with a non-finite density is refused in one line before any sampling.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from cogflex.errors import ConfigError, DataError, FitError
from cogflex.fit.fitting import FitOptions, fit
from cogflex.fit.models import load_model
from cogflex.fit.options import HIERARCHICAL_RULE, use_hierarchical
from cogflex.fit.ppc import posterior_predictive_check, ppc_panels
from cogflex.fit.prepare import prepare
from cogflex.fit.pymc_model import build_model
from cogflex.fit.simulate import Design, design_trials, model_parameter_names, simulate_trials
from cogflex.fit.start import check_start, hierarchical_start, initial_values, spread_centred_groups
from cogflex.fit.tables import predictor_table
from tests.fit.helpers import write_model

PARTICIPANTS = 14


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """14 participants x 4 blocks x 75 trials from the tiny flexible model, reduced to acc/RT-only columns."""
    spec_path = write_model(tmp_path_factory.mktemp("spec"), "flexible", hierarchy={"covariates": ["age"]})
    spec = load_model(spec_path)
    design = design_trials(Design(participants=PARTICIPANTS, sessions=4, trials_per_session=75, first_session=1,
                                  seed=8, session_switch_rates=(0.25, 0.75)))
    rng = np.random.default_rng(8)
    ids = design.participants
    truth = {"gate_timescale": 1.5, "weight_timescale": 40.0, "regularization": 0.1, "acc_intercept": 1.5,
             "acc_slope": 2.0, "rt_intercept": -0.6, "rt_slope": 0.4, "rt_sigma": 0.3, "rt_shift": 0.5}
    params = {k: v for k, v in truth.items() if k in model_parameter_names(spec)}
    age = rng.integers(18, 76, len(ids)).astype(float)
    params["gate_timescale"] = dict(zip(ids, np.exp(np.log(2.0) + 0.3 * (age - 45) / 15)))
    params["rt_intercept"] = dict(zip(ids, rng.normal(-0.6, 0.15, len(ids))))
    missing = [k for k in model_parameter_names(spec) if k not in params]
    assert not missing, missing
    data = simulate_trials(spec, params, design, seed=9)
    data = data.with_trials(data.trials.assign(age=data.trials["participant"].astype(str).map(dict(zip(ids, age)))))
    keep = [c for c in data.trials.columns if c not in ("stim_point", "stim_move", "response", "correct_response")]
    # as a lab CSV reads: no stimulus features, so the two-task mapping
    return {"spec_path": spec_path, "spec": spec, "data": replace(data.with_trials(data.trials[keep]), format="csv")}


def test_lab_data_fit_hierarchically_from_a_group_level_start(lab, tmp_path):
    fd = prepare(lab["data"])
    assert len(fd.participants) == PARTICIPANTS and fd.sequences[0].n_responses == 2
    assert any("no correct_response column" in note for note in fd.notes)
    # no hierarchical setting: "auto" chooses the hierarchical fit for 14 participants x ~290 trials
    options = FitOptions(draws=40, tune=60, chains=2, seed=4, sampler="nutpie", progress=False)
    assert options.hierarchical == "auto"
    result = fit(lab["data"], lab["spec_path"], options=options, out=tmp_path)
    tree = result.tree
    assert tree.attrs["hierarchical"] == 1
    post = tree["posterior"]
    for name in ("gate_timescale_mu", "gate_timescale_sd", "rt_intercept_mu", "rt_sigma_logmu"):
        assert name in post and np.isfinite(post[name].values).all()
    assert post["gate_timescale"].sizes["participant"] == PARTICIPANTS
    ll = tree["log_likelihood"]["trial"]
    assert ll.shape == (2, 40, fd.n_trials) and np.isfinite(ll.values).all()
    assert result.summary["hierarchical"] is True
    # hierarchical fits read the tables with the group level's interpolant (cubic), checked with the same one
    checks = json.loads(tree.attrs["interpolation_check"])
    assert len(checks) == PARTICIPANTS and {c["interpolation"] for c in checks} == {"cubic"}
    # the group level in the summary: group means, spreads, the age slope, medians on the parameters' scales
    group = result.summary["group"]
    for name in ("gate_timescale_mu", "gate_timescale_sd", "gate_timescale_age_slope", "gate_timescale_median",
                 "gate_timescale_age_slope_log", "rt_intercept_mu", "rt_sigma_logmu"):
        assert {"mean", "low_94", "high_94"} <= set(group[name]), name
    median = group["gate_timescale_median"]
    assert 1.0 <= median["low_94"] <= median["mean"] <= median["high_94"] <= 4.0  # inside the tiny box
    assert any(note.startswith("group-level covariate age: standardised over the 14 participants")
               for note in result.summary["notes"])
    # the block condition goes through the posterior predictive check: switch cost per switch proportion
    ppc = posterior_predictive_check(tree, lab["data"], draws=3, seed=1)
    rows = ppc[ppc["condition"].str.contains("|cond_switch_rate=", regex=False)]
    assert set(rows["condition"]) == {"switch-repeat|cond_switch_rate=0.25", "switch-repeat|cond_switch_rate=0.75"}
    assert (rows["measure"] == "switch_cost_ms").all() and rows["observed"].notna().all()
    panels = {title: r for title, _, r in ppc_panels(ppc, "all")}
    assert len(panels["Switch cost by block condition"]) == 2
    assert not panels["Switch cost vs practice"]["condition"].str.contains("cond_").any()


def test_hierarchical_start_carries_the_participants_profiles_to_the_group(lab):
    spec, fd = lab["spec"], prepare(lab["data"])
    tables = [predictor_table(spec, seq) for seq in fd.sequences]
    start = hierarchical_start(spec, fd, tables)
    for base, mean in (("gate_timescale", "gate_timescale_mu"), ("rt_shift", "rt_shift_logitmu")):
        z, sd = start[f"{base}_z"], start[f"{base}_sd"]
        assert z.shape == (PARTICIPANTS,) and sd >= 0.1
        assert abs(float(np.mean(z))) < 1e-9  # offsets centred on the group mean
        assert np.isfinite(start[mean])
    # rt_intercept and rt_sigma start in the location-spread coordinates the fit samples, at the participants'
    # own profile values
    per = initial_values(spec, fd, tables)
    fastest = fd.trials.groupby("pidx")["rt"].min().to_numpy()
    shift = np.asarray(per["rt_shift"]) * fastest
    np.testing.assert_allclose(np.exp(start["rt_location"]), np.exp(per["rt_intercept"]) + shift - fastest,
                               rtol=1e-9)
    np.testing.assert_allclose(np.exp(start["rt_spread"]), np.exp(per["rt_intercept"]) * per["rt_sigma"], rtol=1e-9)
    assert "rt_intercept_z" not in start and np.isfinite(start["rt_intercept_mu"]) and start["rt_sigma_sd"] >= 0.1
    model, _ = build_model(spec, fd, tables=tables, hierarchical=True)
    check_start(model, start, "tiny-flexible")  # finite: no error
    pooled = replace(spec, hierarchy=replace(spec.hierarchy, pooled=("rt_shift",)))
    start = hierarchical_start(pooled, fd, tables)
    assert start["rt_shift_pooled"] == pytest.approx(float(np.median(per["rt_shift"])))
    assert "rt_shift_z" not in start
    check_start(build_model(pooled, fd, tables=tables, hierarchical=True)[0], start, "tiny-flexible pooled")


def test_the_start_leaves_the_spike_of_centred_group_distributions(lab):
    """At a collapsed centred group spread the start takes the group mean and spread from the participants."""
    spec, fd = lab["spec"], prepare(lab["data"])
    tables = [predictor_table(spec, seq) for seq in fd.sequences]
    model, _ = build_model(spec, fd, tables=tables, hierarchical=True)
    point = hierarchical_start(spec, fd, tables)
    point["rt_sigma_sd"], point["rt_intercept_sd"] = 1e-4, 1e-4  # where a mode search ends up
    out = spread_centred_groups(spec, model, point)
    for name in ("rt_location", "rt_spread", "gate_timescale_z", "gate_timescale_sd"):
        np.testing.assert_array_equal(out[name], point[name])  # participants and non-centred groups kept
    per = initial_values(spec, fd, tables)
    # the start's participants are the profile values: their log rt_sigma and rt_intercept give the group
    assert out["rt_sigma_logmu"] == pytest.approx(np.log(per["rt_sigma"]).mean(), rel=1e-6)
    assert out["rt_sigma_sd"] == pytest.approx(max(np.log(per["rt_sigma"]).std(), 0.1), rel=1e-6)
    assert out["rt_intercept_sd"] == pytest.approx(max(np.std(per["rt_intercept"]), 0.1), rel=1e-6)
    check_start(model, out, "tiny-flexible")


def test_a_start_without_a_finite_density_is_one_line(lab):
    spec, fd = lab["spec"], prepare(lab["data"])
    tables = [predictor_table(spec, seq) for seq in fd.sequences]
    model, _ = build_model(spec, fd, tables=tables, hierarchical=True)
    bad = hierarchical_start(spec, fd, tables)
    bad["rt_intercept_mu"] = np.inf
    with pytest.raises(FitError) as info:
        check_start(model, bad, "tiny-flexible 14 participants")
    text = str(info.value)
    assert "\n" not in text and text.startswith("tiny-flexible 14 participants: no valid start point")


def test_a_sampler_that_finds_no_start_is_one_line(lab, tmp_path, monkeypatch):
    """nutpie's "All initialization points failed" (then, in the reported case, a segfault) becomes a FitError."""
    import nutpie

    def refuse(*args, **kwargs):
        raise RuntimeError("All initialization points failed\n\nCaused by:\n    Logp function returned error: "
                           "bad initial gradient: Invalid initial point")

    monkeypatch.setattr(nutpie, "sample", refuse)  # cogflex calls nutpie directly (its chains run in parallel)
    options = FitOptions(draws=30, tune=10, chains=1, seed=4, sampler="nutpie", progress=False, hierarchical=True)
    with pytest.raises(FitError) as info:
        fit(lab["data"], lab["spec_path"], options=options, out=tmp_path)
    text = str(info.value)
    assert "\n" not in text and "the sampler found no valid start point (All initialization points failed)" in text
    assert not list(tmp_path.glob("*.nc"))


def test_the_auto_rule_fits_many_participants_with_few_trials_hierarchically(lab):
    fd = prepare(lab["data"])
    assert HIERARCHICAL_RULE["min_participants"] <= PARTICIPANTS and use_hierarchical(fd)
    assert FitOptions().resolved(fd).hierarchical is True
    assert FitOptions(hierarchical=False).resolved(fd).hierarchical is False  # said out loud: kept
    few = prepare(lab["data"], participants=lab["data"].participants[:4])
    assert not use_hierarchical(few) and FitOptions().resolved(few).hierarchical is False
    # many trials each (a Lumosity player): per participant
    long = prepare(design_trials(Design(participants=8, sessions=15, trials_per_session=80, first_session=1, seed=2)))
    assert len(long.participants) == 8 and not use_hierarchical(long)


@pytest.mark.parametrize("value", ["yes", 1, 0.5, None])
def test_hierarchical_must_be_true_false_or_auto(value):
    with pytest.raises(ConfigError, match="hierarchical"):
        FitOptions(hierarchical=value)


def test_the_age_covariate_shifts_each_participants_group_mean(lab):
    """logit position = mu + slope x age_z + sd x z, with age standardised over the participants."""
    spec, fd = lab["spec"], prepare(lab["data"])
    age = fd.participant_table["age"].to_numpy()
    z = fd.covariate("age")
    assert np.allclose(z, (age - age.mean()) / age.std())
    tables = [predictor_table(spec, seq) for seq in fd.sequences]
    model, _ = build_model(spec, fd, tables=tables, hierarchical=True)
    assert "gate_timescale_age_slope" in model.named_vars and "weight_timescale_age_slope" in model.named_vars
    point = model.initial_point()
    rng = np.random.default_rng(0)
    point["gate_timescale_z"] = rng.normal(size=PARTICIPANTS)
    point["gate_timescale_mu"], point["gate_timescale_age_slope"] = np.array(0.3), np.array(-0.7)
    point["gate_timescale_sd_log__"] = np.log(np.array(0.4))
    expr = model.replace_rvs_by_values([model["gate_timescale_logit"]])[0]
    logit = model.compile_fn(expr, inputs=model.value_vars, on_unused_input="ignore")(point)
    assert np.allclose(logit, 0.3 - 0.7 * z + 0.4 * point["gate_timescale_z"])


def test_covariate_errors_are_one_line(lab):
    fd = prepare(lab["data"])
    no_age = prepare(lab["data"].with_trials(lab["data"].trials.drop(columns=["age"])))
    with pytest.raises(DataError, match="regresses on 'age', a column the data do not have"):
        no_age.covariate("age")
    gap = lab["data"].trials.copy()
    gap.loc[gap["participant"] == fd.participants[3], "age"] = np.nan
    with pytest.raises(DataError, match=f"participant '{fd.participants[3]}' has no age \\(1 of 14"):
        prepare(lab["data"].with_trials(gap)).covariate("age")
    with pytest.raises(DataError, match="same for every participant"):
        prepare(lab["data"].with_trials(lab["data"].trials.assign(age=30.0))).covariate("age")
    with pytest.raises(ConfigError, match="unknown participant covariate 'height'"):
        write_model_dict_with(lab, {"covariates": ["height"]})
    with pytest.raises(ConfigError, match="interpolation: must be cubic or linear"):
        write_model_dict_with(lab, {"interpolation": "spline"})
    # the default interpolant stays out of the recorded spec; another one is recorded
    assert "interpolation" not in lab["spec"].to_dict()["hierarchy"]
    assert write_model_dict_with(lab, {"interpolation": "linear"}).to_dict()["hierarchy"]["interpolation"] == "linear"


def test_pooled_centred_and_rt_coordinates_are_checked_and_recorded(lab):
    with pytest.raises(ConfigError, match="hierarchy.pooled: 'rt_shfit' is not a scalar parameter of the model"):
        write_model_dict_with(lab, {"pooled": ["rt_shfit"]})
    with pytest.raises(ConfigError, match="hierarchy.centred: 'gate_timescale' is not a scalar parameter"):
        write_model_dict_with(lab, {"centred": ["gate_timescale"]})  # grid positions are always non-centred
    with pytest.raises(ConfigError, match="pooled: a parameter is listed twice"):
        write_model_dict_with(lab, {"pooled": ["rt_shift", "rt_shift"]})
    with pytest.raises(ConfigError, match="'rt_shift' is pooled"):
        write_model_dict_with(lab, {"pooled": ["rt_shift"], "centred": ["rt_shift"]})
    with pytest.raises(ConfigError, match="rt_coordinates: must be"):
        write_model_dict_with(lab, {"rt_coordinates": "median"})
    # defaults stay out of the recorded spec (fits made before the options keep their spec); others are recorded
    recorded = lab["spec"].to_dict()["hierarchy"]
    assert not {"pooled", "centred", "rt_coordinates"} & set(recorded)
    spec = write_model_dict_with(lab, {"pooled": ["rt_shift"], "rt_coordinates": "natural"})
    assert spec.to_dict()["hierarchy"]["pooled"] == ["rt_shift"]
    assert spec.to_dict()["hierarchy"]["rt_coordinates"] == "natural"


def write_model_dict_with(lab, hierarchy: dict):
    from cogflex.fit.models import model_from_dict

    data = lab["spec"].to_dict()
    data["hierarchy"] = {**data["hierarchy"], **hierarchy}
    return model_from_dict(data)
