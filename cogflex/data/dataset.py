"""A loaded, validated trial table and what cogflex knows about where it came from."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import pandas as pd

__all__ = ["TrialData", "natural_key", "natural_sorted"]

_DIGITS = re.compile(r"(\d+)")


def natural_key(value: object) -> tuple[tuple[str | int, ...], str]:
    """Sort key that reads the digit runs of an id as numbers: ``"2" < "10"``, ``"p2" < "p10" < "q1"``.

    Ids that differ only in leading zeros (``"01"``, ``"1"``) are ordered by
    their text, so the order is total and the same on every run.
    """
    text = str(value)
    parts = _DIGITS.split(text)  # text at even positions, digit runs at odd ones
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), text


def natural_sorted[T](values: Iterable[T], *, last: Sequence[object] = ()) -> list[T]:
    """``values`` in natural order (:func:`natural_key`), e.g. participant ids 1, 2, 10 rather than 1, 10, 2.

    Values in ``last`` go at the end, in that order: ``natural_sorted(ids,
    last=["all"])`` puts the pooled rows of a summary after the participants.
    """
    tail = {str(v): i for i, v in enumerate(last)}
    return sorted(values, key=lambda v: (tail.get(str(v), -1), natural_key(v)))


@dataclass(frozen=True)
class TrialData:
    """Validated trials in the canonical schema (see :mod:`cogflex.data.schema`).

    Attributes
    ----------
    trials
        One row per trial, sorted by participant, session and trial.
    source
        The file the trials were read from.
    format
        ``"ebb-and-flow"`` or ``"csv"``.
    notes
        Things the loader noticed but did not reject (e.g. a file's switch
        column disagreeing with the cue sequence).
    cleaning
        After :func:`cogflex.data.clean`: trials removed per participant
        (rows) and rule (columns), in the order the rules ran; ``None`` before.
    correctness
        How ``correct`` was decided (:func:`cogflex.data.loaders.apply_correctness`): ``rule``
        (``"response"``: response == correct response; ``"column"``: the file's ``correct``), ``disagree``
        (trials on which the two differ) and ``checked`` (whether the file has the columns to compare).
    """

    trials: pd.DataFrame
    source: str
    format: str
    notes: tuple[str, ...] = ()
    cleaning: pd.DataFrame | None = field(default=None)
    correctness: dict = field(default_factory=lambda: {"rule": "column", "disagree": 0, "checked": False})

    def correctness_line(self) -> str:
        """One line saying which correctness rule was used and how many trials disagree."""
        c = self.correctness
        if not c.get("checked"):
            return "correctness: the file's 'correct' column (no response and correct-response columns to check)"
        rule = "response == correct response" if c["rule"] == "response" else "the file's 'correct' column"
        other = "the 'correct' column" if c["rule"] == "response" else "response == correct response"
        return f"correctness: {rule} ({other} disagrees on {c['disagree']:,} trials)"

    @property
    def n_trials(self) -> int:
        """Number of trials."""
        return len(self.trials)

    @property
    def participants(self) -> list[str]:
        """Participant ids, in table order (the loaders sort them naturally: 1, 2, 10)."""
        return [str(p) for p in self.trials["participant"].unique()]

    @property
    def n_sessions(self) -> int:
        """Number of (participant, session) pairs."""
        return int(self.trials[["participant", "session"]].drop_duplicates().shape[0])

    @property
    def tasks(self) -> list[str]:
        """Task labels."""
        return [str(t) for t in self.trials["task"].cat.categories]

    def digest(self) -> str:
        """SHA-256 of the trial table's content (stable across runs; for provenance)."""
        hashed = pd.util.hash_pandas_object(self.trials, index=False).to_numpy()
        return hashlib.sha256(hashed.tobytes()).hexdigest()

    def with_trials(self, trials: pd.DataFrame, **changes) -> TrialData:
        """Copy with another trial table (and other fields changed)."""
        return replace(self, trials=trials, **changes)
