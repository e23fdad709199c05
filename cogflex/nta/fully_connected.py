"""Emergent gating in a fully connected two-layer linear network (Sandbrink et al., 2024, Fig. 6).

The network y = W2 W1 x (d_in -> d_hidden -> d_out) has no gates at all. The
gate regulariser R of the NTA network (:class:`~cogflex.nta.regularizers.GateRegularizer`)
is put on the *second* layer W2 instead, and W2 learns faster than W1
(tau_W2 < tau_W1). On a blocked two-task student-teacher curriculum single
hidden units then become task gates: each unit's outgoing weights W2[:, j]
are on during one task and off during the other, so the hidden units sorted
by task preference make W2 block-diagonal. Without the regulariser they do
not.

Learning is gradient flow on L = 1/2 ||W2 W1 - W*_m||_F^2 + lambda R(W2)
(expected loss for inputs x ~ N(0, I)), integrated by Euler steps
W <- W - (dt / tau) dL/dW with tau_W1 for W1 and tau_W2 for W2 (both layers
updated from the gradients at the same point). ``mode = "sampled"`` replaces
the identity input covariance by X^T X / n of a fresh Gaussian batch each
step (:func:`~cogflex.nta.dynamics.sample_input_covariance`), as the authors do.

Settings and where they come from (the authors' public code,
``aproca/neural_task_abstraction``):

- Network 20 -> 20 -> 10: ``fig6_A5_A6_gating_FC.ipynb`` sets ``input_size=20,
  output_size=10, hidden_size=10, num_paths=2, control='deep_mono',
  num_layers=2``; ``lcs/configs.py`` makes the hidden layer
  ``num_paths * hidden_size = 20`` units wide for ``deep_mono``.
- Regulariser: ``lcs/joint_learning.py`` (``regularization_loss_fn``) treats
  the whole flattened W2 as *one* gate vector for ``deep_mono``: 10 sum
  max(-W2, 0) (non-negativity of every entry) and 1/2 (||W2||_F - 1)^2 (L2
  manifold on the Frobenius norm), weights nonnegative 1 : L2 10 normalised
  to sum to one, times ``regularization_strength = 0.22`` (notebook). That is
  ``regularizer_scope = "matrix"`` here; ``"hidden_unit"`` (norm per column)
  and ``"output_unit"`` (norm per row) are variants that are not the authors'.
  The regulariser acts on W2 only; W1 is unregularised.
- tau_W1 0.06, tau_W2 0.01, dt 0.01, blocks of duration 1.0 alternating
  A, B (``c_gt_curriculum='A_B__'``), ``t_tot = 30``: notebook. From
  ``lcs/configs.py`` / ``joint_learning.simulate_``: ``num_blocks =
  t_tot // block_duration + 1 = 31`` and the scan runs ``num_blocks + 1 = 32``
  blocks of ``block_duration // dt = 99`` steps (a floor artefact of
  1.0 // 0.01); we run 32 blocks of round(1.0 / 0.01) = 100 steps.
- Initialisation: both layers N(0, (0.01 / sqrt(d_in))^2) entrywise
  (``initialization_scale = 0.01`` divided by ``sqrt(input_size)`` for every
  layer, ``simulate_``).
- Teachers: orthogonal, rows of a random orthogonal matrix scaled by
  1/sqrt(d_in) (``generate_teachers``, ``teacher_scale='d_in'``). The authors
  use the *same* teachers for every seed (fixed seed); we draw them per seed
  with :func:`~cogflex.nta.teachers.orthogonal_teachers` (with isotropic
  initialisation the expected dynamics are rotation-equivariant, so only the
  initial weights matter statistically).
- Inputs: the authors sample a batch of 200 Gaussian inputs per step; we use
  the expected gradient by default (``mode = "expected"``), sampled batches
  on request.
- Without the regulariser: the same notebook reruns with
  ``regularization_strength = 0`` (everything else equal).

Not in the authors' code: a selectivity number. Their figure shows W2 after
the last block of each task, with hidden units sorted by which teacher row
their W1 row is most aligned with (``compute_row_cossim``). Here each hidden
unit's selectivity is measured from W2 alone (:func:`hidden_unit_selectivity`)
and units are sorted by task preference (:func:`sort_hidden_units`).

Selectivity measure: a_jm = mean over the measured blocks of task m of
||W2[:, j]|| (at block ends), selectivity_j = max_m a_jm / sum_m a_jm, and
the network's number is the mean weighted by each unit's total output weight
(:attr:`HiddenUnitSelectivity.weighted_selectivity`). Weighting makes weak
units count little, and a unit that merely re-routes to other output units
between tasks keeps its column norm and scores 1/M, so the number is near 1
only when the units that carry the tasks switch on and off.

What the authors' settings give (10 seeds, expected mode, t = 32): the
sorted W2 looks block-diagonal, but the weighted selectivity is about 0.67
(0.58-0.80 over seeds; 0.50 without the regulariser). It grows slowly with
training (about 0.82 after 200 blocks) and depends on the Euler step
relative to tau_W2: about 0.58 for dt / tau_W2 <= 0.75 (the gradient-flow
limit; W2 then switches entry by entry, hidden units are shared by both
tasks), 0.67 at the authors' 1.0 and about 0.88 at 1.4. Single-unit gating at
these settings is therefore partly an effect of the large Euler step (the
non-negativity subgradient kicks negative entries by dt/tau_W2 * 10 lambda/11
= 0.2 per step).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from cogflex.errors import ConfigError, DivergenceError
from cogflex.nta.config import Regularizer, models_dir
from cogflex.nta.dynamics import sample_input_covariance
from cogflex.nta.regularizers import GateRegularizer
from cogflex.nta.teachers import orthogonal_teachers
from cogflex.typed_config import from_mapping, read_toml

__all__ = [
    "FullyConnectedConfig",
    "FullyConnectedResult",
    "SecondLayerRegularizer",
    "HiddenUnitSelectivity",
    "load_fully_connected_config",
    "fully_connected_gradients",
    "euler_step",
    "simulate_fully_connected",
    "hidden_unit_selectivity",
    "sort_hidden_units",
    "first_layer_alignment",
    "block_end_loss",
    "time_to_criterion",
]

RegularizerScope = Literal["matrix", "hidden_unit", "output_unit"]


def _authors_regularizer() -> Regularizer:
    return Regularizer(nonnegative=1.0, l1=0.0, l2=10.0)


@dataclass(frozen=True)
class FullyConnectedConfig:
    """Settings of a batched run of two-layer linear networks y = W2 W1 x.

    Parameters
    ----------
    name, description
        Label and one-line description of the run.
    seeds, first_seed
        Number of networks per condition and the first seed (seeds are
        ``first_seed, first_seed + 1, ...``); the teachers and initial weights
        of a seed are shared by all conditions of a run.
    input_dim, hidden_dim, output_dim
        d_in, d_hidden and d_out.
    tasks
        Number of orthogonal teachers M (needs M * d_out <= d_in).
    weight_init_std
        Both layers start with entries N(0, (weight_init_std / sqrt(d_in))^2).
    block_length, blocks
        tau_B, the duration of a block, and the number of blocks; tasks
        cycle 0, 1, ..., M-1 block by block.
    dt
        Euler step (time units).
    first_layer_timescale, second_layer_timescale
        tau_W1 and tau_W2.
    regularization
        lambda, the strength of the regulariser on W2.
    regularizer
        Relative weights of its terms (non-negativity, L1 and L2 manifolds).
    regularizer_scope
        What one gate vector is: ``"matrix"`` (all of W2, the authors'),
        ``"hidden_unit"`` (each column W2[:, j]) or ``"output_unit"`` (each row).
    mode
        ``"expected"`` (exact expected gradient) or ``"sampled"`` (a fresh
        batch of ``batch_size`` Gaussian inputs per step).
    batch_size
        Inputs per step in sampled mode.
    measure_blocks
        Number of final blocks over which unit selectivity is measured.
    selectivity_threshold
        A unit with at least this selectivity counts as a gating unit.
    carrying_share
        The carrying units are the fewest units holding this share of the
        total output weight.
    criterion
        Loss criterion for the time to criterion after each switch.
    """

    name: str = "custom"
    description: str = ""
    seeds: int = 10
    first_seed: int = 0
    input_dim: int = 20
    hidden_dim: int = 20
    output_dim: int = 10
    tasks: int = 2
    weight_init_std: float = 0.01
    block_length: float = 1.0
    blocks: int = 32
    dt: float = 0.01
    first_layer_timescale: float = 0.06
    second_layer_timescale: float = 0.01
    regularization: float = 0.22
    regularizer: Regularizer = field(default_factory=_authors_regularizer)
    regularizer_scope: RegularizerScope = "matrix"
    mode: Literal["expected", "sampled"] = "expected"
    batch_size: int = 200
    measure_blocks: int = 10
    selectivity_threshold: float = 0.9
    carrying_share: float = 0.9
    criterion: float = 0.1

    def __post_init__(self) -> None:
        for name in ("seeds", "input_dim", "hidden_dim", "output_dim", "tasks", "blocks", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(name, f"must be at least 1, got {getattr(self, name)}")
        if self.first_seed < 0:
            raise ConfigError("first_seed", f"must be zero or positive, got {self.first_seed}")
        if self.tasks * self.output_dim > self.input_dim:
            raise ConfigError("tasks", f"{self.tasks} orthogonal teachers of {self.output_dim} rows need "
                                       f"input_dim >= {self.tasks * self.output_dim} (it is {self.input_dim})")
        for name in ("block_length", "dt", "first_layer_timescale", "second_layer_timescale", "criterion"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ConfigError(name, f"must be a positive finite number, got {value!r}")
        for name in ("weight_init_std", "regularization"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ConfigError(name, f"must be zero or positive, got {value!r}")
        if round(self.block_length / self.dt) < 1:
            raise ConfigError("block_length", f"shorter than one step (dt = {self.dt})")
        for name in ("first_layer_timescale", "second_layer_timescale"):
            ratio = self.dt / getattr(self, name)
            if ratio >= 2.0:
                raise ConfigError("dt", f"too large for {name} {getattr(self, name):g}: Euler stability needs "
                                        f"dt / tau < 2 (here {ratio:.3g})")
        if self.blocks < self.tasks:
            raise ConfigError("blocks", f"must be at least the number of tasks ({self.tasks}), got {self.blocks}")
        if not self.tasks <= self.measure_blocks <= self.blocks:
            raise ConfigError("measure_blocks", f"must lie between tasks ({self.tasks}) and blocks "
                                                f"({self.blocks}), got {self.measure_blocks}")
        if not 1.0 / self.tasks < self.selectivity_threshold <= 1.0:
            raise ConfigError("selectivity_threshold",
                              f"must lie in (1/tasks, 1] = ({1 / self.tasks:.3g}, 1], got {self.selectivity_threshold}")
        if not 0.0 < self.carrying_share <= 1.0:
            raise ConfigError("carrying_share", f"must lie in (0, 1], got {self.carrying_share}")

    @property
    def block_steps(self) -> int:
        """Euler steps per block: round(tau_B / dt)."""
        return round(self.block_length / self.dt)

    @property
    def n_steps(self) -> int:
        """Total number of Euler steps."""
        return self.blocks * self.block_steps

    @property
    def block_task(self) -> tuple[int, ...]:
        """Task index of every block (0, 1, ..., M-1, 0, 1, ...)."""
        return tuple(b % self.tasks for b in range(self.blocks))

    @property
    def seed_values(self) -> tuple[int, ...]:
        """The seeds of the networks, in order."""
        return tuple(range(self.first_seed, self.first_seed + self.seeds))

    def strength(self, regularized: bool | float) -> float:
        """The strength lambda of one condition: ``True`` the configured one, ``False`` 0, a number itself."""
        if isinstance(regularized, bool):
            return self.regularization if regularized else 0.0
        value = float(regularized)
        if not (value >= 0 and math.isfinite(value)):
            raise ConfigError("regularized", f"a lambda override must be zero or positive, got {regularized!r}")
        return value


def load_fully_connected_config(name_or_path: str | Path) -> FullyConnectedConfig:
    """Load a preset by name (``fig6-fully-connected``, from ``models/reproduce/``) or a TOML file path.

    Raises
    ------
    ConfigError
        Unknown preset, unreadable file, unknown key or invalid value; the
        message names the file and the field.
    """
    text = str(name_or_path)
    path = Path(text)
    if not (text.endswith(".toml") or path.exists()):
        path = models_dir() / "reproduce" / f"{text}.toml"
        if not path.exists():
            available = ", ".join(sorted(p.stem for p in path.parent.glob("*.toml"))) or "none found"
            raise ConfigError("preset", f"unknown preset {text!r} (available: {available})")
    data = read_toml(path)
    try:
        return from_mapping(FullyConnectedConfig, data)
    except ConfigError as exc:
        raise exc.within(source=str(path)) from None


# -- the regulariser on W2 -----------------------------------------------------


@dataclass(frozen=True)
class SecondLayerRegularizer:
    """lambda R(W2) for a batch of second layers ``(B, d_out, d_hidden)``.

    Reuses :class:`~cogflex.nta.regularizers.GateRegularizer` by viewing W2 as
    gate vectors: the whole matrix (``scope = "matrix"``), each hidden unit's
    column or each output unit's row.

    Parameters
    ----------
    gates
        The gate regulariser over the gate rows of all networks.
    scope
        How W2 is cut into gate vectors.
    """

    gates: GateRegularizer
    scope: RegularizerScope

    @classmethod
    def build(cls, weights: Regularizer, strength: torch.Tensor, scope: RegularizerScope,
              output_dim: int, hidden_dim: int) -> SecondLayerRegularizer:
        """Regulariser with relative ``weights`` and per-network lambda ``strength`` ``(B,)``."""
        rows = {"matrix": 1, "hidden_unit": hidden_dim, "output_unit": output_dim}[scope]
        return cls(GateRegularizer.from_weights(weights, strength, rows=rows), scope)

    def _as_gates(self, second_layer: torch.Tensor) -> torch.Tensor:
        b, o, h = second_layer.shape
        if self.scope == "matrix":
            return second_layer.reshape(b, o * h)
        if self.scope == "output_unit":
            return second_layer.reshape(b * o, h)
        return second_layer.transpose(1, 2).reshape(b * h, o)

    def value(self, second_layer: torch.Tensor) -> torch.Tensor:
        """The penalty lambda R(W2) per network, ``(B,)``."""
        per_row = self.gates.value(self._as_gates(second_layer))
        return per_row.reshape(second_layer.shape[0], -1).sum(-1)

    def gradient(self, second_layer: torch.Tensor) -> torch.Tensor:
        """d(lambda R)/dW2, shape of ``second_layer``."""
        b, o, h = second_layer.shape
        grad = self.gates.gradient(self._as_gates(second_layer))
        if self.scope == "hidden_unit":
            return grad.reshape(b, h, o).transpose(1, 2)
        return grad.reshape(b, o, h)


# -- dynamics ------------------------------------------------------------------


def fully_connected_gradients(
    first_layer: torch.Tensor, second_layer: torch.Tensor, target: torch.Tensor,
    input_covariance: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Data loss and its gradients for a batch of networks.

    With error E = W2 W1 - W* and input covariance Sigma (identity when
    ``None``): L = 1/2 tr(E Sigma E^T), dL/dW1 = W2^T E Sigma, dL/dW2 = E Sigma W1^T.

    Parameters
    ----------
    first_layer, second_layer
        W1 ``(B, d_hidden, d_in)`` and W2 ``(B, d_out, d_hidden)``.
    target
        The current teacher W* ``(B, d_out, d_in)``.
    input_covariance
        ``(B, d_in, d_in)``, e.g. X^T X / n of a sampled batch.

    Returns
    -------
    tuple of torch.Tensor
        The expected loss 1/2 ||E||_F^2 ``(B,)`` (also in sampled mode) and
        the gradients with respect to W1 and W2.
    """
    error = torch.bmm(second_layer, first_layer) - target
    loss = 0.5 * error.square().sum((-2, -1))
    weighted = error if input_covariance is None else torch.bmm(error, input_covariance)
    grad_first = torch.bmm(second_layer.transpose(1, 2), weighted)
    grad_second = torch.bmm(weighted, first_layer.transpose(1, 2))
    return loss, grad_first, grad_second


def euler_step(
    first_layer: torch.Tensor, second_layer: torch.Tensor, target: torch.Tensor,
    regularizer: SecondLayerRegularizer, config: FullyConnectedConfig,
    input_covariance: torch.Tensor | None = None,
) -> torch.Tensor:
    """Advance W1 and W2 by one Euler step in place; return the loss before the step.

    W1 -= (dt / tau_W1) dL/dW1 and W2 -= (dt / tau_W2) (dL/dW2 + d(lambda R)/dW2),
    both gradients taken at the current point.
    """
    loss, grad_first, grad_second = fully_connected_gradients(first_layer, second_layer, target, input_covariance)
    grad_second += regularizer.gradient(second_layer)
    first_layer.sub_(grad_first, alpha=config.dt / config.first_layer_timescale)
    second_layer.sub_(grad_second, alpha=config.dt / config.second_layer_timescale)
    return loss


@dataclass(frozen=True)
class FullyConnectedResult:
    """What :func:`simulate_fully_connected` recorded.

    Axes: V conditions (one lambda each), S seeds, blocks, steps.

    Attributes
    ----------
    config
        The settings of the run.
    regularization
        lambda of each condition, ``(V,)``.
    seeds
        The seed of each network, ``(S,)``.
    block_task
        Task of every block, ``(blocks,)``.
    second_layer
        W2 at the end of every block, ``(V, S, blocks, d_out, d_hidden)``.
    first_layer
        W1 at the end of every block, ``(V, S, blocks, d_hidden, d_in)``.
    teachers
        ``(S, M, d_out, d_in)``.
    loss
        Expected loss 1/2 ||W2 W1 - W*_m||^2 before every step, ``(V, S, steps)``.
    wall_seconds
        Wall-clock time of the simulation.
    """

    config: FullyConnectedConfig
    regularization: tuple[float, ...]
    seeds: tuple[int, ...]
    block_task: np.ndarray
    second_layer: np.ndarray
    first_layer: np.ndarray
    teachers: np.ndarray
    loss: np.ndarray
    wall_seconds: float

    @property
    def task(self) -> np.ndarray:
        """Task of every step, ``(steps,)``."""
        return np.repeat(self.block_task, self.config.block_steps)

    @property
    def times(self) -> np.ndarray:
        """Time of every step (before the update), ``(steps,)``."""
        return np.arange(self.loss.shape[-1]) * self.config.dt


def _initial_state(config: FullyConnectedConfig, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Teachers, W1, W2 of one seed and a seed for its input noise."""
    init_seed, noise_seed = np.random.SeedSequence(seed).generate_state(2, dtype=np.uint64) >> np.uint64(1)
    gen = torch.Generator().manual_seed(int(init_seed))
    teachers = orthogonal_teachers(config.tasks, config.output_dim, config.input_dim, generator=gen,
                                   dtype=torch.float64)
    std = config.weight_init_std / math.sqrt(config.input_dim)
    first = std * torch.randn(config.hidden_dim, config.input_dim, generator=gen, dtype=torch.float64)
    second = std * torch.randn(config.output_dim, config.hidden_dim, generator=gen, dtype=torch.float64)
    return teachers, first, second, int(noise_seed)


def _strengths(config: FullyConnectedConfig, regularized: bool | float | Sequence[bool | float]) -> tuple[float, ...]:
    if isinstance(regularized, bool | int | float):
        return (config.strength(regularized),)
    strengths = tuple(config.strength(r) for r in regularized)
    if not strengths:
        raise ConfigError("regularized", "needs at least one condition")
    return strengths


def simulate_fully_connected(
    config: FullyConnectedConfig, *, regularized: bool | float | Sequence[bool | float] = True,
    progress: bool = False,
) -> FullyConnectedResult:
    """Train ``config.seeds`` networks per condition through the blocked curriculum, all as one batch.

    Parameters
    ----------
    config
        The settings.
    regularized
        The condition(s): ``True`` uses ``config.regularization``, ``False``
        lambda = 0, a number overrides lambda; a sequence runs several
        conditions side by side (same teachers and initial weights per seed).
    progress
        Show a progress bar over blocks.

    Returns
    -------
    FullyConnectedResult
        W2 and W1 at every block end, the loss trace and the settings.

    Raises
    ------
    DivergenceError
        When a weight becomes NaN or infinite.
    """
    start = time.perf_counter()
    strengths = _strengths(config, regularized)
    n_var, n_seed = len(strengths), config.seeds
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        states = [_initial_state(config, seed) for seed in config.seed_values]
        teachers = torch.stack([s[0] for s in states])  # (S, M, O, D)
        first = torch.stack([s[1] for s in states]).repeat(n_var, 1, 1)  # (V*S, H, D), condition-major
        second = torch.stack([s[2] for s in states]).repeat(n_var, 1, 1)
        noise = [torch.Generator().manual_seed(s[3]) for s in states]
        lam = torch.tensor(strengths, dtype=torch.float64).repeat_interleave(n_seed)
        regularizer = SecondLayerRegularizer.build(config.regularizer, lam, config.regularizer_scope,
                                                   config.output_dim, config.hidden_dim)
        block_task = np.asarray(config.block_task)
        steps = config.block_steps
        second_rec = np.empty((config.blocks, *second.shape))
        first_rec = np.empty((config.blocks, *first.shape))
        loss_rec = torch.empty(config.blocks, steps, n_var * n_seed, dtype=torch.float64)
        for block in tqdm(range(config.blocks), disable=not progress, desc=config.name, leave=False):
            target = teachers[:, block_task[block]].repeat(n_var, 1, 1)
            covariance = None
            if config.mode == "sampled":
                covariance = torch.stack([sample_input_covariance(steps, config.input_dim, config.batch_size,
                                                                  generator=g, dtype=torch.float64)
                                          for g in noise], dim=1).repeat(1, n_var, 1, 1)  # (steps, V*S, D, D)
            for k in range(steps):
                cov = None if covariance is None else covariance[k]
                loss_rec[block, k] = euler_step(first, second, target, regularizer, config, cov)
            if not (torch.isfinite(first).all() and torch.isfinite(second).all()):
                raise DivergenceError(f"{config.name}: weights became NaN or infinite in block {block} "
                                      f"(t = {(block + 1) * config.block_length:g}); reduce dt")
            second_rec[block] = second.numpy()
            first_rec[block] = first.numpy()
    finally:
        torch.set_num_threads(threads)

    def by_condition(x: np.ndarray) -> np.ndarray:  # (blocks, V*S, ...) -> (V, S, blocks, ...)
        return np.moveaxis(x.reshape(config.blocks, n_var, n_seed, *x.shape[2:]), 0, 2)

    loss = loss_rec.reshape(config.blocks * steps, n_var, n_seed).permute(1, 2, 0).numpy()
    return FullyConnectedResult(
        config=config, regularization=strengths, seeds=config.seed_values, block_task=block_task,
        second_layer=by_condition(second_rec), first_layer=by_condition(first_rec),
        teachers=teachers.numpy(), loss=np.ascontiguousarray(loss), wall_seconds=time.perf_counter() - start,
    )


# -- metrics -------------------------------------------------------------------


@dataclass(frozen=True)
class HiddenUnitSelectivity:
    """How task-specific every hidden unit's outgoing weights are.

    With a_jm the mean norm ||W2[:, j]|| over the measured blocks of task m,
    unit j's selectivity is max_m a_jm / sum_m a_jm: 1 for a unit used in one
    task only, 1/M for a unit used equally in all.

    Attributes
    ----------
    weight
        a_jm, ``(..., d_hidden, M)``.
    selectivity
        ``(..., d_hidden)``; NaN for a unit without output weight.
    preferred_task
        argmax_m a_jm, ``(..., d_hidden)``.
    carrying
        Whether a unit belongs to the fewest units that hold ``carrying_share``
        of the total output weight sum_jm a_jm, ``(..., d_hidden)``.
    """

    weight: np.ndarray
    selectivity: np.ndarray
    preferred_task: np.ndarray
    carrying: np.ndarray

    @property
    def weighted_selectivity(self) -> np.ndarray:
        """Mean selectivity weighted by each unit's total output weight, ``(...)``.

        Equals sum_j max_m a_jm / sum_jm a_jm, the share of all output weight
        that units spend on their preferred task: units without weight do not
        count, so it is near 1 only when the units that do the work are gates.
        """
        return self.weight.max(-1).sum(-1) / self.weight.sum((-2, -1))

    @property
    def carrying_selectivity(self) -> np.ndarray:
        """Unweighted mean selectivity of the carrying units, ``(...)``."""
        sel = np.where(self.carrying, self.selectivity, 0.0)
        return sel.sum(-1) / self.carrying.sum(-1)

    def gating_units(self, threshold: float) -> np.ndarray:
        """Number of carrying units with selectivity >= ``threshold`` that prefer each task, ``(..., M)``."""
        gating = self.carrying & (np.nan_to_num(self.selectivity) >= threshold)
        tasks = np.arange(self.weight.shape[-1])
        return (gating[..., None] & (self.preferred_task[..., None] == tasks)).sum(-2)


def hidden_unit_selectivity(
    second_layer: np.ndarray, block_task: np.ndarray | Sequence[int], *, measure_blocks: int,
    carrying_share: float = 0.9,
) -> HiddenUnitSelectivity:
    """Task selectivity of every hidden unit from W2 at the ends of the last ``measure_blocks`` blocks.

    Parameters
    ----------
    second_layer
        W2 at block ends, ``(..., blocks, d_out, d_hidden)``.
    block_task
        Task of every block, ``(blocks,)``.
    measure_blocks
        Number of final blocks to average over; each task must occur among them.
    carrying_share
        Share of the total output weight that the carrying units hold.

    Returns
    -------
    HiddenUnitSelectivity
        Per-unit task weights, selectivity, preferred task and carrying units.
    """
    block_task = np.asarray(block_task)
    tasks = int(block_task.max()) + 1
    late_tasks = block_task[-measure_blocks:]
    norms = np.linalg.norm(np.asarray(second_layer)[..., -measure_blocks:, :, :], axis=-2)  # (..., blocks, H)
    weight = []
    for m in range(tasks):
        mask = late_tasks == m
        if not mask.any():
            raise ValueError(f"task {m} does not occur in the last {measure_blocks} blocks")
        weight.append(norms[..., mask, :].mean(-2))
    weight = np.stack(weight, axis=-1)  # (..., H, M)
    total = weight.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        selectivity = weight.max(-1) / total
    order = np.argsort(-total, axis=-1)
    ranked = np.take_along_axis(total, order, axis=-1)
    before = (np.cumsum(ranked, axis=-1) - ranked) / ranked.sum(-1, keepdims=True)
    carrying = np.empty_like(before, dtype=bool)
    np.put_along_axis(carrying, order, before < carrying_share, axis=-1)
    return HiddenUnitSelectivity(weight=weight, selectivity=selectivity, preferred_task=weight.argmax(-1),
                                 carrying=carrying)


def sort_hidden_units(weight: np.ndarray, second_layer_by_task: np.ndarray) -> np.ndarray:
    """Order of the hidden units of one network for plotting W2.

    Units are grouped by preferred task (argmax_m a_jm); within a group they
    are ordered by the output unit they project to most strongly in that
    task (so a gating solution shows diagonal sub-blocks), ties broken by
    strength.

    Parameters
    ----------
    weight
        a_jm of one network, ``(d_hidden, M)`` (:attr:`HiddenUnitSelectivity.weight`).
    second_layer_by_task
        W2 of the same network at the end of a block of each task, ``(M, d_out, d_hidden)``.

    Returns
    -------
    numpy.ndarray
        Permutation of the hidden units, ``(d_hidden,)``.
    """
    weight = np.asarray(weight)
    preferred = weight.argmax(-1)
    units = np.arange(weight.shape[0])
    own = np.abs(np.asarray(second_layer_by_task)[preferred, :, units])  # (H, d_out)
    target_unit = own.argmax(-1)
    strength = weight[units, preferred]
    return np.lexsort((-strength, target_unit, preferred))


def first_layer_alignment(first_layer: np.ndarray, teachers: np.ndarray) -> np.ndarray:
    """Share of each hidden unit's W1 row (squared norm) that lies in each teacher's row space.

    Parameters
    ----------
    first_layer
        W1, ``(..., d_hidden, d_in)``.
    teachers
        ``(M, d_out, d_in)`` (shared by all leading axes of ``first_layer``).

    Returns
    -------
    numpy.ndarray
        ``(..., d_hidden, M)`` in [0, 1]; a gating unit of task m has about 1 for m.
    """
    bases = [np.linalg.qr(np.asarray(t).T)[0] for t in teachers]  # (d_in, d_out) orthonormal each
    rows = np.asarray(first_layer)
    norm = np.square(rows).sum(-1)
    shares = [np.square(rows @ q).sum(-1) / norm for q in bases]
    return np.stack(shares, axis=-1)


def block_end_loss(result: FullyConnectedResult) -> np.ndarray:
    """Loss before the last step of every block, ``(V, S, blocks)``."""
    steps = result.config.block_steps
    return result.loss.reshape(*result.loss.shape[:-1], -1, steps)[..., -1]


def time_to_criterion(result: FullyConnectedResult, criterion: float | None = None) -> np.ndarray:
    """Time from the start of every block until the loss first falls below ``criterion``, ``(V, S, blocks)``.

    NaN where the loss never does within the block. ``criterion`` defaults to
    ``config.criterion``.
    """
    criterion = result.config.criterion if criterion is None else criterion
    steps = result.config.block_steps
    per_block = result.loss.reshape(*result.loss.shape[:-1], -1, steps)
    below = per_block < criterion
    first = below.argmax(-1).astype(float)
    first[~below.any(-1)] = np.nan
    return first * result.config.dt
