"""Estimated vs true: a fit of synthetic data compared with the parameters that generated it.

``cogflex simulate-data`` (and ``analyses/make_lab_demo_data.py``) write ``<data>.params.json`` next to the trial
file: ``{"model": ..., "parameters": {name: {participant: value}}}``. :func:`load_truth` finds it for a data
file; :func:`truth_rows` pairs every fitted parameter that has a true value with the posterior mean and 94%
interval per participant; :func:`truth_figure` plots estimate against truth (identity line, intervals), and
:func:`truth_summary` gives per parameter the correlation and the share of true values inside the interval.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["params_path", "load_truth", "truth_rows", "truth_summary", "truth_figure"]


def params_path(source: str | Path) -> Path:
    """``dir/name.params.json`` for ``dir/name.csv`` or ``dir/name.csv.gz``."""
    path = Path(source)
    name = path.name
    for suffix in (".gz", ".csv", ".tsv", ".txt"):
        name = name.removesuffix(suffix)
    return path.with_name(f"{name}.params.json")


def load_truth(source: str | Path | None) -> dict | None:
    """The generating parameters next to a synthetic data file, or None (no file, or not in that format)."""
    if not source:
        return None
    path = params_path(source)
    try:
        truth = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(truth, dict) or not isinstance(truth.get("parameters"), dict):
        return None
    truth["file"] = str(path)
    return truth


def truth_rows(parameters: dict, truth: dict) -> list[dict]:
    """One row per (parameter, participant) with a true value: truth, posterior mean, 94% interval, covered."""
    rows = []
    for name, per in parameters.items():
        true = truth["parameters"].get(name)
        if not isinstance(true, dict):
            continue
        for pid, est in per.items():
            if pid in true and isinstance(est, dict) and "mean" in est:
                value = float(true[pid])
                rows.append({"parameter": name, "participant": pid, "true": value, "mean": est["mean"],
                             "low": est["low_94"], "high": est["high_94"],
                             "covered": bool(est["low_94"] <= value <= est["high_94"])})
    return rows


def truth_summary(rows: list[dict]) -> list[dict]:
    """Per parameter: participants, Pearson r of mean vs truth, and coverage of the 94% intervals."""
    out = []
    for name in dict.fromkeys(r["parameter"] for r in rows):
        sub = [r for r in rows if r["parameter"] == name]
        true = np.array([r["true"] for r in sub])
        mean = np.array([r["mean"] for r in sub])
        r = float(np.corrcoef(true, mean)[0, 1]) if len(sub) > 2 and true.std() > 0 and mean.std() > 0 else None
        out.append({"parameter": name, "participants": len(sub), "r": r,
                    "coverage_94": float(np.mean([x["covered"] for x in sub]))})
    return out


def truth_figure(rows: list[dict], title: str):
    """Posterior mean and 94% interval against the true value, one panel per parameter.

    Positive parameters spanning more than a factor of 3 get log axes.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cogflex.data.plots import finish_grid, panel_style

    names = list(dict.fromkeys(r["parameter"] for r in rows))
    ncols = min(4, len(names))
    nrows = -(-len(names) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.0 * nrows), squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        sub = [r for r in rows if r["parameter"] == name]
        true = np.array([r["true"] for r in sub])
        mean, low, high = (np.array([r[k] for r in sub]) for k in ("mean", "low", "high"))
        colors = ["C0" if r["covered"] else "C3" for r in sub]
        ax.vlines(true, low, high, colors=colors, lw=1, alpha=0.7)
        ax.scatter(true, mean, c=colors, s=12, zorder=3)
        lo, hi = float(min(true.min(), low.min())), float(max(true.max(), high.max()))
        ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.8, ls="--")
        if lo > 0 and hi / lo > 3:
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlabel("true", fontsize=8)
        ax.set_ylabel("posterior mean (94% interval)", fontsize=8)
        panel_style(ax, name)
    return finish_grid(fig, axes, len(names), f"{title}: estimated vs true (red: truth outside the interval)")
