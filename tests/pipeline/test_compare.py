"""Model comparison (PSIS-LOO, stacking) of saved fits, and the refusals of fits that cannot be compared."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from cogflex.errors import CogflexError
from cogflex.fit.compare import COMPARISON_COLUMNS, FitSet, compare_fits, load_fits
from cogflex.fit.fitting import load_fit
from tests.data.helpers import assert_one_line_error, cli
from tests.pipeline.helpers import quiet_fit


def _scopes(table: pd.DataFrame):
    return table.groupby(["scope", "participant"], sort=False)


def test_pooled_elpd_is_the_sum_of_the_participants(comparison, fits):
    """For per-participant fits the pooled ELPD-LOO (and trial count) is the sum over participants, per model."""
    t = comparison.table
    assert set(t.loc[t["scope"] == "participant", "participant"]) == set(fits.participants) == {"sim01", "sim02"}
    for model in fits.models:
        pooled = t[(t["scope"] == "pooled") & (t["model"] == model)]
        per = t[(t["scope"] == "participant") & (t["model"] == model)]
        assert len(pooled) == 1 and len(per) == 2
        assert pooled["elpd_loo"].item() == pytest.approx(per["elpd_loo"].sum(), rel=1e-6)
        assert pooled["p_loo"].item() == pytest.approx(per["p_loo"].sum(), rel=1e-6)
        assert pooled["n_trials"].item() == per["n_trials"].sum() == int(fits.trees[model].attrs["n_trials"])


def _synthetic_fit(seed: int, rho: tuple[float, float], draws: int = 1000) -> xr.DataTree:
    """A fake two-participant fit: participant p2's chains are strongly autocorrelated (low relative efficiency)."""
    rng = np.random.default_rng(seed)
    chains, n = 2, 25
    theta = np.empty((chains, draws, 2))
    for j, r in enumerate(rho):
        x = rng.normal(size=(chains, draws))
        for d in range(1, draws):
            x[:, d] = r * x[:, d - 1] + np.sqrt(1 - r * r) * x[:, d]
        theta[:, :, j] = x
    y = rng.normal(0, 2, size=(2, n))
    ll = np.concatenate([-0.5 * (y[j] - 0.4 * theta[:, :, j, None]) ** 2 - 0.919 for j in range(2)], axis=-1)
    tree = xr.DataTree.from_dict({
        "posterior": xr.Dataset({"theta": (("chain", "draw", "participant"), theta)},
                                coords={"chain": [0, 1], "draw": np.arange(draws), "participant": ["p1", "p2"]}),
        "log_likelihood": xr.Dataset({"trial": (("chain", "draw", "observation"), ll.astype(np.float32))},
                                     coords={"observation": np.arange(2 * n)}),
        "observed_data": xr.Dataset({"participant": ("observation", np.repeat(["p1", "p2"], n))},
                                    coords={"observation": np.arange(2 * n)})})
    tree.attrs.update(participants=json.dumps(["p1", "p2"]), data_digest="d", trial_set="t", n_trials=2 * n)
    return tree


