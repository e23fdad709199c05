"""Shared paths, mappings and checks of the data-layer tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from cogflex.cli import main
from cogflex.data import natural_key

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "data"
#: The shared Ebb and Flow export; it lives next to the clone (never copied into it).
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "ebb_and_flow" / "ebb_and_flow_2users.csv.gz"

PSYCHOPY = FIXTURES / "psychopy_colour_shape.csv"
JSPSYCH = FIXTURES / "jspsych_switch_prob.csv"
LAB = FIXTURES / "lab_parity_magnitude.csv"
LAB_TOML = FIXTURES / "lab_parity_magnitude.toml"

#: (a) PsychoPy: RT in seconds, practice rows flagged by is_practice, no trial column mapped (file order).
PSYCHOPY_MAP = {
    "participant": "participant", "session": "session", "task": "cue", "correct": "key_resp.corr",
    "rt": "key_resp.rt", "response": "key_resp.keys", "correct_response": "corrAns", "practice": "is_practice",
    "stim_colour": "colour", "stim_shape": "shape", "onset": "key_resp.started",
}
#: (b) jsPsych: task codes A/B, block-level switch probability, the file's own switch_type column.
JSPSYCH_MAP = {
    "participant": "subject", "session": "block", "trial": "trial_index", "task": "task", "correct": "correct",
    "rt": "rt", "response": "response", "cond_switch_rate": "switch_prob", "switch": "switch_type",
}
JSPSYCH_RECODE = {"task": {"A": "parity", "B": "magnitude"}, "switch": {"switch": True, "repeat": False}}
#: (c) lab script: semicolons, RT in ms with -1 = no response, correct/error, congruency column.
LAB_MAP = {
    "participant": "vp", "trial": "trial", "task": "aufgabe", "correct": "accuracy", "rt": "rt_ms",
    "congruent": "kongruent", "response": "taste", "stim_digit": "ziffer",
}
LAB_RECODE = {"task": {"p": "parity", "m": "magnitude"}}

EBB_HEADER = ("user_id,age,game_result_id,nth_master,timestamp_rel_days,trial,time_offset,task_cue,switch,"
              "point_dir,mv_dir,resp_dir,correct,resp_time")


def map_args(columns: dict[str, str]) -> list[str]:
    """``--map NAME=COLUMN`` arguments for the CLI."""
    return [arg for name, col in columns.items() for arg in ("--map", f"{name}={col}")]


def recode_args(recode: dict[str, dict[str, object]]) -> list[str]:
    """``--recode NAME=FROM:TO,...`` arguments for the CLI."""
    out = []
    for name, table in recode.items():
        pairs = ",".join(f"{k}:{str(v).lower() if isinstance(v, bool) else v}" for k, v in table.items())
        out += ["--recode", f"{name}={pairs}"]
    return out


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``cogflex ARGS`` in-process; return (status, stdout, stderr)."""
    capsys.readouterr()
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def cli_subprocess(*args: str) -> subprocess.CompletedProcess:
    """Run ``cogflex ARGS`` as a separate process (to see tracebacks as a user would)."""
    return subprocess.run([sys.executable, "-m", "cogflex.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=REPO)


def assert_one_line_error(status: int, err: str, *fragments: str) -> str:
    """Exit status 2, exactly one line on stderr, no traceback, and every fragment in that line."""
    assert status == 2, f"exit status {status}, stderr: {err!r}"
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, f"expected one line on stderr, got {err!r}"
    assert "Traceback" not in err
    assert lines[0].startswith("cogflex: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


def check_derived_invariants(trials: pd.DataFrame) -> None:
    """The derived columns and the sort order, checked against a plain-Python recomputation."""
    keys = list(zip(trials["participant"].astype(str), trials["session"].astype(int), trials["trial"].astype(int)))
    assert keys == sorted(keys, key=lambda k: (natural_key(k[0]), *k[1:])), \
        "rows not sorted by participant (natural order: 2 before 10), session, trial"
    assert trials.index.equals(pd.RangeIndex(len(trials)))
    tasks = trials["task"].astype(str).tolist()
    correct = trials["correct"].tolist()
    switch = trials["switch"].tolist()
    run = trials["run_position"].tolist()
    prev = trials["prev_correct"].tolist()
    for i, key in enumerate(keys):
        start = i == 0 or keys[i - 1][:2] != key[:2]
        if start:
            assert switch[i] is not pd.NA and not switch[i], f"row {i}: switch on a session's first trial"
            assert run[i] == 1, f"row {i}: run_position {run[i]} at a session start"
            assert prev[i] is pd.NA, f"row {i}: prev_correct {prev[i]} at a session start"
        else:
            assert bool(switch[i]) == (tasks[i] != tasks[i - 1]), f"row {i}: switch"
            assert run[i] == (1 if switch[i] else run[i - 1] + 1), f"row {i}: run_position"
            if correct[i - 1] is pd.NA:
                assert prev[i] is pd.NA
            else:
                assert prev[i] is not pd.NA and bool(prev[i]) == bool(correct[i - 1]), f"row {i}: prev_correct"
    assert (trials["run_position"] == 1).to_numpy(dtype=bool).tolist() == [
        i == 0 or keys[i - 1][:2] != keys[i][:2] or bool(switch[i]) for i in range(len(keys))]
    assert np.all(trials["rt"].isna() | (trials["rt"] >= 0))
