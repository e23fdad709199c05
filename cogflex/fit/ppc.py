"""Posterior predictive checks: the data layer's summaries of replicated data against the observed ones.

For each fitted model, :func:`posterior_predictive_check` replicates the participants' experiment under
posterior draws (:func:`cogflex.fit.predictive.replicate`: the model's generative process on each
participant's own trial sequence) and summarises every replication with :func:`cogflex.data.summarize`,
exactly as the observed data: switch cost by practice bin, RT by run position, congruency effect, accuracy
on switch and repeat trials, RT quantiles. The result is one long table of observed value, replication mean
and a central interval per statistic; :func:`plot_ppc` draws observed and predicted on the same axes.

Observed correctness is the one the fits use: the rule the data were loaded with
(:attr:`cogflex.data.TrialData.correctness`, ``load_trials(correctness=...)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from cogflex.data.cleaning import CleaningRules
from cogflex.data.dataset import TrialData
from cogflex.data.summaries import ALL, summarize
from cogflex.errors import CogflexError
from cogflex.io import save_figure

__all__ = ["PPC_COLUMNS", "model_colors", "posterior_predictive_check", "ppc_panels",
           "plot_ppc"]

#: Version of the replication procedure: saved PPC tables made by another version are recomputed.
PPC_FORMAT = 2

#: Columns of the PPC table (``ppc.csv``).
PPC_COLUMNS = ["model", "participant", "measure", "condition", "practice_bin", "observed", "mean", "low",
               "high", "p_greater", "replications"]

#: The statistics shown, as (title, measure, condition filter, x axis column, y label).
_PANELS = (
    ("Switch cost vs practice", "switch_cost_ms", "switch-repeat", "practice_bin", "switch cost (ms)"),
    ("RT by run position", "rt_median_ms", "run_position_", "condition", "median RT (ms)"),
    ("Congruency effect (repeat trials)", "congruency_effect_ms", "incongruent-congruent_repeat", "practice_bin",
     "incongruent - congruent (ms)"),
    ("Accuracy: switch", "accuracy", "switch", "practice_bin", "accuracy"),
    ("Accuracy: repeat", "accuracy", "repeat", "practice_bin", "accuracy"),
    ("RT quantiles", "rt_quantile_ms", "_q", "condition", "RT (ms)"),
    ("Switch cost by block condition", "switch_cost_ms", "|cond_", "condition", "switch cost (ms)"),
)


def model_colors(models) -> dict[str, str]:
    """One colour per model, the same in every figure (flexible blue, forgetful orange, descriptive green)."""
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
    fixed = {"flexible": 0, "forgetful": 1, "descriptive": 2}
    out, free = {}, [i for i in range(len(palette)) if i not in fixed.values()]
    for m in sorted(dict.fromkeys(models), key=str):  # by name: the same set gets the same colours in any order
        index = fixed[m] if m in fixed else free.pop(0) if free else len(out) % len(palette)
        out[m] = palette[index]
    return out


def _statistics(data: TrialData, rules: CleaningRules, bins) -> pd.DataFrame:
    tidy = summarize(data, rules, bins=bins).tidy()
    tidy = tidy[tidy["measure"].isin({p[1] for p in _PANELS})]
    return tidy.set_index(["participant", "measure", "condition", "practice_bin"])["value"].astype(float)


def posterior_predictive_check(tree: xr.DataTree, data: TrialData, *, draws: int = 30, seed: int = 0,
                               bins: int | Sequence[float] = 3, rules: CleaningRules | None = None,
                               interval: float = 0.9) -> pd.DataFrame:
    """Observed vs replicated summary statistics of one fit (columns :data:`PPC_COLUMNS`).

    Parameters
    ----------
    tree
        A fit (:func:`cogflex.fit.load_fit`).
    data
        The trial file the fit was made on (uncleaned); checked against the fit's data hash.
    draws
        Replications (posterior draws); ``low``/``high`` are the central ``interval`` of their statistics and
        ``p_greater`` the share of replications above the observed value.
    seed
        Seed of the draw selection and of the simulated responses.
    bins
        Practice bins (:func:`cogflex.data.practice_bins`).
    """
    from cogflex.fit.checks import quiet_numerics
    from cogflex.fit.predictive import replicate
    from cogflex.fit.prepare import select_participants

    if not isinstance(draws, int) or draws < 2:
        raise CogflexError(f"posterior predictive checks need at least 2 replications, got {draws!r}")
    rules = rules or CleaningRules()
    fitted = [str(p) for p in tree["posterior"]["participant"].values]
    selected = data if len(fitted) == data.trials["participant"].nunique() else select_participants(data, fitted)[0]
    if tree.attrs.get("data_digest") not in (None, selected.digest()):
        raise CogflexError(f"the {tree.attrs.get('model')} fit was made on other data than {data.source} "
                           "(data hashes differ): give the file it was fitted to")
    observed = _statistics(selected, rules, bins)
    reps = replicate(tree, selected, draws=draws, seed=seed)
    simulated = pd.concat([_statistics(r, rules, bins) for r in reps], axis=1).reindex(observed.index)
    values = simulated.to_numpy(dtype=float)
    tail = (1 - interval) / 2
    with quiet_numerics():  # statistics undefined in every replication stay NaN
        mean = np.nanmean(values, axis=1)
        low = np.nanquantile(values, tail, axis=1)
        high = np.nanquantile(values, 1 - tail, axis=1)
        greater = np.nanmean(values > observed.to_numpy()[:, None], axis=1)
    out = observed.rename("observed").reset_index()
    out = out.assign(model=str(tree.attrs.get("model")), mean=mean, low=low, high=high, p_greater=greater,
                     replications=np.isfinite(values).sum(axis=1))
    return out[PPC_COLUMNS]


def _sort_key(values: pd.Series) -> pd.Series:
    def key(v: str):
        if v.startswith("run_position_"):
            return (0, int(v.rsplit("_", 1)[1]), "")
        if "_q" in v:
            kind, q = v.rsplit("_q", 1)
            return (1, float(q), kind)
        try:
            return (2, float(v.split("-")[0]), v)
        except ValueError:
            return (3, 0.0, v)
    return values.map(key)


def ppc_panels(ppc: pd.DataFrame, participant: str) -> list[tuple[str, str, pd.DataFrame]]:
    """The rows of each figure panel for one participant: ``[(title, y label, rows), ...]``."""
    sub = ppc[ppc["participant"].astype(str) == str(participant)]
    panels = []
    for title, measure, condition, x, ylabel in _PANELS:
        rows = sub[(sub["measure"] == measure) & sub["condition"].str.contains(condition, regex=False)]
        if x == "practice_bin":
            rows = rows[rows["practice_bin"] != ALL]
        if len(rows):
            rows = rows.assign(x=rows[x].astype(str)).sort_values("x", key=_sort_key)
            panels.append((title, ylabel, rows))
    return panels


def plot_ppc(ppc: pd.DataFrame, participant: str, path: str | Path | None = None, *, title: str | None = None):
    """Observed (black) vs each model's replications (mean and band) for one participant; return the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = ppc_panels(ppc, participant)
    if not panels:
        raise CogflexError(f"no posterior predictive statistics for participant {participant!r}")
    models = list(dict.fromkeys(ppc["model"]))
    colors = model_colors(models)
    ncols = 3
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 3.3 * nrows), squeeze=False)
    for ax, (ptitle, ylabel, rows) in zip(axes.ravel(), panels):
        for j, model in enumerate(models):
            m = rows[rows["model"] == model]
            if m.empty:
                continue
            if ptitle == "RT quantiles":
                for kind, style in (("switch", "-"), ("repeat", ":")):
                    k = m[m["condition"].str.startswith(kind)]
                    xs = np.arange(len(k))
                    ax.fill_between(xs, k["low"], k["high"], color=colors[model], alpha=0.18, lw=0)
                    ax.plot(xs, k["mean"], style, color=colors[model], lw=1.5)
                continue
            xs = np.arange(len(m)) + 0.06 * (j - (len(models) - 1) / 2)
            ax.fill_between(xs, m["low"], m["high"], color=colors[model], alpha=0.18, lw=0)
            ax.plot(xs, m["mean"], "s--", color=colors[model], ms=4, lw=1.2, label=model)
        first = rows[rows["model"] == models[0]] if (rows["model"] == models[0]).any() else rows
        if ptitle == "RT quantiles":
            labels = []
            for kind, style in (("switch", "-"), ("repeat", ":")):
                k = first[first["condition"].str.startswith(kind)]
                ax.plot(np.arange(len(k)), k["observed"], "o" + style, color="k", lw=2, ms=5,
                        label=f"observed {kind}")
                labels = [c.rsplit("_q", 1)[1] for c in k["condition"]]
            ax.set_xticks(np.arange(len(labels)), labels)
            ax.set_xlabel("quantile (switch: solid, repeat: dotted)")
            ax.legend(fontsize=7, loc="upper left")
        else:
            ax.plot(np.arange(len(first)), first["observed"], "o-", color="k", lw=2, ms=5, label="observed")
            labels = [x.removeprefix("run_position_").split("|cond_")[-1] for x in first["x"]]
            ax.set_xticks(np.arange(len(labels)), labels)
            ax.set_xlabel("run position after a switch" if "run position" in ptitle else
                          "block condition" if "condition" in ptitle else "practice (sessions)")
        ax.set_title(ptitle, fontsize=10)
        ax.set_ylabel(ylabel)
        ax.spines[["top", "right"]].set_visible(False)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), frameon=False, fontsize=9,
               bbox_to_anchor=(0.5, 1.0))
    name = "all participants pooled" if str(participant) == ALL else f"participant {participant}"
    fig.suptitle(title or f"Posterior predictive check: {name} (bands: central 90% of replications)", y=1.04,
                 fontsize=11)
    fig.tight_layout()
    save_figure(fig, path)
    return fig
