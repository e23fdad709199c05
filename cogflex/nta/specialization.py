"""Adaptation speed and specialisation normalised by how different the tasks are.

The correlated-teacher experiment of Sandbrink et al. (2024, appendix, Fig.
A13) varies the pairwise cosine rho (``teachers.overlap``) of two teachers
W*_A, W*_B of equal norm. Raw measures then change with rho for a reason
that has nothing to do with the network: the loss jump at a switch is
L_0 = 1/2 ||W*_A - W*_B||_F^2 = (1 - rho) ||W*||_F^2 for a network that had
learnt the old task, and the alignment of a perfectly specialised path with
the other teacher is rho. The paper's own two measures (kept here, see
:func:`peak_decrease_rate` and :func:`alignment_difference`) therefore fall
like (1 - rho) by construction. The other measures here divide out the size
of the task difference, so they ask whether the *network* adapts and
specialises less when the tasks are more alike:

- adaptation speed: :func:`relative_decay_rate` (the initial -d ln L/dt
  after a switch) and :func:`half_time` (time for L to halve), both
  independent of the size of the jump;
- specialisation: :func:`gated_specialization` (the share of the teacher
  difference the gate switch alone delivers), :func:`weight_specialization`
  (the path difference projected on the teacher difference),
  :func:`gate_selectivity` (how differently the gates sit in the two tasks)
  and :func:`gate_sparsity` (how one-hot the gates are).

At rho = 1 the tasks are identical and a "switch" changes nothing, so every
measure normalised by the task difference is 0/0; each function's docstring
gives the value it takes there and why. :func:`block_end_gates`,
:func:`gates_by_task` and :func:`late_segments` read what the measures need
from a :class:`~cogflex.nta.results.SimulationResult` dataset.

Arrays are numpy; leading dimensions are batch dimensions (networks, ...).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import xarray as xr

__all__ = [
    "relative_decay_rate",
    "weight_only_decay_rate",
    "half_time",
    "peak_decrease_rate",
    "alignment_difference",
    "weight_specialization",
    "gated_specialization",
    "gate_selectivity",
    "gate_sparsity",
    "late_segments",
    "block_end_gates",
    "gates_by_task",
]

_TINY = 1e-30


# -- adaptation speed ------------------------------------------------------------------------------


def relative_decay_rate(curve: np.ndarray, dt: float, *, steps: int = 10, timescale: float = 1.0) -> np.ndarray:
    """Initial relative decay rate of the loss after a switch, -d ln L / dt.

    r = ln(L_0 / L_k) / (k dt), with L_0 the loss at the switch and L_k the
    loss after k = ``steps`` Euler steps, in units of 1 / ``timescale``
    (pass tau_W for rates per tau_W). An exponential L_0 exp(-r t) gives r
    exactly, whatever L_0, so the rate does not grow with the size of the
    jump the way the raw slope does.

    For an error E = eps d along the unit teacher difference d, the flow gives
    dL/dt = -||dL/dW||^2 / tau_W - ||dL/dc||^2 / tau_c with dL/dW_p = c_p E
    and dL/dc_p = <W_p, E> (expected gradient, regulariser aside), so

        r = 2 sum_p c_p^2 / tau_W + 2 sum_p <W_p, d>^2 / tau_c,

    weights plus gates. The gate term is what fast gates add: with W_p = W*_p
    it is 2 (1 - rho) ||W*||^2 / tau_c, so it fades as the teachers become
    alike, leaving the weight term (:func:`weight_only_decay_rate`), which is
    the limit at rho = 1.

    Parameters
    ----------
    curve
        Loss after the switch, ``(..., offset)``; offset 0 is the loss at the
        switch (before any update on the new task), as in ``switch_curve``.
    dt
        Euler step (time units).
    steps
        k, the window in steps; the curve must be longer than it.
    timescale
        Unit of time for the result (tau_W); an array broadcasts against ``(...)``.

    Returns
    -------
    numpy.ndarray
        ``(...)``; NaN where the loss is missing or not positive.
    """
    curve = np.asarray(curve, dtype=float)
    if not 1 <= steps < curve.shape[-1]:
        raise ValueError(f"steps must lie in 1 .. {curve.shape[-1] - 1} (curve length - 1), got {steps}")
    start, end = curve[..., 0], curve[..., steps]
    ok = (start > 0) & (end > 0)
    ratio = np.where(ok, start, 1.0) / np.where(ok, end, 1.0)
    return np.where(ok, np.log(ratio) / (steps * dt) * timescale, np.nan)


def weight_only_decay_rate(gates: np.ndarray) -> np.ndarray:
    """Relative loss decay rate from the weights alone, 2 sum_p c_p^2 (per tau_W).

    This is the limit of :func:`relative_decay_rate` as rho -> 1: the gate
    gradient <W_p, d> of an error along the teacher difference d vanishes
    because the paths hold the (shared) teacher, orthogonal to d, and only
    the weight flow tau_W dW_p/dt = -c_p E remains, which removes E at rate
    sum_p c_p^2 / tau_W (the loss at twice that). With per-unit gates the
    rate is averaged over the output rows (an error spread evenly over them).

    Parameters
    ----------
    gates
        ``(..., R, P)`` gate values (R = 1 for one gate per path).

    Returns
    -------
    numpy.ndarray
        ``(...)`` in units of 1 / tau_W.
    """
    gates = np.asarray(gates, dtype=float)
    return 2.0 * np.square(gates).sum(-1).mean(-1)


def half_time(curve: np.ndarray, dt: float, *, fraction: float = 0.5, timescale: float = 1.0) -> np.ndarray:
    """Time for the loss to fall to ``fraction`` of its value at the switch.

    The first crossing of ``fraction * L_0``, interpolated linearly in log L
    between the two steps around it, in units of ``timescale``. Scale-free
    like :func:`relative_decay_rate` (an exponential at rate r gives
    ln(1 / fraction) / r), but it averages over the whole fall, so a loss
    floor or a slow second phase lengthens it. Adaptation speed is its
    inverse; at rho = 1 we use the weight-only limit
    ``weight_only_decay_rate / ln(1 / fraction)``.

    Parameters
    ----------
    curve
        Loss after the switch, ``(..., offset)`` (offset 0 at the switch).
    dt
        Euler step (time units).
    fraction
        Target share of L_0, in (0, 1).
    timescale
        Unit of time for the result (tau_W); an array broadcasts against ``(...)``.

    Returns
    -------
    numpy.ndarray
        ``(...)``; NaN where the curve never gets there (or L_0 <= 0).
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
    curve = np.asarray(curve, dtype=float)
    flat = curve.reshape(-1, curve.shape[-1])
    out = np.full(flat.shape[0], np.nan)
    for i, row in enumerate(flat):
        if not row[0] > 0:
            continue
        target = fraction * row[0]
        below = np.flatnonzero(row <= target)
        if below.size == 0:
            continue
        k = below[0]
        prev, now = row[k - 1], row[k]
        if now > 0:
            share = (math.log(prev) - math.log(target)) / (math.log(prev) - math.log(now))
        else:  # fell to zero: interpolate linearly instead
            share = (prev - target) / (prev - now)
        out[i] = k - 1 + share
    return out.reshape(curve.shape[:-1]) * dt / np.asarray(timescale, dtype=float)


