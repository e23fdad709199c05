"""Named, configurable cleaning rules; every rule reports what it removed per participant.

Rules run in a fixed order, each on what the previous ones left:

1. ``practice``     practice trials (when the table has a ``practice`` column)
2. ``first_trial``  the first trial of each session (often anticipatory)
3. ``rt_bounds``    response times outside [rt_min, rt_max] s, and missing ones
4. ``post_error``   trials right after an error (``prev_correct`` false)
5. ``errors``       error trials (for RT analyses)
6. ``mad``          RTs more than ``mad`` median absolute deviations from the
                    participant's median (off unless ``mad`` is set)

``prev_correct`` and ``switch`` are derived on the full, uncleaned sequence, so
removing a trial never turns its successor into a "session start".
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from cogflex.data.dataset import TrialData
from cogflex.data.schema import session_starts
from cogflex.errors import ConfigError

__all__ = ["CleaningRules", "clean", "RULES", "participant_warnings", "ACCURACY_EDGE", "FEW_TRIALS"]

RULES = ("practice", "first_trial", "rt_bounds", "post_error", "errors", "mad")


@dataclass(frozen=True)
class CleaningRules:
    """Which trials to remove (defaults: the usual task-switching RT analysis).

    Parameters
    ----------
    practice, first_trial, post_error, errors
        Switch the rule of that name on or off.
    rt_min, rt_max
        Response-time bounds in seconds (``None``: no bound); default 0.15-3 s.
    mad
        Threshold in median absolute deviations (scaled to the SD of a normal
        distribution) for the per-participant outlier rule; ``None`` = off.
    """

    practice: bool = True
    first_trial: bool = True
    rt_min: float | None = 0.15
    rt_max: float | None = 3.0
    post_error: bool = True
    errors: bool = True
    mad: float | None = None

    def __post_init__(self) -> None:
        if self.rt_min is not None and self.rt_max is not None and self.rt_min >= self.rt_max:
            raise ConfigError("rt_min", f"must be below rt_max ({self.rt_min} >= {self.rt_max})")
        if self.rt_min is not None and self.rt_min < 0:
            raise ConfigError("rt_min", "must not be negative")
        if self.mad is not None and self.mad <= 0:
            raise ConfigError("mad", "must be positive")

    def for_accuracy(self) -> CleaningRules:
        """The same rules without ``errors``, ``post_error`` and ``mad`` (accuracy needs the errors)."""
        return replace(self, errors=False, post_error=False, mad=None)


def clean(data: TrialData, rules: CleaningRules | None = None) -> TrialData:
    """Apply ``rules``; the result's ``cleaning`` table counts removals per participant and rule.

    The cleaning table has one row per participant plus ``all``, columns
    ``total``, one per rule (in order, 0 for rules that are off) and ``kept``.
    """
    rules = rules or CleaningRules()
    trials = data.trials
    keep = np.ones(len(trials), dtype=bool)
    participant = trials["participant"]
    counts = {}
    for rule in RULES:
        drop = _rule_mask(rule, rules, trials, keep) & keep
        counts[rule] = pd.Series(drop, index=trials.index).groupby(participant, observed=True).sum()
        keep &= ~drop
    log = pd.DataFrame(counts)
    log.insert(0, "total", participant.value_counts(sort=False))
    log["kept"] = pd.Series(keep, index=trials.index).groupby(participant, observed=True).sum()
    log.loc["all"] = log.sum()
    log.index.name = "participant"
    log = log.astype("int64")
    return data.with_trials(trials.loc[keep].reset_index(drop=True), cleaning=log)


#: A participant's accuracy within this distance of 0 or 1 is warned about (the coding may be reversed, or
#: the accuracy half of a model has almost nothing to fit).
ACCURACY_EDGE = 0.005
#: Fewer trials than this left by the cleaning are warned about (none left: always).
FEW_TRIALS = 50


def participant_warnings(data: TrialData, cleaned: TrialData) -> list[str]:
    """One line per participant whose accuracy is near 0 or 1, or whose cleaning keeps no or few trials.

    ``data`` is the loaded trial table (accuracy over every answered trial, by the correctness rule the
    data were loaded with: :attr:`TrialData.correctness`), ``cleaned`` the result of :func:`clean` on it.
    ``cogflex data check`` and ``cogflex fit`` print the same lines.
    """
    out = []
    trials = data.trials
    answered = trials["rt"].notna() if "rt" in trials else pd.Series(True, index=trials.index)
    accuracy = trials.loc[answered, "correct"].astype("Float64").groupby(
        trials.loc[answered, "participant"], observed=True).mean()
    rule = data.correctness.get("rule", "column")
    for participant, value in accuracy.items():
        if pd.notna(value) and (value <= ACCURACY_EDGE or value >= 1 - ACCURACY_EDGE):
            hint = ("check how correct is coded (--recode correct=...)" if value <= ACCURACY_EDGE else
                    "the accuracy part of a model has almost nothing to fit")
            out.append(f"participant {participant}: accuracy {value:.3f} by the '{rule}' correctness rule; {hint}")
    log = cleaned.cleaning
    if log is not None:
        for participant, row in log.drop(index="all", errors="ignore").iterrows():
            if row["kept"] == 0:
                out.append(f"participant {participant}: the cleaning keeps no trial of {int(row['total'])}")
            elif row["kept"] < FEW_TRIALS:
                out.append(f"participant {participant}: the cleaning keeps only {int(row['kept'])} of "
                           f"{int(row['total'])} trials")
    return out


def _rule_mask(rule: str, rules: CleaningRules, trials: pd.DataFrame, keep: np.ndarray) -> np.ndarray:
    n = len(trials)
    if rule == "practice":
        if not rules.practice or "practice" not in trials:
            return np.zeros(n, dtype=bool)
        return trials["practice"].fillna(False).to_numpy(dtype=bool)
    if rule == "first_trial":
        if not rules.first_trial:
            return np.zeros(n, dtype=bool)
        return session_starts(trials)
    if rule == "rt_bounds":
        if rules.rt_min is None and rules.rt_max is None:
            return np.zeros(n, dtype=bool)
        rt = trials["rt"].to_numpy(dtype=float)
        out = np.isnan(rt)
        if rules.rt_min is not None:
            out |= rt < rules.rt_min
        if rules.rt_max is not None:
            out |= rt > rules.rt_max
        return out
    if rule == "post_error":
        if not rules.post_error:
            return np.zeros(n, dtype=bool)
        return (trials["prev_correct"] == False).fillna(False).to_numpy(dtype=bool)  # noqa: E712
    if rule == "errors":
        if not rules.errors:
            return np.zeros(n, dtype=bool)
        return ~trials["correct"].fillna(False).to_numpy(dtype=bool)
    if rule == "mad":
        if rules.mad is None:
            return np.zeros(n, dtype=bool)
        rt = trials["rt"].where(keep)  # median and MAD of the trials the earlier rules kept
        who = trials["participant"]
        median = rt.groupby(who, observed=True).transform("median")
        mad = (rt - median).abs().groupby(who, observed=True).transform("median") * 1.4826
        return ((rt - median).abs() > rules.mad * mad).fillna(False).to_numpy(dtype=bool)
    raise KeyError(rule)
