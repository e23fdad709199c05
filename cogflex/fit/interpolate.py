"""Multilinear interpolation of predictor tables, written once for numpy and PyTensor.

A predictor table holds, for one participant, every grid node's per-trial predictors:
``(*grid shape, n_trials, K)``. Network parameters are continuous in the fit; their predictors are the
multilinear interpolation of the table at the parameters' box positions (in [0, 1] per grid axis, on the
parameter's own scale: log for timescales), so NUTS gets exact gradients of the interpolant at the cost of
2^D table look-ups per trial. Several participants' tables are concatenated along the trial axis and each
trial interpolated at its own participant's position.
"""

from __future__ import annotations

import itertools

import numpy as np

from cogflex.fit.link import NUMPY

__all__ = ["multilinear", "interpolate_table"]


def multilinear(xp, flat, grid_shape: tuple[int, ...], n_trials: int, positions: list):
    """Interpolate a flattened table at per-trial box positions.

    Parameters
    ----------
    xp
        Array namespace (:data:`cogflex.fit.link.NUMPY` or :func:`cogflex.fit.link.pytensor_namespace`).
    flat
        The table reshaped to ``(prod(grid_shape) * n_trials, K)`` (C order, trials innermost but one).
    grid_shape
        Number of nodes per grid axis.
    n_trials
        Trials in the table.
    positions
        One array of length ``n_trials`` per grid axis: each trial's box position in [0, 1]; or one scalar
        per axis when every trial shares it (one participant), which reads 2^D whole slices of the table
        instead of 2^D entries per trial (the per-participant fits' fast path).

    Returns
    -------
    ``(n_trials, K)`` interpolated predictors.
    """
    if all(np.ndim(p) == 0 if isinstance(p, (int, float, np.ndarray, np.number)) else p.ndim == 0
           for p in positions):
        return _multilinear_shared(xp, flat, grid_shape, n_trials, positions)
    trial = np.arange(n_trials)
    lower, frac = _cells(xp, grid_shape, positions)
    strides = [int(np.prod(grid_shape[d + 1:])) * n_trials for d in range(len(grid_shape))]
    out = 0.0
    for corner in itertools.product((0, 1), repeat=len(grid_shape)):
        index = trial
        weight = 1.0
        for d, c in enumerate(corner):
            index = index + (lower[d] + c) * strides[d]
            weight = weight * (frac[d] if c else 1.0 - frac[d])
        out = out + weight[:, None] * flat[index]
    return out


def _cells(xp, grid_shape, positions):
    """Lower node index and fraction within the cell, per grid axis (clipped to the box's last cell)."""
    lower, frac = [], []
    for d, pos in enumerate(positions):
        u = pos * (grid_shape[d] - 1)
        i0 = xp.clip(xp.floor(u), 0, grid_shape[d] - 2)
        frac.append(u - i0)
        lower.append(xp.as_index(i0))
    return lower, frac


def _multilinear_shared(xp, flat, grid_shape, n_trials, positions):
    """:func:`multilinear` at one position per axis shared by every trial."""
    table = flat.reshape((*grid_shape, n_trials, flat.shape[-1]))
    lower, frac = _cells(xp, grid_shape, positions)
    out = 0.0
    for corner in itertools.product((0, 1), repeat=len(grid_shape)):
        weight = 1.0
        for d, c in enumerate(corner):
            weight = weight * (frac[d] if c else 1.0 - frac[d])
        out = out + weight * table[tuple(lower[d] + c for d, c in enumerate(corner))]
    return out


def interpolate_table(table: np.ndarray, positions) -> np.ndarray:
    """One participant's table ``(*grid, n, K)`` at one box position per axis (numpy): ``(n, K)``."""
    grid_shape = table.shape[:-2]
    n, k = table.shape[-2:]
    return multilinear(NUMPY, table.reshape(-1, k), grid_shape, n, [np.float64(p) for p in positions])
