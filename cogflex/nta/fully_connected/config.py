"""Settings of the fully connected two-layer network (Fig. 6) and the loader of its TOML presets."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cogflex.errors import ConfigError
from cogflex.nta.config import Regularizer
from cogflex.typed_config import from_mapping, read_toml

__all__ = ["FullyConnectedConfig", "RegularizerScope", "load_fully_connected_config"]

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
        from cogflex.resources import preset_path

        path = preset_path("reproduce", text)  # user preset folders first, then the bundled presets
    data = read_toml(path)
    try:
        return from_mapping(FullyConnectedConfig, data)
    except ConfigError as exc:
        raise exc.within(source=str(path)) from None
