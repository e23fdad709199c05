"""Lab CSVs in the layouts PsychoPy, jsPsych and home-made scripts write, through CsvMapping and the CLI."""

from __future__ import annotations

import csv
import json
import math

import pandas as pd
import pytest

from cogflex.data import CsvMapping, clean, load_csv, load_trials, summarize
from cogflex.errors import DataError
from tests.data.helpers import (
    JSPSYCH,
    JSPSYCH_MAP,
    JSPSYCH_RECODE,
    LAB,
    LAB_MAP,
    LAB_RECODE,
    LAB_TOML,
    PSYCHOPY,
    PSYCHOPY_MAP,
    assert_one_line_error,
    check_derived_invariants,
    cli,
    cli_subprocess,
    map_args,
    recode_args,
)


def load_psychopy():
    return load_csv(PSYCHOPY, CsvMapping(PSYCHOPY_MAP, rt_unit="s"))


def load_jspsych():
    return load_csv(JSPSYCH, CsvMapping(JSPSYCH_MAP, recode=JSPSYCH_RECODE))


def load_lab():
    return load_csv(LAB, CsvMapping(LAB_MAP, recode=LAB_RECODE, rt_missing=("-1",)))


def raw_rows(path, delimiter=","):
    """The fixture as plain dicts (an independent parse: the csv module, no pandas), with file line numbers."""
    with open(path, newline="", encoding="utf-8") as fh:
        return [dict(row, _line=i + 2) for i, row in enumerate(csv.DictReader(fh, delimiter=delimiter))]


def row(trials: pd.DataFrame, participant: str, session: int, trial: int) -> pd.Series:
    hit = trials[(trials["participant"] == participant) & (trials["session"] == session) & (trials["trial"] == trial)]
    assert len(hit) == 1
    return hit.iloc[0]


def derived(r: pd.Series) -> tuple:
    prev = None if r["prev_correct"] is pd.NA else bool(r["prev_correct"])
    return bool(r["switch"]), int(r["run_position"]), prev


@pytest.fixture(scope="module")
def psychopy():
    return load_psychopy()


@pytest.fixture(scope="module")
def jspsych():
    return load_jspsych()


@pytest.fixture(scope="module")
def lab():
    return load_lab()


# -- (a) PsychoPy -------------------------------------------------------------------------------------------


def test_psychopy_counts_and_labels(psychopy):
    assert psychopy.format == "csv" and psychopy.source == str(PSYCHOPY)
    assert psychopy.n_trials == 60
    assert psychopy.participants == ["P01", "P02"]  # sorted, although P02 comes first in the file
    assert psychopy.n_sessions == 3
    assert psychopy.tasks == ["colour", "shape"]
    assert psychopy.trials.groupby(["participant", "session"], observed=True).size().to_dict() == {
        ("P01", 1): 20, ("P01", 2): 20, ("P02", 1): 20}
    assert "no trial column mapped: trials numbered in file order" in psychopy.notes
    check_derived_invariants(psychopy.trials)


def test_psychopy_columns_and_types(psychopy):
    t = psychopy.trials
    assert list(t.columns) == ["participant", "session", "trial", "task", "correct", "rt", "response",
                               "correct_response", "practice", "onset", "switch", "run_position", "prev_correct",
                               "stim_colour", "stim_shape", "line"]
    assert t["rt"].dtype == "float64" and t["correct"].dtype == "boolean" and t["practice"].dtype == "boolean"
    assert set(t["stim_colour"].cat.categories) == {"red", "green"}
    assert t["rt"].dropna().between(0.4, 1.4).all()  # seconds, as in the file
    assert int(t["practice"].sum()) == 12


def test_psychopy_hand_checked_rows(psychopy):
    t = psychopy.trials
    # P01 session 1 starts at line 22 (P02's 20 rows come first in the file)
    first = row(t, "P01", 1, 1)
    assert first["line"] == 22 and first["task"] == "colour" and first["rt"] == pytest.approx(0.8123)
    assert bool(first["practice"]) and first["response"] == "f" and first["correct_response"] == "f"
    expected = {  # trial: (task, switch, run_position, prev_correct); derived over practice + main trials
        1: ("colour", False, 1, None), 2: ("colour", False, 2, True), 3: ("shape", True, 1, True),
        4: ("shape", False, 2, True), 5: ("colour", True, 1, True), 6: ("colour", False, 2, True),
        7: ("shape", True, 1, False), 8: ("colour", True, 1, True), 9: ("colour", False, 2, True),
        10: ("colour", False, 3, False),
    }
    for trial, (task, *rest) in expected.items():
        r = row(t, "P01", 1, trial)
        assert r["task"] == task and derived(r) == tuple(rest), trial
        assert r["line"] == 21 + trial
    # trial 9 had no response: keys "None", RT empty, key_resp.corr 0
    nine = row(t, "P01", 1, 9)
    assert math.isnan(nine["rt"]) and pd.isna(nine["response"]) and not nine["correct"]
    assert not bool(row(t, "P01", 1, 5)["practice"])
    assert row(t, "P01", 2, 1)["prev_correct"] is pd.NA and row(t, "P01", 2, 1)["line"] == 42


