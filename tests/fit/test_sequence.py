"""Task mappings (ebb-and-flow, two-task), correctness, clear errors, and prepare's observed-trial table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cogflex.data import CsvMapping, apply_correctness, load_csv, load_trials
from cogflex.data.schema import derive
from cogflex.errors import ConfigError, DataError
from cogflex.fit.prepare import FIT_CLEANING, prepare
from cogflex.fit.sequence import TaskMapping, default_mapping, encode
from cogflex.fit.simulate import Design, design_trials
from tests.data.helpers import PSYCHOPY, PSYCHOPY_MAP, SHARED
from tests.fit.helpers import kept_mask, tiny_trials
from tests.fit.reference import switch_and_run

DIRS = ["U", "D", "L", "R"]


@pytest.fixture(scope="module")
def design():
    return design_trials(Design(participants=3, sessions=2, trials_per_session=15, first_session=7, seed=3))


def _code(values: pd.Series, labels: list[str]) -> np.ndarray:
    return values.astype(str).map({label: i for i, label in enumerate(labels)}).to_numpy()


def test_ebb_and_flow_mapping(design):
    df = design.trials
    mask = np.random.default_rng(0).random(len(df)) < 0.7
    seqs = encode(design, mask)
    assert [s.participant for s in seqs] == ["sim01", "sim02", "sim03"]
    assert sorted(np.concatenate([s.rows for s in seqs]).tolist()) == list(range(len(df)))
    for seq in seqs:
        sub = df.iloc[seq.rows]
        assert (sub["participant"].astype(str) == seq.participant).all()
        assert np.all(np.diff(seq.rows) > 0)  # presentation order
        assert seq.n_responses == 4 and len(seq) == 30
        assert np.array_equal(seq.task, (sub["task"].astype(str) == "move").to_numpy().astype(int))
        assert np.array_equal(seq.features[:, 0], _code(sub["stim_point"], DIRS))
        assert np.array_equal(seq.features[:, 1], _code(sub["stim_move"], DIRS))
        assert np.array_equal(seq.target, _code(sub["correct_response"], DIRS))
        assert np.array_equal(seq.congruent, sub["congruent"].to_numpy(dtype=bool))
        assert np.array_equal(seq.session, sub["session"].to_numpy(dtype=int))
        assert np.array_equal(seq.observed, mask[seq.rows])
        assert np.array_equal(seq.rt, sub["rt"].to_numpy(dtype=float))
        assert seq.notes == []


def test_default_mapping_follows_the_data(design):
    assert default_mapping(design).name == "ebb-and-flow"
    psychopy = load_csv(PSYCHOPY, CsvMapping(PSYCHOPY_MAP, rt_unit="s"))
    mapping = default_mapping(psychopy)
    assert mapping.name == "two-task" and mapping.tasks is None and mapping.responses is None


def test_two_task_mapping_on_a_psychopy_file():
    data = load_csv(PSYCHOPY, CsvMapping(PSYCHOPY_MAP, rt_unit="s"))
    df = data.trials
    seqs = encode(data, np.ones(len(df), dtype=bool))
    assert [s.participant for s in seqs] == sorted(df["participant"].astype(str).unique())
    for seq in seqs:
        sub = df.iloc[seq.rows]
        assert seq.n_responses == 2
        # tasks and responses in sorted label order: colour = 0, shape = 1; f = 0, j = 1
        assert np.array_equal(seq.task, _code(sub["task"], ["colour", "shape"]))
        assert np.array_equal(seq.target, _code(sub["correct_response"], ["f", "j"]))
        # the cued task's feature is the correct response; no congruent column: every trial incongruent
        assert not seq.congruent.any()
        assert any("no congruent column" in note for note in seq.notes)
    fd = prepare(data)
    assert any("incongruent" in note for note in fd.notes)
    # practice rows (is_practice) and the no-response trial are not in the likelihood
    assert not df["practice"].to_numpy(dtype=bool)[fd.trials["row"]].any()
    assert fd.trials["rt"].notna().all()


def test_two_task_mapping_uses_a_congruent_column(design):
    data = design.with_trials(design.trials.drop(columns=["stim_point", "stim_move"]))
    mapping = TaskMapping(name="two-task", tasks=None, responses=None, features=None, seed=11)
    (seq, *_) = encode(data, np.ones(len(data.trials), dtype=bool), mapping)
    sub = data.trials.iloc[seq.rows]
    assert np.array_equal(seq.task, _code(sub["task"], ["move", "point"]))  # sorted labels
    assert np.array_equal(seq.target, _code(sub["correct_response"], sorted(DIRS)))
    assert np.array_equal(seq.congruent, sub["congruent"].to_numpy(dtype=bool))
    irrelevant = seq.features[np.arange(len(seq)), 1 - seq.task]
    assert np.all((irrelevant == seq.target) == seq.congruent)
    assert seq.notes == []
    # the irrelevant features are drawn with the mapping's seed
    (again, *_) = encode(data, np.ones(len(data.trials), dtype=bool), mapping)
    assert np.array_equal(again.features, seq.features)


def test_the_fit_takes_correctness_from_the_loaded_data_and_says_which_rule():
    """One rule: prepare() uses the trials' correct column as loaded, and its first note names the rule."""
    data = tiny_trials()
    df = data.trials.copy()
    truth = (df["response"].astype(str) == df["correct_response"].astype(str)).to_numpy()
    assert (~truth).sum() > 5
    df["correct"] = pd.array(np.ones(len(df), dtype=bool), dtype="boolean")  # the file's column says all correct
    for rule, want in (("response", truth), ("column", np.ones(len(df), dtype=bool))):
        loaded = apply_correctness(data.with_trials(df), rule)
        fd = prepare(loaded)
        assert np.array_equal(fd.trials["correct"].to_numpy(), want[fd.trials["row"]])
        assert fd.notes[0] == loaded.correctness_line()
        assert f"disagrees on {(~truth).sum()} trials" in fd.notes[0]
    # without responses the correct column is used, and the note says there was nothing to check it against
    no_resp = apply_correctness(data.with_trials(df.assign(response=pd.Categorical([None] * len(df),
                                                                                    categories=DIRS))))
    fd = prepare(no_resp)
    assert fd.trials["correct"].all() and "no response" in fd.notes[0]


