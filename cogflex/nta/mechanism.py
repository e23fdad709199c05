r"""The mechanism of Fig. 4 (Sandbrink et al., 2024): a symmetric two-variable reduction.

Setting
-------
The 6-variable teacher-subspace model of :mod:`cogflex.nta.reduced` with
P = M = 2: paths p = 1, 2 (indices 0, 1) with weight coordinates
w_p = (w_pA, w_pB) on the orthogonal teachers A, B of squared norm S, gates
c_p, a task target t = (t_A, t_B) (one-hot in an A or B block, any mixture
otherwise), eps = t - sum_q c_q w_q and

    tau_W dw_p/dt = c_p eps,        tau_c dc_p/dt = S (w_p . eps) - lambda dR/dc_p.

Mirror modes
------------
An invertible linear change of the six coordinates ("path 1 for A, path 2
for B" is the reference):

- w_bar = ((w_1A - w_1B) - (w_2A - w_2B)) / 2, the *specialisation*
  (1 for w_1 = A, w_2 = B; 0 for identical paths);
- m = ((w_1A - w_1B) + (w_2A - w_2B)) / 2, the *shared preference* (both
  paths leaning towards the same teacher);
- s_bar = (s_1 + s_2) / 2 and d = s_1 - s_2 with s_p = w_pA + w_pB, the
  common mode and its asymmetry between paths;
- c_bar = c_1 - c_2, the *gate contrast*, and g = c_1 + c_2, the gate sum.

With the task sign a = t_A - t_B, the errors along the teachers' difference
and sum, eps = eps_A - eps_B and sigma = eps_A + eps_B, are exactly

    eps = a - c_bar w_bar - g m,        sigma = (t_A + t_B) - g s_bar - c_bar d / 2,

and the 6-variable flow is, exactly,

    tau_W dw_bar/dt = c_bar eps / 2,    tau_c dc_bar/dt = S w_bar eps + S d sigma / 2 - lambda (d_1R - d_2R),
    tau_W dm/dt     = g eps / 2,        tau_c dg/dt     = S (m eps + s_bar sigma) - lambda (d_1R + d_2R),
    tau_W ds_bar/dt = g sigma / 2,      tau_W dd/dt     = c_bar sigma.

Two scalar "two-layer networks" -- the specialisation pair (w_bar, c_bar)
driven by eps and the common pair (s_bar, g) driven by sigma -- coupled only
through the cross modes m and d.

The symmetric ansatz and where it is exact
------------------------------------------
The ansatz ties the two paths as mirror images, path 2 = path 1 with the
teachers swapped: m = 0 and d = 0 (w_1 = ((s + w_bar)/2, (s - w_bar)/2),
w_2 = ((s - w_bar)/2, (s + w_bar)/2)), and holds the gate sum at g = g_0.
On that set the 6-variable right-hand side of (w_bar, c_bar) is exactly the
two-variable system

    tau_W dw_bar/dt = c_bar eps / 2,    tau_c dc_bar/dt = S w_bar eps - lambda DeltaR(c_bar),    eps = a - c_bar w_bar,

with DeltaR(c_bar) = d_1R - d_2R at the gates ((g_0 + c_bar)/2, (g_0 - c_bar)/2)
(:func:`two_variable_rhs`; any targets, gates and regulariser). Since
dm/dt = g eps / (2 tau_W) and dd/dt = c_bar sigma / tau_W, the set is an
*invariant subspace* (the reduction is exact for all times) iff g eps = 0 and
c_bar sigma = 0 along the flow, with dg/dt = 0. That holds for

- **opposite gates** g_0 = 0 (c_2 = -c_1), so the sign-free gates of the
  unregularised network (lambda = 0) or a regulariser odd in c (L1 / L2
  manifold terms; *no* non-negativity term, which is not odd);
- **anti-correlated targets** t_A + t_B = 0, the tasks +-(W*_A - W*_B)/2 (the
  authors' 1-D toy with targets +1 / -1), so that sigma = 0.

In the NTA flexible regime (non-negative gates on the L1 manifold, g ~ 1,
tasks A / B one-hot) the reduction is only **approximate**: once the common
mode is learned (g s_bar = 1, so sigma = 0) and both gates are positive
(DeltaR = 0 for the non-negativity and L1 terms, and d_1R + d_2R = 0 on the
manifold), the only neglected term is -g m in eps, with m picking up
(1/2 tau_W) int eps dt after every switch (alternating in sign from block to
block): an error of the size of the weight change the error makes before the
gates have switched -- small exactly when the gates are fast.

Conserved quantity
------------------
Q_bar = 2 S tau_W w_bar^2 - tau_c c_bar^2 obeys, *exactly* in the 6-variable
model,

    dQ_bar/dt = -S c_bar d sigma + 2 lambda c_bar DeltaR,

so it is conserved on the exact subspace with lambda = 0, and also in the
flexible regime while sigma = 0 and both gates are positive (even though
m != 0). It is the specialisation share of the per-path balancedness
Q_p = S tau_W |w_p|^2 - tau_c c_p^2 (dQ_p/dt = 2 lambda c_p dR/dc_p, also
for the full network with tau_W |W_p|_F^2): Q_1 + Q_2 = Q_bar / 2 +
(2 S tau_W s_bar^2 - tau_c g^2) / 2 + S tau_W (m^2 + d^2 / 4).

Reading: tau_c dc_bar/dt = S w_bar eps -- the gates' update rate grows with
the weights' specialisation; tau_W dw_bar/dt = c_bar eps / 2 -- specialisation
grows in *every* block when the gate contrast follows the task sign (the
virtuous cycle); and a switch moves the state along the level set
w_bar = sqrt((Q_bar + tau_c c_bar^2) / (2 S tau_W)) (:func:`level_set`): gates
flipping from -c_0 to c_0 dip the specialisation only to
sqrt(w_0^2 - tau_c c_0^2 / (2 S tau_W)), which vanishes as tau_c / tau_W -> 0:
fast gates protect the weights.

Exact solution (lambda = 0, fixed task)
---------------------------------------
The output u = c_bar w_bar obeys du/dt = (a - u) sqrt(Q_bar^2 + k^2 u^2) /
(2 tau_W tau_c) with k^2 = 8 S tau_W tau_c, so

    t(u) = 2 tau_W tau_c (F(u) - F(u_0)),
    F(u) = ln[(Q_bar^2 + k^2 a u + D sqrt(Q_bar^2 + k^2 u^2)) / |a - u|] / D,    D = sqrt(Q_bar^2 + k^2 a^2),

and w_bar^2 = (Q_bar + sqrt(Q_bar^2 + k^2 u^2)) / (4 S tau_W), c_bar = u / w_bar
(:func:`hyperbolic_time`, :func:`hyperbolic_state`): the hyperbolic solution
of a scalar two-layer linear network (Saxe et al., 2013), with unequal layer
timescales.

Numerics
--------
:func:`simulate_two_variable` (numpy) and :func:`integrate_reduced` (the
network's own stepper on the 6-variable layout) take the network's Euler
steps: both gradients at the state before the step, one simultaneous update.
On the exact subspace the two-variable run therefore reproduces the network's
Euler trajectory to round-off, and Q_bar drifts only by the Euler error,
2 S tau_W (Delta w_bar)^2 - tau_c (Delta c_bar)^2 = O(dt^2) per step (the first-order
terms cancel as in continuous time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cogflex.nta.config import Regularizer
from cogflex.nta.integrate import euler_steps
from cogflex.nta.reduced import reduced_batch
from cogflex.nta.regularizers import GateRegularizer

__all__ = [
    "MirrorModes",
    "mirror_modes",
    "mirror_state",
    "regularizer_gradient",
    "regularizer_contrast",
    "two_variable_rhs",
    "conserved_quantity",
    "path_conserved_quantity",
    "level_set",
    "hyperbolic_time",
    "hyperbolic_state",
    "block_task_signs",
    "TwoVariableRun",
    "simulate_two_variable",
    "ReducedRun",
    "integrate_reduced",
    "specialization_time",
]


def _numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


# -- coordinates ---------------------------------------------------------------


@dataclass(frozen=True)
class MirrorModes:
    """The 6 reduced coordinates of a P = M = 2 network in mirror modes (module docstring).

    Attributes
    ----------
    specialization
        w_bar = ((w_1A - w_1B) - (w_2A - w_2B)) / 2.
    shared
        m = ((w_1A - w_1B) + (w_2A - w_2B)) / 2.
    common
        s_bar = (s_1 + s_2) / 2, s_p = w_pA + w_pB.
    common_asymmetry
        d = s_1 - s_2.
    gate_contrast
        c_bar = c_1 - c_2.
    gate_sum
        g = c_1 + c_2.
    """

    specialization: np.ndarray
    shared: np.ndarray
    common: np.ndarray
    common_asymmetry: np.ndarray
    gate_contrast: np.ndarray
    gate_sum: np.ndarray


def mirror_modes(weights, gates) -> MirrorModes:
    """Mirror modes of reduced coordinates ``weights`` ``(..., 2, 2)`` (path, teacher) and ``gates`` ``(..., 2)``.

    Accepts numpy arrays or torch tensors (e.g. :func:`cogflex.nta.reduced.project`
    of full weights); returns float64 numpy arrays of shape ``(...)``.
    """
    w, c = _numpy(weights), _numpy(gates)
    if w.shape[-2:] != (2, 2) or c.shape[-1] != 2:
        raise ValueError(f"mirror modes need P = M = 2, got weights {w.shape} and gates {c.shape}")
    diff1, diff2 = w[..., 0, 0] - w[..., 0, 1], w[..., 1, 0] - w[..., 1, 1]
    sum1, sum2 = w[..., 0, 0] + w[..., 0, 1], w[..., 1, 0] + w[..., 1, 1]
    return MirrorModes(
        specialization=(diff1 - diff2) / 2,
        shared=(diff1 + diff2) / 2,
        common=(sum1 + sum2) / 2,
        common_asymmetry=sum1 - sum2,
        gate_contrast=c[..., 0] - c[..., 1],
        gate_sum=c[..., 0] + c[..., 1],
    )


def mirror_state(specialization, gate_contrast, *, common=1.0, gate_sum=1.0) -> tuple[np.ndarray, np.ndarray]:
    """A state on the symmetric subspace: reduced weights ``(..., 2, 2)`` and gates ``(..., 2)``.

    Parameters
    ----------
    specialization, gate_contrast
        w_bar and c_bar.
    common
        s, the common mode of each path (s_1 = s_2 = s, so d = 0); 1 when
        the network has learned the teachers' shared part with g = 1.
    gate_sum
        g = c_1 + c_2 (1 on the L1 manifold, 0 for the exact opposite-gate case).

    Returns
    -------
    weights, gates
        w_1 = ((s + w_bar)/2, (s - w_bar)/2), w_2 = ((s - w_bar)/2, (s + w_bar)/2)
        (so m = 0) and c = ((g + c_bar)/2, (g - c_bar)/2).
    """
    wbar, cbar, s, g = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64)
                                             for x in (specialization, gate_contrast, common, gate_sum)))
    w1 = np.stack([(s + wbar) / 2, (s - wbar) / 2], axis=-1)
    w2 = np.stack([(s - wbar) / 2, (s + wbar) / 2], axis=-1)
    return np.stack([w1, w2], axis=-2), np.stack([(g + cbar) / 2, (g - cbar) / 2], axis=-1)


# -- the regulariser -------------------------------------------------------------


def regularizer_gradient(gates, regularization, regularizer: Regularizer | None = None) -> np.ndarray:
    """The scaled gradient lambda dR/dc of the network's gate regulariser, in numpy, for gates ``(..., P)``.

    Same formula and conventions (midpoint subgradient at c_p = 0) as the
    network's regulariser; ``regularizer`` gives the relative term weights
    (default: non-negativity only).
    """
    c = _numpy(gates)
    lam = np.asarray(regularization, dtype=np.float64)[..., None]
    w_nn, w_l1, w_l2 = (regularizer or Regularizer()).normalized()
    sign = np.sign(c)
    l1 = np.abs(c).sum(-1, keepdims=True)
    grad = sign * (5.0 * w_nn - 10.0 * w_l1 + 10.0 * w_l1 * l1) - 5.0 * w_nn
    if w_l2:
        grad = grad + w_l2 * (1.0 - 1.0 / np.sqrt((c * c).sum(-1, keepdims=True))) * c
    return lam * grad


def regularizer_contrast(gate_contrast, *, gate_sum=1.0, regularization=0.0,
                         regularizer: Regularizer | None = None) -> np.ndarray:
    """The contrast lambda DeltaR = lambda (dR/dc_1 - dR/dc_2) at the gates ((g + c_bar)/2, (g - c_bar)/2).

    Zero while both gates are positive and the regulariser has only the
    non-negativity and L1-manifold terms; a wall pushing |c_bar| back to g
    when one gate is negative.
    """
    cbar, g = np.broadcast_arrays(np.asarray(gate_contrast, dtype=np.float64), np.asarray(gate_sum, dtype=np.float64))
    gates = np.stack([(g + cbar) / 2, (g - cbar) / 2], axis=-1)
    grad = regularizer_gradient(gates, regularization, regularizer)
    return grad[..., 0] - grad[..., 1]


# -- the two-variable system -------------------------------------------------------


def two_variable_rhs(specialization, gate_contrast, task_sign, *, norm, gate_sum=1.0, regularization=0.0,
                     regularizer: Regularizer | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Right-hand sides (tau_W dw_bar/dt, tau_c dc_bar/dt) of the two-variable system.

    tau_W dw_bar/dt = c_bar eps / 2 and tau_c dc_bar/dt = S w_bar eps - lambda DeltaR(c_bar),
    eps = a - c_bar w_bar.

    Parameters
    ----------
    specialization, gate_contrast
        w_bar and c_bar.
    task_sign
        a = t_A - t_B of the current task (+1 in A blocks, -1 in B blocks).
    norm
        S, the teachers' squared norm.
    gate_sum
        The gate sum g_0 the ansatz holds fixed (enters only through the regulariser).
    regularization, regularizer
        lambda and the relative regulariser weights.
    """
    wbar = np.asarray(specialization, dtype=np.float64)
    cbar = np.asarray(gate_contrast, dtype=np.float64)
    eps = task_sign - cbar * wbar
    dw = 0.5 * cbar * eps
    dc = norm * wbar * eps
    if np.any(np.asarray(regularization) != 0):
        dc = dc - regularizer_contrast(cbar, gate_sum=gate_sum, regularization=regularization,
                                       regularizer=regularizer)
    return dw, dc


