"""Sharded comparison: fits of disjoint participant sets compared shard by shard and pooled exactly."""

from __future__ import annotations

import argparse
import json

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from cogflex.errors import CogflexError
from cogflex.fit.cli import _selected
from cogflex.fit.compare import _restricted, compare_shards, group_shards, pool_loos
from cogflex.fit.fitting import load_fit
from tests.data.helpers import assert_one_line_error, cli


def _split(path, participant: str, folder):
    """The fit file at ``path`` cut down to one participant, as a fit of that participant alone would be saved."""
    tree = load_fit(path)
    rows = np.flatnonzero(tree["observed_data"]["participant"].values.astype(str) == participant)
    groups = {}
    for name in tree.children:
        ds = tree[name].to_dataset()
        if "observation" in ds.dims:
            ds = ds.isel(observation=rows)
        if "participant" in ds.dims:
            ds = ds.sel(participant=[participant])
        groups[name] = ds
    part = xr.DataTree.from_dict(groups)
    part.attrs = {**tree.attrs, "participants": json.dumps([participant]), "n_trials": len(rows)}
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / path.name
    part.to_netcdf(out, engine="h5netcdf")
    return out


@pytest.fixture(scope="module")
def shard_dirs(fit_files, tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    dirs = []
    for pid in ("sim01", "sim02"):
        for path in fit_files.values():
            _split(path, pid, root / pid)
        dirs.append(root / pid)
    return dirs


def test_pooled_loo_equals_psis_over_all_trials_with_each_participants_weights(fits):
    """pool_loos(parts) is az.loo on all trials with every trial's own participant's smoothed weights."""
    tree = fits.trees["tiny-forgetful"]
    obs = tree["observed_data"]["participant"].values.astype(str)
    parts = [az.loo(_restricted(tree, pid, 1), var_name="trial", pointwise=True) for pid in ("sim01", "sim02")]
    pooled = pool_loos(parts)
    full = az.loo(_restricted(tree, None, 1), var_name="trial", pointwise=True,
                  log_weights=xr.concat([p.log_weights for p in parts], dim="observation").sortby("observation"),
                  pareto_k=xr.concat([p.pareto_k for p in parts], dim="observation").sortby("observation"))
    assert pooled.elpd == pytest.approx(full.elpd, rel=1e-9)
    assert pooled.se == pytest.approx(full.se, rel=1e-9)
    assert pooled.p == pytest.approx(full.p, rel=1e-9)
    assert pooled.n_data_points == full.n_data_points == obs.size
    np.testing.assert_allclose(pooled.elpd_i.sortby("observation"), full.elpd_i, rtol=1e-9)
    # and the sum of the parts, with more than one participant's worth of trials
    assert pooled.elpd == pytest.approx(sum(p.elpd for p in parts), rel=1e-12)


def test_shards_give_the_comparison_of_the_whole(fits, comparison, shard_dirs):
    """Two one-participant shards compared shard by shard: the same table as the fits of both together."""
    shards = group_shards(shard_dirs)
    assert len(shards) == 2 and all(sorted(s) == sorted(fits.models) for s in shards)
    sharded = compare_shards(shards)
    key = ["scope", "participant", "model"]
    a = comparison.table.sort_values(key).reset_index(drop=True)
    b = sharded.table.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a[key + ["rank", "winner"]], b[key + ["rank", "winner"]])
    for column in ("elpd_loo", "se", "p_loo", "elpd_diff", "dse", "weight", "n_trials", "pareto_k_max"):
        np.testing.assert_allclose(b[column], a[column], rtol=1e-6, atol=1e-9, err_msg=column)
    pd.testing.assert_frame_equal(comparison.wins.sort_values("model").reset_index(drop=True),
                                  sharded.wins.sort_values("model").reset_index(drop=True))
    np.testing.assert_allclose(_oriented(sharded.pairwise), _oriented(comparison.pairwise), rtol=1e-6)


def _oriented(pairwise: pd.DataFrame) -> np.ndarray:
    """Pairwise (elpd_diff, se) with each pair written A < B by name (the model order follows the files)."""
    flip = pairwise["model_a"] > pairwise["model_b"]
    out = pairwise.assign(elpd_diff=np.where(flip, -pairwise["elpd_diff"], pairwise["elpd_diff"]),
                          model_a=np.where(flip, pairwise["model_b"], pairwise["model_a"]),
                          model_b=np.where(flip, pairwise["model_a"], pairwise["model_b"]))
    return out.sort_values(["scope", "participant", "model_a", "model_b"])[["elpd_diff", "se"]].to_numpy()


def test_one_shard_is_the_plain_comparison(fit_files, comparison):
    shards = group_shards([fit_files["forgetful"].parent])
    assert len(shards) == 1
    pd.testing.assert_frame_equal(compare_shards(shards).table, comparison.table)