def peak_decrease_rate(curve: np.ndarray, dt: float, *, timescale: float = 1.0) -> np.ndarray:
    """Largest rate of loss decrease after a switch, max_t -dL/dt (the paper's Fig. A13 speed).

    Sandbrink et al. plot "adaptation speed (loss)" against teacher overlap as
    the largest |dL/dt| within each block, averaged over blocks. It is a
    slope of the loss itself, so it scales with the jump L_0 ∝ (1 - rho) and
    is 0 at rho = 1 (nothing to adapt to) for any network.

    Parameters
    ----------
    curve
        Loss after the switch, ``(..., offset)``.
    dt
        Euler step (time units).
    timescale
        Unit of time (tau_W): the result is loss per ``timescale``; an
        array broadcasts against ``(...)``.

    Returns
    -------
    numpy.ndarray
        ``(...)``; NaN where fewer than two finite losses are recorded.
    """
    curve = np.asarray(curve, dtype=float)
    drop = -(np.diff(curve, axis=-1)) / dt
    finite = np.isfinite(drop)
    best = np.where(finite, drop, -np.inf).max(axis=-1, initial=-np.inf)
    return np.where(finite.any(axis=-1), best, np.nan) * np.asarray(timescale, dtype=float)


# -- specialisation -----------------------------------------------------------------------------------


