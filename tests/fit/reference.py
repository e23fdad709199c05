"""Plain-numpy re-implementations of the fitting layer's formulas (the references the tests compare against).

Nothing here imports the code under test: the network is written from the model's definition (per-trial
gradient flow on 1/2 ||W*_task x - y||^2 + R(c), Euler sub-steps), the likelihood from the observation model
(logistic accuracy, shifted-lognormal RT) and the interpolation from the definition of a multilinear interpolant.
"""

from __future__ import annotations

import itertools

import numpy as np

from cogflex.fit.kernel import ACCURACY, STIFFNESS


def regularizer_gradient(c: np.ndarray, lam: np.ndarray, nonnegative: float, l1: float) -> np.ndarray:
    """dR/dc for R(c) = lam [w_nn 10 sum_p max(-c_p, 0) + w_l1 10/2 (||c||_1 - 1)^2], weights normalised.

    ``c`` is ``(G, P)``, ``lam`` ``(G,)``. At c_p = 0 the midpoint subgradient (-5 w_nn) is used.
    """
    total = nonnegative + l1
    w_nn, w_l1 = (nonnegative / total, l1 / total) if total else (0.0, 0.0)
    norm1 = np.abs(c).sum(-1, keepdims=True)
    nonneg = -10.0 * np.where(c < 0, 1.0, np.where(c == 0, 0.5, 0.0))
    manifold = 10.0 * (norm1 - 1.0) * np.sign(c)
    return lam[:, None] * (w_nn * nonneg + w_l1 * manifold)


def reference_moment(features: np.ndarray, n_responses: int) -> np.ndarray:
    """E[x x^T] over trials with features ``(N, 2)``: x = e_{f0} + e_{R + f1}."""
    x = np.zeros((len(features), 2 * n_responses))
    x[np.arange(len(features)), features[:, 0]] = 1.0
    x[np.arange(len(features)), n_responses + features[:, 1]] = 1.0
    return np.einsum("ni,nj->ij", x, x) / len(features)


def reference_flow(w, c, teacher, moment, tau_c, lam_nn, lam_l1, horizon, steps, criterion, spread=0.0):
    """The cue-driven gate flow of one network, each step's linear piece integrated with scipy's expm.

    Returns (time to criterion, gates at that time). dc/ds = -(A c - r) / tau_c on each step, A and r from
    the expected loss 1/2 tr(E Sigma E^T), E = sum c_p W_p - W*, and lambda R(c) at the step's sign pattern.
    With ``spread`` > 0 the time is the expected time to a criterion uniform on criterion x [1 -+ spread]
    (trapezoid over the steps' survival probabilities), and the gates are the flow's at that time.
    """
    from scipy.linalg import expm

    paths = len(c)
    gram = np.array([[np.trace(w[p] @ moment @ w[q].T) for q in range(paths)] for p in range(paths)])
    b = np.array([np.trace(w[p] @ moment @ teacher.T) for p in range(paths)])
    const = 0.5 * np.trace(teacher @ moment @ teacher.T)

    def cued(cc):
        return 0.5 * cc @ gram @ cc - b @ cc + const

    def step(cc):
        s = np.sign(cc)
        a = gram + 10.0 * lam_l1 * np.outer(s, s)
        r = b + 10.0 * lam_l1 * s + 10.0 * lam_nn * (cc < 0)
        aug = np.zeros((paths + 1, paths + 1))
        aug[:paths, :paths] = -a / tau_c
        aug[:paths, paths] = r / tau_c
        return (expm(aug * h) @ np.r_[cc, 1.0])[:paths]

    low, high = criterion * (1 - spread) * const, criterion * (1 + spread) * const
    loss = cued(c)
    if loss <= low:
        return 0.0, c.copy()
    h = horizon / steps
    path = [c.copy()]
    for k in range(steps):
        path.append(step(path[-1]))
        new_loss = cued(path[-1])
        if spread == 0 and new_loss <= low:
            frac = (loss - low) / (loss - new_loss)
            return (k + frac) * h, path[-2] + frac * (path[-1] - path[-2])
        loss = new_loss
    if spread == 0:
        return horizon, path[-1]
    # P(T > s): the criterion lies below the lowest loss reached by s
    survival = np.minimum.accumulate(np.clip((np.array([cued(x) for x in path]) - low) / (high - low), 0.0, 1.0))
    time = float(np.sum(0.5 * (survival[1:] + survival[:-1])) * h)
    k = min(int(time / h), steps)
    if k == steps:
        return time, path[-1]
    frac = time / h - k
    return time, path[k] + frac * (path[k + 1] - path[k])


