"""Hidden-unit selectivity and the loss measures of fully connected runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cogflex.nta.fully_connected.simulation import FullyConnectedResult

__all__ = [
    "HiddenUnitSelectivity",
    "hidden_unit_selectivity",
    "sort_hidden_units",
    "first_layer_alignment",
    "block_end_loss",
    "time_to_criterion",
]


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
