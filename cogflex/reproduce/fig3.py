"""Fig. 3: composition. Paths learned on tasks A, B, C are reused for new tasks.

Two curricula from the authors' notebook (``fig3_gen_taskswitch.ipynb``):
blocks of A, B, C, then from block 23 composed tasks, either mixtures of two
teachers (task composition, one gate per path) or tasks whose output rows
come from different teachers (subtask composition, one gate per path and
output unit). Each runs flexible (regularised gates) and forgetful (the same
network with lambda = 0, the authors' control).

Measured: the time to reach the loss criterion after the switches of the
composed phase (flexible vs forgetful), and whether the gates *compose*: the
gates on a composed task should be the same mixture of the gates the network
used for the constituent tasks at the end of the first phase (for A+B, the
mean of its A gates and its B gates; for rows, unit i's gates of the teacher
that unit i takes its row from).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from cogflex.io import save_figure  # noqa: E402
from cogflex.nta import SimulationResult, load_config, simulate  # noqa: E402
from cogflex.nta.config import Composition  # noqa: E402
from cogflex.reproduce.base import Figure, Quantity, Scale, scaled  # noqa: E402

__all__ = ["FIGURE", "run", "block_end_gates", "composed_gate_prediction", "composition_summary"]

KINDS = {"task": "fig3-task-composition", "subtask": "fig3-subtask-composition"}


def block_end_gates(ds: xr.Dataset, block_length: float) -> np.ndarray:
    """Gates at the last logged step of every block, ``(network, block, unit, path)``."""
    time = ds["time"].values
    n_blocks = int(round(time[-1] / block_length + 0.5))
    ends = np.arange(1, n_blocks + 1) * block_length
    index = np.clip(np.searchsorted(time, ends - 1e-9) - 1, 0, len(time) - 1)
    return ds["gates"].values[:, index]


def composed_gate_prediction(end_gates: np.ndarray, tasks_of_blocks: np.ndarray, composition: Composition,
                             n_teachers: int) -> np.ndarray:
    """Gates predicted for each composed task from the first phase, ``(network, K, unit, path)``.

    The gates of teacher m are those at the end of its last block before
    ``composition.start_block``. Mixtures: sum_m tasks[k][m] * gates_m (the
    weights normalised to sum to one); rows: unit i takes the gates of teacher
    tasks[k][i] at unit i.
    """
    start = composition.start_block
    last = [int(np.flatnonzero(tasks_of_blocks[:start] == m)[-1]) for m in range(n_teachers)]
    per_teacher = end_gates[:, last]  # (network, M, unit, path)
    if composition.kind == "mixture":
        w = np.asarray(composition.tasks, dtype=float)
        w = w / w.sum(axis=1, keepdims=True)
        return np.einsum("km,nmup->nkup", w, per_teacher)
    index = np.asarray(composition.tasks, dtype=int)  # (K, unit)
    units = np.arange(index.shape[1])
    return per_teacher[:, index, units, :]  # (network, K, unit, path)


def composition_summary(flexible: SimulationResult, forgetful: SimulationResult) -> dict[str, float | list]:
    """Key numbers of one composition experiment (see the module docstring)."""
    config = flexible.config
    comp, start = config.composition, config.composition.start_block
    out: dict[str, float | list] = {}
    for label, result in (("flexible", flexible), ("forgetful", forgetful)):
        ttc = result.dataset["time_to_criterion"].values  # (network, segment), tau_W
        out[f"{label}_first_phase_late"] = float(np.nanmean(ttc[:, start - 6:start]))
        out[f"{label}_composed"] = float(np.nanmean(ttc[:, start:]))
        out[f"{label}_composed_reached"] = float(np.isfinite(ttc[:, start:]).mean())
    out["ratio"] = out["flexible_composed"] / out["forgetful_composed"]
    ds = flexible.dataset
    block = config.curriculum.block_length
    gates = block_end_gates(ds, block)
    blocks = np.arange(gates.shape[1])
    order = np.asarray(config.curriculum.order or range(config.teachers.tasks))
    tasks_of_blocks = np.where(blocks < start, order[blocks % len(order)],
                               config.teachers.tasks + (blocks - start) % len(comp.tasks))
    predicted = composed_gate_prediction(gates, tasks_of_blocks, comp, config.teachers.tasks)
    composed_blocks = blocks[start:]
    observed = gates[:, composed_blocks]
    expected = predicted[:, tasks_of_blocks[composed_blocks] - config.teachers.tasks]
    out["gate_error"] = float(np.abs(observed - expected).mean())
    out["gate_error_max"] = float(np.abs(observed - expected).max())
    out["gates_observed_seed0"] = observed[0, 0].round(3).tolist()
    out["gates_predicted_seed0"] = expected[0, 0].round(3).tolist()
    align = ds["total_alignment"].values
    at_start = max(int(np.searchsorted(ds["time"].values, start * block)) - 1, 0)
    out["total_alignment_before_composition"] = float(align[:, at_start].mean())
    return out


def _plot(results: dict[str, dict[str, SimulationResult]], path: Path) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(11, 6.5), constrained_layout=True)
    colors = {"flexible": "tab:blue", "forgetful": "tab:red"}
    for row, (kind, pair) in enumerate(results.items()):
        config = pair["flexible"].config
        start = config.composition.start_block * config.curriculum.block_length
        ax = axes[row, 0]
        for label, result in pair.items():
            ds = result.dataset
            ax.semilogy(ds["time"].values, np.maximum(ds["loss"].values.mean(0), 1e-8), lw=0.7,
                        color=colors[label], label=label)
        ax.axvspan(start, ds["time"].values[-1], color="0.9", zorder=0)
        ax.set(title=f"{kind} composition: loss (mean over seeds)", xlabel="time", ylabel="loss")
        ax.legend(loc="lower left", fontsize=8)
        ax = axes[row, 1]
        gates = pair["flexible"].dataset["gates"].values[0]  # (time, unit, path)
        time = pair["flexible"].dataset["time"].values
        shown = gates[:, 0, :] if kind == "task" else gates[:, :2, :].reshape(len(time), -1)
        labels = ([f"path {p + 1}" for p in range(gates.shape[2])] if kind == "task" else
                  [f"unit {u + 1}, path {p + 1}" for u in range(2) for p in range(gates.shape[2])])
        for j in range(shown.shape[1]):
            ax.plot(time, shown[:, j], lw=0.8, label=labels[j])
        ax.axvspan(start, time[-1], color="0.9", zorder=0)
        ax.set(title=f"{kind} composition: flexible gates (seed {int(pair['flexible'].dataset['seed'][0])})",
               xlabel="time (grey: composed tasks)", ylabel="gate", xlim=(start - 6, time[-1]))
        ax.legend(fontsize=7, ncol=2, loc="upper left")
    save_figure(fig, path)
    plt.close(fig)


def run(scale: Scale, out: Path) -> list[Quantity]:
    """Run both composition curricula, flexible and forgetful; write ``fig3_composition.png``."""
    results: dict[str, dict[str, SimulationResult]] = {}
    quantities = []
    for kind, name in KINDS.items():
        pair = {label: simulate(scaled(load_config(name if label == "flexible" else f"{name}-forgetful"), scale))
                for label in ("flexible", "forgetful")}
        results[kind] = pair
        s = composition_summary(pair["flexible"], pair["forgetful"])
        what = "mixtures of teachers" if kind == "task" else "rows of different teachers"
        quantities += [
            Quantity(f"{kind}_composed_time_to_criterion_flexible", s["flexible_composed"],
                     f"{kind} composition: flexible, time to criterion on the composed tasks ({what})",
                     unit="tau_W"),
            Quantity(f"{kind}_composed_time_to_criterion_forgetful", s["forgetful_composed"],
                     f"{kind} composition: forgetful, time to criterion on the composed tasks", unit="tau_W"),
            Quantity(f"{kind}_composed_time_ratio", s["ratio"],
                     f"{kind} composition: flexible / forgetful time to criterion on composed tasks",
                     reference="flexible much faster (issue: <= 0.5)", passed=bool(s["ratio"] <= 0.5)),
            Quantity(f"{kind}_first_phase_time_to_criterion_flexible", s["flexible_first_phase_late"],
                     f"{kind} composition: flexible, time to criterion, last 6 blocks before composition",
                     unit="tau_W"),
            Quantity(f"{kind}_composed_gate_error", s["gate_error"],
                     f"{kind} composition: mean |gates on composed task - mixture of the constituent tasks' gates|",
                     reference="gates mix the paths of the composed teachers", passed=bool(s["gate_error"] <= 0.1)),
            Quantity(f"{kind}_gates_seed0_first_composed_block", s["gates_observed_seed0"],
                     f"{kind} composition: flexible gates (seed 0) at the end of the first composed block"),
            Quantity(f"{kind}_gates_seed0_predicted", s["gates_predicted_seed0"],
                     f"{kind} composition: the same gates predicted from the first phase"),
            Quantity(f"{kind}_total_alignment_before_composition", s["total_alignment_before_composition"],
                     f"{kind} composition: flexible total alignment when the composed phase starts"),
        ]
    _plot(results, out / "fig3_composition.png")
    return quantities


FIGURE = Figure(key="fig3", title="Fig. 3: task and subtask composition", run=run)