def run_reference(task: np.ndarray, features: np.ndarray, observed: np.ndarray, target: np.ndarray,
                  n_responses: int, weights0: np.ndarray, gate_init: float, tau_c, tau_w, lam, *,
                  substeps: int, nonnegative: float = 1.0, l1: float = 1.0, reconfiguration=None,
                  stiffness: float = STIFFNESS, accuracy: float = ACCURACY, max_refinement: int = 64):
    """Run G networks trial by trial; return loss, margin and gates ``(G, n_obs[, P])`` before observed trials.

    ``task`` (T,), ``features`` (T, 2) over the whole life; ``observed`` (T,) mask; ``target`` the correct
    response of each *observed* trial; ``weights0`` (P, R, 2R) initial paths shared by the G networks.
    ``reconfiguration`` ``(horizon, steps, criterion, moment)``: the cue-driven gate flow before every
    trial (:func:`reference_flow`); then the function also returns the reconfiguration time and the margin
    with both paths at the mean gate, ``(loss, margin, gates, reconfig, margin_mixed)``.
    A trial whose scaled curvature h exceeds ``stiffness``, or whose squared error's part of it exceeds
    ``accuracy``, takes ``ceil(max(h_fit / accuracy, h / stiffness))`` (at most ``max_refinement``) Euler steps
    per sub-step (the engine's step-size rule, written out here; both infinite: fixed steps).
    """
    tau_c, tau_w, lam = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (tau_c, tau_w, lam))
    tau_c, tau_w, lam = np.broadcast_arrays(tau_c, tau_w, lam)
    g = len(tau_c)
    r = n_responses
    paths = weights0.shape[0]
    w = np.repeat(weights0[None].astype(np.float64), g, axis=0)  # (G, P, R, 2R)
    c = np.full((g, paths), float(gate_init))
    teachers = [np.hstack([np.eye(r), np.zeros((r, r))]), np.hstack([np.zeros((r, r)), np.eye(r)])]
    dt = 1.0 / substeps
    loss, margin, gates, times, mixed = [], [], [], [], []
    total = nonnegative + l1
    w_nn, w_l1 = (nonnegative / total, l1 / total) if total else (0.0, 0.0)
    k = 0
    for i in range(len(task)):
        x = np.zeros(2 * r)
        x[features[i, 0]] = 1.0
        x[r + features[i, 1]] = 1.0
        y_star = teachers[task[i]] @ x
        time = np.zeros(g)
        if reconfiguration is not None:
            horizon, steps, criterion, moment, *spread = reconfiguration
            for j in range(g):
                time[j], c[j] = reference_flow(w[j], c[j], teachers[task[i]], moment, tau_c[j], lam[j] * w_nn,
                                               lam[j] * w_l1, horizon, steps, criterion, *spread)
        if observed[i]:
            y = np.einsum("gp,gprd,d->gr", c, w, x)
            err = y - y_star
            loss.append(0.5 * (err**2).sum(-1))
            t = target[k]
            others = np.delete(y, t, axis=-1)
            margin.append(y[:, t] - others.max(-1))
            gates.append(c.copy())
            y_mix = c.mean(1, keepdims=True) * np.einsum("gprd,d->gr", w, x)
            mixed.append(y_mix[:, t] - np.delete(y_mix, t, axis=-1).max(-1))
            times.append(time)
            k += 1
        # the step-size rule: h_fit = dt/tau_W ||x||^2 sum c^2 + dt/tau_c sum ||W_p x||^2 (the squared error's part),
        # h = h_fit + dt/tau_c P 10 lambda w_l1
        wx = np.einsum("gprd,d->gpr", w, x)
        h_fit = (dt / tau_w) * (x @ x) * (c**2).sum(1) + (dt / tau_c) * (wx**2).sum((1, 2))
        need = np.maximum(h_fit / accuracy, (h_fit + (dt / tau_c) * paths * 10 * lam * w_l1) / stiffness)
        split = np.where(need > 1, np.minimum(np.ceil(need), max_refinement), 1).astype(int)
        for step in range(substeps * split.max()):
            active = step < substeps * split  # a network with fewer, longer steps has finished
            wx = np.einsum("gprd,d->gpr", w, x)  # W_p x
            err = np.einsum("gp,gpr->gr", c, wx) - y_star  # y - y*
            grad_w = c[:, :, None, None] * err[:, None, :, None] * x[None, None, None, :]
            grad_c = np.einsum("gpr,gr->gp", wx, err) + regularizer_gradient(c, lam, nonnegative, l1)
            rate = np.where(active, dt / split, 0.0)
            w = w - (rate / tau_w)[:, None, None, None] * grad_w
            c = c - (rate / tau_c)[:, None] * grad_c
    out = np.array(loss).T, np.array(margin).T, np.transpose(np.array(gates), (1, 0, 2))
    if reconfiguration is None:
        return out
    return (*out, np.array(times).T, np.array(mixed).T)


