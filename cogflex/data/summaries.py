"""Descriptive statistics that task-switching papers report, per participant and pooled.

RT statistics use the trials left by the cleaning rules (by default: correct
trials after a correct trial, 0.15-3 s, no session-first trials); accuracy uses
the same rules without the error-based ones (:meth:`CleaningRules.for_accuracy`).
Pooled rows have participant ``"all"``. Times are in milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cogflex.data.cleaning import CleaningRules, clean
from cogflex.data.dataset import TrialData, natural_key, natural_sorted
from cogflex.errors import ConfigError

__all__ = ["Summary", "summarize", "practice_bins", "RT_QUANTILES"]

ALL = "all"
#: A ``cond_*`` column is summarised as a block condition when it has at most this many levels and each level
#: spans at least two blocks (participant x session); others (e.g. a game id) are identifiers.
MAX_CONDITION_LEVELS = 8
#: Quantiles of the RT distributions in :attr:`Summary.rt_quantiles`.
RT_QUANTILES = (0.1, 0.3, 0.5, 0.7, 0.9)


@dataclass(frozen=True)
class Summary:
    """The descriptive tables of one dataset.

    Attributes
    ----------
    by_trial_type
        participant, practice_bin, trial_type (switch/repeat), n, rt_mean_ms,
        rt_median_ms, n_accuracy, accuracy.
    switch_cost
        participant, practice_bin, switch_cost_ms (difference of medians),
        switch_cost_mean_ms (difference of means), n_switch, n_repeat.
    run_position
        participant, run_position (the last value pools longer runs), n,
        rt_median_ms, rt_mean_ms, accuracy.
    congruency
        participant, practice_bin, trial_type (repeat, switch or all),
        congruent_ms, incongruent_ms, congruency_effect_ms (medians), n;
        empty when congruency is unknown. The usual report is the repeat-trial
        effect, which the switch cost does not inflate.
    cleaning
        Trials removed per participant and rule (RT analysis rules).
    rt_quantiles
        participant, trial_type (switch/repeat), quantile (:data:`RT_QUANTILES`), rt_ms, n: the RT
        distribution of the RT-analysis trials over all practice.
    by_condition
        participant, column (a block-level ``cond_*`` column), level, switch_cost_ms (difference of medians
        over all practice), n_switch, n_repeat: the switch cost per block condition (e.g. low- vs
        high-switch-rate blocks); empty without ``cond_*`` columns. Only columns with at most
        :data:`MAX_CONDITION_LEVELS` levels, each spanning two or more blocks, count as conditions.
    """

    by_trial_type: pd.DataFrame
    switch_cost: pd.DataFrame
    run_position: pd.DataFrame
    congruency: pd.DataFrame
    cleaning: pd.DataFrame
    rt_quantiles: pd.DataFrame | None = None
    by_condition: pd.DataFrame | None = None

    def tidy(self) -> pd.DataFrame:
        """All statistics in one long table: participant, practice_bin, measure, condition, value, n."""
        frames = []
        t = self.by_trial_type
        for measure, n_col in (("rt_mean_ms", "n"), ("rt_median_ms", "n"), ("accuracy", "n_accuracy")):
            frames.append(t.assign(measure=measure, condition=t["trial_type"], value=t[measure], n=t[n_col]))
        s = self.switch_cost
        for measure in ("switch_cost_ms", "switch_cost_mean_ms"):
            frames.append(s.assign(measure=measure, condition="switch-repeat", value=s[measure],
                                   n=s["n_switch"] + s["n_repeat"]))
        r = self.run_position
        frames.append(r.assign(measure="rt_median_ms", condition="run_position_" + r["run_position"].astype(str),
                               value=r["rt_median_ms"], practice_bin=ALL))
        c = self.congruency
        if len(c):
            frames.append(c.assign(measure="congruency_effect_ms",
                                   condition="incongruent-congruent_" + c["trial_type"].astype(str),
                                   value=c["congruency_effect_ms"], n=c["n"]))
        q = self.rt_quantiles
        if q is not None and len(q):
            frames.append(q.assign(measure="rt_quantile_ms", practice_bin=ALL, value=q["rt_ms"],
                                   condition=q["trial_type"] + "_q" + q["quantile"].map(lambda v: f"{v:g}")))
        b = self.by_condition
        if b is not None and len(b):
            frames.append(b.assign(measure="switch_cost_ms", practice_bin=ALL, value=b["switch_cost_ms"],
                                   n=b["n_switch"] + b["n_repeat"],
                                   condition="switch-repeat|" + b["column"] + "=" + b["level"].astype(str)))
        cols = ["participant", "practice_bin", "measure", "condition", "value", "n"]
        return pd.concat([f[cols] for f in frames], ignore_index=True)


def practice_bins(sessions: pd.Series, bins: int | Sequence[float] = 3) -> pd.Series:
    """Label each trial with its practice bin (``"150-249"``-style, inclusive session ranges).

    ``bins`` is a number of bins of about equal numbers of sessions, or bin
    edges (left-closed: ``[150, 250, 350, 501]`` gives 150-249, 250-349,
    350-500).
    """
    values = sessions.to_numpy(dtype=float)
    if isinstance(bins, int):
        if bins < 1:
            raise ConfigError("practice_bins", "needs at least one bin")
        unique = np.unique(values[np.isfinite(values)])
        groups = [g for g in np.array_split(unique, min(bins, len(unique))) if len(g)]  # equal numbers of sessions
        edges = np.array([g[0] for g in groups] + [unique.max() + 1])
    else:
        edges = np.asarray(sorted(float(b) for b in bins))
        if len(edges) < 2:
            raise ConfigError("practice_bins", "needs at least two edges")
    index = np.searchsorted(edges, values, side="right") - 1
    labels = [f"{edges[i]:g}-{edges[i + 1] - 1:g}" for i in range(len(edges) - 1)]
    inside = (index >= 0) & (index < len(labels))
    if not inside.any():
        raise ConfigError("practice_bins", f"no session falls in the bins {labels} "
                                           f"(sessions run from {values.min():g} to {values.max():g})")
    out = pd.Series(pd.Categorical([labels[i] if ok else None for i, ok in zip(index, inside)],
                                   categories=labels, ordered=True), index=sessions.index)
    return out


def summarize(data: TrialData, rules: CleaningRules | None = None, *, bins: int | Sequence[float] = 3,
              max_run_position: int = 6) -> Summary:
    """Descriptive statistics of ``data`` (raw, uncleaned: the rules are applied here).

    Parameters
    ----------
    rules
        Cleaning for the RT statistics (default :class:`CleaningRules`).
    bins
        Practice bins, see :func:`practice_bins`.
    max_run_position
        Run positions from this value on are pooled.
    """
    rules = rules or CleaningRules()
    participant = data.trials["participant"].astype("category")
    participant = participant.cat.reorder_categories(natural_sorted(participant.cat.categories))
    # participants in natural order (2 before 10), which every groupby below keeps
    binned = data.trials.assign(participant=participant, practice_bin=practice_bins(data.trials["session"], bins))
    rt_data = clean(data.with_trials(binned), rules)
    acc_trials = clean(data.with_trials(binned), rules.for_accuracy()).trials
    rt_trials = rt_data.trials
    rt_trials = rt_trials.assign(rt_ms=rt_trials["rt"] * 1000.0,
                                 trial_type=np.where(rt_trials["switch"], "switch", "repeat"))
    acc_trials = acc_trials.assign(trial_type=np.where(acc_trials["switch"], "switch", "repeat"),
                                   correct_f=acc_trials["correct"].astype(float))

    by_type = _pooled(rt_trials, ["practice_bin", "trial_type"], _rt_stats)
    acc = _pooled(acc_trials, ["practice_bin", "trial_type"], _acc_stats)
    by_type = by_type.merge(acc, on=["participant", "practice_bin", "trial_type"], how="outer")  # sorts as text
    by_type = _natural_rows(by_type, ["participant", "practice_bin", "trial_type"])

    costs = []
    for (participant, bin_), grp in by_type.groupby(["participant", "practice_bin"], observed=True, sort=False):
        rows = grp.set_index("trial_type")
        # a trial type with accuracy rows but no RT-analysis trials (e.g. all errors) has no median: no cost
        if {"switch", "repeat"} <= set(rows.index) and rows.loc[["switch", "repeat"], "n"].notna().all():
            costs.append({"participant": participant, "practice_bin": bin_,
                          "switch_cost_ms": rows.at["switch", "rt_median_ms"] - rows.at["repeat", "rt_median_ms"],
                          "switch_cost_mean_ms": rows.at["switch", "rt_mean_ms"] - rows.at["repeat", "rt_mean_ms"],
                          "n_switch": int(rows.at["switch", "n"]), "n_repeat": int(rows.at["repeat", "n"])})
    switch_cost = pd.DataFrame(costs, columns=["participant", "practice_bin", "switch_cost_ms",
                                               "switch_cost_mean_ms", "n_switch", "n_repeat"])

    capped = rt_trials.assign(run_position=rt_trials["run_position"].clip(upper=max_run_position).astype(int))
    run = _pooled(capped, ["run_position"], _rt_stats, overall=False)
    acc_capped = acc_trials.assign(run_position=acc_trials["run_position"].clip(upper=max_run_position).astype(int))
    run = run.merge(_pooled(acc_capped, ["run_position"], _acc_stats, overall=False)[
        ["participant", "run_position", "accuracy"]], on=["participant", "run_position"], how="left")

    congruency = _congruency(rt_trials)
    return Summary(by_trial_type=by_type, switch_cost=switch_cost, run_position=run, congruency=congruency,
                   cleaning=rt_data.cleaning, rt_quantiles=_rt_quantiles(rt_trials),
                   by_condition=_by_condition(rt_trials))


def _by_condition(rt_trials: pd.DataFrame) -> pd.DataFrame:
    """Switch cost (median switch - median repeat RT, ms) per participant, pooled, and level of each condition."""
    columns = ["participant", "column", "level", "switch_cost_ms", "n_switch", "n_repeat"]
    rows = []
    for col in sorted(c for c in rt_trials.columns if c.startswith("cond_")):
        known = rt_trials[rt_trials[col].notna()]
        blocks = known.groupby(col, observed=True)[["participant", "session"]].apply(
            lambda g: len(g.drop_duplicates()))
        if not 1 <= len(blocks) <= MAX_CONDITION_LEVELS or (blocks < 2).any():
            continue  # an identifier (Ebb and Flow's cond_game: one level per game), not a condition
        for label, frame in ((None, known), (ALL, known)):
            keys = (["participant"] if label is None else []) + [col]
            for key, grp in frame.groupby(keys, observed=True, sort=True):
                key = key if isinstance(key, tuple) else (key,)
                sw, rep = grp.loc[grp["trial_type"] == "switch", "rt_ms"], grp.loc[grp["trial_type"] == "repeat",
                                                                                    "rt_ms"]
                if len(sw) and len(rep):
                    rows.append({"participant": str(key[0]) if label is None else ALL, "column": col,
                                 "level": str(key[-1]), "switch_cost_ms": sw.median() - rep.median(),
                                 "n_switch": len(sw), "n_repeat": len(rep)})
    return _natural_rows(pd.DataFrame(rows, columns=columns), ["participant", "column", "level"]) if rows else \
        pd.DataFrame(columns=columns)


def _rt_quantiles(rt_trials: pd.DataFrame) -> pd.DataFrame:
    """RT quantiles (ms) per participant (and pooled) and trial type."""
    def stats(frame: pd.DataFrame) -> pd.DataFrame:
        values = np.quantile(frame["rt_ms"], RT_QUANTILES) if len(frame) else np.full(len(RT_QUANTILES), np.nan)
        return pd.DataFrame({"quantile": RT_QUANTILES, "rt_ms": values, "n": len(frame)})

    parts = []
    for label, frame in ((None, rt_trials), (ALL, rt_trials)):
        keys = (["participant"] if label is None else []) + ["trial_type"]
        for key, grp in frame.groupby(keys, observed=True, sort=True):
            key = key if isinstance(key, tuple) else (key,)
            part = stats(grp)
            part.insert(0, "trial_type", key[-1])
            part.insert(0, "participant", str(key[0]) if label is None else label)
            parts.append(part)
    columns = ["participant", "trial_type", "quantile", "rt_ms", "n"]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def _congruency(rt_trials: pd.DataFrame) -> pd.DataFrame:
    """Median RT incongruent - congruent, per participant, practice bin and trial type."""
    columns = ["participant", "practice_bin", "trial_type", "congruent_ms", "incongruent_ms",
               "congruency_effect_ms", "n"]
    if "congruent" not in rt_trials or not rt_trials["congruent"].notna().any():
        return pd.DataFrame(columns=columns)
    known = rt_trials[rt_trials["congruent"].notna()]
    known = known.assign(cong=np.where(known["congruent"], "congruent", "incongruent"))
    tables = []
    for label, subset in (("repeat", known[known["trial_type"] == "repeat"]),
                          ("switch", known[known["trial_type"] == "switch"]), ("all", known)):
        med = _pooled(subset, ["practice_bin", "cong"], _rt_stats)
        wide = med.pivot_table(index=["participant", "practice_bin"], columns="cong", values="rt_median_ms",
                               observed=True)
        if not {"congruent", "incongruent"} <= set(wide.columns):
            continue
        counts = med.groupby(["participant", "practice_bin"], observed=True)["n"].sum()
        table = pd.DataFrame({
            "trial_type": label, "congruent_ms": wide["congruent"], "incongruent_ms": wide["incongruent"],
            "congruency_effect_ms": wide["incongruent"] - wide["congruent"], "n": counts,
        }).reset_index()
        tables.append(_natural_rows(table, ["participant", "practice_bin"]))
    return pd.concat(tables, ignore_index=True)[columns] if tables else pd.DataFrame(columns=columns)


def _natural_rows(table: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Rows sorted by the columns ``by``, each in natural order with the pooled ``all`` last.

    Participant 2 comes before 10, practice bin 50-99 before 100-149.
    """
    keys = [[(str(v) == ALL, natural_key(v)) for v in table[col]] for col in by]
    order = sorted(range(len(table)), key=lambda i: [k[i] for k in keys])
    return table.iloc[order].reset_index(drop=True)