def _with(data, column: str, rows: list[int], value):
    df = data.trials.copy()
    col = df[column].astype(object)
    col.iloc[rows] = value
    df[column] = col.astype("category")
    return data.with_trials(df)


@pytest.mark.parametrize(("column", "rows", "value", "words"), [
    ("stim_point", [4], "X", "'X' is not one of the mapping's labels"),
    ("task", [3], "colour", "'colour' is not one of the mapping's labels (point, move)"),
    ("stim_move", [6], None, "missing value in row 6"),
    ("task", [2], None, "missing value in row 2"),
    ("stim_move", [7], "up", "'up' is not one of the mapping's labels"),
])
def test_encoding_errors_name_the_column(design, column, rows, value, words):
    bad = _with(design, column, rows, value)
    with pytest.raises(DataError) as info:
        encode(bad, np.ones(len(bad.trials), dtype=bool))
    assert words in str(info.value)
    assert info.value.column == column


def test_more_than_two_tasks_is_an_error(design):
    bad = _with(design, "task", [3, 20], "colour")
    mapping = TaskMapping(name="two-task", tasks=None, responses=None, features=None)
    with pytest.raises(DataError) as info:
        encode(bad, np.ones(len(bad.trials), dtype=bool), mapping)
    assert info.value.column == "task" and "exactly two tasks, found 3: colour, move, point" in str(info.value)


def test_missing_stimulus_column_points_to_the_two_task_mapping(design):
    bad = design.with_trials(design.trials.drop(columns=["stim_move"]))
    with pytest.raises(DataError) as info:
        encode(bad, np.ones(len(bad.trials), dtype=bool), TaskMapping())
    assert info.value.column == "stim_move" and "--mapping two-task" in str(info.value)


