"""Fig. 6: emergent gating in a fully connected two-layer linear network.

The network y = W2 W1 x (20 -> 20 -> 10) with the gate regulariser on W2
(:mod:`cogflex.nta.fully_connected`, preset ``fig6-fully-connected``) is run
with and without the regulariser, same seeds. The figure shows W2 after the
last block of each task with hidden units sorted by task preference (seed 0,
and the mean over seeds), and the unit selectivity over training.

A step-size check runs the regularised network at several dt (same tau_W2):
with these settings single-unit gating is partly a property of the Euler
discretisation, not of the gradient flow, and the panel shows it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cogflex.io import save_figure  # noqa: E402
from cogflex.nta.fully_connected import (  # noqa: E402
    FullyConnectedConfig,
    FullyConnectedResult,
    HiddenUnitSelectivity,
    first_layer_alignment,
    hidden_unit_selectivity,
    load_fully_connected_config,
    simulate_fully_connected,
    sort_hidden_units,
    time_to_criterion,
)
from cogflex.reproduce.base import Figure, Quantity, Scale  # noqa: E402

__all__ = ["FIGURE", "run", "plot_sorted_second_layer", "plot_selectivity", "sorted_second_layers"]

PRESET = "fig6-fully-connected"
#: Euler steps dt of the step-size check, per scale (tau_W2 stays 0.01).
STEP_SIZES = {"paper": (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.012, 0.014), "quick": (0.005, 0.01)}
CONDITIONS = ("with regulariser", "without regulariser")
#: Blocks of the long-training runs (the authors' figure stops after 32): at the authors' Euler step
#: (dt / tau_W2 = 1) unit selectivity keeps rising with training; near the gradient flow it does not.
LONG_BLOCKS = {"paper": 1000, "quick": 60}
#: A small Euler step (dt / tau_W2 = 0.2) and its run length for the gradient-flow comparison.
SMALL_STEP = {"paper": (0.002, 300), "quick": (0.002, 30)}
_COLORS = ("#d1495b", "#1b6ca8")


def _scaled(config: FullyConnectedConfig, scale: Scale) -> FullyConnectedConfig:
    if scale == "paper":
        return config
    return dataclasses.replace(config, seeds=2, blocks=12, measure_blocks=4)


def _selectivity(result: FullyConnectedResult, end: int | None = None) -> HiddenUnitSelectivity:
    cfg = result.config
    stop = result.second_layer.shape[2] if end is None else end
    return hidden_unit_selectivity(result.second_layer[:, :, :stop], result.block_task[:stop],
                                   measure_blocks=cfg.measure_blocks, carrying_share=cfg.carrying_share)


def sorted_second_layers(result: FullyConnectedResult, selectivity: HiddenUnitSelectivity) -> np.ndarray:
    """W2 after the last block of each task, hidden units sorted per network, ``(V, S, M, d_out, d_hidden)``."""
    tasks = result.config.tasks
    last = [int(np.flatnonzero(result.block_task == m)[-1]) for m in range(tasks)]
    by_task = result.second_layer[:, :, last]  # (V, S, M, O, H)
    out = np.empty_like(by_task)
    for v in range(by_task.shape[0]):
        for s in range(by_task.shape[1]):
            order = sort_hidden_units(selectivity.weight[v, s], by_task[v, s])
            out[v, s] = by_task[v, s][..., order]
    return out


def plot_sorted_second_layer(matrices: np.ndarray, preferred_counts: np.ndarray, path: Path | None, *,
                             title: str) -> plt.Figure:
    """W2 per condition (columns) and task (rows), hidden units sorted; a line splits the task groups.

    Parameters
    ----------
    matrices
        ``(V, M, d_out, d_hidden)``, already sorted.
    preferred_counts
        Number of hidden units preferring task 0 per condition, ``(V,)`` (where the line goes).
    path
        PNG to write (nothing when ``None``).
    title
        Figure title.
    """
    n_cond, n_task = matrices.shape[:2]
    vmax = max(0.3, float(np.quantile(np.abs(matrices), 0.995)))
    fig, axes = plt.subplots(n_task, n_cond, figsize=(4.6 * n_cond, 1.9 * n_task + 0.9), squeeze=False,
                             layout="constrained")
    for v in range(n_cond):
        for m in range(n_task):
            ax = axes[m, v]
            image = ax.imshow(matrices[v, m], cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="equal")
            ax.axvline(preferred_counts[v] - 0.5, color="k", lw=1.0, ls="--")
            ax.set_xticks([])
            ax.set_yticks([])
            if m == 0:
                ax.set_title(CONDITIONS[v] if v < len(CONDITIONS) else f"condition {v}", fontsize=10)
            if v == 0:
                ax.set_ylabel(f"end of task {'AB'[m] if m < 2 else m}\noutput unit", fontsize=9)
            if m == n_task - 1:
                ax.set_xlabel("hidden unit (sorted: prefers A | prefers B)", fontsize=9)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="W2 entry")
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)
    return fig


def plot_selectivity(result: FullyConnectedResult, windows: np.ndarray, window_selectivity: np.ndarray,
                     step_ratio: np.ndarray, step_selectivity: np.ndarray, path: Path | None) -> plt.Figure:
    """Loss, selectivity over training, per-unit selectivity and the step-size check.

    Parameters
    ----------
    result
        The run with (V = 2) conditions.
    windows
        Time at the end of each measurement window, ``(W,)``.
    window_selectivity
        Weighted selectivity per window, ``(V, S, W)``.
    step_ratio
        dt / tau_W2 of the step-size check, ``(K,)``.
    step_selectivity
        Weighted selectivity of the regularised network at each step size, ``(S, K)``.
    path
        PNG to write (nothing when ``None``).
    """
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4), layout="constrained")
    ax = axes[0]
    shown = min(4, result.config.blocks) * result.config.block_steps
    t = result.times[-shown:]
    for v in range(result.loss.shape[0]):
        loss = np.clip(result.loss[v, :, -shown:].mean(0), 1e-6, None)
        ax.plot(t, loss, color=_COLORS[v], lw=1.0, label=CONDITIONS[v])
    for start in t[:: result.config.block_steps][1:]:
        ax.axvline(start, color="gray", lw=0.6, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel("time t (last blocks; dotted: task switches)")
    ax.set_ylabel("loss (mean over seeds)")
    ax.legend(fontsize=8, loc="lower left")
    ax = axes[1]
    for v in range(window_selectivity.shape[0]):
        values = window_selectivity[v]
        ax.plot(windows, values.mean(0), color=_COLORS[v], lw=1.5, label=CONDITIONS[v])
        ax.fill_between(windows, values.min(0), values.max(0), color=_COLORS[v], alpha=0.2, lw=0)
    ax.axhline(0.9, color="k", lw=0.8, ls="--")
    ax.axhline(0.6, color="gray", lw=0.8, ls=":")
    ax.set_ylim(0.45, 1.02)
    ax.set_xlabel(f"time t (end of a window of {result.config.measure_blocks} blocks)")
    ax.set_ylabel("weighted unit selectivity")
    ax.set_title("mean and range over seeds", fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    ax = axes[2]
    ax.plot(step_ratio, step_selectivity.mean(0), "o-", color=_COLORS[0], label=CONDITIONS[0])
    ax.fill_between(step_ratio, step_selectivity.min(0), step_selectivity.max(0), color=_COLORS[0], alpha=0.2, lw=0)
    authors = result.config.dt / result.config.second_layer_timescale
    ax.axvline(authors, color="k", lw=0.8, ls=":", label=f"authors' dt / tau_W2 = {authors:g}")
    ax.axhline(0.9, color="k", lw=0.8, ls="--")
    ax.set_ylim(0.45, 1.02)
    ax.set_xlabel("Euler step dt / tau_W2")
    ax.set_ylabel("weighted unit selectivity (end)")
    ax.set_title(f"step-size check, t = {result.config.blocks * result.config.block_length:g}", fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    save_figure(fig, path)
    return fig


def _step_size_check(config: FullyConnectedConfig, scale: Scale) -> tuple[np.ndarray, np.ndarray]:
    """Weighted selectivity of the regularised network for each dt of :data:`STEP_SIZES`, ``(S, K)``."""
    values = []
    for dt in STEP_SIZES[scale]:
        result = simulate_fully_connected(dataclasses.replace(config, dt=dt), regularized=True)
        values.append(_selectivity(result).weighted_selectivity[0])
    ratio = np.asarray(STEP_SIZES[scale]) / config.second_layer_timescale
    return ratio, np.stack(values, axis=-1)


def _first_layer_persistence(result: FullyConnectedResult, selectivity: HiddenUnitSelectivity) -> np.ndarray:
    """Share of each unit's W1 row in its preferred teacher's row space, over the late blocks of all tasks.

    Weighted by the units' output weight, ``(V, S)``: about 1 when W1 rows keep
    their task while their unit is off, about 1/M when W1 follows the current task.
    """
    late = result.config.measure_blocks
    shares = np.stack([first_layer_alignment(result.first_layer[:, s, -late:], result.teachers[s])
                       for s in range(result.first_layer.shape[1])], axis=1)  # (V, S, late, H, M)
    own = np.take_along_axis(shares.mean(2), selectivity.preferred_task[..., None], axis=-1)[..., 0]
    total = selectivity.weight.sum(-1)
    return (own * total).sum(-1) / total.sum(-1)


def run(scale: Scale, out: Path) -> list[Quantity]:
    """Run with and without the regulariser; write ``fig6_*.png``; return the key numbers."""
    out = Path(out)
    config = _scaled(load_fully_connected_config(PRESET), scale)
    result = simulate_fully_connected(config, regularized=(True, False))
    sel = _selectivity(result)
    weighted = sel.weighted_selectivity  # (V, S)
    gating = sel.gating_units(config.selectivity_threshold).mean(1)  # (V, M)

    matrices = sorted_second_layers(result, sel)
    counts = (sel.preferred_task == 0).sum(-1)  # (V, S)
    plot_sorted_second_layer(matrices[:, 0], counts[:, 0], out / "fig6_sorted_second_layer.png",
                             title=f"W2 after the last block of each task, seed {result.seeds[0]} "
                                   f"(t = {config.blocks * config.block_length:g})")
    plot_sorted_second_layer(matrices.mean(1), np.round(counts.mean(1)).astype(int),
                             out / "fig6_sorted_second_layer_mean.png",
                             title=f"sorted W2, mean over {len(result.seeds)} seeds")
    plt.close("all")

    ends = np.arange(config.measure_blocks, config.blocks + 1)
    window_sel = np.stack([_selectivity(result, end).weighted_selectivity for end in ends], axis=-1)
    check = dataclasses.replace(config, seeds=min(config.seeds, 5))
    step_ratio, step_sel = _step_size_check(check, scale)
    plot_selectivity(result, ends * config.block_length, window_sel, step_ratio, step_sel,
                     out / "fig6_selectivity.png")
    plt.close("all")

    # Long training: at the authors' step (and without the regulariser), and near the gradient flow.
    long = dataclasses.replace(config, blocks=LONG_BLOCKS[scale])
    long_result = simulate_fully_connected(long, regularized=(True, False))
    long_sel = _selectivity(long_result)
    long_weighted = long_sel.weighted_selectivity
    long_matrices = sorted_second_layers(long_result, long_sel)
    long_counts = (long_sel.preferred_task == 0).sum(-1)
    plot_sorted_second_layer(long_matrices[:, 0], long_counts[:, 0], out / "fig6_sorted_second_layer_long.png",
                             title=f"W2 after the last block of each task, seed {long_result.seeds[0]}, "
                                   f"long training (t = {long.blocks * long.block_length:g})")
    plt.close("all")
    small_dt, small_blocks = SMALL_STEP[scale]
    small = dataclasses.replace(check, dt=small_dt, blocks=small_blocks)
    small_weighted = _selectivity(simulate_fully_connected(small, regularized=True)).weighted_selectivity[0]
    long_reg, long_free = float(long_weighted[0].mean()), float(long_weighted[1].mean())

    persistence = _first_layer_persistence(result, sel)
    switch_time = np.nanmean(time_to_criterion(result)[:, :, -1], axis=1)  # (V,)
    reg, free = float(weighted[0].mean()), float(weighted[1].mean())
    late = f"over the last {config.measure_blocks} blocks"
    return [
        Quantity("selectivity_regularized", reg,
                 f"with regulariser, the authors' {config.blocks} blocks: weighted hidden-unit selectivity {late}, "
                 "mean over seeds",
                 reference=">= 0.9", passed=bool(reg >= 0.9)),
        Quantity("selectivity_unregularized", free,
                 f"without regulariser, {config.blocks} blocks: weighted hidden-unit selectivity {late}, "
                 "mean over seeds",
                 reference="<= 0.6", passed=bool(free <= 0.6)),
        Quantity("selectivity_regularized_long", long_reg,
                 f"with regulariser, long training ({long.blocks} blocks, the authors' dt): weighted "
                 "hidden-unit selectivity, mean over seeds", reference=">= 0.9", passed=bool(long_reg >= 0.9)),
        Quantity("selectivity_unregularized_long", long_free,
                 f"without regulariser, long training ({long.blocks} blocks)", reference="<= 0.6",
                 passed=bool(long_free <= 0.6)),
        Quantity("selectivity_regularized_long_per_seed", long_weighted[0].tolist(),
                 "with regulariser, long training: per seed"),
        Quantity("selectivity_regularized_small_step", float(small_weighted.mean()),
                 f"with regulariser, dt / tau_W2 = {small_dt / config.second_layer_timescale:g} "
                 f"(near the gradient flow), {small_blocks} blocks, {len(small_weighted)} seeds: weighted selectivity",
                 reference="(the paper does not say; units stay shared)"),
        Quantity("selectivity_regularized_per_seed", weighted[0].tolist(), "with regulariser: per seed"),
        Quantity("selectivity_unregularized_per_seed", weighted[1].tolist(), "without regulariser: per seed"),
        Quantity("gating_units_per_task_regularized", gating[0].tolist(),
                 f"with regulariser: carrying units with selectivity >= {config.selectivity_threshold} per task "
                 "(mean over seeds)", reference=f"{config.hidden_dim // config.tasks} if every unit gates"),
        Quantity("gating_units_per_task_unregularized", gating[1].tolist(),
                 "without regulariser: gating units per task (mean over seeds)"),
        Quantity("first_layer_persistence_regularized", float(persistence[0].mean()),
                 "with regulariser: share of W1 rows in their unit's preferred teacher across tasks"),
        Quantity("first_layer_persistence_unregularized", float(persistence[1].mean()),
                 "without regulariser: the same (1/M = W1 follows the current task)"),
        Quantity("time_to_criterion_last_switch_regularized", float(switch_time[0]),
                 f"with regulariser: time to loss < {config.criterion} after the last switch", unit="time"),
        Quantity("time_to_criterion_last_switch_unregularized", float(switch_time[1]),
                 f"without regulariser: time to loss < {config.criterion} after the last switch", unit="time"),
        Quantity("step_size_check_dt_over_tau_w2", step_ratio.tolist(), "step-size check: dt / tau_W2 values"),
        Quantity("step_size_check_selectivity", step_sel.mean(0).tolist(),
                 f"step-size check: regularised selectivity at each dt ({step_sel.shape[0]} seeds)"),
        Quantity("seeds", float(len(result.seeds)), "networks per condition"),
        Quantity("wall_seconds", float(result.wall_seconds), "simulation wall time, both conditions", unit="s"),
    ]


FIGURE = Figure(key="fig6", title="Fig. 6: emergent gating in a fully connected network", run=run)
