"""Figures of the descriptive statistics (free functions; summaries in, PNG out)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cogflex.data.summaries import ALL, Summary  # noqa: E402
from cogflex.io import save_figure  # noqa: E402

__all__ = ["plot_switch_cost", "plot_run_position", "plot_accuracy"]

_COLORS = ("#1b6ca8", "#d1495b", "#66a182", "#edae49", "#8d6a9f", "#00798c", "#5b5f97", "#ff8c42")


def _participants(table, limit: int = 8) -> list[str]:
    names = [p for p in dict.fromkeys(table["participant"]) if p != ALL]
    return names[:limit]


def _style(ax):
    ax.spines[["top", "right"]].set_visible(False)


def panel_style(ax, title: str) -> None:
    """A small-multiples panel: title, small tick labels, no top/right spines (report figures)."""
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.spines[["top", "right"]].set_visible(False)


def finish_grid(fig, axes, used: int, title: str):
    """Hide the grid's unused panels, add the title, lay out; returns ``fig``."""
    for ax in axes.ravel()[used:]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _per_participant(table, key: str, order: list, value: str, *, xlabel: str, ylabel: str, title: str,
                     ticks: list[str], path, zero_line: bool = False):
    """One line per participant (and a thick pooled line) of ``value`` over the ``order`` of ``key``."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    x = np.arange(len(order))
    names = _participants(table)
    for name, color in zip([*names, ALL], [*_COLORS[: len(names)], "black"]):
        rows = table[table["participant"] == name].set_index(key).reindex(order)
        ax.plot(x, rows[value], "o-", color=color, lw=2.2 if name == ALL else 1.3,
                label="pooled" if name == ALL else f"participant {name}")
    if zero_line:
        ax.axhline(0, color="0.7", lw=0.8)
    ax.set_xticks(x, ticks)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(frameon=False, fontsize=8)
    _style(ax)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_switch_cost(summary: Summary, path: str | Path | None = None):
    """Switch cost (median switch - median repeat RT) across practice bins, per participant and pooled."""
    table = summary.switch_cost[summary.switch_cost["practice_bin"] != ALL]
    bins = list(dict.fromkeys(table["practice_bin"]))
    return _per_participant(table, "practice_bin", bins, "switch_cost_ms", xlabel="practice (session / gameplay)",
                            ylabel="switch cost (ms)", title="switch cost vs practice", ticks=bins, path=path,
                            zero_line=True)


def plot_run_position(summary: Summary, path: str | Path | None = None):
    """Median RT by position in the task run (1 = first trial after a switch)."""
    table = summary.run_position
    positions = sorted(table["run_position"].unique())
    labels = [str(p) for p in positions[:-1]] + [f"{positions[-1]}+"]
    return _per_participant(table, "run_position", positions, "rt_median_ms",
                            xlabel="position in task run (1 = switch trial)", ylabel="median RT (ms)",
                            title="RT by run position", ticks=labels, path=path)


def plot_accuracy(summary: Summary, path: str | Path | None = None):
    """Accuracy on switch and repeat trials across practice bins, one panel per participant and pooled."""
    table = summary.by_trial_type[summary.by_trial_type["practice_bin"] != ALL]
    names = [*_participants(table, limit=5), ALL]
    fig, axes = plt.subplots(1, len(names), figsize=(3.0 * len(names), 3.2), sharey=True, squeeze=False)
    bins = list(dict.fromkeys(table["practice_bin"]))
    x = np.arange(len(bins))
    for ax, name in zip(axes[0], names):
        for kind, color in (("repeat", "#1b6ca8"), ("switch", "#d1495b")):
            rows = table[(table["participant"] == name) & (table["trial_type"] == kind)]
            rows = rows.set_index("practice_bin").reindex(bins)
            ax.plot(x, rows["accuracy"], "o-", color=color, label=kind)
        ax.set_xticks(x, bins, rotation=30, fontsize=8)
        ax.set(title="pooled" if name == ALL else f"participant {name}", xlabel="practice")
        _style(ax)
    axes[0, 0].set_ylabel("accuracy")
    axes[0, -1].legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