def conserved_quantity(specialization, gate_contrast, *, norm, weight_timescale, gate_timescale) -> np.ndarray:
    """Q_bar = 2 S tau_W w_bar^2 - tau_c c_bar^2 (conserved for lambda = 0 on the symmetric subspace)."""
    wbar = np.asarray(specialization, dtype=np.float64)
    cbar = np.asarray(gate_contrast, dtype=np.float64)
    return 2.0 * norm * weight_timescale * wbar**2 - gate_timescale * cbar**2


def path_conserved_quantity(squared_norm, gate, *, weight_timescale, gate_timescale) -> np.ndarray:
    """Q_p = tau_W |W_p|^2 - tau_c c_p^2 per path (balancedness; dQ_p/dt = 2 lambda c_p dR/dc_p).

    ``squared_norm`` is |W_p|_F^2 of the full network, or S |w_p|^2 in
    reduced coordinates.
    """
    return (weight_timescale * np.asarray(squared_norm, dtype=np.float64)
            - gate_timescale * np.asarray(gate, dtype=np.float64) ** 2)


def level_set(gate_contrast, conserved, *, norm, weight_timescale, gate_timescale) -> np.ndarray:
    """w_bar >= 0 on the level set Q_bar = ``conserved`` at gate contrast ``gate_contrast`` (NaN where empty)."""
    cbar = np.asarray(gate_contrast, dtype=np.float64)
    square = (np.asarray(conserved, dtype=np.float64) + gate_timescale * cbar**2) / (2.0 * norm * weight_timescale)
    return np.sqrt(np.where(square >= 0, square, np.nan))


