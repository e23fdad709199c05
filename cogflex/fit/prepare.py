"""Preparing a participant's trials for a fit: selection, cleaning, encoding, and the trial covariates.

:func:`prepare` turns a :class:`~cogflex.data.TrialData` into :class:`FitData`: the participants' encoded
trial sequences (every trial, for the network) and the table of observed trials (those kept by
:data:`FIT_CLEANING`, which enter the likelihood). :func:`covariates` derives the per-trial columns that
models' links may use besides the network's predictors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cogflex.data.cleaning import CleaningRules, clean, participant_warnings
from cogflex.data.dataset import TrialData, natural_sorted
from cogflex.errors import DataError, listing, shown
from cogflex.fit.sequence import Sequence, TaskMapping, encode

__all__ = ["FIT_CLEANING", "FitData", "prepare", "select_participants", "covariates", "COVARIATES"]

#: Trials that enter the likelihood: errors stay in (accuracy is modelled);
#: practice rows, a session's first trial and RTs outside 0.15-3 s are removed.
FIT_CLEANING = CleaningRules(practice=True, first_trial=True, rt_min=0.15, rt_max=3.0, post_error=False,
                             errors=False, mad=None)


@dataclass
class FitData:
    """Everything a fit needs from the data: encoded sequences and the observed-trial table."""

    source: str
    digest: str
    participants: list[str]
    sequences: list[Sequence]
    trials: pd.DataFrame  # observed trials, in sequence order; columns below
    cleaning: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    #: Participants with accuracy near 0 or 1, or few trials left (:func:`cogflex.data.participant_warnings`).
    warnings: list[str] = field(default_factory=list)
    #: One row per participant (in ``participants`` order): participant-level columns such as ``age``.
    participant_table: pd.DataFrame | None = None

    def covariate(self, name: str) -> np.ndarray:
        """A participant covariate standardised over these participants (mean 0, SD 1), one value each.

        Raises a one-line :class:`~cogflex.errors.DataError` when the column is absent, missing for a
        participant, or the same for everyone.
        """
        table = self.participant_table
        if table is None or name not in table.columns:
            raise DataError(self.source, f"the model regresses on {name!r}, a column the data do not have",
                            column=name)
        values = table[name].to_numpy(dtype=float)
        missing = np.flatnonzero(~np.isfinite(values))
        if missing.size:
            raise DataError(self.source, f"participant {shown(self.participants[missing[0]])} has no {name} "
                                         f"({missing.size} of {len(values)} participants without it)", column=name)
        sd = values.std()
        if not sd > 0:
            raise DataError(self.source, f"{name} is the same for every participant: it cannot explain differences",
                            column=name)
        return (values - values.mean()) / sd

    @property
    def n_trials(self) -> int:
        """Number of trials in the likelihood."""
        return len(self.trials)


def select_participants(data: TrialData, participants) -> tuple[TrialData, np.ndarray]:
    """The trials of ``participants`` only (ids as text), and their rows in ``data``.

    The fits' data hash (``data_digest``) is the hash of this selection.
    """
    trials = data.trials
    wanted = [str(p) for p in participants]
    present = set(trials["participant"].astype(str))
    unknown = [p for p in wanted if p not in present]
    if unknown:
        raise DataError(data.source, f"participant {shown(unknown[0])} not in the data "
                                     f"(present: {listing(natural_sorted(present), 10)})", column="participant")
    keep = trials["participant"].astype(str).isin(wanted).to_numpy()
    trials = trials[keep].reset_index(drop=True)
    trials["participant"] = trials["participant"].cat.remove_unused_categories()
    return data.with_trials(trials), np.flatnonzero(keep)


def prepare(data: TrialData, *, participants=None, cleaning: CleaningRules | None = None,
            mapping: TaskMapping | None = None) -> FitData:
    """Select participants, clean, and encode the trial sequences.

    The observed-trial table has columns ``participant`` (text),
    ``pidx`` (index into ``participants``), ``session``, ``rt`` (s),
    ``correct`` (bool, by the correctness rule the data were loaded with: :attr:`TrialData.correctness`),
    ``switch``, ``congruent``, ``run_position``, ``log_practice`` (log session,
    centred per participant), ``row`` (row of the trial table as loaded) and ``seq_row`` (row among the
    selected participants' trials).
    """
    origin = np.arange(len(data.trials))  # rows of the trial table as loaded
    if participants:
        data, origin = select_participants(data, participants)
    trials = data.trials
    if trials.empty:
        raise DataError(data.source, "no trials to fit")
    tagged = data.with_trials(trials.assign(_row=np.arange(len(trials))))
    cleaned = clean(tagged, cleaning or FIT_CLEANING)
    mask = np.zeros(len(trials), dtype=bool)
    mask[cleaned.trials["_row"].to_numpy()] = True
    sequences = encode(data, mask, mapping)
    notes = list(dict.fromkeys([data.correctness_line(), *(n for s in sequences for n in s.notes)]))
    warned = participant_warnings(data, cleaned)
    frames = []
    for i, seq in enumerate(sequences):
        rows = seq.rows[seq.observed]
        if len(rows) == 0:
            raise DataError(data.source, f"participant {shown(seq.participant)} has no trials left after cleaning",
                            column="participant")
        sub = trials.iloc[rows]
        log_session = np.log(sub["session"].to_numpy(dtype=float).clip(min=1))
        frames.append(pd.DataFrame({
            "participant": seq.participant, "pidx": i, "session": sub["session"].to_numpy(dtype=np.int64),
            "rt": seq.rt[seq.observed], "correct": seq.correct[seq.observed],
            "switch": sub["switch"].fillna(False).to_numpy(dtype=bool),
            "congruent": seq.congruent[seq.observed],
            "run_position": sub["run_position"].fillna(1).to_numpy(dtype=np.int64),
            "log_practice": log_session - log_session.mean(), "row": origin[rows], "seq_row": rows}))
    table = pd.concat(frames, ignore_index=True)
    ids = [s.participant for s in sequences]
    return FitData(source=data.source, digest=data.digest(), participants=ids,
                   sequences=sequences, trials=table, cleaning=cleaned.cleaning, notes=notes, warnings=warned,
                   participant_table=_participant_table(data, ids))


def _participant_table(data: TrialData, ids: list[str]) -> pd.DataFrame:
    """Participant-level columns (``age``): each participant's first non-missing value (NaN when none)."""
    trials = data.trials
    out = pd.DataFrame(index=pd.Index(ids, name="participant"))
    if "age" in trials.columns:
        first = trials.groupby(trials["participant"].astype(str), observed=True)["age"].first()
        out["age"] = first.reindex(ids).to_numpy(dtype=float, na_value=np.nan)
    return out


#: Trial covariates available to every model's link (:func:`covariates`).
COVARIATES = ("switch", "incongruent", "log_practice", "switch_x_log_practice", "switch_x_incongruent", "log_run")


def covariates(trials: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per-trial covariates of the observed-trial table (:data:`COVARIATES`).

    ``switch`` and ``incongruent`` are 0/1; ``log_practice`` is log(session) centred per participant;
    ``log_run`` is log(position in the task run); the two ``_x_`` columns are products.
    """
    sw = trials["switch"].to_numpy(dtype=float)
    inc = 1.0 - trials["congruent"].to_numpy(dtype=float)
    lp = trials["log_practice"].to_numpy(dtype=float)
    log_run = np.log(trials["run_position"].to_numpy(dtype=float).clip(min=1))
    return {"switch": sw, "incongruent": inc, "log_practice": lp, "switch_x_log_practice": sw * lp,
            "switch_x_incongruent": sw * inc, "log_run": log_run}