def _verdict_pair(**change) -> FitSet:
    """Two synthetic fits of the same trials, "good" ahead of "worse" by ~0.5 ELPD per trial (50 trials), both
    converged (independent draws); ``change`` alters the good fit: ``offset`` shifts chain 0 of its posterior,
    ``divergences`` marks draws divergent, ``interpolation`` records an interpolation error per participant."""
    good = _synthetic_fit(1, (0.0, 0.0))
    ll = good["log_likelihood"].to_dataset()
    rng = np.random.default_rng(5)
    shape = ll["trial"].shape
    good["log_likelihood"] = xr.DataTree(ll.assign(trial=ll["trial"] * 0 - 1.0 + 0.02 * rng.normal(size=shape)))
    worse = good.copy(deep=True)
    worse["log_likelihood"] = xr.DataTree(ll.assign(trial=ll["trial"] * 0 - 1.5 + 0.02 * rng.normal(size=shape)))
    worse.attrs["model"] = "worse"
    good.attrs["model"] = "good"
    if "offset" in change:
        post = good["posterior"].to_dataset()
        shift = xr.zeros_like(post["theta"]) + (post["chain"] == 0) * change["offset"]
        good["posterior"] = xr.DataTree(post.assign(theta=post["theta"] + shift))
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((2, 1000), bool))})
    if "divergences" in change:
        stats["diverging"][0, :change["divergences"]] = True
    good["sample_stats"] = xr.DataTree(stats)
    if "interpolation" in change:
        good.attrs["interpolation_check"] = json.dumps([{"participant": p, "difference": change["interpolation"]}
                                                        for p in ("p1", "p2")])
    if "bound" in change:
        good.attrs["box_bounds"] = json.dumps([{"participant": "p2", "parameter": change["bound"], "bound": "lower",
                                                "edge": 0.3, "share": 0.6, "median": 0.31}])
    return FitSet({"good": good, "worse": worse})


@pytest.mark.parametrize("change, caveat", [
    ({}, ""),
    ({"offset": 1.0}, "good's fit is not reliable (R-hat"),
    ({"divergences": 5}, "good's fit is not reliable (5 divergent transitions)"),
    ({"interpolation": 15.0}, "interpolation error (30.0 log-likelihood units over both fits) could undo the lead"),
    ({"bound": "gate_timescale"}, "good's fit is not reliable (gate_timescale at its lower bound)"),
])
def test_diagnostics_gate_the_verdict(change, caveat):
    """A lead of many SE is decisive only when both fits pass the verdict rules; otherwise the caveat says why."""
    cmp = compare_fits(_verdict_pair(**change))
    w = cmp.winners()["all"]
    assert w["model"] == "good" and w["elpd_diff"] > 10 * w["dse"]
    assert w["decisive"] == (not caveat)
    assert caveat in w["caveat"] and (w["caveat"] == "") == (not caveat)
    pooled = cmp.pooled().set_index("model")
    if "offset" in change:
        assert pooled.at["good", "rhat_max"] > 1.01 >= pooled.at["worse", "rhat_max"]
    if "divergences" in change:
        assert pooled.at["good", "divergences"] == 5 and pooled.at["worse", "divergences"] == 0
    if "interpolation" in change:
        assert pooled.at["good", "interpolation_error"] == 30.0
        per = cmp.per_participant()
        assert (per.loc[per["model"] == "good", "interpolation_error"] == 15.0).all()
        pw = cmp.pairwise.set_index("participant")
        assert pw.at["all", "interpolation_error_a"] == 30.0 and pw.at["all", "interpolation_error_b"] == 0.0


def test_pairwise_sign_does_not_depend_on_the_order_of_the_fits():
    """model_a is the pooled winner, so the same fits give the same pairwise table in either order."""
    fits = _verdict_pair()
    forward = compare_fits(fits).pairwise
    backward = compare_fits(FitSet(dict(reversed(list(fits.trees.items()))))).pairwise
    pd.testing.assert_frame_equal(forward, backward)
    assert (forward["model_a"] == "good").all() and (forward["elpd_diff"] > 0).all()


def test_one_model_or_the_same_fit_twice_is_refused(fit_files, tmp_path, capsys):
    """A single model, or the same file twice, is a one-line error (exit 2), not a verdict."""
    one = fit_files["descriptive"]
    with pytest.raises(CogflexError, match="only one model to compare"):
        load_fits([one])
    with pytest.raises(CogflexError, match="only one model to compare"):
        compare_fits(FitSet({"descriptive": load_fit(one)}))
    with pytest.raises(CogflexError, match="the same fit file given twice"):
        load_fits([one, one])
    for args, fragment in (([one], "only one model"), ([one, one], "given twice")):
        status, _, err = cli(capsys, "compare", *args, "--out", tmp_path / "c.csv")
        assert_one_line_error(status, err, fragment)
    assert not (tmp_path / "c.csv").exists()