def test_psychopy_cleaning_drops_practice(psychopy):
    cleaned = clean(psychopy)
    assert not cleaned.trials["practice"].any()
    log = cleaned.cleaning
    assert log.loc["P01", "practice"] == 8 and log.loc["P02", "practice"] == 4 and log.loc["all", "practice"] == 12
    # every session's first trial is a practice trial, so first_trial finds nothing left to remove
    assert log.loc["all", "first_trial"] == 0
    kept = clean(psychopy, rules=None).trials
    assert len(kept) == log.loc["all", "kept"]
    assert log.loc["all", "total"] == 60


def test_psychopy_keep_practice_cli(capsys):
    args = ["data", "check", PSYCHOPY, "--format", "csv", *map_args(PSYCHOPY_MAP), "--rt-unit", "s"]
    status, out, err = cli(capsys, *args)
    assert status == 0 and err == ""
    assert "60 trials, 2 participants, 3 sessions; tasks colour, shape" in out


def test_psychopy_trial_loop_counter_is_blank_on_practice_rows():
    # trials.thisN is empty on the practice rows (PsychoPy writes one counter per loop)
    with pytest.raises(DataError) as info:
        load_csv(PSYCHOPY, CsvMapping({**PSYCHOPY_MAP, "trial": "trials.thisN"}, rt_unit="s"))
    message = str(info.value)
    assert str(PSYCHOPY) in message and "'trials.thisN'" in message and "missing values" in message
    assert "12 rows" in message and "lines 2, 3, 4, 5, 22" in message


# -- (b) jsPsych --------------------------------------------------------------------------------------------


def test_jspsych_counts_and_labels(jspsych):
    assert jspsych.n_trials == 96
    assert jspsych.participants == ["q3m1p0", "s7x2k9"]
    assert jspsych.n_sessions == 8
    assert jspsych.tasks == ["parity", "magnitude"]
    # the file's switch_type is only compared, never kept: switch is derived from the task sequence
    assert [c for c in jspsych.trials.columns if c.startswith(("cond_", "stim_"))] == ["cond_switch_rate"]
    check_derived_invariants(jspsych.trials)


def test_jspsych_rt_in_seconds_and_missing_response(jspsych):
    t = jspsych.trials
    first = t[t["line"] == 2].iloc[0]
    assert first["participant"] == "s7x2k9" and first["session"] == 1 and first["trial"] == 3
    assert first["rt"] == pytest.approx(0.601) and first["task"] == "magnitude" and bool(first["correct"])
    assert t.loc[t["line"] == 3, "rt"].item() == pytest.approx(0.9952918)
    nores = t[t["rt"].isna()]
    assert len(nores) == 1
    assert nores.iloc[0]["participant"] == "q3m1p0" and not nores.iloc[0]["correct"]
    assert pd.isna(nores.iloc[0]["response"])


def test_jspsych_block_condition(jspsych):
    t = jspsych.trials
    assert t["cond_switch_rate"].dtype == "category"
    per_block = t.groupby(["participant", "session"], observed=True)["cond_switch_rate"].agg(
        lambda s: tuple(sorted(set(map(str, s)))))
    assert per_block.to_dict() == {
        ("q3m1p0", 1): ("0.5",), ("q3m1p0", 2): ("0.2",), ("q3m1p0", 3): ("0.5",), ("q3m1p0", 4): ("0.2",),
        ("s7x2k9", 1): ("0.2",), ("s7x2k9", 2): ("0.5",), ("s7x2k9", 3): ("0.2",), ("s7x2k9", 4): ("0.5",)}


