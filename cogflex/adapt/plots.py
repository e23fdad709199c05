"""Figures of an adapter run: held-out accuracy over the curriculum, and the gates."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cogflex.io import save_figure

__all__ = ["plot_accuracy", "plot_gates"]


def _blocks(ax, result) -> None:
    cur = result.config.curriculum
    for b in range(cur.blocks):
        if b % len(cur.tasks) == 1:
            ax.axvspan(b * cur.block_steps, (b + 1) * cur.block_steps, color="0.92", lw=0)
    ax.set_xlim(0, cur.blocks * cur.block_steps)
    ax.set_xlabel("step (shaded: " + " / ".join(cur.tasks[1:2]) + " blocks)")


def plot_accuracy(result, path: str | Path | None = None):
    """Held-out accuracy on the current task after every evaluated step, with the block structure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 3.6), gridspec_kw={"width_ratios": [2.2, 1]})
    ax = axes[0]
    _blocks(ax, result)
    ax.plot(result.steps, result.accuracy, lw=0.8, color="C0")
    ax.set_ylabel("held-out accuracy, current task")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{result.config.name}: {result.config.regime} (seed {result.config.seed})")
    ax = axes[1]
    summary = result.summary()
    offsets = [int(k) for k in summary["accuracy_after_switch"][0]] if summary["accuracy_after_switch"] else []
    for k, row in enumerate(summary["accuracy_after_switch"]):
        values = [row[str(o)] if row[str(o)] is not None else np.nan for o in offsets]
        ax.plot(offsets, values, "o-", ms=3, color=matplotlib.colormaps["viridis"](k / max(1, len(
            summary["accuracy_after_switch"]) - 1)), label=f"switch {k + 1}" if k in (0, len(
            summary["accuracy_after_switch"]) - 1) else None)
    ax.set_xscale("log")
    ax.set_xlabel("steps after the switch")
    ax.set_ylabel("accuracy on the new task")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    ax.set_title("recovery after each switch")
    for a in axes:
        a.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_gates(result, path: str | Path | None = None):
    """Gate values over the curriculum (per-unit gates: mean over output units)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 3.2))
    _blocks(ax, result)
    g = result.gates.mean(1)  # (n_evals, P)
    for p in range(g.shape[1]):
        ax.plot(result.steps, g[:, p], lw=1.0, label=f"path {p + 1}")
    ax.set_ylabel("gate c_p")
    ax.legend(fontsize=8, ncol=g.shape[1])
    ax.set_title(f"{result.config.name}: gates ({result.config.regime}, seed {result.config.seed})")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return save_figure(fig, path)