def test_pooled_elpd_is_the_sum_when_participants_mix_differently():
    """Pooled = sum of participants also when their chains' efficiencies differ (PSIS tail length depends on it)."""
    fits = FitSet({"a": _synthetic_fit(1, (0.0, 0.97)), "b": _synthetic_fit(2, (0.5, 0.0))})
    t = compare_fits(fits).table
    for model in ("a", "b"):
        pooled = t.loc[(t["scope"] == "pooled") & (t["model"] == model), "elpd_loo"].item()
        per = t.loc[(t["scope"] == "participant") & (t["model"] == model), "elpd_loo"].sum()
        assert pooled == pytest.approx(per, rel=1e-6)


def test_weights_ranks_and_differences_per_scope(comparison, fits):
    """Per scope: stacking weights sum to 1, one winner (rank 0, elpd_diff 0), elpd_diff = ELPD - best ELPD."""
    t = comparison.table
    assert list(t.columns) == COMPARISON_COLUMNS
    groups = list(_scopes(t))
    assert [k for k, _ in groups] == [("pooled", "all"), ("participant", "sim01"), ("participant", "sim02")]
    for _, g in groups:
        assert sorted(g["model"]) == sorted(fits.models)
        assert g["weight"].sum() == pytest.approx(1.0, abs=1e-6)
        assert (g["weight"] >= -1e-12).all()
        assert sorted(g["rank"]) == list(range(len(fits.models)))
        assert g["winner"].sum() == 1
        best = g[g["rank"] == 0]
        assert best["winner"].item() and best["elpd_diff"].item() == 0.0
        assert best["elpd_loo"].item() == g["elpd_loo"].max()
        np.testing.assert_allclose(g["elpd_diff"], g["elpd_loo"] - g["elpd_loo"].max(), atol=1e-9)
        assert (g.loc[~g["winner"], "decisive"] == False).all()  # noqa: E712 - only winners are decisive
        assert (g["pareto_k_max"] > 0).all() and (g["n_pareto_k_bad"] <= g["n_trials"]).all()


def test_winners_agree_with_the_table(comparison):
    """winners(): per participant and pooled, the rank-0 model, the runner-up and the decisive flag (> 2 SE)."""
    winners = comparison.winners()
    t = comparison.table
    assert set(winners) == {"all", "sim01", "sim02"}
    for pid, w in winners.items():
        g = t[t["participant"] == pid].set_index("rank")
        assert w["model"] == g.loc[0, "model"] and w["runner_up"] == g.loc[1, "model"]
        assert w["elpd_diff"] == pytest.approx(g.loc[0, "elpd_loo"] - g.loc[1, "elpd_loo"], abs=1e-9)
        assert w["dse"] == pytest.approx(g.loc[1, "dse"])
        margin = w["elpd_diff"] > 2 * w["dse"]
        assert w["decisive"] == (margin and not w["caveat"])
        assert bool(w["caveat"]) == (not w["decisive"])  # a lead that is not decisive says why
    wins = comparison.wins.set_index("model")
    per = {pid: w["model"] for pid, w in winners.items() if pid != "all"}
    for model in wins.index:
        assert wins.loc[model, "participants_won"] == sum(m == model for m in per.values())
    assert wins["share_won"].sum() == pytest.approx(1.0)


def test_comparison_csv(comparison, tmp_path):
    """to_csv writes the documented columns and the table's values (no temporary file left)."""
    path = tmp_path / "sub" / "comparison.csv"
    comparison.to_csv(path)
    back = pd.read_csv(path, dtype={"participant": str})
    assert list(back.columns) == COMPARISON_COLUMNS
    assert len(back) == len(comparison.table)
    np.testing.assert_allclose(back["elpd_loo"], comparison.table["elpd_loo"], rtol=1e-5)
    assert back["model"].tolist() == comparison.table["model"].tolist()
    assert sorted(p.name for p in path.parent.iterdir()) == ["comparison.csv", "comparison_pairwise.csv"]