def _matchings(paths: int, tasks: int) -> list[tuple[int, ...]]:
    """Assignments of one path per task (distinct paths when P >= M)."""
    if paths >= tasks:
        return list(itertools.permutations(range(paths), tasks))
    return list(itertools.product(range(paths), repeat=tasks))


def alignment_difference(alignment: np.ndarray) -> np.ndarray:
    """The paper's specialisation (Fig. A13): own-teacher minus other-teacher alignment.

    For the best matching pi of paths to teachers, the mean over teachers m
    of a[pi(m), m] - mean_{m' != m} a[pi(m), m'], with a the recorded
    ``alignment`` (row-wise cosine of path and teacher). Perfectly
    specialised paths (W_pi(m) = W*_m) give 1 - rho, because a path that
    holds its own teacher has cosine rho with the other one; identical paths
    give 0. It is therefore bounded by (1 - rho) and exactly 0 at rho = 1.

    Parameters
    ----------
    alignment
        ``(..., P, M)`` with M >= 2.

    Returns
    -------
    numpy.ndarray
        ``(...)``.
    """
    align = np.asarray(alignment, dtype=float)
    paths, tasks = align.shape[-2:]
    if tasks < 2:
        raise ValueError("needs at least two teachers")
    best = np.full(align.shape[:-2], -np.inf)
    for match in _matchings(paths, tasks):
        rows = align[..., list(match), :]  # (..., M, M): row m = path pi(m)
        own = np.diagonal(rows, axis1=-2, axis2=-1)
        other = (rows.sum(-1) - own) / (tasks - 1)
        best = np.maximum(best, (own - other).mean(-1))
    return best


def _pair_projection(difference: np.ndarray, teachers: np.ndarray, m: int, n: int) -> np.ndarray:
    """<difference, W*_m - W*_n> / ||W*_m - W*_n||^2, 0 where the teachers coincide."""
    target = teachers[..., m, :, :] - teachers[..., n, :, :]
    norm2 = np.square(target).sum((-2, -1))
    dot = (difference * target).sum((-2, -1))
    return np.where(norm2 > _TINY, dot / np.maximum(norm2, _TINY), 0.0)


def weight_specialization(weights: np.ndarray, teachers: np.ndarray) -> np.ndarray:
    """How far the paths differ along the teacher difference (gates ignored).

    beta = <W_pi(m) - W_pi(m'), W*_m - W*_m'> / ||W*_m - W*_m'||_F^2, the
    coefficient of the path difference regressed on the teacher difference,
    averaged over teacher pairs and maximised over matchings pi (which path
    serves which task is arbitrary). Perfectly specialised paths give 1 and
    identical paths 0, for any rho < 1.

    It does not know which paths the gates use: a network that uses a single
    path and re-learns it every block (W_1 = current teacher, W_2 = 0) scores
    1/2, and an unused path left over from early learning counts in full.
    :func:`gated_specialization` weights the paths by their gates instead.

    At rho = 1 the teacher difference is zero and beta is 0/0; it is defined
    as 0 (there is no task-specific direction to differ along). This is a
    convention, not the limit: the limit depends on what the unused path holds.

    Parameters
    ----------
    weights
        Paths ``(..., P, d_out, d_in)``.
    teachers
        ``(..., M, d_out, d_in)`` with M >= 2.

    Returns
    -------
    numpy.ndarray
        ``(...)``.
    """
    weights = np.asarray(weights, dtype=float)
    teachers = np.asarray(teachers, dtype=float)
    paths, tasks = weights.shape[-3], teachers.shape[-3]
    if tasks < 2:
        raise ValueError("needs at least two teachers")
    pairs = list(itertools.combinations(range(tasks), 2))
    best = None
    for match in _matchings(paths, tasks):
        score = sum(_pair_projection(weights[..., match[m], :, :] - weights[..., match[n], :, :], teachers, m, n)
                    for m, n in pairs) / len(pairs)
        best = score if best is None else np.maximum(best, score)
    return best


