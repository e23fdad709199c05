"""The front door: ``cf.fit`` on a DataFrame equals ``cogflex fit`` on the file; fits are plain ArviZ DataTrees."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cogflex as cf
from cogflex.cli import main
from cogflex.fit.simulate import to_ebb_and_flow
from tests.fit.helpers import tiny_trials, write_model

SETTINGS = {"draws": 40, "tune": 40, "chains": 2, "seed": 4}


@pytest.fixture(scope="module")
def trial_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("front") / "tiny.csv"
    to_ebb_and_flow(tiny_trials()).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("variant", ["descriptive", "forgetful"])
def test_fit_of_a_dataframe_equals_the_cli_fit_of_the_file(variant, trial_file, tmp_path, capsys):
    model = write_model(tmp_path, variant)
    args = [f"--{k}={v}" for k, v in SETTINGS.items()]
    assert main(["fit", str(trial_file), "--model", str(model), *args, "--out", str(tmp_path / "cli"), "--quiet"]) == 0
    capsys.readouterr()
    cli = cf.load_fit(tmp_path / "cli" / f"tiny-{variant}.nc")
    api = cf.fit(pd.read_csv(trial_file), model=str(model), progress=False, **SETTINGS).tree
    for group in ("posterior", "log_likelihood", "observed_data"):
        a, b = cli[group].to_dataset(), api[group].to_dataset()
        assert set(a.data_vars) == set(b.data_vars)
        for name in a.data_vars:
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=f"{group}/{name}")
    for key in ("data_digest", "trial_set", "model_spec", "job_seeds"):
        assert cli.attrs[key] == api.attrs[key], key


def test_fit_files_are_arviz_native(trial_file, tmp_path):
    import arviz as az
    import xarray as xr

    data = cf.load_trials(trial_file)
    result = cf.fit(data, write_model(tmp_path, "descriptive"), participants=["sim01"], progress=False, **SETTINGS)
    tree = result.tree
    # one participant: sample stats over (chain, draw), as ArviZ expects
    assert set(tree["sample_stats"]["energy"].dims) == {"chain", "draw"}
    az.plot_energy(tree)
    # the pointwise log-likelihood's observations carry the participant: plain ArviZ LOO per participant
    two = cf.fit(data, write_model(tmp_path, "descriptive"), progress=False, **SETTINGS).tree
    ll = two["log_likelihood"].to_dataset()
    mine = ll.where(ll["participant"] == "sim02", drop=True)
    sub = xr.DataTree.from_dict({"posterior": two["posterior"].to_dataset().sel(participant="sim02"),
                                 "log_likelihood": mine})
    loo = az.loo(sub, var_name="trial")
    assert np.isfinite(loo.elpd) and loo.n_data_points == int((ll["participant"] == "sim02").sum())


def test_front_door_exposes_the_workflow():
    for verb in ("load_trials", "simulate", "fit", "compare", "report", "run_pipeline", "load_fit", "load_config"):
        assert callable(getattr(cf, verb)), verb
    assert cf.fit.FitOptions is cf.FitOptions and cf.nta.simulate is cf.simulate
    assert cf.data.load_trials is cf.load_trials
    assert "flexible" in cf.fit.models.builtin_models()