def test_pairwise_differences_match_the_table(comparison, fits):
    """Every pair per scope: ELPD(A) - ELPD(B) equals the table's difference, its SE is the table's dse vs the best."""
    pw = comparison.pairwise
    n_models = len(fits.models)
    scopes = comparison.table["participant"].unique()
    assert len(pw) == len(scopes) * n_models * (n_models - 1) // 2
    for _, r in pw.iterrows():
        rows = comparison.table[comparison.table["participant"] == r["participant"]].set_index("model")
        assert r["elpd_diff"] == pytest.approx(rows.at[r["model_a"], "elpd_loo"] - rows.at[r["model_b"], "elpd_loo"],
                                               rel=1e-6, abs=1e-6)
        assert r["se"] > 0 and r["z"] == pytest.approx(r["elpd_diff"] / r["se"])
        # with two models the standard error of the difference is ArviZ's dse of the loser
        loser = r["model_b"] if r["elpd_diff"] > 0 else r["model_a"]
        if n_models == 2:
            assert r["se"] == pytest.approx(rows.at[loser, "dse"], rel=1e-6)


def test_thinning_keeps_every_kth_draw(fits, comparison):
    """thin=2 gives a different (but close) comparison on half the draws; thin=0 is refused."""
    thinned = compare_fits(fits, thin=2)
    assert thinned.thin == 2
    assert not np.allclose(thinned.table["elpd_loo"], comparison.table["elpd_loo"])
    np.testing.assert_allclose(thinned.table["elpd_loo"], comparison.table["elpd_loo"], rtol=0.1)
    with pytest.raises(CogflexError, match="thin"):
        compare_fits(fits, thin=0)


def test_load_fits_accepts_a_directory(fit_files):
    """A directory stands for every *.nc in it; model names come from the files."""
    fits = load_fits([fit_files["forgetful"].parent])
    assert sorted(fits.models) == ["tiny-descriptive", "tiny-forgetful"]
    assert fits.paths["tiny-forgetful"] == fit_files["forgetful"]


# -- refusals ---------------------------------------------------------------------------------------------------


def _refused(paths, *fragments) -> str:
    with pytest.raises(CogflexError) as info:
        load_fits(paths)
    message = str(info.value)
    for fragment in fragments:
        assert str(fragment) in message, message
    return message


def test_refuses_fits_of_other_participants(fit_files, data, model_files, tmp_path):
    """A fit of one participant cannot be compared with a fit of both (same file): message names files and ids."""
    one = quiet_fit(data, model_files["descriptive"], tmp_path, participants=["sim01"], draws=20, tune=20).path
    message = _refused([fit_files["forgetful"], one], fit_files["forgetful"].name, one)
    assert "sim01" in message and "sim02" in message  # which participants differ


def test_refuses_fits_on_other_data(fit_files, data, model_files, tmp_path):
    """One RT changed in the file: the fits were made on different data and are refused."""
    trials = data.trials.copy()
    trials.loc[10, "rt"] = trials.loc[10, "rt"] + 0.05
    other = data.with_trials(trials)
    changed = quiet_fit(other, model_files["descriptive"], tmp_path, draws=20, tune=20).path
    message = _refused([fit_files["forgetful"], changed], fit_files["forgetful"], changed)
    assert "different data" in message


def test_refuses_to_mix_hierarchical_and_per_participant_fits(fit_files, data, model_files, tmp_path):
    """The same trials fitted hierarchically and per participant are different kinds of fit: refused, named."""
    hier = quiet_fit(data, model_files["descriptive"], tmp_path, draws=20, tune=20, hierarchical=True).path
    message = _refused([fit_files["forgetful"], hier], fit_files["forgetful"], hier)
    assert "hierarchical fit" in message and "per-participant fits" in message