def gated_specialization(task_gates: np.ndarray, weights: np.ndarray, teachers: np.ndarray) -> np.ndarray:
    """Share of the teacher difference that switching the gates alone delivers.

    With the paths W_p held fixed, setting the gates of task m instead of
    those of task m' changes the network by
    Delta = sum_p (c^m_p - c^m'_p) W_p; the score is its regression
    coefficient on the teacher difference,
    <Delta, W*_m - W*_m'> / ||W*_m - W*_m'||_F^2, averaged over pairs.

    1 when a gate switch turns W*_m' into W*_m (one path per task, one-hot
    gates); 0 when the gates do not move between tasks (a forgetful network
    that re-learns its weights every block) or when they move between
    identical paths. Unlike :func:`weight_specialization` it ignores paths
    the gates do not use and needs no matching (the gates carry it).

    At rho = 1 it is 0/0 and defined as 0: a gate switch cannot deliver a
    difference that does not exist. The measured values approach 0 as rho -> 1
    (the gates stop switching), so here the convention is also the limit.

    Parameters
    ----------
    task_gates
        ``(..., M, R, P)``: the gates in each task (e.g. at the ends of its
        blocks, :func:`gates_by_task`); R = 1 for path gates, d_out for
        per-unit gates (row i of path p scaled by ``c[i, p]``).
    weights
        Paths ``(..., P, d_out, d_in)``, taken at one time.
    teachers
        ``(..., M, d_out, d_in)`` with M >= 2.

    Returns
    -------
    numpy.ndarray
        ``(...)``.
    """
    task_gates = np.asarray(task_gates, dtype=float)
    weights = np.asarray(weights, dtype=float)
    teachers = np.asarray(teachers, dtype=float)
    tasks = teachers.shape[-3]
    if tasks < 2:
        raise ValueError("needs at least two teachers")
    pairs = list(itertools.combinations(range(tasks), 2))
    total = 0.0
    for m, n in pairs:
        change = task_gates[..., m, :, :] - task_gates[..., n, :, :]  # (..., R, P)
        scale = np.swapaxes(change, -1, -2)[..., None]  # (..., P, R, 1): broadcast over d_in
        delta = (scale * weights).sum(-3)  # (..., d_out, d_in)
        total = total + _pair_projection(delta, teachers, m, n)
    return total / len(pairs)


def gate_selectivity(task_gates: np.ndarray) -> np.ndarray:
    """How differently the gates sit in different tasks, in [0, 1].

    sum_p |c^m_p - c^m'_p| / sum_p (|c^m_p| + |c^m'_p|), averaged over task
    pairs and gate rows: 1 when the tasks use disjoint paths (gates (1, 0)
    in one task, (0, 1) in the other), 0 when the gates are the same in all
    tasks. Defined at rho = 1 without any convention (identical tasks leave
    the gates where they are, so it is ~0 there).

    Parameters
    ----------
    task_gates
        ``(..., M, R, P)``: the gates in each task.

    Returns
    -------
    numpy.ndarray
        ``(...)``; NaN where all gates of a pair are zero.
    """
    task_gates = np.asarray(task_gates, dtype=float)
    tasks = task_gates.shape[-3]
    if tasks < 2:
        raise ValueError("needs at least two tasks")
    scores = []
    for m, n in itertools.combinations(range(tasks), 2):
        a, b = task_gates[..., m, :, :], task_gates[..., n, :, :]
        size = (np.abs(a) + np.abs(b)).sum(-1)
        ratio = np.abs(a - b).sum(-1) / np.where(size > _TINY, size, np.nan)
        scores.append(ratio.mean(-1))
    return np.mean(scores, axis=0)


def gate_sparsity(gates: np.ndarray) -> np.ndarray:
    """How one-hot the gates are: (largest |c| - second largest |c|) / sum_p |c_p|.

    For two paths this is |c_1 - c_2| / (c_1 + c_2): 1 for one-hot gates, 0
    for equal gates; averaged over gate rows. It says nothing about *tasks*:
    a network that serves both tasks with one path (gates (1, 0) throughout)
    scores 1, as does one that switches paths. Compare :func:`gate_selectivity`.

    Parameters
    ----------
    gates
        ``(..., R, P)`` with P >= 2.

    Returns
    -------
    numpy.ndarray
        ``(...)``; NaN where all gates are zero.
    """
    gates = np.abs(np.asarray(gates, dtype=float))
    if gates.shape[-1] < 2:
        raise ValueError("needs at least two paths")
    ordered = np.sort(gates, axis=-1)
    size = ordered.sum(-1)
    ratio = (ordered[..., -1] - ordered[..., -2]) / np.where(size > _TINY, size, np.nan)
    return ratio.mean(-1)


