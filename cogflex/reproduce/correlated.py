"""Correlated teachers (Sandbrink et al., 2024, appendix Fig. A13) as an overlap sweep.

Two teachers of equal norm with pairwise cosine rho (``teachers.kind =
"correlated"``, ``overlap = rho``) are taught in blocks A, B, A, B, ... to
the Fig. 2 networks, one :func:`~cogflex.nta.simulate` run per rho. The
paper's claim: specialisation and adaptation speed both fall as the
teachers become alike.

The authors plotted, against rho (0, 0.25, ..., 1, one seed), the largest
loss slope per block ("adaptation speed (loss)") and the own-minus-other
teacher alignment of the paths ("student specialization"). Both scale with
the size of the task difference, (1 - rho), whatever the network does, so
this module reports them next to measures normalised by that difference
(:mod:`cogflex.nta.specialization`): the relative loss decay rate after a
switch, the inverse half-time of the loss, the share of the teacher
difference that the gate switch delivers, the path-difference regression,
and the task selectivity and sparsity of the gates. The forgetful network
(tau_c = tau_W, no regulariser) runs alongside as a reference.

Settings live in ``models/reproduce/correlated-teachers.toml``
(:class:`CorrelatedSettings`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as ticker  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from cogflex.errors import ConfigError  # noqa: E402
from cogflex.io import save_figure  # noqa: E402
from cogflex.nta.config import SimulationConfig, load_config  # noqa: E402
from cogflex.nta.results import SimulationResult  # noqa: E402
from cogflex.nta.simulation import simulate  # noqa: E402
from cogflex.nta.specialization import (  # noqa: E402
    alignment_difference,
    block_end_gates,
    gate_selectivity,
    gate_sparsity,
    gated_specialization,
    gates_by_task,
    half_time,
    late_segments,
    peak_decrease_rate,
    relative_decay_rate,
    weight_only_decay_rate,
    weight_specialization,
)
from cogflex.reproduce.base import Figure, Quantity, Scale  # noqa: E402
from cogflex.resources import preset_path  # noqa: E402
from cogflex.typed_config import from_mapping, read_toml  # noqa: E402

__all__ = [
    "FIGURE",
    "ScaleSettings",
    "CorrelatedSettings",
    "load_settings",
    "overlap_config",
    "measure",
    "sweep",
    "SweepResult",
    "falls_monotonically",
    "plot_metrics",
    "plot_switch_curves",
    "run",
    "METRICS",
]

#: Reference claim of the paper, for every quantity checked.
CLAIM = "falls monotonically with overlap (paper appendix)"


@dataclass(frozen=True)
class Metric:
    """What one measured quantity is: label, unit, group, its value at rho = 1, log axis or not."""

    label: str
    unit: str
    group: Literal["adaptation", "specialisation"]
    at_identical: str
    log: bool = False


#: The measured quantities, in plotting order.
METRICS: dict[str, Metric] = {
    "adaptation_speed_relative": Metric(
        "relative decay rate -d ln L/dt", "1/tau_W", "adaptation",
        "limit: weight-only rate 2 sum_p c_p^2 (no switch at rho = 1)", log=True),
    "adaptation_speed_half_time": Metric(
        "1 / half-time of the loss", "1/tau_W", "adaptation",
        "limit: weight-only rate / ln 2 (no switch at rho = 1)", log=True),
    "adaptation_speed_peak_rate": Metric(
        "peak -dL/dt (paper, not normalised)", "loss/tau_W", "adaptation", "measured (no switch: ~0)"),
    "gate_sparsity": Metric(
        "gate sparsity |c1 - c2| / (c1 + c2)", "", "specialisation", "measured"),
    "specialization_alignment_difference": Metric(
        "own - other alignment (paper, not normalised)", "", "specialisation", "measured (exactly 0)"),
    "specialization_gated": Metric(
        "gated specialisation (gate switch / teacher difference)", "", "specialisation",
        "convention 0 (no teacher difference), equal to the measured limit"),
    "specialization_weights": Metric(
        "weight specialisation (path diff. on teacher diff.)", "", "specialisation",
        "convention 0 (no teacher difference)"),
    "gate_selectivity": Metric(
        "gate selectivity between tasks", "", "specialisation", "measured (gates do not move: ~0)"),
}


# -- settings -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScaleSettings:
    """Seeds, overlaps and run length of one scale (``paper`` or ``quick``).

    Parameters
    ----------
    seeds
        Networks per overlap (at least 2, for a standard error).
    overlaps
        Teacher cosines rho, strictly increasing, in [0, 1].
    duration
        t_tot of every run; ``None`` keeps the base preset's.
    """

    seeds: int = 10
    overlaps: tuple[float, ...] = (0.0, 0.5, 1.0)
    duration: float | None = None

    def __post_init__(self) -> None:
        if self.seeds < 2:
            raise ConfigError("seeds", f"must be at least 2 (standard errors need two), got {self.seeds}")
        if len(self.overlaps) < 2:
            raise ConfigError("overlaps", "needs at least two values")
        if any(not 0.0 <= v <= 1.0 for v in self.overlaps):
            raise ConfigError("overlaps", f"must lie in [0, 1], got {list(self.overlaps)}")
        if any(b <= a for a, b in zip(self.overlaps, self.overlaps[1:])):
            raise ConfigError("overlaps", f"must be strictly increasing, got {list(self.overlaps)}")
        if self.duration is not None and not (self.duration > 0 and math.isfinite(self.duration)):
            raise ConfigError("duration", f"must be a positive number, got {self.duration}")


@dataclass(frozen=True)
class CorrelatedSettings:
    """The correlated-teacher sweep (``models/reproduce/correlated-teachers.toml``).

    Parameters
    ----------
    name, description
        Label of the experiment and one line on it (``cogflex presets``).
    base, comparison
        Simulation presets of the network under test and of the reference
        network (both must be two-task presets without a sweep).
    mode
        ``learning.mode`` of every run (``"expected"``: no sampling noise).
    late_fraction
        Share of the switches (the last ones) over which switch measures are averaged.
    decay_window
        Steps k of the initial relative decay rate ln(L_0 / L_k) / (k dt).
    tolerance, resolution
        Monotone rule (:func:`falls_monotonically`): a rise between two
        overlaps is tolerated up to ``tolerance`` standard errors of the
        difference plus ``resolution`` times the range of the curve.
    example_overlaps
        Overlaps whose switch curves are drawn (nearest sweep values, rho < 1).
    paper, quick
        Seeds, overlaps and run length of each scale.
    """

    name: str = "correlated-teachers"
    description: str = ""
    base: str = "fig2-flexible"
    comparison: str = "fig2-forgetful"
    mode: Literal["expected", "sampled"] = "expected"
    late_fraction: float = 0.5
    decay_window: int = 10
    tolerance: float = 2.0
    resolution: float = 1e-3
    example_overlaps: tuple[float, ...] = (0.0, 0.6, 0.8, 0.95)
    paper: ScaleSettings = dataclasses.field(default_factory=ScaleSettings)
    quick: ScaleSettings = dataclasses.field(default_factory=lambda: ScaleSettings(seeds=3))

    def __post_init__(self) -> None:
        if not 0.0 < self.late_fraction <= 1.0:
            raise ConfigError("late_fraction", f"must lie in (0, 1], got {self.late_fraction}")
        if self.decay_window < 1:
            raise ConfigError("decay_window", f"must be at least 1 step, got {self.decay_window}")
        if not (self.tolerance > 0 and math.isfinite(self.tolerance)):
            raise ConfigError("tolerance", f"must be a positive number, got {self.tolerance}")
        if not 0.0 <= self.resolution < 1.0:
            raise ConfigError("resolution", f"must lie in [0, 1), got {self.resolution}")
        if any(not 0.0 <= v <= 1.0 for v in self.example_overlaps):
            raise ConfigError("example_overlaps", f"must lie in [0, 1], got {list(self.example_overlaps)}")

    def scale(self, scale: Scale) -> ScaleSettings:
        """The settings of ``scale`` (``"paper"`` or ``"quick"``)."""
        if scale not in ("paper", "quick"):
            raise ConfigError("scale", f"must be 'paper' or 'quick', got {scale!r}")
        return self.paper if scale == "paper" else self.quick


def load_settings(path: str | Path | None = None) -> CorrelatedSettings:
    """Read the sweep settings (default: the bundled ``correlated-teachers.toml``).

    Raises
    ------
    ConfigError
        Unreadable file, unknown key, invalid value or unknown preset; names
        the file and the dotted field.
    """
    path = Path(path) if path is not None else preset_path("reproduce", "correlated-teachers")
    try:
        settings = from_mapping(CorrelatedSettings, read_toml(path))
        for field_name in ("base", "comparison"):
            _check_preset(field_name, _load_preset(field_name, getattr(settings, field_name)))
    except ConfigError as exc:
        raise exc.within(source=exc.source or str(path)) from None
    return settings


def _load_preset(field_name: str, preset: str) -> SimulationConfig:
    """Load a simulation preset, reporting a failure against ``field_name``."""
    try:
        return load_config(preset)
    except ConfigError as exc:
        raise ConfigError(field_name, f"preset {preset!r}: {exc}") from None


def _check_preset(field_name: str, config: SimulationConfig) -> None:
    composition = getattr(config, "composition", None)
    if config.sweep.axes or (composition is not None and composition.tasks):
        raise ConfigError(field_name, f"preset {config.name!r} must not sweep or compose tasks")
    if config.teachers.tasks != 2:
        raise ConfigError(field_name, f"preset {config.name!r} must have two teachers, has {config.teachers.tasks}")


# -- running --------------------------------------------------------------------------------------------


def overlap_config(base: SimulationConfig, overlap: float, *, seeds: int, mode: str = "expected",
                   duration: float | None = None) -> SimulationConfig:
    """``base`` with correlated teachers of cosine ``overlap``, whole-block switch curves.

    ``recording.switch_curve`` is set to the steps of one block, so every
    switch curve covers its whole block (what :func:`measure` needs).
    """
    curriculum = base.curriculum if duration is None else dataclasses.replace(base.curriculum, duration=duration)
    steps_per_block = max(1, round(curriculum.block_length / base.learning.dt))
    config = dataclasses.replace(
        base,
        name=f"{base.name}-overlap{overlap:g}",
        seeds=seeds,
        teachers=dataclasses.replace(base.teachers, kind="correlated", overlap=float(overlap)),
        curriculum=curriculum,
        recording=dataclasses.replace(base.recording, switch_curve=steps_per_block),
    )
    return config.with_learning(mode=mode)


def measure(result: SimulationResult, weights: np.ndarray, teachers: np.ndarray, *, overlap: float,
            decay_window: int = 10, late_fraction: float = 0.5) -> dict[str, np.ndarray]:
    """Every quantity of :data:`METRICS` for each network of one run, ``{name: (network,)}``.

    Switch measures are averaged over the late switches; gate measures use
    the gates at the ends of the late blocks; weight measures the final
    paths. At ``overlap == 1`` no switch happens, and the switch-normalised
    speeds take their weight-only limits (see :data:`METRICS`).
    """
    ds = result.dataset
    dt = float(ds.attrs["dt"])
    tau_w = ds["weight_timescale"].values[:, None]  # (N, 1)
    n_seg = int(np.isfinite(ds["segment_start_time"].values).all(axis=0).sum())
    late = late_segments(n_seg, late_fraction)
    curves = ds["switch_curve"].values[:, late]  # (N, L, offset)
    final_gates = ds["final_gates"].values
    out: dict[str, np.ndarray] = {}
    if overlap >= 1.0:
        rate = weight_only_decay_rate(final_gates)
        out["adaptation_speed_relative"] = rate
        out["adaptation_speed_half_time"] = rate / math.log(2.0)
    else:
        rates = relative_decay_rate(curves, dt, steps=decay_window, timescale=tau_w)
        out["adaptation_speed_relative"] = _nanmean(rates, axis=1)
        out["adaptation_speed_half_time"] = _nanmean(1.0 / half_time(curves, dt, timescale=tau_w), axis=1)
    out["adaptation_speed_peak_rate"] = _nanmean(peak_decrease_rate(curves, dt, timescale=tau_w), axis=1)
    ends, _ = block_end_gates(ds)
    out["gate_sparsity"] = _nanmean(gate_sparsity(ends[:, late]), axis=1)
    out["specialization_alignment_difference"] = alignment_difference(ds["final_alignment"].values)
    task_gates = gates_by_task(ds, late_fraction)
    out["specialization_gated"] = gated_specialization(task_gates, weights, teachers)
    out["specialization_weights"] = weight_specialization(weights, teachers)
    out["gate_selectivity"] = gate_selectivity(task_gates)
    return {name: out[name] for name in METRICS}


@dataclass(frozen=True)
class SweepResult:
    """Per-seed values of every metric along the overlap sweep of one network."""

    preset: str
    overlaps: tuple[float, ...]
    values: dict[str, np.ndarray]  # name -> (overlap, seed)
    curves: np.ndarray  # (overlap, seed, offset): mean late switch curve
    dt_over_tau_w: float
    wall_seconds: float

    def mean(self, name: str) -> np.ndarray:
        """Mean over seeds per overlap."""
        return _nanmean(self.values[name], axis=1)

    def se(self, name: str) -> np.ndarray:
        """Standard error over seeds per overlap."""
        v = self.values[name]
        n = np.isfinite(v).sum(axis=1)
        return np.nanstd(v, axis=1, ddof=1) / np.sqrt(np.maximum(n, 1)) if v.shape[1] > 1 else np.zeros(len(v))


def sweep(preset: str | SimulationConfig, overlaps: tuple[float, ...], *, seeds: int, mode: str = "expected",
          duration: float | None = None, decay_window: int = 10, late_fraction: float = 0.5) -> SweepResult:
    """Run one network preset at every overlap and measure it (see :func:`measure`)."""
    base = preset if isinstance(preset, SimulationConfig) else load_config(preset)
    started = time.perf_counter()
    values: dict[str, list[np.ndarray]] = {name: [] for name in METRICS}
    curves = []
    for overlap in overlaps:
        config = overlap_config(base, overlap, seeds=seeds, mode=mode, duration=duration)
        if decay_window >= config.recording.switch_curve:
            raise ConfigError("decay_window", f"must be shorter than a block ({config.recording.switch_curve} steps)")
        result = simulate(config)
        weights, teachers = result.dataset["final_weights"].values, result.dataset["teachers"].values
        for name, v in measure(result, weights, teachers, overlap=overlap, decay_window=decay_window,
                               late_fraction=late_fraction).items():
            values[name].append(v)
        n_seg = int(np.isfinite(result.dataset["segment_start_time"].values).all(axis=0).sum())
        late = late_segments(n_seg, late_fraction)
        curves.append(_nanmean(result.dataset["switch_curve"].values[:, late], axis=1))
    return SweepResult(
        preset=base.name,
        overlaps=tuple(float(v) for v in overlaps),
        values={name: np.stack(v) for name, v in values.items()},
        curves=np.stack(curves),
        dt_over_tau_w=base.learning.dt / base.learning.weight_timescale,
        wall_seconds=time.perf_counter() - started,
    )


def falls_monotonically(mean: np.ndarray, se: np.ndarray, tolerance: float = 2.0, resolution: float = 1e-3) -> bool:
    """Whether a curve is non-increasing within seed noise and falls overall.

    The rule: for every pair of sweep points i < j the rise mean_j - mean_i
    is at most ``tolerance`` standard errors of the difference,
    sqrt(se_i^2 + se_j^2), plus ``resolution`` times the range of the curve
    (max - min of the means); pairs, not only neighbours, so that a slow
    drift upwards in small steps fails too. And the last value must lie
    more than ``tolerance`` such errors below the first. Any NaN fails.

    The ``resolution`` term treats differences below that share of the
    swept range as flat: seed errors miss them where every seed sits on the
    same value (a saturated plateau such as gates at 0.997 +- 0.0002, or a
    value fixed at rho = 1 with zero error); 0 gives the strict rule.
    """
    mean, se = np.asarray(mean, dtype=float), np.asarray(se, dtype=float)
    if mean.size < 2 or not (np.isfinite(mean).all() and np.isfinite(se).all()):
        return False
    spread = np.sqrt(se[:, None] ** 2 + se[None, :] ** 2)
    allowed = tolerance * spread + resolution * (mean.max() - mean.min())
    rise = mean[None, :] - mean[:, None]  # [i, j] = mean_j - mean_i
    later = np.triu(np.ones_like(rise, dtype=bool), k=1)
    no_rise = bool((rise[later] <= allowed[later]).all())
    falls = bool(mean[0] - mean[-1] > tolerance * spread[0, -1])
    return no_rise and falls


# -- figures ------------------------------------------------------------------------------------------


_FLEXIBLE, _FORGETFUL = "#1b6ca8", "#8a8a8a"


def plot_metrics(tested: SweepResult, reference: SweepResult | None, passed: dict[str, bool],
                 path: str | Path | None = None):
    """Every metric against overlap: mean +- SE over seeds; open markers at rho = 1 where it is a limit/convention."""
    fig, axes = plt.subplots(2, 4, figsize=(14, 6.2), layout="constrained")
    for ax, (name, metric) in zip(axes.ravel(), METRICS.items()):
        for sweep_result, color, style in ((tested, _FLEXIBLE, "-"), (reference, _FORGETFUL, "--")):
            if sweep_result is None:
                continue
            xs = np.asarray(sweep_result.overlaps)
            mean, se = sweep_result.mean(name), sweep_result.se(name)
            ax.errorbar(xs, mean, yerr=se, color=color, ls=style, marker="o", ms=3.5, capsize=2, lw=1.2,
                        label=sweep_result.preset)
            if "measured" not in metric.at_identical and xs[-1] >= 1.0:
                ax.plot(xs[-1:], mean[-1:], "o", mfc="white", mec=color, ms=6, zorder=5)
        verdict = "falls" if passed.get(name) else "does not fall"
        ax.set_title(f"{metric.label}\n({verdict} monotonically)", fontsize=9)
        ax.set_xlabel("teacher overlap rho")
        if metric.unit:
            ax.set_ylabel(metric.unit)
        ax.set_xlim(-0.03, 1.03)
        if metric.log:
            ax.set_yscale("log")  # rates span decades; the weight-only floor stays visible
            ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(ticker.ScalarFormatter())
            ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8, frameon=False)
    fig.suptitle(f"Correlated teachers: {tested.values[next(iter(METRICS))].shape[1]} seeds per overlap, "
                 "mean +- SE; open marker: value at rho = 1 is a limit or convention", fontsize=10)
    save_figure(fig, path)
    return fig


def plot_switch_curves(tested: SweepResult, examples: tuple[float, ...], reference: SweepResult | None = None,
                       path: str | Path | None = None):
    """Loss after a late switch (mean over late switches and seeds) for a few overlaps, raw and / L_0."""
    fig, (ax_raw, ax_rel) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    chosen = _nearest(tested.overlaps, examples)
    colors = plt.cm.viridis(np.linspace(0.0, 0.85, max(len(chosen), 1)))
    t = np.arange(tested.curves.shape[-1]) * tested.dt_over_tau_w
    for color, i in zip(colors, chosen):
        mean = _nanmean(tested.curves[i], axis=0)
        label = f"rho = {tested.overlaps[i]:g}"
        ax_raw.plot(t, mean, color=color, lw=1.4, label=label)
        ax_rel.plot(t, mean / mean[0], color=color, lw=1.4, label=label)
        if reference is not None and tested.overlaps[i] in reference.overlaps:
            j = reference.overlaps.index(tested.overlaps[i])
            ref = _nanmean(reference.curves[j], axis=0)
            ax_rel.plot(t, ref / ref[0], color=color, lw=1.0, ls="--")
    ax_raw.set(yscale="log", xlabel="time after switch (tau_W)", ylabel="loss",
               title=f"{tested.preset}: loss after a late switch")
    ax_rel.set(yscale="log", xlabel="time after switch (tau_W)", ylabel="loss / loss at the switch",
               title="relative to the jump (dashed: forgetful reference)")
    ax_rel.set_ylim(1e-3, 1.5)
    for ax in (ax_raw, ax_rel):
        ax.grid(alpha=0.3)
    ax_raw.legend(fontsize=8, frameon=False)
    save_figure(fig, path)
    return fig


# -- the figure ---------------------------------------------------------------------------------------


def run(scale: Scale, out: Path) -> list[Quantity]:
    """Run the overlap sweep at ``scale``, write ``out/correlated_*.png``, return the quantities."""
    started = time.perf_counter()
    settings = load_settings()
    chosen = settings.scale(scale)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny compressed states: one thread is fastest and leaves the others free
    try:
        common = dict(seeds=chosen.seeds, mode=settings.mode, duration=chosen.duration,
                      decay_window=settings.decay_window, late_fraction=settings.late_fraction)
        tested = sweep(settings.base, chosen.overlaps, **common)
        reference = sweep(settings.comparison, chosen.overlaps, **common)
    finally:
        torch.set_num_threads(threads)
    rule = dict(tolerance=settings.tolerance, resolution=settings.resolution)
    passed = {name: falls_monotonically(tested.mean(name), tested.se(name), **rule) for name in METRICS}
    # The same rule on the overlaps below 1, where every value is measured (no limit or convention).
    below = [i for i, v in enumerate(tested.overlaps) if v < 1.0]
    passed_below = {name: falls_monotonically(tested.mean(name)[below], tested.se(name)[below], **rule)
                    for name in METRICS}
    for fig in (plot_metrics(tested, reference, passed, out / "correlated_metrics.png"),
                plot_switch_curves(tested, settings.example_overlaps, reference, out / "correlated_switch_curves.png")):
        plt.close(fig)
    quantities = [Quantity("overlaps", list(tested.overlaps), "teacher cosines rho of the sweep")]
    for name, metric in METRICS.items():
        quantities.append(Quantity(
            name, _rounded(tested.mean(name)),
            f"{tested.preset}: {metric.label}, mean over {chosen.seeds} seeds per overlap; "
            f"rho = 1: {metric.at_identical}; falls also over rho < 1 alone: "
            f"{'yes' if passed_below[name] else 'no'}",
            reference=CLAIM, passed=passed[name], unit=metric.unit))
    for name in ("adaptation_speed_relative", "specialization_gated"):
        quantities.append(Quantity(
            f"{name}_forgetful", _rounded(reference.mean(name)),
            f"{reference.preset} (reference, no acceptance): {METRICS[name].label}",
            reference=None, passed=None, unit=METRICS[name].unit))
    quantities.append(Quantity("wall_seconds", round(time.perf_counter() - started, 2),
                               f"wall time of the {scale} sweep (2 presets x {len(chosen.overlaps)} overlaps)",
                               unit="s"))
    return quantities


FIGURE = Figure(key="correlated", title="Correlated teachers: specialisation and adaptation vs teacher overlap",
                run=run)


# -- helpers ------------------------------------------------------------------------------------------


def _nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    """Mean ignoring NaN; NaN (without a warning) where nothing is finite."""
    values = np.asarray(values, dtype=float)
    count = np.isfinite(values).sum(axis=axis)
    total = np.where(np.isfinite(values), values, 0.0).sum(axis=axis)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _nearest(overlaps: tuple[float, ...], wanted: tuple[float, ...]) -> list[int]:
    """Indices of the sweep overlaps (< 1) nearest to ``wanted``, without repeats, in order."""
    candidates = [i for i, v in enumerate(overlaps) if v < 1.0]
    chosen: list[int] = []
    for w in wanted:
        if not candidates:
            break
        i = min(candidates, key=lambda k: abs(overlaps[k] - w))
        if i not in chosen:
            chosen.append(i)
    return sorted(chosen)


def _rounded(values: np.ndarray) -> list[float]:
    return [float(f"{v:.6g}") if np.isfinite(v) else float("nan") for v in values]