def test_one_task_is_an_error_unless_the_mapping_declares_both(design):
    one = design.with_trials(design.trials[design.trials["task"] == "point"].reset_index(drop=True))
    mask = np.ones(len(one.trials), dtype=bool)
    with pytest.raises(DataError, match="exactly two tasks, found 1: point"):
        encode(one, mask, TaskMapping(name="two-task", tasks=None, responses=None, features=None))
    (seq, *_) = encode(one, mask)  # ebb-and-flow declares point and move: a player may see one of them only
    assert (seq.task == 0).all()


def test_declared_labels_must_match_the_data(design):
    with pytest.raises(DataError, match="'move' is not one of the mapping's labels"):
        encode(design, np.ones(len(design.trials), dtype=bool), TaskMapping(tasks=("point", "other")))


def _acc_rt_only(design):
    """The design with only cue, congruency, correctness and RT left (no responses, no stimuli)."""
    dropped = ["stim_point", "stim_move", "response", "correct_response"]
    return design.with_trials(design.trials.drop(columns=dropped))


def test_two_task_mapping_without_response_columns(design):
    """Accuracy-and-RT data: two arbitrary response codes, drawn with the seed, consistent with the congruency."""
    data = _acc_rt_only(design)
    mask = np.ones(len(data.trials), dtype=bool)
    mapping = TaskMapping(name="two-task", tasks=None, responses=None, features=None, seed=5)
    seqs = encode(data, mask, mapping)
    for seq in seqs:
        sub = data.trials.iloc[seq.rows]
        assert seq.n_responses == 2
        assert np.array_equal(seq.task, _code(sub["task"], ["move", "point"]))
        assert np.array_equal(seq.congruent, sub["congruent"].to_numpy(dtype=bool))
        irrelevant = seq.features[np.arange(len(seq)), 1 - seq.task]
        assert np.all((irrelevant == seq.target) == seq.congruent)
        assert set(np.unique(seq.target)) == {0, 1}
        assert any("no correct_response column" in note and "seed 5" in note for note in seq.notes)
    # the codes are drawn with the mapping's seed: the same seed, the same sequence; another seed, another one
    again = encode(data, mask, mapping)
    other = encode(data, mask, TaskMapping(name="two-task", tasks=None, responses=None, features=None, seed=6))
    assert all(np.array_equal(a.features, b.features) for a, b in zip(seqs, again))
    assert not all(np.array_equal(a.features, b.features) for a, b in zip(seqs, other))
    # a declared response set names the codes
    (named, *_) = encode(data, mask, TaskMapping(name="two-task", tasks=None, responses=("left", "right"),
                                                 features=None, seed=5))
    assert np.array_equal(named.features, seqs[0].features) and "left, right" in named.notes[0]
    # an empty correct_response column counts as absent
    empty = data.with_trials(data.trials.assign(correct_response=pd.Categorical([None] * len(data.trials))))
    assert all(np.array_equal(a.features, b.features) for a, b in zip(seqs, encode(empty, mask, mapping)))


def test_a_lab_csv_with_only_cue_congruency_accuracy_and_rt_is_prepared(design, tmp_path):
    """The file a lab has: subject, block, trial, cue, congruency, accuracy (1/0), RT in ms; prepare() fits it."""
    df = design.trials
    table = pd.DataFrame({"subject": df["participant"].astype(str), "block": df["session"], "trial": df["trial"],
                          "cue": df["task"].astype(str), "congruency": np.where(df["congruent"], "congruent",
                                                                                  "incongruent"),
                          "acc": df["correct"].astype(int), "rt_ms": (df["rt"] * 1000).round(1)})
    path = tmp_path / "acc_rt_only.csv"
    table.to_csv(path, index=False)
    data = load_csv(path, CsvMapping({"participant": "subject", "session": "block", "trial": "trial", "task": "cue",
                                      "congruent": "congruency", "correct": "acc", "rt": "rt_ms"}, rt_unit="ms",
                                     recode={"correct": {"1": True, "0": False},
                                             "congruent": {"congruent": True, "incongruent": False}}))
    assert default_mapping(data).name == "two-task"
    fd = prepare(data)
    assert any("no correct_response column" in note for note in fd.notes)
    assert "no response" in fd.notes[0]  # correctness from the file's column: nothing to check it against
    assert np.array_equal(fd.trials["correct"].to_numpy(), df["correct"].to_numpy(dtype=bool)[fd.trials["row"]])
    for seq, pid in zip(fd.sequences, fd.participants):
        assert seq.n_responses == 2
        assert np.array_equal(seq.congruent, df.loc[df["participant"] == pid, "congruent"].to_numpy(dtype=bool))


