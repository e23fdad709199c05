"""Which task each network trains on at each Euler step.

A schedule answers ``tasks(start, stop)`` with an integer array of shape
``(B, stop - start)``: the index of the task (teacher) network b sees at each
step. Blocked curricula are computed on the fly, so a schedule costs no
memory however long the run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["BlockedSchedule", "ExplicitSchedule", "Schedule"]


class BlockedSchedule:
    """Tasks in ``order``, each for a block of ``steps_per_block`` steps (per network).

    Parameters
    ----------
    steps_per_block
        Block length in steps, one value per network ``(B,)``.
    order
        Task indices cycled through block by block (A, B, A, B, ... for ``(0, 1)``).
    then
        Optional second phase: from block ``switch_block`` on, the blocks cycle
        through ``then`` instead (the composed tasks of Fig. 3).
    switch_block
        First block of the second phase.
    """

    def __init__(self, steps_per_block: Sequence[int] | np.ndarray, order: Sequence[int],
                 then: Sequence[int] = (), switch_block: int = 0):
        self.steps_per_block = np.asarray(steps_per_block, dtype=np.int64)
        self.order = np.asarray(order, dtype=np.int64)
        self.then = np.asarray(then, dtype=np.int64)
        self.switch_block = int(switch_block)
        if (self.steps_per_block < 1).any():
            raise ValueError("blocks must last at least one step")

    @property
    def n_networks(self) -> int:
        """B."""
        return len(self.steps_per_block)

    def tasks(self, start: int, stop: int) -> np.ndarray:
        """Task index of every network at steps ``start .. stop - 1``, ``(B, stop - start)``."""
        steps = np.arange(start, stop, dtype=np.int64)
        block = steps[None, :] // self.steps_per_block[:, None]
        first = self.order[block % len(self.order)]
        if not len(self.then):
            return first
        second = self.then[np.maximum(block - self.switch_block, 0) % len(self.then)]
        return np.where(block < self.switch_block, first, second)

    def segments(self, n_steps: int) -> int:
        """Upper bound on the number of blocks (segments between switches) in ``n_steps``."""
        return int(np.ceil(n_steps / self.steps_per_block.min()))


class ExplicitSchedule:
    """A per-step task sequence given by the caller.

    Parameters
    ----------
    tasks
        ``(n_steps,)`` for the same sequence in every network, or
        ``(B, n_steps)`` for one sequence per network.
    n_networks
        B, used to broadcast a single sequence.
    """

    def __init__(self, tasks: Sequence[int] | np.ndarray, n_networks: int):
        seq = np.asarray(tasks)
        if seq.ndim == 1:
            seq = np.broadcast_to(seq, (n_networks, seq.shape[0]))
        if seq.ndim != 2 or seq.shape[0] != n_networks:
            raise ValueError(f"task sequence must have shape (n_steps,) or ({n_networks}, n_steps), got {seq.shape}")
        if not np.issubdtype(seq.dtype, np.integer):
            raise ValueError(f"task sequence must hold integer task indices, got dtype {seq.dtype}")
        self._tasks = seq.astype(np.int64, copy=False)

    @property
    def n_steps(self) -> int:
        """Length of the sequence."""
        return self._tasks.shape[1]

    def tasks(self, start: int, stop: int) -> np.ndarray:
        """Task index of every network at steps ``start .. stop - 1`` (clamped to the sequence)."""
        return self._tasks[:, start:stop]

    def segments(self, n_steps: int) -> int:
        """Number of segments between task switches in the first ``n_steps`` steps (max over networks)."""
        seq = self._tasks[:, :n_steps]
        return int((seq[:, 1:] != seq[:, :-1]).sum(axis=1).max(initial=0)) + 1


Schedule = BlockedSchedule | ExplicitSchedule
