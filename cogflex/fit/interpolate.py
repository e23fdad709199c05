"""Interpolation of predictor tables, written once for numpy and PyTensor.

A predictor table holds, for one participant, every grid node's per-trial predictors:
``(*grid shape, n_trials, K)``. Network parameters are continuous in the fit; their predictors are the
interpolation of the table at the parameters' box positions (in [0, 1] per grid axis, on the parameter's own
scale: log for timescales), so NUTS gets exact gradients of the interpolant. Several participants' tables are
concatenated along the trial axis and each trial interpolated at its own participant's position.

Two interpolants (a model's ``interpolation``):

- ``"linear"`` (the default): multilinear, 2^D look-ups, continuous but with a kink at every node (a
  posterior that straddles a node sees a gradient jump there).
- ``"cubic"``: tensor-product cubic convolution (Catmull-Rom: the node values, and at each
  node the slope of the central difference; Keys 1981), 4^D table look-ups per trial. It is C1: the
  gradient NUTS follows has no jumps at the nodes, and its error falls as h^3 with the node spacing h
  instead of h^2. At the box's ends the missing outer node is the linear extrapolation of the last two
  (2 f_0 - f_1), which keeps linear functions exact and the slope continuous. It can overshoot between
  nodes where the network's likelihood surface bends sharply, and a posterior can settle in such an
  overshoot: on the shared players it mixed better than multilinear but its interpolated likelihood was
  up to 73 units above the exact one (docs/fitting.md), so it is not the default.
"""

from __future__ import annotations

import itertools

import numpy as np

from cogflex.fit.link import NUMPY

__all__ = ["INTERPOLANTS", "interpolate", "interpolate_grouped", "multilinear", "interpolate_table", "pad_tables"]

#: Names of the interpolants of :func:`interpolate`.
INTERPOLANTS = ("cubic", "linear")


def interpolate(xp, flat, grid_shape: tuple[int, ...], n_trials: int, positions: list, method: str = "linear"):
    """Interpolate a flattened table at per-trial box positions.

    Parameters
    ----------
    xp
        Array namespace (:data:`cogflex.fit.link.NUMPY` or :func:`cogflex.fit.link.pytensor_namespace`).
    flat
        The table reshaped to ``(prod(grid_shape) * n_trials, K)`` (C order, trials innermost but one).
    grid_shape
        Number of nodes per grid axis (at least 2).
    n_trials
        Trials in the table.
    positions
        One array of length ``n_trials`` per grid axis: each trial's box position in [0, 1]; or one scalar
        per axis when every trial shares it (one participant), which reads whole slices of the table
        instead of single entries per trial (the per-participant fits' fast path).
    method
        ``"cubic"`` or ``"linear"`` (module docstring).

    Returns
    -------
    ``(n_trials, K)`` interpolated predictors.
    """
    if method not in INTERPOLANTS:
        raise ValueError(f"interpolation must be one of {', '.join(INTERPOLANTS)}, not {method!r}")
    axes = [_axis_weights(xp, n, pos, method) for n, pos in zip(grid_shape, positions)]
    shared = all(np.ndim(p) == 0 if isinstance(p, (int, float, np.ndarray, np.number)) else p.ndim == 0
                 for p in positions)
    if shared:
        # every corner's whole trial slice (views of the table), stacked and contracted with the weights
        table = flat.reshape((*grid_shape, n_trials, flat.shape[-1]))
        slices, weights = [], []
        for combo in itertools.product(*(range(len(index)) for index, _ in axes)):
            slices.append(table[tuple(axes[d][0][k] for d, k in enumerate(combo))])
            weight = 1.0
            for d, k in enumerate(combo):
                weight = weight * axes[d][1][k]
            weights.append(weight)
        return xp.tensordot(xp.stack(weights), xp.stack(slices), axes=1)
    # per trial: one gather of every corner of every trial's cell, weighted and summed (no wide fused sums)
    trial = np.arange(n_trials)
    strides = [int(np.prod(grid_shape[d + 1:])) * n_trials for d in range(len(grid_shape))]
    indices, weights = [], []
    for index, weight in _corners(axes, trial, strides):
        indices.append(index)
        weights.append(weight + 0.0 * trial)
    return (xp.stack(weights)[:, :, None] * flat[xp.stack(indices)]).sum(0)


