"""Acceptance on the shared Lumosity Ebb and Flow export (two players, 47,926 trials).

The file lives outside the clone (../shared/data/ebb_and_flow/) and is read in place, never copied.
Reference values: switch cost and repeat-trial congruency effect of both players by practice bin, with
the default cleaning rules.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cogflex.data import CleaningRules, clean, load_ebb_and_flow, load_trials, summarize
from tests.data.helpers import SHARED, check_derived_invariants, cli

BINS = [150, 250, 350, 501]
BIN_LABELS = ["150-249", "250-349", "350-500"]


@pytest.fixture(scope="module")
def data():
    assert SHARED == SHARED.resolve() and SHARED.parts[-4:-2] == ("shared", "data")
    assert SHARED.exists(), f"the shared Ebb and Flow export is missing: {SHARED}"
    return load_ebb_and_flow(SHARED)


@pytest.fixture(scope="module")
def summary(data):
    return summarize(data, bins=BINS)


def by_bin(table: pd.DataFrame, participant: str, column: str) -> dict[str, float]:
    rows = table[table["participant"] == participant]
    return {b: float(rows.loc[rows["practice_bin"] == b, column].item()) for b in BIN_LABELS}


def test_shared_path_is_outside_the_clone():
    assert SHARED.as_posix().endswith("shared/data/ebb_and_flow/ebb_and_flow_2users.csv.gz")
    assert "tests" not in SHARED.parts


def test_counts(data):
    assert data.format == "ebb-and-flow"
    assert data.n_trials == 47_926
    assert data.participants == ["1089", "1365"]
    assert data.n_sessions == 687
    assert data.tasks == ["point", "move"]
    assert data.trials["session"].between(150, 500).all()


def test_same_table_through_load_trials(data):
    assert load_trials(SHARED).digest() == data.digest()


def test_derived_columns(data):
    t = data.trials
    check_derived_invariants(t)
    not_first = t["prev_correct"].notna()
    rate = float(t.loc[not_first, "switch"].astype(float).mean())
    assert 0.17 <= rate <= 0.20
    # congruency derived from the stimuli, correct response from the cue
    assert (t["congruent"] == (t["stim_point"].astype(str) == t["stim_move"].astype(str))).all()
    point = t["task"] == "point"
    assert (t.loc[point, "correct_response"].astype(str) == t.loc[point, "stim_point"].astype(str)).all()
    assert t["rt"].dropna().between(0, 60).all()


def test_switch_column_agrees_and_correct_disagreements_noted(data):
    assert not any("the file's switch" in n for n in data.notes)
    assert any("'correct' disagrees with response == correct response on 791 trials" in n for n in data.notes)


def test_switch_cost_by_practice_bin(summary):
    cost = summary.switch_cost
    p1089 = by_bin(cost, "1089", "switch_cost_ms")
    for label, expected in zip(BIN_LABELS, (201, 145, 159)):
        assert abs(p1089[label] - expected) <= 10, (label, p1089)
    p1365 = by_bin(cost, "1365", "switch_cost_ms")
    for label in BIN_LABELS:
        assert abs(p1365[label] - 45) <= 10, (label, p1365)


def test_repeat_trial_congruency_effect(summary):
    repeat = summary.congruency[summary.congruency["trial_type"] == "repeat"]
    for label, value in by_bin(repeat, "1089", "congruency_effect_ms").items():
        assert abs(value - 50) <= 10, (label, value)
    for label, value in by_bin(repeat, "1365", "congruency_effect_ms").items():
        assert 40 <= value <= 80, (label, value)


def test_accuracy(data, summary):
    t = data.trials
    acc_1365 = float(t.loc[t["participant"] == "1365", "correct"].astype(float).mean())
    assert 0.96 <= acc_1365 <= 1.0
    table = summary.by_trial_type
    rows = table[(table["participant"] == "1365") & (table["practice_bin"] == "all")]
    assert rows["accuracy"].between(0.96, 1.0).all()


def test_summary_tables_are_consistent(summary):
    t = summary.by_trial_type
    for _, row in summary.switch_cost.iterrows():
        sel = t[(t["participant"] == row["participant"]) & (t["practice_bin"] == row["practice_bin"])]
        medians = sel.set_index("trial_type")["rt_median_ms"]
        assert row["switch_cost_ms"] == pytest.approx(medians["switch"] - medians["repeat"])
    assert set(summary.switch_cost["participant"]) == {"1089", "1365", "all"}
    run = summary.run_position
    assert run["run_position"].max() == 6 and run["run_position"].min() == 1
    tidy = summary.tidy()
    assert {"switch_cost_ms", "rt_median_ms", "accuracy", "congruency_effect_ms"} <= set(tidy["measure"])


def test_default_cleaning_log(data):
    cleaned = clean(data)
    log = cleaned.cleaning
    assert list(log.columns) == ["total", "practice", "first_trial", "rt_bounds", "post_error", "errors", "mad",
                                 "kept"]
    assert list(log.index) == ["1089", "1365", "all"]
    assert log.loc["all", "first_trial"] == 687 and log.loc["all", "practice"] == 0 and log.loc["all", "mad"] == 0
    assert log.loc["all", "total"] == 47_926 and log.loc["all", "kept"] == len(cleaned.trials)
    assert (log.loc["all"] == log.drop(index="all").sum()).all()
    t = cleaned.trials
    assert t["correct"].all() and t["prev_correct"].all() and t["rt"].between(0.15, 3.0).all()
    with_mad = clean(data, CleaningRules(mad=3.0)).cleaning
    assert with_mad.loc["all", "mad"] > 0


def test_data_check_json(tmp_path, capsys):
    out = tmp_path / "check.json"
    status, stdout, err = cli(capsys, "data", "check", SHARED, "--json", out)
    assert status == 0 and err == ""
    info = json.loads(out.read_text())
    for key in ("n_trials", "n_participants", "n_sessions", "switch_rate", "accuracy", "cleaning",
                "switch_cost_ms"):
        assert key in info
    assert info["n_trials"] == 47_926 and info["n_participants"] == 2 and info["n_sessions"] == 687
    assert 0.17 <= info["switch_rate"] <= 0.20 and 0.9 <= info["accuracy"] <= 1.0
    assert set(info["cleaning"]) == {"practice", "first_trial", "rt_bounds", "post_error", "errors", "mad"}
    assert all(isinstance(v, int) for v in info["cleaning"].values()) and info["cleaning"]["first_trial"] == 687
    assert isinstance(info["switch_cost_ms"], float) and 40 < info["switch_cost_ms"] < 200
    assert "47,926 trials, 2 participants, 687 sessions" in stdout


def test_data_summarize_writes_tables_and_plots(tmp_path, capsys):
    out = tmp_path / "summary"
    status, stdout, err = cli(capsys, "data", "summarize", SHARED, "--out", out, "--practice-bins", "150,250,350,501")
    assert status == 0 and err == ""
    for name in ("by_trial_type", "switch_cost", "run_position", "congruency", "summary_tidy", "cleaning"):
        table = pd.read_csv(out / f"{name}.csv")
        assert len(table) > 0, name
    for name in ("switch_cost", "run_position", "accuracy"):
        png = (out / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    cost = pd.read_csv(out / "switch_cost.csv", dtype={"participant": str})
    row = cost[(cost["participant"] == "1089") & (cost["practice_bin"] == "150-249")]
    assert abs(float(row["switch_cost_ms"].item()) - 201) <= 10
    assert json.loads((out / "summary.json").read_text())["n_trials"] == 47_926
    assert not list(out.glob(".*.part"))
    assert np.isfinite(cost["switch_cost_ms"]).all()