def test_two_task_mapping_needs_two_distinct_responses(design):
    df = design.trials.drop(columns=["stim_point", "stim_move"])
    df["correct_response"] = pd.Categorical(["U"] * len(df))
    data = design.with_trials(df)
    with pytest.raises(DataError, match="at least two distinct"):
        encode(data, np.ones(len(df), dtype=bool), TaskMapping(name="two-task", tasks=None, responses=None,
                                                                features=None))


def test_unknown_mapping_name():
    with pytest.raises(ConfigError, match="unknown mapping 'three-task'"):
        TaskMapping(name="three-task")


# -- prepare: participants, cleaning, the observed-trial table -------------------------------------------------------


def test_prepare_builds_the_observed_trial_table(trials):
    fd = prepare(trials)
    df = trials.trials
    kept = kept_mask(df)
    assert fd.participants == ["sim01", "sim02"]
    assert np.array_equal(fd.trials["row"].to_numpy(), np.flatnonzero(kept))
    assert fd.n_trials == kept.sum() == 2 * (60 - 3 - 2)  # 3 session starts and 2 out-of-bounds RTs each
    switch, run = switch_and_run((df["task"].astype(str) == "move").to_numpy(), df["session"].to_numpy())
    rows = fd.trials["row"].to_numpy()
    assert np.array_equal(fd.trials["switch"].to_numpy(), switch[rows])
    assert np.array_equal(fd.trials["run_position"].to_numpy(), run[rows])
    assert np.array_equal(fd.trials["pidx"].to_numpy(), (df["participant"].astype(str) == "sim02").to_numpy()[rows])
    for i in range(2):
        sub = fd.trials[fd.trials["pidx"] == i]
        log_session = np.log(sub["session"].to_numpy(dtype=float))
        np.testing.assert_allclose(sub["log_practice"], log_session - log_session.mean(), atol=1e-12)
    np.testing.assert_allclose(fd.trials["rt"], df["rt"].to_numpy()[rows])
    assert fd.digest == trials.digest()
    assert FIT_CLEANING.errors is False  # errors stay in: accuracy is modelled
    assert not fd.trials["correct"].all()


def test_prepare_selects_participants(trials):
    fd = prepare(trials, participants=["sim02"])
    assert fd.participants == ["sim02"] and (fd.trials["pidx"] == 0).all()
    sim02 = (trials.trials["participant"] == "sim02").to_numpy()
    np.testing.assert_array_equal(fd.trials["row"], np.flatnonzero(kept_mask(trials.trials) & sim02))
    assert len(fd.sequences) == 1 and fd.sequences[0].participant == "sim02"
    with pytest.raises(DataError, match="participant 'nobody' not in the data"):
        prepare(trials, participants=["nobody"])


def test_prepare_rejects_a_participant_without_kept_trials(trials):
    df = trials.trials.copy()
    df.loc[df["participant"] == "sim02", "rt"] = 5.0
    with pytest.raises(DataError, match="'sim02' has no trials left after cleaning"):
        prepare(trials.with_trials(derive(df)))


@pytest.mark.skipif(not Path(SHARED).exists(), reason="shared Ebb and Flow export not available")
def test_player_data_encode_without_sampling():
    data = load_trials(SHARED, "ebb-and-flow")
    fd = prepare(data)
    df = data.trials
    assert len(fd.sequences) == 2
    for seq in fd.sequences:
        sub = df.iloc[seq.rows]
        assert seq.n_responses == 4
        assert np.array_equal(seq.target, _code(sub["correct_response"], DIRS))
        assert seq.session.min() >= 100  # Ebb and Flow exports start at a late gameplay: practice is simulated
    assert 0.8 * len(df) < fd.n_trials <= len(df)
    assert all(np.isfinite(fd.trials["rt"])) and fd.trials["rt"].between(0.15, 3.0).all()