# -- reading a simulation dataset ---------------------------------------------------------------------


def late_segments(n_segments: int, late_fraction: float = 0.5) -> np.ndarray:
    """Indices of the late segments (blocks after a switch) of a run with ``n_segments`` blocks.

    Segment 0 is learning from scratch; segments 1 .. n - 1 each start with a
    switch. The late ones are the last ``round(late_fraction * (n - 1))``
    (at least one), where the network has settled into its regime.
    """
    if not 0.0 < late_fraction <= 1.0:
        raise ValueError(f"late_fraction must lie in (0, 1], got {late_fraction}")
    switches = n_segments - 1
    if switches < 1:
        raise ValueError("the run has no switch")
    count = max(1, round(late_fraction * switches))
    return np.arange(n_segments - count, n_segments)


def block_end_gates(dataset: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Gates at the end of every block, and the task of that block.

    The state recorded at the first step of segment k + 1 (recorded before
    that step's update) is the state at the end of block k; the last block
    ends with ``final_gates``. When a switch does not fall on a log point
    (``recording.log_every`` does not divide the block length), the last log
    point before it is used.

    Parameters
    ----------
    dataset
        A :class:`~cogflex.nta.results.SimulationResult` dataset.

    Returns
    -------
    gates
        ``(network, block, unit, path)``; NaN for blocks a network does not have.
    tasks
        ``(network, block)`` task index of each block; -1 where missing.
    """
    starts = dataset["segment_start_time"].values  # (N, K)
    times = dataset["time"].values
    gates = dataset["gates"].values  # (N, T, R, P)
    current = dataset["current_task"].values  # (N, T)
    final = dataset["final_gates"].values  # (N, R, P)
    n_net, n_seg = starts.shape
    out = np.full((n_net, n_seg, *gates.shape[2:]), np.nan)
    tasks = np.full((n_net, n_seg), -1, dtype=np.int64)
    eps = 1e-9 * max(1.0, float(np.nanmax(np.abs(times))) if times.size else 1.0)
    for i in range(n_net):
        valid = np.flatnonzero(np.isfinite(starts[i]))
        for k in valid:
            later = valid[valid > k]
            if later.size:
                end = starts[i, later[0]]
                at_end = np.flatnonzero(np.abs(times - end) <= eps)
                before = np.flatnonzero(times < end - eps)
                if not before.size:
                    continue
                out[i, k] = gates[i, at_end[0]] if at_end.size else gates[i, before[-1]]
                tasks[i, k] = current[i, before[-1]]
            else:
                out[i, k] = final[i]
                tasks[i, k] = current[i, -1]
    return out, tasks


def gates_by_task(dataset: xr.Dataset, late_fraction: float = 0.5, tasks: int | None = None) -> np.ndarray:
    """Mean block-end gates of each task over the late blocks, ``(network, task, unit, path)``.

    Parameters
    ----------
    dataset
        A simulation dataset.
    late_fraction
        Share of the switches counted as late (:func:`late_segments`).
    tasks
        Number of tasks M (default: the dataset's ``task`` dimension).

    Returns
    -------
    numpy.ndarray
        NaN for a task without a late block.
    """
    gates, block_tasks = block_end_gates(dataset)
    tasks = dataset.sizes["task"] if tasks is None else tasks
    n_net = gates.shape[0]
    out = np.full((n_net, tasks, *gates.shape[2:]), np.nan)
    for i in range(n_net):
        n_seg = int((block_tasks[i] >= 0).sum())
        late = late_segments(n_seg, late_fraction)
        for m in range(tasks):
            chosen = late[block_tasks[i, late] == m]
            if chosen.size:
                out[i, m] = gates[i, chosen].mean(0)
    return out