def multilinear(table: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Multilinear interpolation of ``table`` (grid..., rest...) at a box position in [0, 1]^D."""
    shape = table.shape[: len(position)]
    u = np.asarray(position, dtype=float) * (np.array(shape) - 1)
    lower = np.clip(np.floor(u).astype(int), 0, np.array(shape) - 2)
    frac = u - lower
    out = 0.0
    for corner in itertools.product((0, 1), repeat=len(shape)):
        weight = np.prod([f if cc else 1.0 - f for f, cc in zip(frac, corner)])
        out = out + weight * table[tuple(lower + np.array(corner))]
    return out


def catmull_rom(table: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Cubic Hermite interpolation along each grid axis in turn, slopes the central differences.

    Each axis is padded with the linear extrapolation of its last two nodes (2 f_0 - f_1 below, likewise
    above); within a cell [i, i+1] the value is the Hermite cubic through f_i, f_{i+1} with slopes
    (f_{i+1} - f_{i-1}) / 2 and (f_{i+2} - f_i) / 2 (per unit node spacing).
    """
    out = np.asarray(table, dtype=float)
    for pos in position:  # the leading axis is always the next grid axis
        n = out.shape[0]
        padded = np.concatenate([2 * out[:1] - out[1:2], out, 2 * out[-1:] - out[-2:-1]])
        u = float(pos) * (n - 1)
        i = min(int(np.floor(u)), n - 2)
        t = u - i
        f0, f1 = padded[i + 1], padded[i + 2]
        m0, m1 = (padded[i + 2] - padded[i]) / 2, (padded[i + 3] - padded[i + 1]) / 2
        h00, h10, h01, h11 = 2 * t**3 - 3 * t**2 + 1, t**3 - 2 * t**2 + t, -2 * t**3 + 3 * t**2, t**3 - t**2
        out = h00 * f0 + h10 * m0 + h01 * f1 + h11 * m1
    return out


def interpolant(method: str):
    """The reference of a model's ``interpolation``: :func:`catmull_rom` or :func:`multilinear`."""
    return {"cubic": catmull_rom, "linear": multilinear}[method]


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


def pointwise_loglik(rt: np.ndarray, correct: np.ndarray, logit_p: np.ndarray, mu: np.ndarray,
                     sigma: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """log Bernoulli(correct | logistic(logit_p)) + log LogNormal(rt - shift | mu, sigma), per trial."""
    acc = np.where(correct, log_sigmoid(logit_p), log_sigmoid(-logit_p))
    y = rt - shift
    rt_part = (-np.log(y) - np.log(sigma) - 0.5 * np.log(2 * np.pi)
               - 0.5 * ((np.log(y) - mu) / sigma) ** 2)
    return acc + rt_part


def switch_and_run(task: np.ndarray, session: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Switch indicator and run position from the cue sequence (first trial of a session: no switch, run 1)."""
    n = len(task)
    switch = np.zeros(n, dtype=bool)
    run = np.ones(n, dtype=int)
    for i in range(1, n):
        if session[i] == session[i - 1]:
            switch[i] = task[i] != task[i - 1]
            run[i] = 1 if switch[i] else run[i - 1] + 1
    return switch, run


def reference_covariates(trials) -> dict[str, np.ndarray]:
    """The trial covariates re-derived from the raw trial table (kept trials only)."""
    from tests.fit.helpers import kept_mask

    df = trials.trials
    kept = kept_mask(df)
    switch, run = switch_and_run((df["task"].astype(str) == "move").to_numpy(), df["session"].to_numpy())
    inc = (df["stim_point"].astype(str) != df["stim_move"].astype(str)).to_numpy().astype(float)
    session = df["session"].to_numpy(dtype=float)
    pid = df["participant"].astype(str).to_numpy()
    lp = np.empty(len(df))
    for p in np.unique(pid):
        rows = (pid == p) & kept
        lp[rows] = np.log(session[rows]) - np.log(session[rows]).mean()
    sw, inc, lp = switch[kept].astype(float), inc[kept], lp[kept]
    return {"switch": sw, "incongruent": inc, "log_practice": lp, "switch_x_log_practice": sw * lp,
            "switch_x_incongruent": sw * inc, "log_run": np.log(run[kept])}