def hyperbolic_time(output, *, start, task_sign, conserved, norm, weight_timescale, gate_timescale) -> np.ndarray:
    """Time for u = c_bar w_bar to go from ``start`` to ``output`` (lambda = 0, fixed task sign a).

    The closed form of the module docstring; requires Q_bar != 0 or u of
    the same sign as a, and u between ``start`` and a.
    """
    k2 = 8.0 * norm * weight_timescale * gate_timescale
    a, q = float(task_sign), float(conserved)
    big_d = np.sqrt(q * q + k2 * a * a)

    def primitive(u):
        u = np.asarray(u, dtype=np.float64)
        return (np.log(q * q + k2 * a * u + big_d * np.sqrt(q * q + k2 * u * u)) - np.log(np.abs(a - u))) / big_d

    return 2.0 * weight_timescale * gate_timescale * (primitive(output) - primitive(start))


def hyperbolic_state(output, *, conserved, norm, weight_timescale, gate_timescale) -> tuple[np.ndarray, np.ndarray]:
    """(w_bar, c_bar) with c_bar w_bar = ``output`` on the level set Q_bar = ``conserved`` (w_bar > 0 branch).

    2 S tau_W w_bar^2 = (Q_bar + sqrt(Q_bar^2 + k^2 u^2)) / 2 with k^2 = 8 S tau_W tau_c.
    """
    u = np.asarray(output, dtype=np.float64)
    q = float(conserved)
    k2 = 8.0 * norm * weight_timescale * gate_timescale
    wbar = np.sqrt((q + np.sqrt(q * q + k2 * u * u)) / (4.0 * norm * weight_timescale))
    return wbar, u / wbar