def test_shard_refusals_name_the_files(fit_files, shard_dirs, tmp_path):
    """A shard without every model, and a participant in two shards, are refused with the files named."""
    only = tmp_path / "only"
    only.mkdir()
    lone = only / "x.nc"
    lone.write_bytes((shard_dirs[1] / fit_files["forgetful"].name).read_bytes())
    with pytest.raises(CogflexError, match="no fit of model") as info:
        group_shards([shard_dirs[0], only])
    assert str(lone) in str(info.value)
    with pytest.raises(CogflexError, match="in two shards") as info:
        group_shards([shard_dirs[0], fit_files["forgetful"].parent])
    assert "sim01" in str(info.value)


def test_cli_compare_shards(fits, comparison, shard_dirs, tmp_path, capsys):
    out = tmp_path / "c.csv"
    status, stdout, err = cli(capsys, "compare", *shard_dirs, "--out", out, "--quiet")
    assert status == 0, err
    assert "2 shards of participants" in stdout
    table = pd.read_csv(out, dtype={"participant": str})
    np.testing.assert_allclose(table.sort_values(["scope", "participant", "model"])["elpd_loo"],
                               comparison.table.sort_values(["scope", "participant", "model"])["elpd_loo"],
                               rtol=1e-5)
    status, _, err = cli(capsys, "compare", shard_dirs[0], tmp_path / "nope", "--quiet")
    assert_one_line_error(status, err, "nope")


def _args(participants=None, shard=None):
    return argparse.Namespace(participants=participants, shard=shard)


class _Data:
    participants = [f"p{i}" for i in range(10)]


def test_shard_selection_partitions_the_participants():
    shards = [_selected(_args(shard=f"{k}/3"), _Data) for k in (1, 2, 3)]
    assert shards[0] == ["p0", "p3", "p6", "p9"] and shards[1] == ["p1", "p4", "p7"]
    assert sorted(sum(shards, [])) == sorted(_Data.participants)
    assert _selected(_args(participants=["p5", "p1", "p2"], shard="2/2"), _Data) == ["p1"]
    assert _selected(_args(), _Data) is None


@pytest.mark.parametrize("shard, fragment", [("0/3", "1 <= K <= N"), ("4/3", "1 <= K <= N"), ("a/b", "K/N"),
                                             ("3", "K/N"), ("11/11", "empty")])
def test_bad_shard_is_a_one_line_error(shard, fragment, trial_file, capsys, tmp_path):
    status, _, err = cli(capsys, "fit", trial_file, "--model", "descriptive", "--shard", shard, "--out",
                         tmp_path / "o", "--draws", "25", "--tune", "5", "--chains", "1", "--quiet")
    assert_one_line_error(status, err, "shard", fragment)


def test_fit_in_shards_then_compare_end_to_end(trial_file, model_files, tmp_path, capsys):
    """cogflex fit --shard 1/2 and 2/2 into two folders, then cogflex compare over both folders."""
    folders = []
    for k in (1, 2):
        folder = tmp_path / f"shard{k}"
        for model in model_files.values():
            status, _, err = cli(capsys, "fit", trial_file, "--model", model, "--shard", f"{k}/2", "--out", folder,
                                 "--draws", "30", "--tune", "30", "--chains", "1", "--seed", "3", "--quiet")
            assert status == 0, err
        assert [json.loads(load_fit(f).attrs["participants"]) for f in sorted(folder.glob("*.nc"))] == \
            [[f"sim0{k}"]] * 2
        folders.append(folder)
    out = tmp_path / "c.csv"
    status, stdout, err = cli(capsys, "compare", *folders, "--out", out, "--quiet")
    assert status == 0, err
    table = pd.read_csv(out, dtype={"participant": str})
    pooled = table[table["scope"] == "pooled"].set_index("model")
    per = table[table["scope"] == "participant"]
    assert set(per["participant"]) == {"sim01", "sim02"}
    for model, grp in per.groupby("model"):
        assert pooled.loc[model, "elpd_loo"] == pytest.approx(grp["elpd_loo"].sum(), abs=0.01)  # CSV: 6 digits
        assert pooled.loc[model, "n_trials"] == grp["n_trials"].sum()


def test_shards_in_parallel_workers_give_the_same_comparison(shard_dirs):
    """Shards run in a local pool of 2 processes: the same table, wins and pairs as one after the other."""
    from cogflex.executors import LocalExecutor

    shards = group_shards(shard_dirs)
    one = compare_shards(shards)
    two = compare_shards(shards, executor=LocalExecutor(2))
    pd.testing.assert_frame_equal(one.table, two.table)
    pd.testing.assert_frame_equal(one.wins, two.wins)
    pd.testing.assert_frame_equal(one.pairwise, two.pairwise)


def test_pointwise_results_drop_the_importance_weights(fit_files):
    """What a shard sends back per participant and model is pointwise (trials), not draws x trials."""
    from cogflex.fit.compare import _shard_loos

    res = _shard_loos([str(f) for f in fit_files.values()], 1)
    assert res["participants"] == ["sim01", "sim02"]
    for loos in res["pointwise"].values():
        assert len(loos) == 2
        for loo in loos:
            assert loo.log_weights is None and loo.elpd_i.dims == ("observation",)