#: The statistics :func:`_pooled` computes, as pandas named aggregations (column, function).
_rt_stats = {"n": ("rt_ms", "size"), "rt_mean_ms": ("rt_ms", "mean"), "rt_median_ms": ("rt_ms", "median")}
_acc_stats = {"n_accuracy": ("correct_f", "size"), "accuracy": ("correct_f", "mean")}


def _pooled(frame: pd.DataFrame, keys: list[str], stats: dict, *, overall: bool = True) -> pd.DataFrame:
    """``stats`` (named aggregations) per participant x keys, plus all participants pooled ('all').

    With ``overall``, rows over all practice bins (practice_bin 'all') are added too.
    """
    parts = []
    for label, group in [(None, frame), (ALL, frame)]:
        by = (["participant"] if label is None else []) + keys
        table = group.groupby(by, observed=True, sort=True).agg(**stats).reset_index()
        if label is not None:
            table.insert(0, "participant", label)
        parts.append(table)
        if overall and "practice_bin" in keys:
            rest = [k for k in keys if k != "practice_bin"]
            by = (["participant"] if label is None else []) + rest
            whole = group.groupby(by, observed=True, sort=True).agg(**stats).reset_index()
            whole.insert(0, "practice_bin", ALL)
            if label is not None:
                whole.insert(0, "participant", label)
            parts.append(whole)
    out = pd.concat(parts, ignore_index=True)
    out["participant"] = out["participant"].astype(str)
    out["practice_bin"] = out["practice_bin"].astype(str) if "practice_bin" in out else None
    if "practice_bin" not in keys:
        out = out.drop(columns=["practice_bin"])
    for col in ("n", "n_accuracy"):
        if col in out:
            out[col] = out[col].astype(int)
    return out
