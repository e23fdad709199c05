"""What the paper measures: alignment, specialisation and switch speed.

All functions take full weight matrices, ``(..., P, d_out, d_in)`` for the
student paths and ``(..., M, d_out, d_in)`` for the teachers, and work over
any leading batch dimensions.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

__all__ = ["alignment", "total_alignment", "best_matching", "SwitchTracker"]

_EPS = 1e-30


def alignment(weights: torch.Tensor, teachers: torch.Tensor) -> torch.Tensor:
    """Student-teacher alignment, ``(..., P, M)``.

    The cosine similarity between row i of path W_p and row i of teacher
    W*_m, averaged over output rows i (Sandbrink et al., 2024).
    """
    w = weights.unsqueeze(-3)  # (..., P, 1, d_out, d_in)
    t = teachers.unsqueeze(-4)  # (..., 1, M, d_out, d_in)
    dot = (w * t).sum(-1)
    norms = torch.linalg.vector_norm(w, dim=-1) * torch.linalg.vector_norm(t, dim=-1)
    return (dot / norms.clamp_min(_EPS)).mean(-1)


def total_alignment(weights: torch.Tensor, teachers: torch.Tensor) -> torch.Tensor:
    """Total alignment, ``(...)``: 1 when every teacher has its own specialised path.

    The row-wise cosine between the stacked teachers [W*_1; ...; W*_M] and
    the stacked paths matched to them [W_pi(1); ...; W_pi(M)], averaged over
    all rows, maximised over matchings pi (one path per teacher; paths may
    repeat only when P < M). Equivalently the mean over teachers of
    ``alignment[pi(m), m]``.
    """
    return best_matching(alignment(weights, teachers))


def best_matching(align: torch.Tensor) -> torch.Tensor:
    """Total alignment from an alignment matrix ``(..., P, M)`` (see :func:`total_alignment`)."""
    paths, tasks = align.shape[-2:]
    if paths >= tasks:
        matchings = list(itertools.permutations(range(paths), tasks))
    else:
        matchings = list(itertools.product(range(paths), repeat=tasks))
    idx = torch.tensor(matchings, device=align.device)  # (n_match, M)
    return align[..., idx, torch.arange(tasks, device=align.device)].mean(-1).max(-1).values


class SwitchTracker:
    """Per-step bookkeeping of task switches, fed one chunk of steps at a time.

    For every network and every segment (the stretch between two switches;
    segment 0 starts the run) it keeps the step the segment started, the
    first step whose loss fell below ``criterion`` and the loss at the
    segment's last step, and the loss of its first ``curve_steps`` steps
    (offset 0 is the loss at the switch, before any update on the new task;
    offset k after k updates). Memory is one small array per network and segment,
    independent of the run length.
    """

    def __init__(self, n_networks: int, max_segments: int, criterion: float, curve_steps: int = 10):
        shape = (n_networks, max_segments)
        self.criterion = criterion
        self.curve = np.full((*shape, curve_steps), np.nan)
        self.start_step = np.full(shape, -1, dtype=np.int64)
        self.start_step[:, 0] = 0
        self.first_below = np.full(shape, -1, dtype=np.int64)
        self.end_loss = np.full(shape, np.nan)
        self._count = np.zeros(n_networks, dtype=np.int64)

    def update(self, start: int, loss: np.ndarray, tasks: np.ndarray, is_last: bool) -> None:
        """Record ``loss`` ``(B, k)`` of steps ``start .. start + k - 1``.

        ``tasks`` holds the task of steps ``start - 1 .. start + k`` (``k + 2``
        columns; the first is ignored at step 0 and the last may be missing
        when the run ends with this chunk).
        """
        n_net, k = loss.shape
        prev = tasks[:, : k + 1]
        switched = prev[:, 1:] != prev[:, :-1]  # switch at step start + j
        if start == 0:
            switched[:, 0] = False
        seg = self._count[:, None] + np.cumsum(switched, axis=1)
        rows, cols = np.nonzero(switched)
        self.start_step[rows, seg[rows, cols]] = start + cols
        # First step below the criterion in each (network, segment).
        rows, cols = np.nonzero(loss < self.criterion)
        if rows.size:
            key = rows * (self.start_step.shape[1] + 1) + seg[rows, cols]
            first = np.flatnonzero(np.diff(key, prepend=-1) != 0)
            r, s, c = rows[first], seg[rows[first], cols[first]], cols[first]
            fresh = self.first_below[r, s] < 0
            self.first_below[r[fresh], s[fresh]] = start + c[fresh]
        # The first steps of each segment (switch curves).
        offset = start + np.arange(k)[None, :] - self.start_step[np.arange(n_net)[:, None], seg]
        rows, cols = np.nonzero(offset < self.curve.shape[2])
        self.curve[rows, seg[rows, cols], offset[rows, cols]] = loss[rows, cols]
        # Loss at the last step of each segment: a switch follows, or the run ends.
        nxt = tasks[:, 1:]
        ends = np.zeros((n_net, k), dtype=bool)
        m = min(k, nxt.shape[1] - 1)
        ends[:, :m] = nxt[:, 1 : m + 1] != nxt[:, :m]
        if is_last:
            ends[:, -1] = True
        rows, cols = np.nonzero(ends)
        self.end_loss[rows, seg[rows, cols]] = loss[rows, cols]
        self._count = seg[:, -1]

    @property
    def n_segments(self) -> np.ndarray:
        """Segments seen so far per network ``(B,)``."""
        return self._count + 1

    def steps_to_criterion(self) -> np.ndarray:
        """Steps from each segment's start to the criterion, ``(B, segments)``; NaN if never reached."""
        out = (self.first_below - self.start_step).astype(float)
        out[(self.first_below < 0) | (self.start_step < 0)] = np.nan
        return out
