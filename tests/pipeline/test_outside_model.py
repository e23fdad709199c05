"""An outside model (a PyMC model written here, as a lab would write one) compared with cogflex's fits.

The outside model: RT ~ shift + LogNormal(mu_p, sigma_p) and correct ~ Bernoulli(p_p) per participant, with
the shift at half the participant's fastest kept RT (as data, not a parameter). Its pointwise log-likelihood
is the same joint density cogflex uses (correctness + RT in seconds) on the same trials.
"""

from __future__ import annotations

import numpy as np
import pytest

from cogflex.cli import main
from cogflex.errors import CogflexError
from cogflex.fit.compare import compare_fits, load_fits
from cogflex.fit.schema import as_fit, check_fit, load_fit, save_tree


def outside_fit(reference):
    import pymc as pm

    obs = reference["observed_data"].to_dataset()
    rt = obs["rt"].values
    correct = obs["correct"].values.astype(int)
    ids, pidx = np.unique(obs["participant"].values.astype(str), return_inverse=True)
    shift = np.array([rt[pidx == i].min() for i in range(len(ids))])[pidx] * 0.5
    with pm.Model(coords={"participant": ids, "obs": np.arange(len(rt))}):
        mu = pm.Normal("mu", -0.5, 1.0, dims="participant")
        sigma = pm.HalfNormal("sigma", 1.0, dims="participant")
        p = pm.Beta("p", 5, 1, dims="participant")
        pm.LogNormal("rt", mu[pidx], sigma[pidx], observed=rt - shift, dims="obs")
        pm.Bernoulli("correct", p[pidx], observed=correct, dims="obs")
        idata = pm.sample(draws=60, tune=60, chains=2, random_seed=4, progressbar=False,
                          compute_convergence_checks=False)
        pm.compute_log_likelihood(idata, progressbar=False)
    ll = idata["log_likelihood"].to_dataset()
    idata["log_likelihood"] = (ll["rt"] + ll["correct"]).rename("trial").to_dataset()  # joint density per trial
    return idata


@pytest.fixture(scope="module")
def outside(fit_files, tmp_path_factory):
    reference = load_fit(fit_files["descriptive"])
    tree = as_fit(outside_fit(reference), like=reference, model="pymc-lognormal",
                  description="per-participant lognormal RT and Bernoulli accuracy (written in the test)")
    path = tmp_path_factory.mktemp("outside") / "pymc-lognormal.nc"
    save_tree(tree, path)
    return path


def test_outside_fit_is_compared_like_a_cogflex_fit(outside, fit_files, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # cogflex compare writes comparison.csv into the working directory
    check_fit(load_fit(outside), outside)
    fits = load_fits([outside, fit_files["descriptive"]])
    comparison = compare_fits(fits)
    pooled = comparison.pooled()
    assert set(pooled["model"]) == {"pymc-lognormal", "tiny-descriptive"}
    assert np.isfinite(pooled["elpd_loo"]).all()
    # and from the command line, with the report
    assert main(["compare", str(outside), str(fit_files["descriptive"])]) == 0
    assert "pymc-lognormal" in capsys.readouterr().out
    status = main(["report", str(outside), str(fit_files["descriptive"]), "--out", str(tmp_path / "r.html")])
    assert status == 0 and "pymc-lognormal" in (tmp_path / "r.html").read_text()


def test_outside_fit_on_other_trials_is_refused(fit_files):
    reference = load_fit(fit_files["descriptive"])
    idata = outside_fit(reference)
    ll = idata["log_likelihood"].to_dataset()
    idata["log_likelihood"] = ll.isel({d: slice(1, None) for d in ll["trial"].dims if d not in ("chain", "draw")})
    with pytest.raises(CogflexError, match="expected \\(chain, draw, one trial dimension"):
        as_fit(idata, like=reference, model="short")