# -- curricula -----------------------------------------------------------------------


def block_task_signs(n_steps: int, steps_per_block: int, *, first: float = 1.0) -> np.ndarray:
    """Task sign a per step of an A, B, A, B, ... curriculum: ``first``, -``first``, ... per block."""
    if steps_per_block < 1:
        raise ValueError(f"steps_per_block must be at least 1, got {steps_per_block}")
    blocks = np.arange(n_steps) // steps_per_block
    return np.where(blocks % 2 == 0, first, -first).astype(np.float64)


# -- integrators -----------------------------------------------------------------------


@dataclass(frozen=True)
class TwoVariableRun:
    """A two-variable trajectory: ``time`` ``(T,)``, ``specialization`` and ``gate_contrast`` ``(B, T)``."""

    time: np.ndarray
    specialization: np.ndarray
    gate_contrast: np.ndarray


def _record_steps(n_steps: int, record_every: int) -> np.ndarray:
    if record_every < 1:
        raise ValueError(f"record_every must be at least 1, got {record_every}")
    return np.arange(0, n_steps + 1, record_every)


def simulate_two_variable(specialization, gate_contrast, task_signs, *, dt, weight_timescale, gate_timescale, norm,
                          gate_sum=1.0, regularization=0.0, regularizer: Regularizer | None = None,
                          record_every: int = 1) -> TwoVariableRun:
    """Integrate the two-variable system with the network's Euler steps, batched.

    Parameters
    ----------
    specialization, gate_contrast
        Initial w_bar and c_bar, broadcast to a batch ``(B,)``.
    task_signs
        Task sign a per step ``(n_steps,)`` (or ``(B, n_steps)``), e.g. from
        :func:`block_task_signs`; its length sets the run length.
    dt, weight_timescale, gate_timescale, norm, gate_sum, regularization
        dt, tau_W, tau_c, S, g_0 and lambda; each a scalar or one value per
        batch member.
    regularizer
        Relative regulariser weights (default: non-negativity only).
    record_every
        Record the state after 0, k, 2k, ... steps (up to ``n_steps``).

    Returns
    -------
    TwoVariableRun
        ``time`` = recorded step * dt.
    """
    signs = np.asarray(task_signs, dtype=np.float64)
    n_steps = signs.shape[-1]
    arrays = np.broadcast_arrays(*(np.atleast_1d(np.asarray(x, dtype=np.float64)) for x in (
        specialization, gate_contrast, weight_timescale, gate_timescale, norm, gate_sum, regularization)))
    wbar, cbar, tau_w, tau_c, s, g, lam = (a.copy() for a in arrays)
    rate_w, rate_c = dt / tau_w, dt / tau_c
    regularized = bool(np.any(lam != 0))
    steps = _record_steps(n_steps, record_every)
    out_w = np.empty((wbar.size, steps.size))
    out_c = np.empty((wbar.size, steps.size))
    per_member = signs.ndim == 2
    k = 0
    for n in range(n_steps + 1):
        if k < steps.size and steps[k] == n:
            out_w[:, k], out_c[:, k] = wbar, cbar
            k += 1
        if n == n_steps:
            break
        a = signs[:, n] if per_member else signs[n]
        eps = a - cbar * wbar
        dc = s * wbar * eps
        if regularized:
            dc = dc - regularizer_contrast(cbar, gate_sum=g, regularization=lam, regularizer=regularizer)
        wbar, cbar = wbar + rate_w * (0.5 * cbar * eps), cbar + rate_c * dc
    return TwoVariableRun(time=steps * float(dt), specialization=out_w, gate_contrast=out_c)