def test_jspsych_hand_checked_rows(jspsych):
    t = jspsych.trials.set_index("line")
    # s7x2k9 block 1 in the file: B, B, A, B, B, ... (B = magnitude)
    expected = {2: ("magnitude", False, 1, None), 3: ("magnitude", False, 2, True), 4: ("parity", True, 1, True),
                5: ("magnitude", True, 1, True), 6: ("magnitude", False, 2, True), 7: ("magnitude", False, 3, True)}
    for line, (task, *rest) in expected.items():
        r = t.loc[line]
        assert r["task"] == task and derived(r) == tuple(rest), line
    assert t.loc[14, "session"] == 2 and t.loc[14, "prev_correct"] is pd.NA and not t.loc[14, "switch"]


def test_jspsych_switch_disagreements_are_noted(jspsych):
    notes = [n for n in jspsych.notes if "switch_type" in n]
    assert len(notes) == 1
    note = notes[0]
    assert "disagrees with the cue sequence" in note and "2 rows" in note
    assert "19" in note and "82" in note
    # elsewhere the file's switch_type agrees with the cue sequence cogflex derives
    by_line = jspsych.trials.set_index("line")["switch"]
    for r in raw_rows(JSPSYCH):
        if r["switch_type"] and r["_line"] not in (19, 82):
            assert bool(by_line[r["_line"]]) == (r["switch_type"] == "switch"), r["_line"]
    assert bool(by_line[19]) is True and bool(by_line[82]) is False  # the file says repeat / switch


def test_jspsych_via_cli(capsys, tmp_path):
    out_json = tmp_path / "check.json"
    status, out, err = cli(capsys, "data", "check", JSPSYCH, "--format", "csv", *map_args(JSPSYCH_MAP),
                           *recode_args(JSPSYCH_RECODE), "--json", out_json)
    assert status == 0 and err == ""
    info = json.loads(out_json.read_text())
    assert info["n_trials"] == 96 and info["n_participants"] == 2 and info["n_sessions"] == 8
    assert info["tasks"] == ["parity", "magnitude"]
    assert any("switch_type" in n and "disagrees" in n for n in info["notes"])
    assert "note: the file's switch column 'switch_type' disagrees" in out


# -- (c) lab script, semicolons ----------------------------------------------------------------------------


def test_lab_counts_and_labels(lab):
    assert lab.n_trials == 72
    assert lab.participants == ["vp01", "vp02", "vp03"]
    assert lab.n_sessions == 3 and set(lab.trials["session"]) == {1}
    assert lab.tasks == ["parity", "magnitude"]
    assert "delimiter ';' detected" in lab.notes
    assert "no session column mapped: one session per participant" in lab.notes
    check_derived_invariants(lab.trials)


def test_lab_rt_missing_accuracy_and_congruency(lab):
    t = lab.trials
    missing = t[t["rt"].isna()][["participant", "trial"]].astype(str).agg(":".join, axis=1).tolist()
    assert missing == ["vp01:7", "vp02:15", "vp03:3"]
    assert not t.loc[t["rt"].isna(), "correct"].any()
    assert t["rt"].dropna().between(0.45, 1.5).all()
    raw = raw_rows(LAB, delimiter=";")
    assert t["congruent"].tolist() == [r["kongruent"] == "1" for r in raw]
    assert t["correct"].tolist() == [r["accuracy"] == "correct" for r in raw]
    assert t["line"].tolist() == [r["_line"] for r in raw]


def test_lab_hand_checked_rows(lab):
    t = lab.trials
    expected = {  # vp01 trial: (task, switch, run_position, prev_correct, rt)
        1: ("parity", False, 1, None, 0.607), 6: ("parity", False, 6, True, 1.463),
        7: ("parity", False, 7, True, None), 8: ("parity", False, 8, False, 1.385),
        11: ("parity", False, 11, True, 1.309), 12: ("magnitude", True, 1, False, 1.247),
        13: ("magnitude", False, 2, True, 1.180), 15: ("magnitude", False, 4, True, 1.179),
        16: ("parity", True, 1, True, 1.381), 17: ("parity", False, 2, True, 1.444),
    }
    for trial, (task, switch, run, prev, rt) in expected.items():
        r = row(t, "vp01", 1, trial)
        assert r["task"] == task and derived(r) == (switch, run, prev), trial
        assert math.isnan(r["rt"]) if rt is None else r["rt"] == pytest.approx(rt)
    assert row(t, "vp02", 1, 1)["prev_correct"] is pd.NA and row(t, "vp02", 1, 1)["line"] == 26