def pad_tables(tables: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Several participants' tables ``(*grid, n_p, K)`` as one padded array and the rows that are trials.

    Returns ``(padded, rows)``: ``padded`` is ``(P * prod(grid), n_max, K)`` (participant outermost, then the
    grid nodes in C order; trials past a participant's own count are zeros), ``rows`` the index of every real
    trial in ``padded``'s ``(P * n_max)`` participant-by-trial rows, in the participants' order — the layout
    :func:`interpolate_grouped` reads.
    """
    grid_shape, k = tables[0].shape[:-2], tables[0].shape[-1]
    counts = [t.shape[-2] for t in tables]
    n_max = max(counts)
    padded = np.zeros((len(tables), int(np.prod(grid_shape)), n_max, k), dtype=tables[0].dtype)
    for p, t in enumerate(tables):
        padded[p, :, :counts[p]] = t.reshape(-1, counts[p], k)
    rows = np.concatenate([p * n_max + np.arange(n) for p, n in enumerate(counts)])
    return padded.reshape(-1, n_max, k), rows


def interpolate_grouped(xp, padded: np.ndarray, grid_shape: tuple[int, ...], positions: list, rows: np.ndarray,
                        method: str = "linear"):
    """Interpolate several participants' tables, each at its own box position (hierarchical fits).

    Every trial of a participant shares that participant's position, so the weights are computed once per
    participant and whole trial slices are read per grid corner (contiguous blocks, not single entries per
    trial), which keeps the cubic interpolant nearly as cheap as the multilinear one.

    ``padded`` (a numpy array, made a constant of the namespace) and ``rows`` come from :func:`pad_tables`;
    ``positions`` holds one length-P array of box
    positions in [0, 1] per grid axis. Returns ``(len(rows), K)`` predictors, the trials in ``rows``' order.
    """
    if method not in INTERPOLANTS:
        raise ValueError(f"interpolation must be one of {', '.join(INTERPOLANTS)}, not {method!r}")
    axes = [_axis_weights(xp, n, pos, method) for n, pos in zip(grid_shape, positions)]
    n_nodes = int(np.prod(grid_shape))
    base = np.arange(padded.shape[0] // n_nodes) * n_nodes
    n_predictors = padded.shape[-1]
    padded = xp.constant(padded)
    strides = [int(np.prod(grid_shape[d + 1:])) for d in range(len(grid_shape))]
    slices, weights = [], []
    for index, weight in _corners(axes, base, strides):
        slices.append(padded[index])
        weights.append(weight)
    # stacked, not one running sum: a fused sum of 16 weighted corners exceeds an elementwise op's 32 operands
    total = (xp.stack(weights)[:, :, None, None] * xp.stack(slices)).sum(0)
    return total.reshape((-1, n_predictors))[rows]


def multilinear(xp, flat, grid_shape: tuple[int, ...], n_trials: int, positions: list):
    """:func:`interpolate` with the multilinear interpolant."""
    return interpolate(xp, flat, grid_shape, n_trials, positions, "linear")


def _corners(axes: list, base, strides: list[int]):
    """Every corner of the interpolation cell: its flat index (``base`` plus the node offsets) and its weight."""
    for combo in itertools.product(*(range(len(index)) for index, _ in axes)):
        index, weight = base, 1.0
        for d, k in enumerate(combo):
            index = index + axes[d][0][k] * strides[d]
            weight = weight * axes[d][1][k]
        yield index, weight


def _axis_weights(xp, n: int, pos, method: str) -> tuple[list, list]:
    """One axis's node indices and weights at box position ``pos`` (clipped to the box's last cell)."""
    u = pos * (n - 1)
    i0 = xp.clip(xp.floor(u), 0, n - 2)
    t = u - i0
    lower = xp.as_index(i0)
    if method == "linear":
        return [lower, lower + 1], [1.0 - t, t]
    t2, t3 = t * t, t * t * t
    w = [(-t3 + 2 * t2 - t) / 2, (3 * t3 - 5 * t2 + 2) / 2, (-3 * t3 + 4 * t2 + t) / 2, (t3 - t2) / 2]
    # a missing outer node is 2 f_edge - f_inner: fold its weight onto the two nodes it is made of
    lo, hi = w[0] * xp.where(lower <= 0, 1.0, 0.0), w[3] * xp.where(lower >= n - 2, 1.0, 0.0)
    w = [w[0] - lo, w[1] + 2 * lo - hi, w[2] - lo + 2 * hi, w[3] - hi]
    return [xp.clip(lower + k - 1, 0, n - 1) for k in range(4)], w


def interpolate_table(table: np.ndarray, positions, method: str = "linear") -> np.ndarray:
    """One participant's table ``(*grid, n, K)`` at one box position per axis (numpy): ``(n, K)``."""
    grid_shape = table.shape[:-2]
    n, k = table.shape[-2:]
    return interpolate(NUMPY, table.reshape(-1, k), grid_shape, n, [np.float64(p) for p in positions], method)
