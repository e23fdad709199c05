"""The canonical trial table that every later stage of cogflex consumes.

One row per trial, long format, typed columns, ``NaN``/``<NA>`` for missing
values (never sentinels). Columns (see :data:`COLUMNS`):

=================  ==========  ======================================================
column             type        meaning
=================  ==========  ======================================================
participant        category    participant id (text)
session            Int64       practice index: gameplay / session / block, increasing
trial              Int64       order of the trial within its session
task               category    cued task
correct            boolean     response correct
rt                 float64     response time in seconds (NaN: no response)
response           category    response given (optional)
correct_response   category    the correct response (optional)
congruent          boolean     all task-relevant features point to one response
stim_*             category    stimulus features (optional; Ebb and Flow:
                               ``stim_point``, ``stim_move``)
cond_*             category    block- or session-level conditions (optional)
practice           boolean     practice trial (optional)
age                Float64     participant age in years (optional)
session_time       float64     days since the participant's first session (optional)
onset              float64     stimulus onset, seconds from session start (optional)
switch             boolean     derived: task differs from the previous trial of the
                               same session (the first trial of a session is not a
                               switch)
run_position       Int64       derived: 1 on a session's first trial and after every
                               switch, then 2, 3, ...
prev_correct       boolean     derived: previous trial of the session was correct
                               (<NA> on a session's first trial)
line               Int64       line of the source file the trial came from
=================  ==========  ======================================================

Derived columns are always computed by cogflex from the task sequence, never
taken from the file. Congruency is derived where the stimuli allow it (Ebb and
Flow: the leaves point where they move) and otherwise read from the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from cogflex.errors import DataError, shown

__all__ = ["Column", "COLUMNS", "REQUIRED", "validate", "derive", "ordered", "offending_lines", "session_starts"]

Kind = Literal["category", "int", "bool", "float"]


@dataclass(frozen=True)
class Column:
    """One column of the trial schema."""

    name: str
    kind: Kind
    required: bool
    description: str
    derived: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("participant", "category", True, "participant id (text)"),
    Column("session", "int", True, "practice index: gameplay / session / block number, increasing"),
    Column("trial", "int", True, "order of the trial within its session"),
    Column("task", "category", True, "cued task"),
    Column("correct", "bool", True, "response correct"),
    Column("rt", "float", True, "response time in seconds; NaN when there was no response"),
    Column("response", "category", False, "response given"),
    Column("correct_response", "category", False, "the correct response"),
    Column("congruent", "bool", False, "all task-relevant stimulus features point to the same response"),
    Column("practice", "bool", False, "practice trial"),
    Column("age", "float", False, "participant age in years"),
    Column("session_time", "float", False, "days since the participant's first session"),
    Column("onset", "float", False, "stimulus onset, seconds from session start"),
    Column("switch", "bool", False, "task differs from the previous trial of the session", derived=True),
    Column("run_position", "int", False, "1 at a session start and after a switch, then 2, 3, ...", derived=True),
    Column("prev_correct", "bool", False, "previous trial of the session correct (NA on the first)", derived=True),
)

#: Columns every trial table must have before derivation.
REQUIRED = tuple(c.name for c in COLUMNS if c.required)
_BY_NAME = {c.name: c for c in COLUMNS}
_PREFIXES = ("stim_", "cond_")
_SHOWN = 5


def column_kind(name: str) -> Kind:
    """The type of a canonical column (``stim_*`` and ``cond_*`` columns are categories)."""
    if name in _BY_NAME:
        return _BY_NAME[name].kind
    if name.startswith(_PREFIXES):
        return "category"
    raise KeyError(name)


def is_known(name: str) -> bool:
    """Whether ``name`` is a column of the schema (including ``stim_*`` / ``cond_*``)."""
    return name in _BY_NAME or name == "line" or name.startswith(_PREFIXES)


def offending_lines(frame: pd.DataFrame, mask: np.ndarray | pd.Series, column: str | None = None) -> str:
    """'lines 12, 57 (values -0.2, inf)'-style description of the first offending rows."""
    mask = np.asarray(mask, dtype=bool)
    rows = np.flatnonzero(mask)
    if "line" in frame:  # first offending rows in file order
        rows = rows[np.argsort(frame["line"].to_numpy()[rows], kind="stable")]
    lines = frame["line"].to_numpy()[rows[:_SHOWN]] if "line" in frame else rows[:_SHOWN] + 2
    text = f"{mask.sum()} row{'s' if mask.sum() != 1 else ''}, first at line{'s' if len(lines) > 1 else ''} "
    text += ", ".join(str(int(v)) for v in lines)
    if column is not None and column in frame:
        values = frame[column].to_numpy()[rows[:_SHOWN]]
        text += " (value" + ("s " if len(values) > 1 else " ") + ", ".join(shown(_plain(v)) for v in values) + ")"
    return text


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return value


def validate(trials: pd.DataFrame, source: str, *, names: Mapping[str, str] | None = None) -> None:
    """Check a canonical trial table; raise :class:`DataError` naming file, column and lines.

    Checks: non-empty; required columns present; column types; no negative or
    non-finite response times (NaN is allowed: no response); unique
    (participant, session, trial); trials in increasing order within each
    session, in file order. ``names`` maps schema columns to the file's
    column names, used in the messages.
    """
    names = names or {}
    if len(trials) == 0:
        raise DataError(source, "no trials (the file is empty or holds only a header)")
    missing = [c for c in REQUIRED if c not in trials]
    if missing:
        raise DataError(source, f"missing required column{'s' if len(missing) > 1 else ''} "
                                f"{', '.join(shown(c) for c in missing)}", column=missing[0])
    for name in trials.columns:
        if not is_known(name):
            raise DataError(source, "not a column of the trial schema (use stim_* for stimulus features, "
                                    "cond_* for conditions)", column=name)
        if name == "line":
            continue
        _check_type(trials, name, column_kind(name), source)
    for name in ("participant", "session", "trial", "task"):
        bad = trials[name].isna().to_numpy()
        if bad.any():
            raise DataError(source, f"missing values: {offending_lines(trials, bad)}", column=names.get(name, name))
    rt = trials["rt"].to_numpy(dtype=float)
    bad = (rt < 0) | np.isinf(rt)
    if bad.any():
        raise DataError(source, f"negative or infinite response times (s): {offending_lines(trials, bad, 'rt')}; "
                                "leave the cell empty for a missing response", column=names.get("rt", "rt"))
    keys = trials[["participant", "session", "trial"]]
    trial_name = names.get("trial", "trial")
    dup = keys.duplicated(keep=False).to_numpy()
    if dup.any():
        raise DataError(source, f"duplicate (participant, session, trial): {offending_lines(trials, dup, 'trial')}",
                        column=trial_name)
    step = keys.groupby(["participant", "session"], observed=True, sort=False)["trial"].diff()
    back = (step < 0).fillna(False).to_numpy(dtype=bool)  # a trial numbered below its session's previous row
    if back.any():
        raise DataError(source, f"trials out of order within a session: {offending_lines(trials, back, 'trial')}",
                        column=trial_name)


def _check_type(trials: pd.DataFrame, name: str, kind: Kind, source: str) -> None:
    dtype = trials[name].dtype
    ok = {
        "category": isinstance(dtype, pd.CategoricalDtype),
        "int": pd.api.types.is_integer_dtype(dtype),
        "bool": pd.api.types.is_bool_dtype(dtype),
        "float": pd.api.types.is_float_dtype(dtype),
    }[kind]
    if not ok:
        raise DataError(source, f"has type {dtype}, the schema needs {kind}", column=name)


def ordered(trials: pd.DataFrame) -> pd.DataFrame:
    """Columns in schema order: the schema's own, then ``stim_*``, ``cond_*``, then ``line``."""
    names = [c.name for c in COLUMNS if c.name in trials]
    names += sorted(c for c in trials.columns if c.startswith("stim_"))
    names += sorted(c for c in trials.columns if c.startswith("cond_"))
    names += ["line"] if "line" in trials else []
    return trials[names]


