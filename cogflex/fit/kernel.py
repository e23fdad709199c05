"""The trial-by-trial network as one compiled loop (numba): feedback learning and the cue-driven gate flow.

This is the arithmetic of :mod:`cogflex.fit.network` for a whole parameter grid, written for the one case
the fitter needs — one stimulus per trial, an input with one active entry per task (``x = sum_m e_{mR+f_m}``),
path gates — so that each Euler step touches only the weight columns the stimulus activates. The torch
network (:class:`cogflex.nta.dynamics.NetworkBatch`, the simulator's own step) stays the reference: the test
suite checks that the two agree to rounding on real sequences.

Per trial, for every network (history s, grid node g), in order:

1. **Cue-driven reconfiguration** (``reconfigure``): before responding, the gates follow the NTA gradient flow
   on the *cued* task's expected loss with the weights frozen,

       tau_c dc/ds = -d/dc [ 1/2 E_x ||(sum_p c_p W_p - W*_m) x||^2 + lambda R(c) ],

   the expectation over the participant's stimuli (``moment`` = E[x x^T]: with one-hot features the paths
   have directions no stimulus can see, and the Frobenius norm E[x x^T] = I of the paper would count them),

   for at most ``horizon`` (in trials, the unit of tau_c), in ``flow_steps`` steps. The loss is quadratic in c
   and R is piecewise quadratic (non-negativity + L1 manifold), so on each step the flow is linear,
   ``dc/ds = -(A c - r) / tau_c`` with ``A = G + beta s s^T`` (``G_pq = tr(W_p Sigma W_q^T)``, ``s = sign(c)``), and is
   integrated exactly (exponential integrator; stable for any tau_c). With one criterion (``spread`` 0) the
   reconfiguration time is the first time the cued loss is at or below ``criterion`` times its value at c = 0
   (linear interpolation between steps; 0 when it already is, ``horizon`` when it is not reached). With a
   ``spread`` s > 0 the criterion varies from trial to trial, uniform on criterion x [1 - s, 1 + s], and the
   time is its expectation, E[T] = integral over the horizon of P(criterion < min of L up to s) ds (trapezoid
   over the steps): a continuous function of the network's state, where the first crossing jumps whenever the loss
   approaches the criterion slowly (the exact likelihood then has ridges of 10-20 log units between parameter
   values 0.15% apart, which no predictor grid can follow; docs/fitting.md). The network responds with the
   gates of that moment (E[T]: the flow's, linear between steps), and they carry over.
2. **Record** (observed trials): loss and margin of the response, the reconfiguration time, and the margin
   with every path gated at the mean gate (the "mixed" configuration the residue parameter blends in).
3. **Feedback learning**: ``substeps`` explicit Euler steps of the gradient flow on the trial's squared error
   (weights and gates, regulariser on the gates), exactly as :meth:`NetworkBatch.step
   <cogflex.nta.dynamics.NetworkBatch.step>` with covariance ``x x^T`` — refined where the state is stiff
   (below).

**Step-size rule** (:func:`refinement`). Explicit Euler on a quadratic loss is stable only while the step
times the curvature stays below 2, and it is *accurate* only while that product is small. On a trial the
curvature of the feedback loss, scaled by the step, is bounded by

    h = h_fit + h_reg,   h_fit = (dt / tau_W) M sum_p c_p^2 + (dt / tau_c) sum_p ||W_p x||^2,
                         h_reg = (dt / tau_c) P 10 lambda w_l1

(the weight block: ||x||^2 = M tasks' one-hot entries times the squared gates; the gate block: the path
outputs' Gram matrix; the L1-manifold term of the regulariser), dt = 1 / substeps. The trial's sub-steps are
split into k = ceil(max(h_fit / ACCURACY, h / STIFFNESS)) steps each (at most :data:`MAX_REFINEMENT`): the
squared error's part of every step stays below :data:`ACCURACY` (0.05), and the whole step, regulariser
included, in the monotone, non-oscillating range of Euler (:data:`STIFFNESS` 1).

The accuracy bound matters for fast units. With the stability bound alone the forgetful network at tau < 2
took steps of h ~ 0.5-1: its exact log-likelihood jumped by up to 13 units between timescales 5% apart
(spurious modes that the sampler's chains settled in; docs/lab.md), and its margins were off by up to 1.0
(margins are ~0.65) from a 400-sub-step solution; with the accuracy bound by at most 0.08. Euler's error is
first order: halving ACCURACY halves it and about doubles the cost where it binds. It costs nothing where the
units are slow (tau_W in the hundreds, tau_c above ~5); a table of the lab demo's `flexible-age` grid takes ~5x
longer than with the stability bound alone, `flexible-reconfig`'s ~1.8x. The rule is per network and trial;
the torch engine and the test reference apply it alike.

Everything runs in float64. The loop over grid nodes is parallel (``numba.prange``); histories of one node run
in the same thread and are summed there, so the output is ``(G, n_observed, len(RECORDS))``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["ACCURACY", "MAX_REFINEMENT", "RECORDS", "STIFFNESS", "refinement", "run_chunk"]

#: What the kernel records per observed trial, in column order (sums over histories).
RECORDS = ("loss", "margin", "reconfig", "margin_mixed")

#: Largest scaled curvature h of one Euler step before a trial's sub-steps are split (module docstring).
STIFFNESS = 1.0
#: Largest scaled curvature of the squared error's part of a step before its sub-steps are split (accuracy).
ACCURACY = 0.05
#: At most this many steps per sub-step; beyond it the network is reported as diverged.
MAX_REFINEMENT = 64


@numba.njit(cache=True, inline="always")
def refinement(fit_part: float, reg_part: float) -> int:
    """Steps per sub-step of a trial (the module's step-size rule); 1 while the step is accurate and stable.

    ``fit_part``: the scaled curvature of the squared error (weights and gates); ``reg_part``: the gates'
    regulariser's.
    """
    k = max(fit_part / ACCURACY, (fit_part + reg_part) / STIFFNESS)
    if k <= 1.0 or k != k:  # NaN: one step, and the divergence shows
        return 1
    return min(int(math.ceil(k)), MAX_REFINEMENT)


@numba.njit(cache=True, inline="always")
def _phi(mu: float, alpha: float) -> float:
    """(1 - exp(-alpha mu)) / mu, and alpha at mu = 0."""
    if mu < 1e-12:
        return alpha
    return -math.expm1(-alpha * mu) / mu


@numba.njit(cache=True, inline="always")
def _phi_slope(mu1: float, mu2: float, alpha: float) -> float:
    """Divided difference (phi(mu1) - phi(mu2)) / (mu1 - mu2), its limit phi'(mu) when they meet."""
    gap = mu1 - mu2
    if gap > 1e-7 * max(1.0, mu1):
        return (_phi(mu1, alpha) - _phi(mu2, alpha)) / gap
    mu = 0.5 * (mu1 + mu2)
    if mu * alpha < 1e-6:
        return -0.5 * alpha * alpha + alpha**3 * mu / 3.0
    e = math.exp(-alpha * mu)
    return (alpha * mu * e + math.expm1(-alpha * mu)) / (mu * mu)


@numba.njit(cache=True)
def _flow_matrix(g11: float, g12: float, g22: float, s1: float, s2: float, beta: float, alpha: float,
                 out: np.ndarray) -> None:
    """A = G + beta s s^T and the step matrix Phi(A) = alpha phi_1(-alpha A) into ``out`` (2 x 2 each)."""
    a11 = g11 + beta * s1 * s1
    a12 = g12 + beta * s1 * s2
    a22 = g22 + beta * s2 * s2
    half = 0.5 * (a11 + a22)
    disc = math.sqrt(0.25 * (a11 - a22) ** 2 + a12 * a12)
    mu1 = half + disc
    mu2 = max(half - disc, 0.0)
    f2 = _phi(mu2, alpha)
    slope = _phi_slope(mu1, mu2, alpha)
    # f(A) = f(mu2) I + slope (A - mu2 I)
    out[0, 0], out[0, 1], out[1, 1] = a11, a12, a22
    out[1, 0] = a12
    out[2, 0] = f2 + slope * (a11 - mu2)
    out[2, 1] = slope * a12
    out[3, 1] = f2 + slope * (a22 - mu2)
    out[3, 0] = out[2, 1]


@numba.njit(cache=True, inline="always")
def _cued_loss(c1: float, c2: float, g11: float, g12: float, g22: float, b1: float, b2: float,
               half_norm: float) -> float:
    return 0.5 * (g11 * c1 * c1 + 2.0 * g12 * c1 * c2 + g22 * c2 * c2) - b1 * c1 - b2 * c2 + half_norm


@numba.njit(cache=True, inline="always")
def _sign(x: float) -> float:
    return 1.0 if x > 0 else (-1.0 if x < 0 else 0.0)


@numba.njit(cache=True, inline="always")
def _flow_step(c1: float, c2: float, pattern: tuple[float, float], g: tuple[float, float, float],
               b1: float, b2: float, beta: float, gamma: float, alpha: float,
               scratch: np.ndarray) -> tuple[float, float, tuple[float, float]]:
    """One exact step of the gate flow from (c1, c2); returns the new gates and the step's sign pattern.

    ``scratch`` holds the linear piece of sign ``pattern`` (:func:`_flow_matrix`), recomputed when the gates'
    signs change.
    """
    s1, s2 = _sign(c1), _sign(c2)
    if s1 != pattern[0] or s2 != pattern[1]:
        _flow_matrix(g[0], g[1], g[2], s1, s2, beta, alpha, scratch)
    # dR/dc = s (beta ||c||_1 - beta) - gamma 1[c<0]  =  beta s s^T c - (beta s + gamma 1[c<0])
    r1 = b1 + beta * s1 + (gamma if c1 < 0 else 0.0)
    r2 = b2 + beta * s2 + (gamma if c2 < 0 else 0.0)
    v1 = scratch[0, 0] * c1 + scratch[0, 1] * c2 - r1
    v2 = scratch[1, 0] * c1 + scratch[1, 1] * c2 - r2
    return (c1 - (scratch[2, 0] * v1 + scratch[2, 1] * v2), c2 - (scratch[3, 0] * v1 + scratch[3, 1] * v2),
            (s1, s2))


@numba.njit(cache=True)
def _reconfigure(w: np.ndarray, c: np.ndarray, m: int, r_out: int, moment: np.ndarray, lam_l1: float,
                 lam_nn: float, tau_c: float, horizon: float, steps: int, criterion: float, spread: float,
                 scratch: np.ndarray, ws: np.ndarray) -> float:
    """Gate flow toward task m with weights frozen (module docstring); updates ``c``, returns the time."""
    d_in = w.shape[2]
    # W_p Sigma, Sigma = E[x x^T] over the participant's stimuli
    for p in range(2):
        for i in range(r_out):
            for k in range(d_in):
                acc = 0.0
                for j in range(d_in):
                    acc += w[p, i, j] * moment[j, k]
                ws[p, i, k] = acc
    g11 = g12 = g22 = 0.0
    b1 = b2 = 0.0
    half_norm = 0.0
    for i in range(r_out):
        for j in range(d_in):
            g11 += ws[0, i, j] * w[0, i, j]
            g12 += ws[0, i, j] * w[1, i, j]
            g22 += ws[1, i, j] * w[1, i, j]
        b1 += ws[0, i, m * r_out + i]
        b2 += ws[1, i, m * r_out + i]
        half_norm += 0.5 * moment[m * r_out + i, m * r_out + i]
    low = criterion * (1.0 - spread) * half_norm  # the criterion's range, in loss units
    high = criterion * (1.0 + spread) * half_norm
    c1, c2 = c[0], c[1]
    loss = _cued_loss(c1, c2, g11, g12, g22, b1, b2, half_norm)
    if loss <= low:
        return 0.0
    h = horizon / steps
    alpha = h / tau_c
    beta = 10.0 * lam_l1
    gamma = 10.0 * lam_nn
    g = (g11, g12, g22)
    none = (2.0, 2.0)  # no sign pattern yet
    pattern = none
    if spread == 0.0:  # one criterion: the first crossing, linear between steps
        for k in range(steps):
            n1, n2, pattern = _flow_step(c1, c2, pattern, g, b1, b2, beta, gamma, alpha, scratch)
            new_loss = _cued_loss(n1, n2, g11, g12, g22, b1, b2, half_norm)
            if new_loss <= low:
                frac = (loss - low) / (loss - new_loss)
                c[0] = c1 + frac * (n1 - c1)
                c[1] = c2 + frac * (n2 - c2)
                return (k + frac) * h
            c1, c2, loss = n1, n2, new_loss
        c[0], c[1] = c1, c2
        return horizon
    # a criterion uniform on [low, high]: E[T] = integral of P(criterion < min L up to s) ds (trapezoid), smooth in
    # the parameters; the response gates are the flow's at E[T] (a second pass, linear between steps)
    width = high - low
    survive = min((loss - low) / width, 1.0)
    time = 0.0
    for _ in range(steps):
        c1, c2, pattern = _flow_step(c1, c2, pattern, g, b1, b2, beta, gamma, alpha, scratch)
        loss = _cued_loss(c1, c2, g11, g12, g22, b1, b2, half_norm)
        after = min(max((loss - low) / width, 0.0), survive)  # P(T > s): the criterion below the loss so far
        time += 0.5 * (survive + after) * h
        survive = after
        if survive == 0.0:
            break
    full = min(int(time / h), steps)
    frac = time / h - full
    c1, c2, pattern = c[0], c[1], none
    for k in range(min(full + 1, steps)):
        n1, n2, pattern = _flow_step(c1, c2, pattern, g, b1, b2, beta, gamma, alpha, scratch)
        c1, c2 = (c1 + frac * (n1 - c1), c2 + frac * (n2 - c2)) if k == full else (n1, n2)
    c[0], c[1] = c1, c2
    return time


@numba.njit(cache=True, parallel=True)
def run_chunk(weights: np.ndarray, gates: np.ndarray, task: np.ndarray, columns: np.ndarray, target: np.ndarray,
              observed_slot: np.ndarray, moment: np.ndarray, tau_c: np.ndarray, tau_w: np.ndarray, lam_nn: np.ndarray,
              lam_l1: np.ndarray, substeps: int, reconfigure: bool, horizon: float, flow_steps: int,
              criterion: float, spread: float, out: np.ndarray) -> None:
    """Advance every network over a chunk of trials, in place, adding records to ``out``.

    Parameters
    ----------
    weights, gates
        State ``(G, S, P, R, D)`` and ``(G, S, P)``, updated in place.
    task, columns, target
        Per history and trial of the chunk: cued task ``(S, T)``, the input's active columns ``(S, T, M)``
        (``m R + f_m``) and the correct response ``(S, T)``.
    observed_slot
        ``(T,)``: the output row of each observed trial, -1 for trials not observed.
    moment
        ``(D, D)``: E[x x^T] over the participant's stimuli, the metric of the cued task's expected loss.
    tau_c, tau_w
        Timescales per grid node ``(G,)``, in trials.
    lam_nn, lam_l1
        lambda times the normalised non-negativity and L1-manifold weights, per grid node.
    substeps
        Euler steps of the feedback learning per trial (more on stiff trials: the step-size rule).
    reconfigure, horizon, flow_steps, criterion, spread
        The cue-driven gate flow (module docstring); off for the feedback-only models.
    out
        ``(G, n_observed, len(RECORDS))``, records summed over histories.
    """
    n_grid, n_hist, n_paths, r_out, d_in = weights.shape
    n_trials = task.shape[1]
    n_tasks = columns.shape[2]
    dt = 1.0 / substeps
    for g in numba.prange(n_grid):
        u = np.empty((n_paths, r_out))
        e = np.empty(r_out)
        grad_c = np.empty(n_paths)
        scratch = np.empty((4, 2))
        ws = np.empty((2, r_out, d_in))
        rate_w = dt / tau_w[g]
        rate_c = dt / tau_c[g]
        a_reg = 5.0 * lam_nn[g] - 10.0 * lam_l1[g]
        b_reg = 10.0 * lam_l1[g]
        k_reg = 5.0 * lam_nn[g]
        for s in range(n_hist):
            w = weights[g, s]
            c = gates[g, s]
            for i in range(n_trials):
                t = target[s, i]
                reconfig = 0.0
                if reconfigure:
                    reconfig = _reconfigure(w, c, task[s, i], r_out, moment, lam_l1[g], lam_nn[g], tau_c[g],
                                            horizon, flow_steps, criterion, spread, scratch, ws)
                # the path outputs u_p = W_p x
                for p in range(n_paths):
                    for o in range(r_out):
                        acc = 0.0
                        for m in range(n_tasks):
                            acc += w[p, o, columns[s, i, m]]
                        u[p, o] = acc
                slot = observed_slot[i]
                if slot >= 0:
                    mean_gate = 0.0
                    for p in range(n_paths):
                        mean_gate += c[p]
                    mean_gate /= n_paths
                    loss = 0.0
                    best_other = -np.inf
                    best_mixed = -np.inf
                    y_t = 0.0
                    mixed_t = 0.0
                    for o in range(r_out):
                        y = 0.0
                        ymix = 0.0
                        for p in range(n_paths):
                            y += c[p] * u[p, o]
                            ymix += u[p, o]
                        ymix *= mean_gate
                        err = y - (1.0 if o == t else 0.0)
                        loss += err * err
                        if o == t:
                            y_t = y
                            mixed_t = ymix
                        else:
                            if y > best_other:
                                best_other = y
                            if ymix > best_mixed:
                                best_mixed = ymix
                    out[g, slot, 0] += 0.5 * loss
                    out[g, slot, 1] += y_t - best_other
                    out[g, slot, 2] += reconfig
                    out[g, slot, 3] += mixed_t - best_mixed
                # the step-size rule (module docstring): split the sub-steps where the trial is stiff
                gate_sq = 0.0
                out_sq = 0.0
                for p in range(n_paths):
                    gate_sq += c[p] * c[p]
                    for o in range(r_out):
                        out_sq += u[p, o] * u[p, o]
                split = refinement(rate_w * n_tasks * gate_sq + rate_c * out_sq, rate_c * n_paths * b_reg)
                step_w = rate_w / split
                step_c = rate_c / split
                for _ in range(substeps * split):
                    # error e = y - y* of the state before the step
                    for o in range(r_out):
                        y = 0.0
                        for p in range(n_paths):
                            y += c[p] * u[p, o]
                        e[o] = y - (1.0 if o == t else 0.0)
                    l1 = 0.0
                    for p in range(n_paths):
                        l1 += abs(c[p])
                    for p in range(n_paths):
                        dot = 0.0
                        for o in range(r_out):
                            dot += e[o] * u[p, o]
                        sign = 1.0 if c[p] > 0 else (-1.0 if c[p] < 0 else 0.0)
                        grad_c[p] = dot + sign * (a_reg + b_reg * l1) - k_reg
                    for p in range(n_paths):
                        scale = step_w * c[p]
                        for m in range(n_tasks):
                            col = columns[s, i, m]
                            for o in range(r_out):
                                w[p, o, col] -= scale * e[o]
                        # the path output moves with its weights (x has n_tasks ones)
                        for o in range(r_out):
                            u[p, o] -= n_tasks * scale * e[o]
                    for p in range(n_paths):
                        c[p] -= step_c * grad_c[p]
