"""One correctness rule, chosen at load, for check, cleaning, summaries and fits alike; warnings about it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cogflex.data import clean, load_trials, participant_warnings
from cogflex.errors import ConfigError
from cogflex.fit.prepare import prepare
from tests.data.helpers import SHARED, assert_one_line_error, cli


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """Two games of each shared player, plus a copy of 1365's whose 'correct' column is all false."""
    raw = pd.read_csv(SHARED, dtype={"user_id": str, "game_result_id": str})
    games = raw.groupby("user_id")["nth_master"].transform(lambda s: s.rank(method="dense"))
    small = raw[games <= 2].copy()
    wrong = small[small["user_id"] == "1365"].assign(user_id="9999", correct="F")
    path = tmp_path_factory.mktemp("correctness") / "export.csv"
    pd.concat([small, wrong]).to_csv(path, index=False)
    return path


def _truth(trials: pd.DataFrame) -> np.ndarray:
    return (trials["response"].astype("string") == trials["correct_response"].astype("string")).fillna(False) \
        .to_numpy(dtype=bool)


def test_response_rule_is_the_default_and_counts_the_disagreements(export):
    data = load_trials(export)
    t = data.trials
    np.testing.assert_array_equal(t["correct"].astype(bool).to_numpy(), _truth(t))
    given = pd.read_csv(export, dtype={"user_id": str})
    n_diff = int((given["correct"].eq("T").to_numpy() != _truth(t.sort_values("line"))).sum())
    assert n_diff > 100  # 9999's column is all false; 1089's is always true
    assert data.correctness == {"rule": "response", "disagree": n_diff, "checked": True}
    assert data.correctness_line() == (f"correctness: response == correct response (the 'correct' column "
                                       f"disagrees on {n_diff:,} trials)")
    # prev_correct (and so the post-error cleaning rule) follows the rule, not the file's column
    first = t["session"].ne(t["session"].shift()) | t["participant"].ne(t["participant"].shift())
    prev = t["correct"].shift()
    assert (t.loc[~first, "prev_correct"].astype(bool) == prev[~first].astype(bool)).all()


def test_column_rule_keeps_the_file_and_warns_about_an_all_false_participant(export):
    data = load_trials(export, correctness="column")
    assert data.correctness["rule"] == "column" and data.correctness["disagree"] > 100
    assert not data.trials.loc[data.trials["participant"] == "9999", "correct"].any()
    warned = participant_warnings(data, clean(data))
    assert any(w.startswith("participant 9999: accuracy 0.000 by the 'column' correctness rule") for w in warned)
    # the default cleaning drops every error: nothing of 9999 is left for RTs
    assert "participant 9999: the cleaning keeps no trial of" in " ".join(warned)
    # 1089's own column says every trial was correct (the real export's quirk): near 1, said so
    assert any(w.startswith("participant 1089: accuracy 1.000") for w in warned)


def test_unknown_rule_is_a_config_error(export):
    with pytest.raises(ConfigError, match="unknown rule 'maybe'"):
        load_trials(export, correctness="maybe")


def test_data_check_prints_the_rule_and_the_warnings(export, capsys, tmp_path):
    status, out, _ = cli(capsys, "data", "check", export, "--correctness", "column", "--json", tmp_path / "c.json")
    assert status == 0
    assert "correctness: the file's 'correct' column (response == correct response disagrees on" in out
    assert "WARNING: participant 9999: accuracy 0.000" in out
    info = json.loads((tmp_path / "c.json").read_text())
    assert info["correctness"]["rule"] == "column" and any("9999" in w for w in info["warnings"])
    status, out, _ = cli(capsys, "data", "check", export)
    assert "correctness: response == correct response (the 'correct' column disagrees on" in out
    status, _, err = cli(capsys, "data", "check", export, "--correctness", "maybe")
    assert_one_line_error(status, err, "--correctness")


def test_fit_data_carries_the_same_rule_and_warnings(export):
    from cogflex.fit.prepare import FIT_CLEANING

    data = load_trials(export, correctness="column")
    short = data.with_trials(data.trials[data.trials["participant"] != "9999"].head(40).reset_index(drop=True))
    fd = prepare(short)
    assert fd.notes[0] == data.correctness_line()
    assert fd.warnings == participant_warnings(short, clean(short, FIT_CLEANING))
    assert "participant 1089: accuracy 1.000" in fd.warnings[0]
    assert any("participant 1089: the cleaning keeps only" in w for w in fd.warnings)