def session_starts(trials: pd.DataFrame) -> np.ndarray:
    """True on the first row of each (participant, session) run of a table sorted by both."""
    participant = trials["participant"].cat.codes.to_numpy()
    session = trials["session"].to_numpy(dtype=np.int64)
    start = np.ones(len(trials), dtype=bool)
    start[1:] = (participant[1:] != participant[:-1]) | (session[1:] != session[:-1])
    return start


def derive(trials: pd.DataFrame) -> pd.DataFrame:
    """Add ``switch``, ``run_position`` and ``prev_correct`` (and congruency where derivable).

    ``trials`` must be sorted by participant, session and trial. Returns a
    new frame; nothing in the input is trusted for these columns.
    """
    out = trials.copy()
    task = out["task"].cat.codes.to_numpy()
    new_session = session_starts(out)
    switch = np.zeros(len(out), dtype=bool)
    switch[1:] = task[1:] != task[:-1]
    switch &= ~new_session
    out["switch"] = pd.array(switch, dtype="boolean")
    run_start = new_session | switch
    index = np.arange(len(out))
    last_start = np.maximum.accumulate(np.where(run_start, index, 0))
    out["run_position"] = pd.array(index - last_start + 1, dtype="Int64")
    prev = out["correct"].shift(1)
    prev[new_session] = pd.NA
    out["prev_correct"] = prev.astype("boolean")
    if {"stim_point", "stim_move"} <= set(out.columns):
        point, move = out["stim_point"].astype("string"), out["stim_move"].astype("string")
        out["congruent"] = (point == move).astype("boolean")
    return out
