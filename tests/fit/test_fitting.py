"""Tiny sampling runs of fit(): the saved DataTree, its attributes, the summary contract, and interrupted runs."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pymc
import pytest

from cogflex.cli import main
from cogflex.errors import CogflexError, InterruptedFit
from cogflex.fit.fitting import FitOptions, FitWarning, _subset, fit, load_fit, summarize_fit
from cogflex.fit.models import model_from_dict
from cogflex.fit.prepare import prepare
from cogflex.fit.pymc_model import build_model
from cogflex.fit.refine import fitted_windows
from cogflex.fit.tables import predictor_table
from cogflex.io import json_ready
from tests.fit.helpers import compile_values, kept_mask, likelihood_graph, write_model

OPTIONS = dict(draws=30, tune=30, chains=1, seed=3, sampler="pymc", progress=False)
CLI_KEYS = ("model", "n_trials", "participants", "rhat_max", "ess_bulk_min", "divergences", "wall_seconds",
            "parameters")
NETWORK_NAMES = ("gate_timescale", "weight_timescale", "regularization")

FITS = [
    pytest.param(("flexible", False, "pymc", 2), id="flexible", marks=pytest.mark.slow),
    pytest.param(("forgetful", False, "nutpie", 1), id="forgetful-nutpie", marks=pytest.mark.slow),
    pytest.param(("descriptive", False, "pymc", 1), id="descriptive"),
    pytest.param(("flexible", True, "pymc", 1), id="flexible-hierarchical"),
    pytest.param(("forgetful", True, "pymc", 1), id="forgetful-hierarchical"),
    pytest.param(("descriptive", True, "pymc", 1), id="descriptive-hierarchical"),
]


@pytest.fixture(scope="module", params=FITS)
def fitted(request, tmp_path_factory, trials):
    variant, hierarchical, sampler, chains = request.param
    spec_path = write_model(tmp_path_factory.mktemp("spec"), variant)
    out = tmp_path_factory.mktemp(f"fit-{variant}-{int(hierarchical)}")
    options = FitOptions(**{**OPTIONS, "hierarchical": hierarchical, "sampler": sampler, "chains": chains})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit(trials, spec_path, options=options, out=out)
    fit_warnings = [w for w in caught if issubclass(w.category, FitWarning)]
    return {"variant": variant, "hierarchical": hierarchical, "result": result, "out": out, "options": options,
            "spec_path": spec_path, "warnings": fit_warnings}


def test_tree_groups_and_log_likelihood_layout(fitted, trials):
    tree = fitted["result"].tree
    options = fitted["options"]
    for group in ("posterior", "sample_stats", "log_likelihood", "observed_data"):
        assert group in tree.children
    fd = prepare(trials)
    ll = tree["log_likelihood"]["trial"]
    assert ll.dims == ("chain", "draw", "observation")
    assert ll.shape == (options.chains, options.draws, fd.n_trials) and ll.dtype == np.float32
    assert np.isfinite(ll.values).all() and (ll.values < 5).all()
    post = tree["posterior"].to_dataset()
    assert list(post["participant"].values) == ["sim01", "sim02"]
    assert post.sizes["chain"] == options.chains and post.sizes["draw"] == options.draws
    obs = tree["observed_data"].to_dataset()
    np.testing.assert_allclose(obs["rt"].values, fd.trials["rt"].to_numpy())
    np.testing.assert_array_equal(obs["correct"].values, fd.trials["correct"].to_numpy().astype(np.int8))
    np.testing.assert_array_equal(obs["participant"].values, fd.trials["participant"].to_numpy(dtype=str))
    np.testing.assert_array_equal(obs["row"].values, fd.trials["row"].to_numpy())
    assert "diverging" in tree["sample_stats"]
    # per-participant fits are one job per participant, combined along "participant"
    assert ("participant" in tree["sample_stats"].dims) == (not fitted["hierarchical"])
    # the log-likelihood's observations carry the participant (plain ArviZ can select one participant's trials)
    np.testing.assert_array_equal(ll["participant"].values, fd.trials["participant"].to_numpy(dtype=str))
    if fitted["variant"] != "descriptive":
        fixed = json.loads(tree.attrs["fixed_parameters"])
        if fitted["variant"] == "forgetful":
            # tau_c = tau_W = tau and lambda = 0 are the model, not posterior variables
            assert post["timescale"].dims == ("chain", "draw", "participant")
            assert not {"gate_timescale", "weight_timescale", "regularization"} & set(post.data_vars)
            assert fixed == {"regularization": 0.0}
        else:
            for name in NETWORK_NAMES:
                assert post[name].dims == ("chain", "draw", "participant")
            assert fixed == {}
            assert (post["gate_timescale"].values < post["weight_timescale"].values).all()
        for name in ("gate_timescale", "weight_timescale") if fitted["variant"] == "flexible" else ("timescale",):
            box = json.loads(tree.attrs["model_spec"])["parameters"][name]
            assert ((post[name] >= box["lower"]) & (post[name] <= box["upper"])).all()
    else:
        assert post["rt_coefficient"].dims == ("chain", "draw", "participant", "rt_term")


def test_attributes(fitted, trials):
    tree = fitted["result"].tree
    attrs = tree.attrs
    spec = model_from_dict(json.loads(attrs["model_spec"]))
    assert spec.name == f"tiny-{fitted['variant']}" and attrs["model"] == spec.name
    assert attrs["data_digest"] == trials.digest()
    assert attrs["seed"] == 3
    assert len(attrs["trial_set"]) == 64 and attrs["n_trials"] == prepare(trials).n_trials
    assert attrs["hierarchical"] == int(fitted["hierarchical"])
    assert len(json.loads(attrs["job_seeds"])) == (1 if fitted["hierarchical"] else 2)  # one job per participant
    assert attrs["sampler"] == fitted["options"].sampler
    assert json.loads(attrs["participants"]) == ["sim01", "sim02"]


def test_summary_contract_and_warnings(fitted):
    summary = fitted["result"].summary
    for key in CLI_KEYS:
        assert key in summary
    assert summary["model"] == f"tiny-{fitted['variant']}" and summary["participants"] == ["sim01", "sim02"]
    assert summary["hierarchical"] is fitted["hierarchical"]
    assert summary["wall_seconds"] > 0 and isinstance(summary["divergences"], int)
    assert np.isfinite(summary["ess_bulk_min"])
    # R-hat needs two chains (arviz gives NaN for one; the JSON then holds null)
    assert np.isfinite(summary["rhat_max"]) == (fitted["options"].chains > 1)
    params = summary["parameters"]
    expected = {"acc_intercept", "rt_intercept", "rt_sigma", "rt_shift"}
    if fitted["variant"] == "descriptive":
        expected |= {"rt_coefficient", "acc_coefficient"}
        assert set(params["rt_coefficient"]["sim01"]) == {"switch", "log_practice", "switch_x_log_practice",
                                                          "incongruent", "switch_x_incongruent", "log_run"}
    elif fitted["variant"] == "forgetful":
        expected |= {"acc_slope", "rt_slope", "timescale"}
        assert summary["fixed_parameters"] == {"regularization": 0.0}
    else:
        expected |= {"acc_slope", "rt_slope", *NETWORK_NAMES}
        assert summary["fixed_parameters"] == {}
    assert expected == set(params)  # free parameters only: nothing fixed appears with a posterior
    for name in expected - {"rt_coefficient", "acc_coefficient"}:
        for pid in ("sim01", "sim02"):
            entry = params[name][pid]
            assert set(entry) == {"mean", "low_94", "high_94"}
            assert entry["low_94"] <= entry["mean"] <= entry["high_94"]
    # 30 draws cannot reach ESS 400: the fit says so, as a FitWarning and in the summary
    assert any("ESS" in w for w in summary["warnings"])
    assert {str(w.message).split(": ", 1)[1] for w in fitted["warnings"]} == set(summary["warnings"])


def test_files_written_and_read_back(fitted):
    out, result = fitted["out"], fitted["result"]
    name = result.summary["model"]
    assert result.path == out / f"{name}.nc" and result.path.exists()
    on_disk = json.loads((out / f"{name}.summary.json").read_text())
    assert on_disk == json.loads(json.dumps(json_ready(result.summary)))
    assert not list(out.rglob("*.part"))
    tree = load_fit(result.path)
    np.testing.assert_array_equal(tree["log_likelihood"]["trial"].values,
                                  result.tree["log_likelihood"]["trial"].values)
    for var in result.tree["posterior"].data_vars:
        np.testing.assert_array_equal(tree["posterior"][var].values, result.tree["posterior"][var].values)
    assert tree.attrs["model_spec"] == result.tree.attrs["model_spec"]
    assert json_ready(summarize_fit(tree)) == on_disk
    if fitted["variant"] != "descriptive":
        # one whole-box table per participant, and one per refined window (every round but the last made one)
        windows = sum(len(r["rounds"]) - 1 for r in json.loads(tree.attrs["grid_refinement"]))
        assert len(list((out / ".cache").glob("predictors-*.npy"))) == 2 + windows


def test_log_likelihood_is_the_models_likelihood_at_a_draw(fitted, trials):
    """Saved pointwise log-likelihood at a draw == the model's pointwise term; its sum == logp minus prior logp.

    Per-participant fits are independent jobs: their joint is the non-hierarchical model over both participants,
    so the check also catches a job's values attributed to the other participant's observations.
    """
    from cogflex.fit.models import load_model
    from cogflex.fit.sampling import as_fitted

    spec = as_fitted(load_model(fitted["spec_path"]), fitted["hierarchical"])  # hierarchical: cubic tables
    fd = prepare(trials)
    tree = fitted["result"].tree
    windows = fitted_windows(tree)
    if windows:  # refined per-participant fits: each participant's likelihood on its own refined table
        assert set(windows) == set(fd.participants) and not fitted["hierarchical"]
        jobs = [(_subset(fd, i), windows[p], (fd.trials["pidx"] == i).to_numpy())
                for i, p in enumerate(fd.participants)]
    else:
        jobs = [(fd, None, np.ones(fd.n_trials, dtype=bool))]
    post = tree["posterior"].to_dataset()
    ll = tree["log_likelihood"]["trial"].values
    for job, window, rows in jobs:
        tables = None
        if spec.uses_network:
            tables = [predictor_table(spec, seq, cache_dir=fitted["out"] / ".cache", window=window)
                      for seq in job.sequences]
        model, pointwise = build_model(spec, job, tables=tables, hierarchical=fitted["hierarchical"], window=window)
        function = compile_values(model, [pointwise, likelihood_graph(model)])
        for chain, draw in ((0, 0), (post.sizes["chain"] - 1, 17)):
            point = post.sel(participant=job.participants) if window is not None else post
            values = {rv.name: point[rv.name].isel(chain=chain, draw=draw)
                      .transpose(*model.named_vars_to_dims.get(rv.name, ())).values for rv in model.free_RVs}
            terms, total = function(values)
            np.testing.assert_allclose(ll[chain, draw][rows], terms, rtol=1e-5, atol=1e-4)
            assert ll[chain, draw][rows].astype(float).sum() == pytest.approx(float(total), rel=1e-5, abs=1e-2)


def test_loo_pit_is_the_psis_weighted_rt_cdf(fitted, trials):
    """Saved LOO-PIT per trial == the PSIS-LOO-weighted mean over draws of the model's RT CDF at the observed RT.

    The RT CDF per draw is recomputed from the posterior with the shifted log-normal of scipy (not the
    model's graph), so trial order, participant order and the shift are checked end to end; the PSIS
    weights come from ArviZ's own smoothing of the saved log-likelihood.
    """
    import arviz_stats  # noqa: F401 - registers the .azstats accessor
    import xarray as xr
    from scipy.stats import lognorm

    from cogflex.fit.models import load_model
    from cogflex.fit.sampling import as_fitted

    tree = fitted["result"].tree
    assert "loo_pit" in tree.children
    pit = tree["loo_pit"]["rt"].values
    fd = prepare(trials)
    assert pit.shape == (fd.n_trials,) and ((pit >= 0) & (pit <= 1)).all()
    if fitted["variant"] != "descriptive":
        return  # the network models' RT location needs the tables: the descriptive case checks the plumbing
    spec = as_fitted(load_model(fitted["spec_path"]), fitted["hierarchical"])
    post = tree["posterior"].to_dataset()
    tr = fd.trials
    from cogflex.fit.prepare import covariates

    x = np.stack([covariates(tr)[c] for c in spec.coefficients["rt_coefficient"].terms], axis=-1)
    pidx = tr["pidx"].to_numpy()
    fastest = tr.groupby("pidx")["rt"].min().to_numpy()[pidx]
    rt = tr["rt"].to_numpy(dtype=float)
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    cdf = np.empty((chains, draws, fd.n_trials))
    for c in range(chains):
        for d in range(draws):
            p = post.isel(chain=c, draw=d)
            mu = p["rt_intercept"].values[pidx] + (x * p["rt_coefficient"].transpose(
                "participant", "rt_term").values[pidx]).sum(-1)
            shift = p["rt_shift"].values[pidx] * fastest
            cdf[c, d] = lognorm.cdf(rt - shift, s=p["rt_sigma"].values[pidx], scale=np.exp(mu))
    ll = tree["log_likelihood"]["trial"]
    # psislw takes the log-likelihood (it smooths the ratios 1 / p(y_i | theta) itself)
    log_w, _ = ll.astype(float).azstats.psislw(dim=["chain", "draw"], r_eff=_r_eff(post, chains * draws))
    want = (np.exp(log_w) * xr.DataArray(cdf, dims=ll.dims)).sum(("chain", "draw")).values
    np.testing.assert_allclose(pit, want, atol=2e-3)


def _r_eff(post, n: int) -> float:
    if post.sizes["chain"] == 1:
        return 1.0
    ess = post.azstats.ess(method="mean")
    return float(np.hstack([ess[v].values.ravel() for v in ess.data_vars]).mean() / n)


# -- interrupted and truncated sampling leave nothing behind ---------------------------------------------------------


def _written(out):
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


@pytest.mark.parametrize(("variant", "hierarchical"), [("descriptive", False), ("flexible", True)])
def test_interrupted_sampling_writes_nothing(variant, hierarchical, trials, tmp_path, monkeypatch):
    spec_path = write_model(tmp_path, variant)
    out = tmp_path / "out"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pymc, "sample", interrupted)
    with pytest.raises(InterruptedFit, match="nothing was written"):
        fit(trials, spec_path, options=FitOptions(**OPTIONS, hierarchical=hierarchical), out=out)
    written = _written(out) if out.exists() else []
    assert not [p for p in written if p.endswith((".nc", ".summary.json", ".part"))]
    # only the network's predictor tables may be cached (they are inputs, not results)
    assert all(p.startswith(".cache/predictors-") for p in written)


def test_interrupted_nutpie_sampling_writes_nothing(trials, tmp_path, monkeypatch):
    """cogflex calls nutpie directly (not through pm.sample): an interrupt there is handled the same way."""
    import nutpie

    monkeypatch.setattr(nutpie, "sample", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    out = tmp_path / "out"
    with pytest.raises(InterruptedFit, match="nothing was written"):
        fit(trials, write_model(tmp_path, "descriptive"), out=out,
            options=FitOptions(**{**OPTIONS, "sampler": "nutpie"}))
    assert not out.exists() or not [p for p in _written(out) if p.endswith((".nc", ".summary.json", ".part"))]


def test_interrupted_fit_exits_130_on_the_command_line(trials, tmp_path, monkeypatch, capsys):
    from cogflex.fit.simulate import to_ebb_and_flow

    data = tmp_path / "trials.csv"
    to_ebb_and_flow(trials).to_csv(data, index=False)
    monkeypatch.setattr(pymc, "sample", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    status = main(["fit", str(data), "--model", "descriptive", "--out", str(tmp_path / "o"), "--quiet",
                   "--sampler", "pymc"])
    err = capsys.readouterr().err
    assert status == 130 and "nothing was written" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "descriptive.nc").exists()


def test_sampling_that_stops_early_writes_nothing(trials, tmp_path, monkeypatch):
    real = pymc.sample

    def short(*args, draws, **kwargs):
        return real(*args, draws=draws - 5, **kwargs)

    monkeypatch.setattr(pymc, "sample", short)
    out = tmp_path / "out"
    with pytest.raises(InterruptedFit, match=r"stopped early \(25 of 30 draws\)"):
        fit(trials, write_model(tmp_path, "descriptive"), out=out,
            options=FitOptions(**{**OPTIONS, "draws": 30, "tune": 10, "chains": 1}))
    assert not out.exists() or not _written(out)


def test_load_fit_errors(tmp_path):
    with pytest.raises(CogflexError, match="no such fit file"):
        load_fit(tmp_path / "missing.nc")
    bad = tmp_path / "bad.nc"
    bad.write_text("not netcdf")
    with pytest.raises(CogflexError, match="not a readable netCDF fit"):
        load_fit(bad)


@pytest.fixture(scope="module")
def single(trials, tmp_path_factory):
    """The second participant alone, per-participant (not hierarchical), posterior predictive requested."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(trials, write_model(tmp_path_factory.mktemp("single"), "descriptive"), participants=["sim02"],
                   options=FitOptions(**{**OPTIONS, "draws": 25, "tune": 10, "posterior_predictive": 3}))


