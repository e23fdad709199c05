"""Task mappings: from a participant's trial table to the NTA network's inputs and targets.

A task-switching experiment becomes a two-teacher problem (DESIGN §4). Every
trial has two stimulus features, one per task, each taking one of R response
values; the input is ``x = [one-hot(feature of task 0), one-hot(feature of
task 1)]`` (2R entries), the teachers are ``W*_0 = [I 0]`` and ``W*_1 = [0 I]``
(R x 2R, orthogonal), and the target is ``W*_task x`` = one-hot(correct
response).

- ``ebb-and-flow``: features are the leaves' point and move directions
  (``stim_point``, ``stim_move``), tasks ``point`` and ``move``, responses
  U/D/L/R.
- ``two-task``: any lab CSV without stimulus features. The cued task's
  feature is the trial's correct response; the other task's feature equals it
  on congruent trials and is a different response (drawn with the mapping's
  seed) on incongruent ones. Without a ``congruent`` column every trial is
  treated as incongruent (stated in the fit's notes). Data with only cue,
  congruency, accuracy and RT (no ``correct_response`` column, or an empty one)
  need no real response labels: the correct response is one of two arbitrary
  codes (:data:`SYNTHETIC_RESPONSES`, or the mapping's ``responses``) drawn per
  trial with the mapping's seed, consistent with the congruency. The network's
  predictions depend on which task is cued and on congruency, not on the codes'
  names; the assumption is stated in the fit's notes.

The network sees *every* trial of a participant, in order (sessions, then
trials), and learns from the correct answer after each one; only the trials
kept by cleaning enter the likelihood (``observed``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cogflex.data.dataset import TrialData
from cogflex.errors import DataError, listing, shown

__all__ = ["TaskMapping", "Sequence", "encode", "MAPPINGS"]


@dataclass(frozen=True)
class TaskMapping:
    """How trials map onto the network's two tasks.

    Parameters
    ----------
    name
        ``"ebb-and-flow"`` or ``"two-task"``.
    tasks
        The two task labels, in teacher order (``None``: the data's two task
        labels in sorted order).
    responses
        Response labels (``None``: taken from the data, sorted).
    features
        Stimulus columns, one per task (``None`` for ``two-task``).
    seed
        Seed for the ``two-task`` mapping's draws of irrelevant features.
    """

    name: str = "ebb-and-flow"
    tasks: tuple[str, ...] | None = ("point", "move")
    responses: tuple[str, ...] | None = ("U", "D", "L", "R")
    features: tuple[str, ...] | None = ("stim_point", "stim_move")
    seed: int = 0

    def __post_init__(self) -> None:
        if self.name not in MAPPINGS:
            from cogflex.errors import ConfigError

            raise ConfigError("mapping.name", f"unknown mapping {self.name!r} (known: {', '.join(MAPPINGS)})")


MAPPINGS = ("ebb-and-flow", "two-task")
#: Response codes of the two-task mapping for data without a correct_response column.
SYNTHETIC_RESPONSES = ("A", "B")


def default_mapping(data: TrialData) -> TaskMapping:
    """``ebb-and-flow`` when the data have point/move stimuli, else ``two-task``."""
    if data.format == "ebb-and-flow" or {"stim_point", "stim_move"} <= set(data.trials.columns):
        return TaskMapping()
    return TaskMapping(name="two-task", tasks=None, responses=None, features=None)


@dataclass
class Sequence:
    """One participant's trials encoded for the network, in presentation order.

    Arrays run over all of the participant's trials (length N); ``observed``
    marks the trials that enter the likelihood.
    """

    participant: str
    rows: np.ndarray  # (N,) row indices into the trial table
    task: np.ndarray  # (N,) int8: teacher index of the cued task
    features: np.ndarray  # (N, 2) int8: feature value of task 0 and task 1
    session: np.ndarray  # (N,) int64
    observed: np.ndarray  # (N,) bool
    correct: np.ndarray  # (N,) bool (observed trials meaningful)
    rt: np.ndarray  # (N,) float64 seconds
    n_responses: int
    notes: list[str] = field(default_factory=list)

    @property
    def target(self) -> np.ndarray:
        """Index of the correct response per trial."""
        return self.features[np.arange(len(self.task)), self.task]

    @property
    def congruent(self) -> np.ndarray:
        """Both features call for the same response."""
        return self.features[:, 0] == self.features[:, 1]

    def __len__(self) -> int:
        return len(self.task)


def encode(data: TrialData, observed_rows: np.ndarray, mapping: TaskMapping | None = None) -> list[Sequence]:
    """Encode each participant's full trial sequence.

    Parameters
    ----------
    data
        The *uncleaned* trials (the network learns on all of them).
    observed_rows
        Boolean mask over ``data.trials`` rows: the cleaned trials.
    mapping
        Task mapping (default: :func:`default_mapping`).
    """
    mapping = mapping or default_mapping(data)
    trials = data.trials
    source = data.source
    tasks = _labels(trials, "task", mapping.tasks, source)
    if len(tasks) != 2:
        raise DataError(source, f"fitting needs exactly two tasks, found {len(tasks)}: {listing(tasks)}",
                        column="task")
    # correctness is decided once, when the data are loaded (cogflex.data.load_trials(correctness=...))
    correct = trials["correct"].fillna(False).to_numpy(dtype=bool)
    notes: list[str] = []
    task_idx = _codes(trials["task"], tasks, source, "task")
    if mapping.name == "ebb-and-flow":
        feats = mapping.features or ("stim_point", "stim_move")
        missing = [c for c in feats if c not in trials.columns]
        if missing:
            raise DataError(source, f"the ebb-and-flow mapping needs stimulus column(s) {', '.join(missing)} "
                                    "(use --mapping two-task for data without stimulus features)",
                            column=missing[0])
        responses = _labels(trials, feats[0], mapping.responses, source, also=feats[1])
        features = np.stack([_codes(trials[c], responses, source, c) for c in feats], axis=1)
    else:
        rng = np.random.default_rng(mapping.seed)
        if _has_labels(trials, "correct_response"):
            responses = _labels(trials, "correct_response", mapping.responses, source)
            if len(responses) < 2:
                raise DataError(source, "need at least two distinct correct responses", column="correct_response")
            target = _codes(trials["correct_response"], responses, source, "correct_response")
        else:
            # accuracy-and-RT data: the network needs two response codes, not the real ones
            responses = tuple(mapping.responses or SYNTHETIC_RESPONSES)
            target = rng.integers(0, len(responses), size=len(trials))
            notes.append(f"no correct_response column: the network's target is one of {len(responses)} arbitrary "
                         f"response codes ({listing(responses)}), drawn per trial with seed {mapping.seed}; the "
                         "other task's response follows the congruent column; only the cue, congruency, "
                         "correctness and RT of each trial inform the fit")
        other = (target + rng.integers(1, len(responses), size=len(target))) % len(responses)
        if "congruent" in trials.columns and trials["congruent"].notna().all():
            congruent = trials["congruent"].to_numpy(dtype=bool)
        else:
            congruent = np.zeros(len(target), dtype=bool)
            notes.append("no congruent column: every trial treated as incongruent (irrelevant feature drawn "
                         f"with seed {mapping.seed})")
        irrelevant = np.where(congruent, target, other)
        features = np.where(task_idx[:, None] == np.arange(2)[None, :], target[:, None], irrelevant[:, None])
    features = features.astype(np.int8)
    rt = trials["rt"].to_numpy(dtype=float)
    session = trials["session"].to_numpy(dtype=np.int64)
    out = []
    for pid, rows in trials.groupby("participant", observed=True, sort=True).indices.items():
        rows = np.sort(rows)  # trials are ordered by participant, session, trial
        out.append(Sequence(participant=str(pid), rows=rows, task=task_idx[rows].astype(np.int8),
                            features=features[rows], session=session[rows], observed=observed_rows[rows],
                            correct=correct[rows], rt=rt[rows], n_responses=len(responses), notes=list(notes)))
    return out


def _has_labels(trials: pd.DataFrame, column: str) -> bool:
    """Whether ``column`` is in the table with at least one value (an all-empty column counts as absent)."""
    return column in trials.columns and bool(trials[column].notna().any())


def _labels(trials: pd.DataFrame, column: str, declared, source: str, also: str | None = None) -> tuple[str, ...]:
    columns = [column] if also is None else [column, also]
    values = {c: set(trials[c].dropna().astype(str)) for c in columns}
    if declared is None:
        return tuple(sorted(set().union(*values.values())))
    for c in columns:
        unknown = sorted(values[c] - set(declared))
        if unknown:
            raise DataError(source, f"value {shown(unknown[0])} is not one of the mapping's labels "
                                    f"({listing(declared)})", column=c)
    return tuple(declared)


def _codes(values: pd.Series, labels: tuple[str, ...], source: str, column: str) -> np.ndarray:
    text = values.astype(object)
    missing = text.isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise DataError(source, f"missing value in row {row} (the network needs it on every trial)", column=column)
    lookup = {label: i for i, label in enumerate(labels)}
    return np.array([lookup[str(v)] for v in text], dtype=np.int64)
