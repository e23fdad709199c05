"""Figures of simulation results (free functions; results in, PNG out).

Every function takes results, draws on a new matplotlib figure, saves it when
``path`` is given and returns the figure. Curves are means over seeds with a
band of one standard error.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cogflex.io import save_figure  # noqa: E402
from cogflex.nta.results import SimulationResult  # noqa: E402

__all__ = ["plot_simulation", "plot_comparison", "plot_regime_map", "plot_switch_curves"]

_COLORS = ("#1b6ca8", "#d1495b", "#66a182", "#edae49", "#8d6a9f", "#00798c")


def _band(ax, x, values, color, label=None, log=False):
    """Mean over the first axis with a one-standard-error band."""
    values = np.asarray(values, dtype=float)
    mean = np.nanmean(values, axis=0)
    se = np.nanstd(values, axis=0) / np.sqrt(max(values.shape[0], 1))
    lo = np.clip(mean - se, 1e-12, None) if log else mean - se
    ax.plot(x, mean, color=color, lw=1.4, label=label)
    ax.fill_between(x, lo, mean + se, color=color, alpha=0.25, lw=0)


def _matched_alignment(ds) -> tuple[np.ndarray, np.ndarray]:
    """Alignment of each teacher with its best path (final matching), and the mean of the rest."""
    final = ds["final_alignment"].values  # (N, P, M)
    traj = ds["alignment"].values  # (N, T, P, M)
    best = final.argmax(axis=1)  # (N, M): path per teacher
    n, _, paths, tasks = traj.shape
    matched = np.stack([traj[i, :, best[i], np.arange(tasks)].T for i in range(n)])  # (N, T, M)
    mask = np.ones((n, paths, tasks), dtype=bool)
    for i in range(n):
        mask[i, best[i], np.arange(tasks)] = False
    other = np.stack([traj[i][:, mask[i]].mean(-1) if mask[i].any() else np.full(traj.shape[1], np.nan)
                      for i in range(n)])
    return matched.mean(-1), other


def _draw_run(axes, result: SimulationResult, color: str, label: str | None) -> None:
    ds = result.grid_point(0)
    t = ds["time"].values
    ax_loss, ax_gates, ax_align, ax_ttc = axes
    _band(ax_loss, t, ds["loss"].values, color, label, log=True)
    final_order = np.argsort(ds["final_gates"].values.mean(axis=1), axis=-1)  # follow paths, not ranks
    gates = np.take_along_axis(ds["gates"].values.mean(axis=2), final_order[:, None, :], axis=-1)
    for p in range(gates.shape[-1]):
        _band(ax_gates, t, gates[..., p], color, None)
    matched, other = _matched_alignment(ds)
    _band(ax_align, t, matched, color, None)
    _band(ax_align, t, other, color, None)
    ax_align.plot([], [], color=color, ls="-")
    summary = result.summary()
    ttc = np.array([np.nan if v is None else v for v in summary["time_to_criterion"]], dtype=float)
    ax_ttc.plot(np.arange(1, len(ttc) + 1), ttc, "o-", color=color, ms=3, label=label)


def _style_run_axes(axes, criterion: float) -> None:
    ax_loss, ax_gates, ax_align, ax_ttc = axes
    ax_loss.set(yscale="log", xlabel="time", ylabel="loss", title="loss")
    ax_loss.axhline(criterion, color="0.6", ls=":", lw=1)
    ax_gates.set(xlabel="time", ylabel="gate c_p", title="gates (paths ordered by final gate)")
    ax_align.set(xlabel="time", ylabel="cosine", title="alignment: matched (top) / other (bottom)", ylim=(-0.1, 1.05))
    ax_ttc.set(xlabel="switch", ylabel=f"time to loss < {criterion:g} (units of tau_W)",
               title="time to criterion after each switch")
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)


def plot_simulation(result: SimulationResult, path: str | Path | None = None) -> plt.Figure:
    """Loss, gates, student-teacher alignment and time to criterion of one run (Fig. 2 style)."""
    return plot_comparison({result.config.name: result}, path)


def plot_comparison(results: Mapping[str, SimulationResult], path: str | Path | None = None) -> plt.Figure:
    """Several runs on shared axes (e.g. flexible vs forgetful), one colour each."""
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8))
    for (name, result), color in zip(results.items(), _COLORS):
        _draw_run(axes, result, color, name)
    first = next(iter(results.values()))
    _style_run_axes(axes, first.config.recording.criterion)
    axes[-1].legend(frameon=False)
    axes[0].legend(frameon=False)
    seeds = first.config.seeds
    fig.suptitle(f"{' vs '.join(results)}  ({seeds} seeds, mean +/- s.e.)", y=1.02)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_regime_map(result: SimulationResult, path: str | Path | None = None) -> plt.Figure:
    """Total alignment over a two-axis sweep, annotated (Fig. 5 style); 1 = specialised."""
    sweep = result.config.sweep
    if len(sweep.axes) != 2:
        raise ValueError("a regime map needs exactly two swept parameters")
    table = result.table()
    (row_name, rows), (col_name, cols) = sweep.axes
    grid = table["total_alignment"].to_numpy().reshape(len(rows), len(cols))
    fig, ax = plt.subplots(figsize=(1.1 * len(cols) + 2.2, 0.9 * len(rows) + 1.6))
    im = ax.imshow(grid, cmap="Oranges", vmin=0.5, vmax=1.0, aspect="auto")
    for i in range(len(rows)):
        for j in range(len(cols)):
            ax.text(j, i, f"{grid[i, j]:.3f}", ha="center", va="center", fontsize=8,
                    color="white" if grid[i, j] > 0.85 else "black")
    ax.set_xticks(range(len(cols)), [f"{v:g}" for v in cols])
    ax.set_yticks(range(len(rows)), [f"{v:g}" for v in rows])
    ax.set(xlabel=col_name, ylabel=row_name, title=f"{result.config.name}: total alignment at the end")
    fig.colorbar(im, ax=ax, label="total alignment (1 = specialised)")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_switch_curves(
    results: Mapping[str, SimulationResult], path: str | Path | None = None, *, switches: int = 4, steps: int = 5
) -> plt.Figure:
    """Loss 1..``steps`` steps after switches 1..``switches``, one panel per run (Fig. 8 style)."""
    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.4), sharey=True, squeeze=False)
    cmap = plt.get_cmap("viridis")
    for ax, (name, result) in zip(axes[0], results.items()):
        curves = result.grid_point(0)["switch_curve"].values  # (N, segment, offset)
        x = np.arange(1, steps + 1)
        for k in range(1, switches + 1):
            if k >= curves.shape[1]:
                break
            vals = curves[:, k, 1 : steps + 1]
            mean, sd = np.nanmean(vals, axis=0), np.nanstd(vals, axis=0)
            color = cmap((k - 1) / max(switches - 1, 1))
            ax.errorbar(x, mean, yerr=sd, color=color, marker="o", ms=3, capsize=2, label=f"switch {k}")
        ax.set(title=name, xlabel="steps after switch", xticks=x)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0, 0].set_ylabel("loss (mean +/- s.d. over seeds)")
    axes[0, -1].legend(frameon=False, title="blocks trained")
    fig.tight_layout()
    return save_figure(fig, path)