def test_single_participant_fit(single, trials):
    assert single.summary["participants"] == ["sim02"] and single.path is None
    assert single.summary["n_trials"] == prepare(trials, participants=["sim02"]).n_trials
    assert list(single.tree["posterior"]["participant"].values) == ["sim02"]
    # observed rows refer to the trial table as loaded (sim02's trials follow sim01's 60)
    kept = kept_mask(trials.trials) & (trials.trials["participant"] == "sim02").to_numpy()
    np.testing.assert_array_equal(single.tree["observed_data"]["row"].values, np.flatnonzero(kept))


def test_single_participant_fit_is_not_labelled_hierarchical(single):
    assert single.tree.attrs["hierarchical"] == 0 and single.summary["hierarchical"] is False


def test_posterior_predictive_on_request(single, trials):
    pp = single.tree["posterior_predictive"].to_dataset()
    n = single.summary["n_trials"]
    assert pp["rt"].dims == ("chain", "draw", "observation") and pp["rt"].shape == (1, 3, n)
    assert (pp["rt"].values > 0).all() and set(np.unique(pp["correct"].values)) <= {0, 1}
    # replications differ from the data and from each other, and are on the observed trials' scale
    observed = single.tree["observed_data"]["rt"].values
    assert not np.allclose(pp["rt"].values[0, 0], observed) and not np.allclose(pp["rt"].values[0, 0],
                                                                                 pp["rt"].values[0, 1])
    assert 0.2 < np.median(pp["rt"].values) / np.median(observed) < 5