def test_refuses_a_fit_without_log_likelihood(fit_files, tmp_path):
    """A fit file without its log_likelihood group is named and refused."""
    tree = load_fit(fit_files["descriptive"])
    stripped = xr.DataTree.from_dict({name: tree[name].to_dataset() for name in tree.children
                                      if name != "log_likelihood"})
    stripped.attrs = dict(tree.attrs)
    path = tmp_path / "no-loglik.nc"
    stripped.to_netcdf(path, engine="h5netcdf")
    _refused([fit_files["forgetful"], path], path, "log_likelihood")


def test_refuses_a_log_likelihood_without_trial(fit_files, tmp_path):
    """A log_likelihood group whose variable is not 'trial' is refused, naming the file."""
    tree = load_fit(fit_files["descriptive"])
    groups = {name: tree[name].to_dataset() for name in tree.children}
    groups["log_likelihood"] = groups["log_likelihood"].rename({"trial": "y"})
    renamed = xr.DataTree.from_dict(groups)
    renamed.attrs = dict(tree.attrs)
    path = tmp_path / "renamed.nc"
    renamed.to_netcdf(path, engine="h5netcdf")
    _refused([path, fit_files["forgetful"]], path, "'trial'")


@pytest.mark.parametrize("damage", ["truncated", "random"])
def test_refuses_a_corrupt_file(fit_files, tmp_path, damage):
    """A truncated fit file, or random bytes named .nc, is reported by name as unreadable."""
    path = tmp_path / f"{damage}.nc"
    if damage == "truncated":
        raw = fit_files["descriptive"].read_bytes()
        path.write_bytes(raw[: len(raw) // 2])
    else:
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    _refused([fit_files["forgetful"], path], path, "not a readable netCDF")


def test_refuses_two_fits_of_one_model(fit_files, tmp_path):
    """Two files of the same model name are refused, naming both files."""
    copy = tmp_path / "again.nc"
    shutil.copyfile(fit_files["forgetful"], copy)
    _refused([fit_files["forgetful"], fit_files["descriptive"], copy], "tiny-forgetful", fit_files["forgetful"],
             copy)


def test_refuses_missing_paths_and_empty_directories(tmp_path):
    """Missing files and directories without fits are named."""
    _refused([tmp_path / "nope.nc"], "nope.nc", "no such file")
    (tmp_path / "empty").mkdir()
    _refused([tmp_path / "empty"], "empty", "no fit files")


# -- command line -----------------------------------------------------------------------------------------------


def test_cli_compare_writes_the_table(fit_files, tmp_path, capsys):
    """`cogflex compare` prints the table and the winners and writes comparison.csv."""
    out = tmp_path / "c.csv"
    status, stdout, err = cli(capsys, "compare", fit_files["forgetful"], fit_files["descriptive"], "--out", out,
                              "--quiet")
    assert status == 0, err
    table = pd.read_csv(out, dtype={"participant": str})
    assert list(table.columns) == COMPARISON_COLUMNS and len(table) == 6
    assert f"wrote {out}" in stdout and "pooled: " in stdout and "participant sim01: " in stdout


def test_cli_compare_refusal_is_one_line(fit_files, tmp_path, capsys):
    """A refused comparison exits 2 with one line on stderr naming both files, and writes nothing."""
    copy = tmp_path / "again.nc"
    shutil.copyfile(fit_files["forgetful"], copy)
    out = tmp_path / "c.csv"
    status, _, err = cli(capsys, "compare", fit_files["forgetful"], copy, "--out", out, "--quiet")
    assert_one_line_error(status, err, str(copy), str(fit_files["forgetful"]))
    assert err.startswith("cogflex: error:")
    assert not out.exists()


def test_cli_compare_corrupt_file_is_one_line(fit_files, tmp_path, capsys):
    """A corrupt fit file on the command line exits 2 with one line naming it."""
    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"\x89HDF\r\n" + bytes(200))
    status, _, err = cli(capsys, "compare", fit_files["forgetful"], bad, "--out", tmp_path / "c.csv", "--quiet")
    assert_one_line_error(status, err, str(bad))
    assert err.startswith("cogflex: error:")
