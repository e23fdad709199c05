"""Typed configuration of an NTA simulation (Sandbrink et al., 2024).

A :class:`SimulationConfig` holds everything a run needs: the network, the
teachers (tasks), the curriculum, the learning rule and what to record. The
same dataclasses load from the TOML presets in ``models/`` (see
:func:`load_config`); every value is validated at construction and an error
names the dotted field, e.g. ``learning.gate_timescale``.

Symbols of the paper, in the docstrings: tau_W = ``weight_timescale``,
tau_c = ``gate_timescale``, lambda = ``regularization``, tau_B =
``block_length``, t_tot = ``duration``, P = ``network.paths``,
M = ``teachers.tasks``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cogflex.errors import ConfigError
from cogflex.typed_config import from_mapping, read_toml, to_mapping

__all__ = [
    "Network",
    "Teachers",
    "Curriculum",
    "Composition",
    "Regularizer",
    "Learning",
    "Recording",
    "Sweep",
    "SimulationConfig",
    "SWEEPABLE",
    "load_config",
    "preset_names",
    "models_dir",
]

#: Hyperparameters that can differ between networks of one batched run.
SWEEPABLE = ("block_length", "gate_timescale", "weight_timescale", "regularization")


def _positive(field_name: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ConfigError(field_name, f"must be a positive finite number, got {value!r}")


def _non_negative(field_name: str, value: float) -> None:
    if not (value >= 0 and math.isfinite(value)):
        raise ConfigError(field_name, f"must be zero or positive, got {value!r}")


@dataclass(frozen=True)
class Network:
    """Gated linear network y = sum_p c_p W_p x.

    Parameters
    ----------
    input_dim, output_dim
        d_in and d_out.
    paths
        Number of gated paths P.
    gating
        ``"path"``: one scalar gate per path (the paper's default);
        ``"unit"``: one gate per path and output unit.
    gate_init
        Initial value of every gate (0.5 in the paper).
    weight_init_std
        Initial weights are N(0, (weight_init_std / sqrt(d_in))^2).
    """

    input_dim: int = 20
    output_dim: int = 10
    paths: int = 2
    gating: Literal["path", "unit"] = "path"
    gate_init: float = 0.5
    weight_init_std: float = 0.01

    def __post_init__(self) -> None:
        for name in ("input_dim", "output_dim", "paths"):
            if getattr(self, name) < 1:
                raise ConfigError(name, f"must be at least 1, got {getattr(self, name)}")
        if not math.isfinite(self.gate_init):
            raise ConfigError("gate_init", "must be finite")
        _non_negative("weight_init_std", self.weight_init_std)

    @property
    def gate_rows(self) -> int:
        """Number of output rows that share one gate value per path (R)."""
        return self.output_dim if self.gating == "unit" else 1


@dataclass(frozen=True)
class Teachers:
    """The M teacher matrices W*_m that define the tasks.

    Parameters
    ----------
    kind
        ``"orthogonal"``: rows of a random orthogonal matrix split into M
        groups, scaled by 1/sqrt(d_in) (needs M * d_out <= d_in);
        ``"correlated"``: equal-norm teachers whose pairwise cosine is
        ``overlap``; ``"iid"``: independent Gaussian entries N(0, 1/d_in^2)
        (same expected norm as the orthogonal ones).
    tasks
        Number of teachers M.
    overlap
        Pairwise cosine similarity for ``kind = "correlated"``, in [0, 1].
    """

    kind: Literal["orthogonal", "correlated", "iid"] = "orthogonal"
    tasks: int = 2
    overlap: float = 0.0

    def __post_init__(self) -> None:
        if self.tasks < 1:
            raise ConfigError("tasks", f"must be at least 1, got {self.tasks}")
        if not 0.0 <= self.overlap <= 1.0:
            raise ConfigError("overlap", f"must lie in [0, 1], got {self.overlap}")
        if self.overlap and self.kind != "correlated":
            raise ConfigError("overlap", f"only used with kind = 'correlated' (kind is {self.kind!r})")


@dataclass(frozen=True)
class Curriculum:
    """A blocked curriculum: tasks in ``order``, each for ``block_length``.

    Parameters
    ----------
    block_length
        tau_B, the duration of one block (time units, as dt).
    duration
        t_tot, the total simulated time; blocks repeat the order until then.
    order
        Task indices cycled through block by block; default ``0, 1, ..., M-1``.
    """

    block_length: float = 1.0
    duration: float = 22.0
    order: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        _positive("block_length", self.block_length)
        _positive("duration", self.duration)
        if self.order is not None and len(self.order) == 0:
            raise ConfigError("order", "must list at least one task")


@dataclass(frozen=True)
class Composition:
    """A second curriculum phase of composed tasks (Sandbrink et al., 2024, Fig. 3).

    From block ``start_block`` on, the blocks cycle through the composed
    tasks instead of ``curriculum.order``. Composed task k is the target
    matrix built from the teachers by ``tasks[k]``:

    - ``kind = "mixture"`` (task composition): ``tasks[k]`` holds one weight
      per teacher, W = sum_m tasks[k][m] W*_m; the authors' code mixes
      neighbouring teachers half and half, ``[0.5, 0.5, 0]`` for A+B.
    - ``kind = "rows"`` (subtask composition): ``tasks[k]`` names, for every
      output unit, the teacher whose row it takes, e.g. ``[0, 1, 0, 1, 0, 1]``
      (the authors' code alternates the rows of neighbouring teachers). Only
      per-unit gates (``network.gating = "unit"``) can express such tasks by
      gating alone.

    Composed tasks have indices M, M + 1, ... in the recorded
    ``current_task``; alignment is still measured against the M teachers.

    Parameters
    ----------
    kind
        ``"mixture"`` or ``"rows"``.
    start_block
        Index of the first block of the composed phase (0-based).
    tasks
        One entry per composed task, as described above.
    """

    kind: Literal["mixture", "rows"] = "mixture"
    start_block: int = 1
    tasks: tuple[tuple[float, ...], ...] = ()

    def __post_init__(self) -> None:
        if self.start_block < 0:
            raise ConfigError("start_block", f"must be zero or positive, got {self.start_block}")
        for k, task in enumerate(self.tasks):
            if not task:
                raise ConfigError(f"tasks[{k}]", "must not be empty")
            if any(not math.isfinite(v) for v in task):
                raise ConfigError(f"tasks[{k}]", "must hold finite numbers")
            if self.kind == "rows" and any(v != int(v) or v < 0 for v in task):
                raise ConfigError(f"tasks[{k}]", "must list teacher indices (0, 1, ...) for kind = 'rows'")

    @property
    def active(self) -> bool:
        """Whether any composed task is defined."""
        return bool(self.tasks)


@dataclass(frozen=True)
class Regularizer:
    """Relative weights of the gate regulariser terms R(c).

    The weights are normalised to sum to one, then multiplied by lambda:

    - ``nonnegative``: 10 * sum_p max(-c_p, 0)
    - ``l1``: 10 * 1/2 * (||c||_1 - 1)^2  (L1 gating manifold)
    - ``l2``: 1/2 * (||c||_2 - 1)^2       (L2 gating manifold)

    With per-unit gates (``network.gating = "unit"``), ``per_unit = true``
    takes the manifold norms over each output unit's P gates; ``false`` over
    all P * d_out gates of the network at once, as the authors' code does.
    """

    nonnegative: float = 1.0
    l1: float = 0.0
    l2: float = 0.0
    per_unit: bool = True

    def __post_init__(self) -> None:
        for name in ("nonnegative", "l1", "l2"):
            _non_negative(name, getattr(self, name))

    def normalized(self) -> tuple[float, float, float]:
        """Weights (nonnegative, l1, l2) scaled to sum to one (all zero stays zero)."""
        total = self.nonnegative + self.l1 + self.l2
        if total == 0:
            return (0.0, 0.0, 0.0)
        return (self.nonnegative / total, self.l1 / total, self.l2 / total)


@dataclass(frozen=True)
class Learning:
    """Joint gradient flow of weights and gates, integrated by Euler steps.

    tau_W dW/dt = -dL/dW and tau_c dc/dt = -dL/dc, i.e. each step moves a
    parameter by ``-(dt / tau) * gradient``.

    Parameters
    ----------
    dt
        Euler step (time units).
    weight_timescale, gate_timescale
        tau_W and tau_c.
    regularization
        lambda, the strength of the gate regulariser.
    regularizer
        Relative weights of the regulariser terms.
    mode
        ``"sampled"``: a fresh Gaussian input batch each step (the paper);
        ``"expected"``: the exact expected gradient, without sampling noise.
    batch_size
        Inputs per step in sampled mode.
    """

    dt: float = 1e-3
    weight_timescale: float = 1.3
    gate_timescale: float = 0.03
    regularization: float = 0.0
    regularizer: Regularizer = field(default_factory=Regularizer)
    mode: Literal["sampled", "expected"] = "sampled"
    batch_size: int = 200

    def __post_init__(self) -> None:
        _positive("dt", self.dt)
        _positive("weight_timescale", self.weight_timescale)
        _positive("gate_timescale", self.gate_timescale)
        _non_negative("regularization", self.regularization)
        if self.batch_size < 1:
            raise ConfigError("batch_size", f"must be at least 1, got {self.batch_size}")


@dataclass(frozen=True)
class Recording:
    """What to record and measure.

    Parameters
    ----------
    criterion
        Loss criterion for ``time_to_criterion`` after each switch.
    log_every
        Record the state every this many steps; 0 picks about 1,000 points.
    switch_curve
        Number of steps after each switch whose loss is kept step by step
        (the switch curves of Fig. 8).
    """

    criterion: float = 0.1
    log_every: int = 0
    switch_curve: int = 10

    def __post_init__(self) -> None:
        _positive("criterion", self.criterion)
        if self.log_every < 0:
            raise ConfigError("log_every", f"must be 0 (automatic) or positive, got {self.log_every}")
        if self.switch_curve < 1:
            raise ConfigError("switch_curve", f"must be at least 1, got {self.switch_curve}")


@dataclass(frozen=True)
class Sweep:
    """Grid of hyperparameters run as one batch (the first axis gives rows of plots).

    Each entry maps one of :data:`SWEEPABLE` to the values it takes; the grid
    is their Cartesian product.
    """

    axes: tuple[tuple[str, tuple[float, ...]], ...] = ()

    def __post_init__(self) -> None:
        seen = set()
        for name, values in self.axes:
            if name not in SWEEPABLE:
                raise ConfigError(name, f"cannot be swept (sweepable: {', '.join(SWEEPABLE)})")
            if name in seen:
                raise ConfigError(name, "appears twice")
            seen.add(name)
            if len(values) == 0:
                raise ConfigError(name, "needs at least one value")

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> Sweep:
        """Read a ``[sweep]`` TOML table: ``name = [values...]`` per axis."""
        axes = []
        for name, values in table.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(name, "expected a non-empty list of values")
            for i, v in enumerate(values):
                if isinstance(v, bool) or not isinstance(v, int | float):
                    raise ConfigError(f"{name}[{i}]", f"expected a number, got {v!r}")
            axes.append((name, tuple(float(v) for v in values)))
        return cls(axes=tuple(axes))

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the swept parameters, in axis order."""
        return tuple(name for name, _ in self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        """Number of values along each axis."""
        return tuple(len(values) for _, values in self.axes)

    def points(self) -> Iterator[dict[str, float]]:
        """Grid points in row-major order (a single empty point when nothing is swept)."""
        values = [v for _, v in self.axes]
        for combo in itertools.product(*values):
            yield dict(zip(self.names, combo))


@dataclass(frozen=True)
class SimulationConfig:
    """Everything one (batched) NTA simulation needs.

    ``seeds`` networks are run for every point of ``sweep`` (one point when
    nothing is swept); seed values are ``first_seed, first_seed + 1, ...``.
    """

    name: str = "custom"
    description: str = ""
    seeds: int = 10
    first_seed: int = 0
    network: Network = field(default_factory=Network)
    teachers: Teachers = field(default_factory=Teachers)
    curriculum: Curriculum = field(default_factory=Curriculum)
    learning: Learning = field(default_factory=Learning)
    recording: Recording = field(default_factory=Recording)
    composition: Composition = field(default_factory=Composition)
    sweep: Sweep = field(default_factory=Sweep)

    def __post_init__(self) -> None:
        if self.seeds < 1:
            raise ConfigError("seeds", f"must be at least 1, got {self.seeds}")
        if self.first_seed < 0:
            raise ConfigError("first_seed", f"must be zero or positive, got {self.first_seed}")
        net, teachers = self.network, self.teachers
        if teachers.kind in ("orthogonal", "correlated") and teachers.tasks * net.output_dim > net.input_dim:
            raise ConfigError(
                "teachers.tasks",
                f"{teachers.tasks} {teachers.kind} teachers of {net.output_dim} rows need "
                f"input_dim >= {teachers.tasks * net.output_dim} (network.input_dim is {net.input_dim})",
            )
        order = self.curriculum.order
        if order is not None:
            bad = [t for t in order if not 0 <= t < teachers.tasks]
            if bad:
                raise ConfigError("curriculum.order",
                                  f"task {bad[0]} does not exist (teachers.tasks = {teachers.tasks})")
        self._check_composition()
        for point in self.sweep.points():
            self._check_point(point)

    def _check_composition(self) -> None:
        comp, tasks, d_out = self.composition, self.teachers.tasks, self.network.output_dim
        for k, task in enumerate(comp.tasks):
            field_name = f"composition.tasks[{k}]"
            if comp.kind == "mixture" and len(task) != tasks:
                raise ConfigError(field_name, f"needs one weight per teacher ({tasks}), got {len(task)}")
            if comp.kind == "rows":
                if len(task) != d_out:
                    raise ConfigError(field_name, f"needs one teacher index per output unit ({d_out}), got {len(task)}")
                if max(task) >= tasks:
                    raise ConfigError(field_name, f"teacher {int(max(task))} does not exist (teachers.tasks = {tasks})")

    # -- derived quantities -------------------------------------------------

    def value(self, name: str, point: Mapping[str, float] | None = None) -> float:
        """A sweepable hyperparameter at a grid point (or its base value)."""
        if point and name in point:
            return float(point[name])
        if name == "block_length":
            return self.curriculum.block_length
        return float(getattr(self.learning, name))

    @property
    def n_targets(self) -> int:
        """Number of trained tasks: the M teachers plus the composed tasks."""
        return self.teachers.tasks + len(self.composition.tasks)

    @property
    def n_steps(self) -> int:
        """Number of Euler steps: round(t_tot / dt)."""
        return max(1, round(self.curriculum.duration / self.learning.dt))

    @property
    def seed_values(self) -> tuple[int, ...]:
        """The seeds of the networks, in order."""
        return tuple(range(self.first_seed, self.first_seed + self.seeds))

    def with_learning(self, **changes: Any) -> SimulationConfig:
        """Copy with fields of :class:`Learning` changed."""
        return dataclasses.replace(self, learning=dataclasses.replace(self.learning, **changes))

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping of the full resolved config (stable, JSON-ready)."""
        out = to_mapping(self)
        out["sweep"] = {name: list(values) for name, values in self.sweep.axes}
        return out

    def _check_point(self, point: Mapping[str, float]) -> None:
        """Validate one grid point: positive values and Euler stability."""
        where = (lambda n: f"sweep.{n}") if point else (lambda n: n)
        sections = {"block_length": "curriculum", "weight_timescale": "learning",
                    "gate_timescale": "learning", "regularization": "learning"}
        name_of = {n: (where(n) if n in point else f"{sections[n]}.{n}") for n in SWEEPABLE}
        for name in ("block_length", "weight_timescale", "gate_timescale"):
            _positive(name_of[name], self.value(name, point))
        _non_negative(name_of["regularization"], self.value("regularization", point))
        dt = self.learning.dt
        if round(self.value("block_length", point) / dt) < 1:
            raise ConfigError(name_of["block_length"], f"block shorter than one step (dt = {dt})")
        # Euler on a gradient flow is stable while (dt / tau) * curvature < 2.
        # Weights: curvature c^2 * lambda_max(E[x x^T]) ~ 1 for gates of order one.
        tau_w = self.value("weight_timescale", point)
        if dt / tau_w >= 2.0:
            raise ConfigError(
                "learning.dt",
                f"too large for weight_timescale {tau_w:g}: Euler stability needs dt / tau_W < 2 "
                f"(here {dt / tau_w:.3g})",
            )
        tau_c = self.value("gate_timescale", point)
        curvature = self.gate_curvature(self.value("regularization", point))
        if dt / tau_c * curvature >= 2.0:
            raise ConfigError(
                "learning.dt",
                f"too large for gate_timescale {tau_c:g}: Euler stability needs "
                f"dt / tau_c * curvature < 2, with gate curvature {curvature:.3g} "
                f"(teacher norm + regulariser), here {dt / tau_c * curvature:.3g}",
            )

    def gate_curvature(self, regularization: float) -> float:
        """Upper estimate of the loss curvature along the gates.

        The data term contributes the squared norm of a teacher's rows that
        share one gate (d_out / d_in for path gates of orthogonal teachers);
        the L1 manifold contributes 10 * P * lambda * w_l1 and the L2 manifold
        lambda * w_l2 (normalised weights).
        """
        net = self.network
        teacher_norm = (net.output_dim if net.gating == "path" else 1) / net.input_dim
        _, w_l1, w_l2 = self.learning.regularizer.normalized()
        return teacher_norm + regularization * (10.0 * net.paths * w_l1 + w_l2)


# -- presets and TOML ---------------------------------------------------------


def models_dir() -> Path:
    """``$COGFLEX_MODELS`` if set, else the folder of the bundled presets (one subfolder per kind).

    Kept for callers that join kind folders themselves; a lookup by name
    should use :func:`cogflex.resources.preset_path`, which searches the user
    folders before the bundled presets.
    """
    from cogflex import resources

    env = os.environ.get(resources.MODELS_ENV)
    return Path(env) if env else resources.bundled_models_dir()


def preset_names(kind: str = "simulation") -> list[str]:
    """Names of the presets of ``kind`` (default: simulations), see :func:`cogflex.resources.preset_names`."""
    from cogflex import resources

    return resources.preset_names(kind)


def load_config(name_or_path: str | Path) -> SimulationConfig:
    """Load a preset by name (``fig2-flexible``) or a TOML file path.

    Presets are found along the search path of :mod:`cogflex.resources`
    (``$COGFLEX_MODELS``, ``~/.config/cogflex/models``, then the bundled ones).

    Raises
    ------
    ConfigError
        Unknown preset, unreadable file, unknown key or invalid value; the
        message names the preset/file and the dotted field.
    """
    from cogflex import resources

    text = str(name_or_path)
    path = Path(text)
    if not (text.endswith(".toml") or path.exists()):
        path = resources.preset_path("simulation", text)
    data = read_toml(path)
    return config_from_dict(data, source=str(path))


def config_from_dict(data: Mapping[str, Any], *, source: str | None = None) -> SimulationConfig:
    """Build a :class:`SimulationConfig` from a parsed TOML mapping."""
    data = dict(data)
    table = data.pop("sweep", {})
    if not isinstance(table, Mapping):
        raise ConfigError("sweep", f"expected a table of name = [values], got {table!r}", source=source)
    try:
        sweep = Sweep.from_table(table)
    except ConfigError as exc:
        raise exc.within("sweep", source=source) from None
    try:
        config = from_mapping(SimulationConfig, data)
        return dataclasses.replace(config, sweep=sweep)
    except ConfigError as exc:
        raise exc.within(source=source) from None
