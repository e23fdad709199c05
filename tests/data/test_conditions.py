"""Block-level conditions (cond_* columns): the switch cost per condition level, per participant and pooled."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cogflex.data.cleaning import CleaningRules, clean
from cogflex.data.summaries import summarize
from cogflex.fit.simulate import Design, design_trials


def _with_rts(seed: int = 3):
    data = design_trials(Design(participants=3, sessions=6, trials_per_session=60, first_session=1, seed=seed,
                                session_switch_rates=(0.2, 0.8)))
    df = data.trials.copy()
    rng = np.random.default_rng(seed)
    # switch trials slower, more so in low-switch blocks (a rarer switch costs more)
    base = rng.uniform(0.5, 0.9, len(df))
    low = df["cond_switch_rate"].astype(float).to_numpy() < 0.5
    df["rt"] = base + df["switch"].fillna(False).to_numpy(dtype=bool) * np.where(low, 0.12, 0.04)
    df["correct"] = pd.array(np.ones(len(df), dtype=bool), dtype="boolean")
    return data.with_trials(df)


def test_switch_cost_per_condition_matches_the_medians():
    data = _with_rts()
    summary = summarize(data)
    table = summary.by_condition
    assert set(table["level"]) == {"0.2", "0.8"} and set(table["column"]) == {"cond_switch_rate"}
    rt = clean(data, CleaningRules()).trials
    rt = rt.assign(rt_ms=rt["rt"] * 1000)
    for _, row in table.iterrows():
        sub = rt[rt["cond_switch_rate"].astype(str) == row["level"]]
        if row["participant"] != "all":
            sub = sub[sub["participant"].astype(str) == row["participant"]]
        sw = sub.loc[sub["switch"].astype(bool), "rt_ms"]
        rep = sub.loc[~sub["switch"].astype(bool), "rt_ms"]
        assert np.isclose(row["switch_cost_ms"], sw.median() - rep.median())
        assert row["n_switch"] == len(sw) and row["n_repeat"] == len(rep)
    pooled = table[table["participant"] == "all"].set_index("level")["switch_cost_ms"]
    assert pooled["0.2"] > pooled["0.8"] + 40  # the effect built into the RTs (120 vs 40 ms) is found
    tidy = summary.tidy()
    rows = tidy[tidy["condition"].str.startswith("switch-repeat|")]
    assert set(rows["condition"]) == {"switch-repeat|cond_switch_rate=0.2", "switch-repeat|cond_switch_rate=0.8"}
    assert (rows["practice_bin"] == "all").all() and (rows["measure"] == "switch_cost_ms").all()


def test_no_condition_columns_no_condition_rows():
    data = _with_rts()
    plain = data.with_trials(data.trials.drop(columns=[c for c in data.trials if c.startswith("cond_")]))
    summary = summarize(plain)
    assert summary.by_condition.empty
    assert not summary.tidy()["condition"].str.contains("|", regex=False).any()


def test_an_identifier_column_is_not_a_condition():
    """Ebb and Flow's cond_game (one level per game) and a column with too many levels are not summarised."""
    data = _with_rts()
    df = data.trials.assign(cond_game=lambda d: d["participant"].astype(str) + "-" + d["session"].astype(str),
                            cond_many=lambda d: (d["trial"] % 10).astype(str))
    table = summarize(data.with_trials(df)).by_condition
    assert set(table["column"]) == {"cond_switch_rate"}