def test_lab_derived_match_an_independent_recomputation(lab):
    raw = raw_rows(LAB, delimiter=";")
    switch, run, prev = [], [], []
    for i, r in enumerate(raw):
        start = i == 0 or raw[i - 1]["vp"] != r["vp"]
        switch.append(not start and raw[i - 1]["aufgabe"] != r["aufgabe"])
        run.append(1 if start or switch[-1] else run[-1] + 1)
        prev.append(pd.NA if start else raw[i - 1]["accuracy"] == "correct")
    t = lab.trials
    assert t["switch"].tolist() == switch
    assert t["run_position"].tolist() == run
    assert [v if v is pd.NA else bool(v) for v in t["prev_correct"].tolist()] == prev


def test_lab_summaries_have_congruency(lab):
    summary = summarize(lab, bins=[1, 2])
    cong = summary.congruency
    assert set(cong["trial_type"]) >= {"repeat", "all"}
    assert set(cong["participant"]) >= {"vp01", "vp02", "vp03", "all"}


def test_lab_via_cli_map_flags(capsys):
    status, out, err = cli(capsys, "data", "check", LAB, "--format", "csv", *map_args(LAB_MAP),
                           *recode_args(LAB_RECODE), "--rt-missing", "-1", "--rt-unit", "ms")
    assert status == 0 and err == ""
    assert "72 trials, 3 participants, 3 sessions; tasks parity, magnitude" in out


def test_lab_mapping_file_python_api():
    mapping = CsvMapping.from_args(toml=LAB_TOML)
    assert mapping.columns == LAB_MAP and mapping.recode == LAB_RECODE
    assert mapping.rt_missing == ("-1",) and mapping.rt_unit == "ms" and mapping.delimiter == ";"
    data = load_trials(LAB, "csv", mapping=mapping)
    assert data.n_trials == 72 and int(data.trials["rt"].isna().sum()) == 3


def test_lab_mapping_file_cli(capsys):
    # BUG (cogflex/data/loaders.py, CsvMapping.from_args): the CLI always passes rt_unit/rt_missing/encoding/
    # delimiter (None when not given), and `key not in options` is then False, so the TOML file's rt_missing,
    # rt_unit, encoding and delimiter are silently ignored; here the -1 RTs become -0.001 s and the load fails.
    status, out, err = cli(capsys, "data", "check", LAB, "--format", "csv", "--mapping", LAB_TOML)
    assert status == 0, err
    assert "72 trials, 3 participants, 3 sessions" in out


def test_lab_mapping_file_with_cli_override(capsys):
    # command-line values override the file's: a flag that names another column than the TOML
    status, out, err = cli(capsys, "data", "check", LAB, "--format", "csv", "--mapping", LAB_TOML,
                           "--map", "rt=no_such_column", "--rt-missing", "-1")
    line = err.strip()
    assert status == 2 and "rt=no_such_column" in line and str(LAB) in line
    # the file's [map] and [recode] tables are used (its rt_missing only when repeated on the command line: see
    # test_lab_mapping_file_cli)
    status, out, err = cli(capsys, "data", "check", LAB, "--format", "csv", "--mapping", LAB_TOML,
                           "--rt-missing", "-1")
    assert status == 0, err
    assert "72 trials, 3 participants, 3 sessions; tasks parity, magnitude" in out


def test_fixtures_end_to_end_without_traceback():
    proc = cli_subprocess("data", "check", PSYCHOPY, "--format", "csv", *map_args(PSYCHOPY_MAP), "--rt-unit", "s")
    assert proc.returncode == 0 and proc.stderr == ""
    assert "60 trials" in proc.stdout


def test_summarize_cli_on_lab_csv(capsys, tmp_path):
    out_dir = tmp_path / "summary"
    status, out, err = cli(capsys, "data", "summarize", JSPSYCH, "--format", "csv", *map_args(JSPSYCH_MAP),
                           *recode_args(JSPSYCH_RECODE), "--practice-bins", "2", "--out", out_dir)
    assert status == 0, err
    for name in ("by_trial_type", "switch_cost", "run_position", "congruency", "summary_tidy", "cleaning"):
        assert (out_dir / f"{name}.csv").exists()
    table = pd.read_csv(out_dir / "by_trial_type.csv")
    assert set(table["trial_type"]) == {"switch", "repeat"}


def test_psychopy_summary_by_session_bins(psychopy):
    summary = summarize(psychopy, bins=[1, 2, 3])
    assert set(summary.switch_cost["practice_bin"]) <= {"1-1", "2-2", "all"}
    assert set(summary.by_trial_type["practice_bin"]) == {"1-1", "2-2", "all"}
    assert summary.cleaning.loc["all", "practice"] == 12


