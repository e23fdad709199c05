"""Posterior predictive checks: observed vs replicated data-layer statistics of a fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cogflex.data import apply_correctness, summarize
from cogflex.data.summaries import ALL
from cogflex.errors import CogflexError
from cogflex.fit.ppc import PPC_COLUMNS, plot_ppc, posterior_predictive_check
from tests.pipeline.conftest import PPC_DRAWS

KEY = ["participant", "measure", "condition", "practice_bin"]


def test_columns_and_models(ppc_table, fits):
    """The table has the documented columns, both models, every participant and the pooled rows."""
    assert list(ppc_table.columns) == PPC_COLUMNS
    assert set(ppc_table["model"]) == set(fits.models)
    assert set(ppc_table["participant"]) == {"sim01", "sim02", ALL}
    assert {"switch_cost_ms", "rt_median_ms", "accuracy", "rt_quantile_ms"} <= set(ppc_table["measure"])
    for _, rows in ppc_table.groupby("model"):
        assert not rows.duplicated(KEY).any()


@pytest.mark.parametrize("measure", ["switch_cost_ms", "accuracy", "rt_median_ms"])
def test_observed_values_are_the_data_layer_summaries(ppc_table, data, measure):
    """'observed' equals summarize(data).tidy() for the same statistic, in every model."""
    tidy = summarize(data, bins=3).tidy()
    want = tidy[tidy["measure"] == measure].set_index(KEY)["value"].astype(float).sort_index()
    assert len(want) > 3
    for _, rows in ppc_table[ppc_table["measure"] == measure].groupby("model"):
        got = rows.set_index(KEY)["observed"].sort_index()
        pd.testing.assert_index_equal(got.index, want.index)
        np.testing.assert_allclose(got.to_numpy(), want.to_numpy())


def test_observed_accuracy_uses_the_loading_rule(data):
    """The PPC summarises the data's correct column (above), which the correctness rule sets once, at load."""
    flipped = data.with_trials(data.trials.assign(correct=~data.trials["correct"].astype(bool)))
    truth = (data.trials["response"].astype(str) == data.trials["correct_response"].astype(str)).to_numpy()
    again = apply_correctness(flipped, "response")
    np.testing.assert_array_equal(again.trials["correct"].astype(bool).to_numpy(), truth)
    assert again.correctness == {"rule": "response", "disagree": len(truth), "checked": True}
    kept = apply_correctness(flipped, "column")
    np.testing.assert_array_equal(kept.trials["correct"].astype(bool).to_numpy(), ~truth)


def test_summaries_of_the_replications(ppc_table):
    """low <= mean <= high where finite; replications count the finite ones (all draws where always defined)."""
    t = ppc_table
    finite = t[["mean", "low", "high"]].notna().all(axis=1)
    assert finite.mean() > 0.8
    f = t[finite]
    # with 4 replications the mean always lies inside the central 90% interval (linear quantiles)
    assert (f["low"] <= f["mean"] + 1e-9).all() and (f["mean"] <= f["high"] + 1e-9).all()
    assert ((f["p_greater"] >= 0) & (f["p_greater"] <= 1)).all()
    assert ((t["replications"] >= 0) & (t["replications"] <= PPC_DRAWS)).all()
    assert (t.loc[~finite, "replications"] == 0).all()
    always = t[(t["measure"].isin(["rt_median_ms", "rt_quantile_ms"])) & (t["condition"].str.startswith("repeat"))
               & (t["practice_bin"] == ALL)]
    assert len(always) > 0 and (always["replications"] == PPC_DRAWS).all()
    assert (t.loc[t["measure"] == "accuracy", "replications"] == PPC_DRAWS).all()


def test_replications_vary_with_the_draws(ppc_table):
    """Replicated statistics are not constants: the band has width and differs from the observed values."""
    rt = ppc_table[(ppc_table["measure"] == "rt_median_ms") & (ppc_table["replications"] == PPC_DRAWS)]
    assert (rt["high"] > rt["low"]).mean() > 0.9
    assert not np.allclose(rt["mean"], rt["observed"])


def test_seed_reproducibility(fits, data):
    """Same seed: identical table; another seed: other replications, same observed values."""
    tree = fits.trees["tiny-descriptive"]
    a = posterior_predictive_check(tree, data, draws=3, seed=11, bins=2)
    b = posterior_predictive_check(tree, data, draws=3, seed=11, bins=2)
    c = posterior_predictive_check(tree, data, draws=3, seed=12, bins=2)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_series_equal(a["observed"], c["observed"])
    assert not np.allclose(a["mean"].to_numpy(), c["mean"].to_numpy(), equal_nan=True)


def test_other_data_is_refused(fits, data):
    """Data that differ from the fitted data (one RT changed) are refused with a CogflexError."""
    trials = data.trials.copy()
    trials.loc[7, "rt"] = trials.loc[7, "rt"] * 1.5
    with pytest.raises(CogflexError, match="other data"):
        posterior_predictive_check(fits.trees["tiny-descriptive"], data.with_trials(trials), draws=2)


def test_too_few_replications_are_refused(fits, data):
    """draws < 2 is refused (no interval from one replication)."""
    with pytest.raises(CogflexError, match="at least 2"):
        posterior_predictive_check(fits.trees["tiny-descriptive"], data, draws=1)


def test_plot_ppc(ppc_table, tmp_path):
    """plot_ppc writes a PNG with one panel per statistic; an unknown participant is refused."""
    import matplotlib.pyplot as plt

    path = tmp_path / "ppc.png"
    fig = plot_ppc(ppc_table, "sim01", path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sum(ax.get_visible() for ax in fig.axes) == 6
    plt.close(fig)
    with pytest.raises(CogflexError, match="nobody"):
        plot_ppc(ppc_table, "nobody")


def test_switch_cost_without_rt_trials_of_one_type(data):
    """A bin whose switch trials are all errors has accuracy but no switch cost (summaries used to crash)."""
    trials = data.trials.copy()
    first = trials["participant"].astype(str).eq("sim01") & trials["session"].eq(trials["session"].min())
    switch = first & trials["switch"].fillna(False).astype(bool)
    assert switch.sum() >= 1
    trials.loc[switch, "correct"] = False
    tidy = summarize(data.with_trials(trials), bins=3).tidy()
    sim01 = tidy[(tidy["participant"] == "sim01") & (tidy["practice_bin"] != ALL)]
    first_bin = sorted(sim01["practice_bin"].unique())[0]
    in_bin = sim01[sim01["practice_bin"] == first_bin]
    assert in_bin.loc[(in_bin["measure"] == "accuracy") & (in_bin["condition"] == "switch"), "value"].item() == 0.0
    assert not (in_bin["measure"] == "switch_cost_ms").any()
