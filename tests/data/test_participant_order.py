"""Participant ids in natural order (1, 2, 10, not 1, 10, 2) in the trial table, the summaries and the CLI."""

from __future__ import annotations

import pandas as pd
import pytest

from cogflex.cli import main
from cogflex.data import load_trials, natural_key, natural_sorted, summarize
from cogflex.resources import data_path

IDS = ["1", "2", "10"]


def test_natural_sorted_reads_digit_runs_as_numbers():
    assert natural_sorted(["10", "2", "1"]) == ["1", "2", "10"]
    assert natural_sorted(["p10", "p2", "q1", "p1a"]) == ["p1a", "p2", "p10", "q1"]
    assert natural_sorted(["50-99", "all", "100-149"], last=["all"]) == ["50-99", "100-149", "all"]
    assert natural_sorted(["all", "b", "a"], last=["all"]) == ["a", "b", "all"]
    assert natural_sorted([10, 2, "1"]) == ["1", 2, 10]
    assert natural_key("01") != natural_key("1") and natural_sorted(["1", "01"]) == ["01", "1"]  # total order


@pytest.fixture(scope="module")
def numbered(tmp_path_factory):
    """The bundled synthetic players renamed 1, 10 and 2 (text order differs from numeric order)."""
    frame = pd.read_csv(data_path("synthetic/flexible_players.csv.gz"), dtype=str)
    frame["user_id"] = frame["user_id"].map({"sim01": "1", "sim02": "10", "sim03": "2"})
    path = tmp_path_factory.mktemp("ids") / "numbered.csv.gz"
    frame.to_csv(path, index=False)
    return path


def test_loaded_trials_and_summaries_follow_natural_order(numbered):
    data = load_trials(numbered, "ebb-and-flow")
    assert data.participants == IDS
    summary = summarize(data)
    for table in (summary.by_trial_type, summary.switch_cost, summary.run_position, summary.rt_quantiles):
        assert list(dict.fromkeys(table["participant"])) == [*IDS, "all"]
    assert list(summary.cleaning.index) == [*IDS, "all"]
    bins = list(dict.fromkeys(summary.switch_cost["practice_bin"]))
    assert bins[-1] == "all" and bins[:-1] == natural_sorted(bins[:-1])


def test_data_summarize_prints_participants_in_natural_order(numbered, tmp_path, capsys):
    assert main(["data", "summarize", str(numbered), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    header = out[out.index("switch cost by practice bin"):].splitlines()[1].split()
    assert header == ["participant", *IDS, "all"]
    assert list(dict.fromkeys(pd.read_csv(tmp_path / "switch_cost.csv", dtype=str)["participant"])) == [*IDS, "all"]