# -- known bugs: these fail until cogflex/data is fixed ----------------------------------------------------


def test_summarize_single_session_data_with_default_bins(lab, tmp_path, capsys):
    # BUG (summaries.py, practice_bins): with an integer number of bins and one distinct session value (any lab
    # CSV without a session column), `edges[-1] = unique.max() + 1` overwrites the only edge, no bin is left,
    # every trial's practice_bin is NaN, and summarize() dies in _pooled with "ValueError: cannot insert
    # participant, already exists" (a traceback from `cogflex data summarize`).
    summary = summarize(lab)
    assert set(summary.switch_cost["participant"]) == {"vp01", "vp02", "vp03", "all"}
    status, _, err = cli(capsys, "data", "summarize", LAB, "--format", "csv", *map_args(LAB_MAP),
                         *recode_args(LAB_RECODE), "--rt-missing", "-1", "--out", tmp_path / "out")
    assert status == 0, err


def test_summarize_with_bins_outside_the_sessions_is_a_clear_error(jspsych):
    # BUG (summaries.py, summarize/_pooled): explicit bin edges that contain no session leave nothing to
    # summarise and fail with a pandas ValueError instead of a ConfigError/DataError naming practice_bins.
    from cogflex.errors import CogflexError

    with pytest.raises(CogflexError):
        summarize(jspsych, bins=[100, 200])


def test_recode_of_true_false_text():
    # BUG (raw.py, read_table (via load_csv)): only the participant column is read as text; pandas turns
    # "true"/"false" (and "TRUE"/"FALSE") into booleans first, so a recode listing the file's own values
    # "true"/"false" fails with "unknown codes ... (values True, False)".
    recode = {**JSPSYCH_RECODE, "correct": {"true": True, "false": False}}
    data = load_csv(JSPSYCH, CsvMapping(JSPSYCH_MAP, recode=recode))
    assert data.trials["correct"].tolist() == load_jspsych().trials["correct"].tolist()


def test_numeric_codes_with_a_blank_cell(tmp_path):
    # BUG (same cause): a numeric-looking code column with one blank cell is parsed as float, so its codes
    # become "1.0"/"0.0": a recode of "1"/"0" fails ("unknown codes (0, 1 expected) ... values 1.0, 0.0"),
    # and category columns get labels "1.0", "2.0" that are not in the file.
    path = tmp_path / "keys.csv"
    path.write_text("participant,cue,key_resp.keys,key_resp.corr,key_resp.rt\n"
                    "P01,colour,1,1,0.61\nP01,shape,2,0,0.72\nP01,shape,,,\nP01,colour,2,1,0.66\n")
    mapping = {"participant": "participant", "task": "cue", "correct": "key_resp.corr", "rt": "key_resp.rt",
               "response": "key_resp.keys"}
    data = load_csv(path, CsvMapping(mapping, rt_unit="s"))
    assert sorted(data.trials["response"].cat.categories) == ["1", "2"]
    recoded = load_csv(path, CsvMapping(mapping, rt_unit="s", recode={"correct": {"1": True, "0": False}}))
    assert recoded.trials["correct"].tolist()[:2] == [True, False]


def test_rt_missing_sentinel_with_decimal_rts(tmp_path):
    # BUG (loaders.py, load_csv): rt_missing is matched against the text of the already-parsed column; when any
    # RT has decimals (jsPsych writes 523.4000000059605) the column is float and "-1" reads "-1.0", so the
    # sentinel is not recognised and the load fails with "negative or infinite response times".
    path = tmp_path / "rt.csv"
    path.write_text("subject,task,correct,rt\ns1,A,true,523.40000001\ns1,B,true,-1\ns1,B,false,612\n")
    data = load_csv(path, CsvMapping({"participant": "subject", "task": "task", "correct": "correct", "rt": "rt"},
                                     rt_missing=("-1",)))
    assert data.trials["rt"].isna().tolist() == [False, True, False]


def test_a_column_mapped_to_two_schema_fields_is_refused(capsys):
    """Two schema fields on one column were reported as 'median RT 1 ms' or 'duplicate trials'."""
    twice = {**LAB_MAP, "trial": LAB_MAP["rt"]}
    status, _, err = cli(capsys, "data", "check", LAB, "--format", "csv", *map_args(twice),
                         *recode_args(LAB_RECODE), "--rt-missing", "-1", "--rt-unit", "ms")
    assert_one_line_error(status, err, "mapped twice", repr(LAB_MAP["rt"]))
