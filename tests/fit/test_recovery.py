"""Parameter recovery on simulated participants: short runs, generous checks, but ones that can fail."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from cogflex.fit.fitting import FitOptions, fit
from cogflex.fit.models import load_model
from cogflex.fit.models.descriptive import ACC_TERMS, RT_TERMS
from cogflex.fit.simulate import Design, design_trials, simulate_trials
from tests.fit.helpers import write_model

#: The bundled flexible box (0.5-8, 20-500, 0.01-0.3) on a coarse grid, one history, a short practice.
RECOVERY_PARAMETERS = {
    "gate_timescale": {"lower": 0.5, "upper": 8.0, "points": 5},
    "weight_timescale": {"lower": 20.0, "upper": 500.0, "points": 3},
    "regularization": {"lower": 0.01, "upper": 0.3, "points": 3},
}
RECOVERY_NETWORK = {"substeps": 5, "tutorial_blocks": 6, "tutorial_block_trials": 300, "max_practice_trials": 2000,
                    "histories": 1, "dtype": "float32"}
TRUTH = {"gate_timescale": 1.0, "weight_timescale": 100.0, "regularization": 0.05, "acc_intercept": 1.0,
         "acc_slope": 3.0, "rt_intercept": -0.8, "rt_slope": 1.0, "rt_sigma": 0.25, "rt_shift": 0.5}


def _fit_quietly(data, model, tmp_path, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(data, model, out=tmp_path / "fit",
                   options=FitOptions(sampler="pymc", progress=False, chains=1, seed=1, **options))


@pytest.mark.slow
def test_flexible_recovers_gate_timescale_and_rt_slope(tmp_path, monkeypatch):
    # The multi-start mode search (31 L-BFGS runs) would take most of this test's time; keep its first starts
    # (the best grid nodes by profile likelihood come first). test_fitting runs the full search.
    from cogflex.fit import sampling

    full_search = sampling.find_mode
    monkeypatch.setattr(sampling, "find_mode", lambda model, starts, **kw: full_search(model, starts[:6], **kw))
    spec = load_model(write_model(tmp_path, "flexible", parameters=RECOVERY_PARAMETERS, network=RECOVERY_NETWORK))
    design = Design(participants=1, sessions=30, trials_per_session=70, first_session=5, seed=4)
    data = simulate_trials(spec, TRUTH, design_trials(design), seed=5)
    assert data.n_trials == 2100 and 0.6 < data.trials["correct"].mean() < 0.95
    result = _fit_quietly(data, spec, tmp_path, draws=60, tune=60)
    post = result.tree["posterior"].to_dataset()
    # generous, but a posterior that ignored the data would fail: the prior's median gate timescale is 2 (the box's
    # geometric centre, a factor 2 from the truth) and its 94% interval spans a factor ~12 (rt_slope: ~50)
    for name, factor, width in (("gate_timescale", 1.6, 4.0), ("rt_slope", 1.5, 2.0)):
        values = post[name].sel(participant="sim01").values.ravel()
        low, median, high = np.quantile(values, [0.03, 0.5, 0.97])
        truth = TRUTH[name]
        assert low / 1.5 <= truth <= high * 1.5, f"{name}: truth {truth} outside [{low:.3g}, {high:.3g}] (x1.5)"
        assert truth / factor <= median <= truth * factor, f"{name}: median {median:.3g}, truth {truth}"
        assert high / low < width, f"{name}: 94% interval [{low:.3g}, {high:.3g}] hardly narrower than the prior"
    # the fast-gate regime is recognised: gates an order of magnitude faster than weights
    ratio = post["weight_timescale"].values / post["gate_timescale"].values
    assert np.median(ratio) > 10


@pytest.mark.slow
def test_descriptive_recovers_the_sign_of_large_switch_effects(tmp_path):
    spec = load_model("descriptive")
    truth = {"acc_intercept": 2.5, "rt_intercept": -0.7, "rt_sigma": 0.25, "rt_shift": 0.5,
             **{f"rt_{t}": 0.0 for t in RT_TERMS}, **{f"acc_{t}": 0.0 for t in ACC_TERMS}}
    truth.update(rt_switch=0.4, acc_switch=-1.5)
    design = Design(participants=1, sessions=8, trials_per_session=70, first_session=20, seed=6)
    data = simulate_trials(spec, truth, design_trials(design), seed=7)
    result = _fit_quietly(data, spec, tmp_path, draws=100, tune=100)
    rt_switch = result.summary["parameters"]["rt_coefficient"]["sim01"]["switch"]
    acc_switch = result.summary["parameters"]["acc_coefficient"]["sim01"]["switch"]
    assert rt_switch["low_94"] > 0.15 and rt_switch["high_94"] < 0.7
    assert acc_switch["high_94"] < 0