@dataclass(frozen=True)
class ReducedRun:
    """A 6-variable trajectory: ``time`` ``(T,)``, ``weights`` ``(B, T, P, M)``, ``gates`` ``(B, T, P)``."""

    time: np.ndarray
    weights: np.ndarray
    gates: np.ndarray


def integrate_reduced(weights, gates, task_mixtures, *, dt, weight_timescale, gate_timescale, norm,
                      regularization=0.0, regularizer: Regularizer | None = None,
                      record_every: int = 1) -> ReducedRun:
    """Integrate the 6-variable reduced model with the network's stepper, reading out the state as it goes.

    Unlike :func:`cogflex.nta.reduced.simulate_reduced` the targets may be any
    teacher mixtures (e.g. the anti-correlated +-(W*_A - W*_B)/2 of the exact
    case) and the weights are recorded over time, not only at the end.

    Parameters
    ----------
    weights, gates
        Initial reduced coordinates ``(B, P, M)`` and gates ``(B, P)``.
    task_mixtures
        Target mixture per step ``(n_steps, M)``: target = sum_m mix_m W*_m.
    dt, weight_timescale, gate_timescale, regularization
        dt, tau_W, tau_c and lambda: scalars or ``(B,)``.
    norm
        S, the teachers' squared norm.
    regularizer
        Relative regulariser weights (default: non-negativity only).
    record_every
        Record after 0, k, 2k, ... steps.
    """
    to = dict(dtype=torch.float64)
    w0 = torch.as_tensor(_numpy(weights), **to)
    c0 = torch.as_tensor(_numpy(gates), **to)
    batch_size, paths, tasks = w0.shape
    mixtures = np.asarray(task_mixtures, dtype=np.float64)
    n_steps = mixtures.shape[0]
    root = float(norm) ** 0.5
    # Any orthogonal teachers of squared norm S give the same reduced dynamics: root(S) * unit vectors.
    teachers = (root * torch.eye(tasks, **to)).reshape(1, tasks, 1, tasks).expand(batch_size, -1, -1, -1)
    batch = reduced_batch(w0, c0, teachers.contiguous())
    per_net = lambda x: torch.as_tensor(np.broadcast_to(np.asarray(x, dtype=np.float64), (batch_size,)).copy())  # noqa: E731
    reg = GateRegularizer.from_weights(regularizer or Regularizer(), per_net(regularization))
    batch.set_learning(per_net(dt / np.asarray(weight_timescale, dtype=np.float64)),
                       per_net(dt / np.asarray(gate_timescale, dtype=np.float64)), reg)
    steps = _record_steps(n_steps, record_every)
    changes = {0}  # steps before which the task changes
    if n_steps > 1:
        changes.update((np.flatnonzero(np.any(np.diff(mixtures, axis=0) != 0, axis=1)) + 1).tolist())
    slot = {int(n): k for k, n in enumerate(steps)}  # record after n steps into snapshots[slot[n]]
    snapshots = torch.empty(steps.size, batch_size, paths, tasks + 1, **to)
    view = batch.paths_with_gates[:, 0]  # (B, P, M + 1)
    mix_t = torch.as_tensor(mixtures, **to)

    def on_event(n: int) -> None:
        if n in slot:
            snapshots[slot[n]].copy_(view)
        if n in changes:
            batch.set_task(mix_t[n].expand(batch_size, tasks))

    loss = torch.empty(batch_size, 1, 1, **to)
    with torch.inference_mode():
        euler_steps(batch.step, (None,) * n_steps, (loss,) * n_steps, events=changes | slot.keys(),
                    on_event=on_event)
        if n_steps in slot:
            snapshots[slot[n_steps]].copy_(view)
    snaps = snapshots.numpy()
    return ReducedRun(time=steps * float(dt),
                      weights=np.moveaxis(snaps[..., :tasks] / root, 0, 1),
                      gates=np.moveaxis(snaps[..., tasks], 0, 1))


# -- measures --------------------------------------------------------------------------


def specialization_time(total_alignment, times, *, threshold: float = 0.9) -> np.ndarray:
    """First time at which ``total_alignment`` ``(..., T)`` exceeds ``threshold`` (NaN where it never does)."""
    values = np.asarray(total_alignment, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    above = values > threshold
    first = np.argmax(above, axis=-1)
    return np.where(above.any(axis=-1), times[first], np.nan)

