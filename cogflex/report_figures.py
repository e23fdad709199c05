"""Figures of the model-comparison report (:mod:`cogflex.report`).

The forest plot of the posteriors per participant, the ELPD-difference figure, the LOO-PIT calibration of the
RT predictions, and the PNG data URIs they are embedded as.
"""

from __future__ import annotations

import base64
import io

import numpy as np

from cogflex.fit.compare import Comparison

__all__ = ["figure_uri", "posterior_figure", "comparison_figure", "loo_pit_summary", "loo_pit_figure"]

#: Kolmogorov-Smirnov 95% critical value times sqrt(n): the simultaneous band of an ECDF of n uniform values.
KS_95 = 1.358


def figure_uri(fig) -> str:
    """``fig`` as a PNG data URI (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _log_ticks(ax) -> None:
    """A log x axis with 2-4 short labels that never overlap.

    1-2-5, 1-3 or decade steps, or 3 values on a narrow range (a fraction of a decade); minor ticks unlabelled.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    lo, hi = ax.get_xlim()
    ticks: list[float] = []
    for subs in ((1.0, 2.0, 5.0), (1.0, 3.0), (1.0,)):
        ticks = [t for t in LogLocator(base=10, subs=subs).tick_values(lo, hi) if lo <= t <= hi]
        if 2 <= len(ticks) <= 4:
            break
    if len(ticks) > 4:  # many decades: every k-th decade
        ticks = ticks[:: -(-len(ticks) // 4)]
    if len(ticks) < 2:
        ticks = sorted({float(f"{v:.2g}") for v in np.geomspace(lo, hi, 5)[1:-1]})
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def posterior_figure(tree, model: str):
    """Forest plot: posterior mean and 94% interval per participant, one panel per named parameter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cogflex.data.plots import finish_grid, panel_style
    from cogflex.fit.fitting import reported_parameters
    from cogflex.fit.schema import model_of

    post = tree["posterior"].to_dataset()
    fitted = model_of(tree)
    names = [n for n in reported_parameters(tree) if n in post
             and not (set(post[n].dims) - {"chain", "draw", "participant"})]
    if not names:
        return None
    participants = [str(p) for p in post["participant"].values] if "participant" in post.dims else ["-"]
    ncols = min(4, len(names))
    nrows = -(-len(names) // ncols)
    row = 0.32 if len(participants) <= 30 else max(0.12, 9.6 / len(participants))  # a lab's 60: one screen
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 0.5 + row * len(participants) * nrows + 1.3 * nrows),
                             squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        da = post[name]
        for i, pid in enumerate(participants):
            values = (da.sel(participant=pid) if "participant" in da.dims else da).values.ravel()
            lo, hi = np.quantile(values, [0.03, 0.97])
            ax.plot([lo, hi], [i, i], color="C0", lw=2)
            ax.plot(values.mean(), i, "o", color="C0", ms=4)
        ax.set_yticks(range(len(participants)), participants, fontsize=7 if len(participants) <= 30 else 5)
        ax.invert_yaxis()
        if name in fitted.log_scale:
            _log_ticks(ax)
        panel_style(ax, fitted.label(name))
    return finish_grid(fig, axes, len(names), f"{model}: posterior mean and 94% interval per participant")


def comparison_figure(comparison: Comparison):
    """ELPD difference to each scope's best model, per model, with 2 SE error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cogflex.fit.ppc import model_colors

    table = comparison.table
    scopes = list(dict.fromkeys(table["participant"]))
    models = list(dict.fromkeys(table["model"]))
    colors = model_colors(models)
    fig, ax = plt.subplots(figsize=(7, 0.9 + 0.45 * len(scopes) * max(1, len(models) - 1) ** 0.5))
    for j, model in enumerate(models):
        rows = table[table["model"] == model].set_index("participant").reindex(scopes)
        y = np.arange(len(scopes)) + 0.15 * (j - (len(models) - 1) / 2)
        ax.errorbar(rows["elpd_diff"], y, xerr=2 * rows["dse"].fillna(0), fmt="o", capsize=3, label=model,
                    color=colors[model])
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(range(len(scopes)), ["pooled" if s == "all" else s for s in scopes])
    ax.invert_yaxis()
    ax.set_xlabel("ELPD difference to the best model of each row (error bars: 2 SE of the difference)")
    ax.legend(fontsize=8, loc="lower left")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def loo_pit_summary(pit: np.ndarray) -> dict:
    """Calibration of one model's RT predictions from its LOO-PIT values (one per trial).

    ``ks``: the largest distance of their ECDF from the uniform one, ``band``: the 95% simultaneous band of
    that distance for independent uniform values (Kolmogorov-Smirnov), ``below_5`` / ``above_95``: the shares
    of trials whose RT lies in the lowest / highest 5% of its leave-one-out predictive distribution (5% each
    when calibrated).
    """
    pit = np.sort(np.asarray(pit, dtype=float))
    n = pit.size
    grid = np.arange(1, n + 1) / n
    ks = float(max(np.max(grid - pit), np.max(pit - (grid - 1.0 / n)))) if n else float("nan")
    return {"n": int(n), "ks": ks, "band": KS_95 / np.sqrt(n) if n else float("nan"),
            "below_5": float(np.mean(pit < 0.05)), "above_95": float(np.mean(pit > 0.95))}


def loo_pit_figure(pits: dict[str, np.ndarray]):
    """ECDF of each model's LOO-PIT values minus the uniform CDF, with the 95% simultaneous band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cogflex.fit.ppc import model_colors

    colors = model_colors(list(pits))
    u = np.linspace(0.0, 1.0, 201)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    n = min(len(p) for p in pits.values())
    band = KS_95 / np.sqrt(n)
    ax.fill_between(u, -band, band, color="0.88", label="95% band (uniform)")
    for model, pit in pits.items():
        ecdf = np.searchsorted(np.sort(pit), u, side="right") / len(pit)
        ax.plot(u, ecdf - u, color=colors[model], lw=1.6, label=model)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xlabel("LOO-PIT of the RT")
    ax.set_ylabel("ECDF - uniform")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig
