"""The NTA network run trial by trial on a participant's own sequence.

What happens to one simulated participant (all settings in :class:`NetworkSettings`):

1. **Tutorial** (how the task abstraction forms): the network starts from
   small random weights (std ``weight_init_std``) and gates ``gate_init``
   and learns ``tutorial_blocks`` blocks of ``tutorial_block_trials``
   single-task trials, tasks alternating. Ebb and Flow's runs of ~5 trials
   alone never let the network specialise (DESIGN §4); long blocks do, when
   the gates are fast (the paper's flexible regime), and do not when gates
   and weights share one slow rate (forgetful).
2. **Unobserved practice**: every session missing from the data between
   session 1 and the participant's last session (Ebb and Flow data start at
   gameplay ~150) is simulated with ``trials_per_session`` trials (default:
   the participant's mean), cued with the participant's switch rate and
   congruency rate, stimuli drawn with ``seed``. At most
   ``max_practice_trials`` such trials precede the first observed session
   (the earliest ones are dropped: by then the network is at its
   interleaved steady state).
3. **Observed trials** in order; each trial records the network's output
   *before* that trial's update, then learns from the correct answer.

Learning per trial is the NTA gradient flow on that trial's squared error,
integrated with ``substeps`` Euler steps of 1/substeps trial each
(timescales are in trials). The gate regulariser (non-negativity + L1
manifold) keeps the gates bounded; sub-steps keep fast gates stable (one
large step per trial makes them overshoot, DESIGN §4).

Every grid point sees the same tutorial, practice and initial weights
(common random numbers), so predictors vary smoothly with the parameters.
The stepping is :class:`cogflex.nta.dynamics.NetworkBatch` (the simulator's
own step) with the trial's input covariance ``x x^T``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cogflex.errors import ConfigError, DivergenceError
from cogflex.fit.sequence import Sequence
from cogflex.nta.config import Regularizer
from cogflex.nta.dynamics import NetworkBatch
from cogflex.nta.regularizers import GateRegularizer

__all__ = ["NetworkSettings", "Predictors", "full_sequence", "run_network"]


@dataclass(frozen=True)
class NetworkSettings:
    """How the network meets a participant's trials (see the module docstring)."""

    paths: int = 2
    substeps: int = 5
    weight_init_std: float = 0.01
    gate_init: float = 0.5
    regularizer_nonnegative: float = 1.0
    regularizer_l1: float = 1.0
    tutorial_blocks: int = 6
    tutorial_block_trials: int = 300
    trials_per_session: float = 0.0  # 0: the participant's mean
    max_practice_trials: int = 12000
    seed: int = 0
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in ("paths", "substeps"):
            if getattr(self, name) < 1:
                raise ConfigError(name, "must be at least 1")
        for name in ("tutorial_blocks", "tutorial_block_trials", "max_practice_trials"):
            if getattr(self, name) < 0:
                raise ConfigError(name, "must not be negative")
        if self.trials_per_session < 0:
            raise ConfigError("trials_per_session", "must not be negative (0 = the participant's mean)")
        if self.dtype not in ("float32", "float64"):
            raise ConfigError("dtype", "must be float32 or float64")


@dataclass
class Predictors:
    """Per observed trial, per parameter set: the network's state before the trial's update.

    ``loss`` = 1/2 ||y* - y||^2; ``margin`` = y[correct] - max over the other
    responses of y; ``gates`` ``(G, n_obs, P)`` optional.
    """

    loss: np.ndarray  # (G, n_obs)
    margin: np.ndarray  # (G, n_obs)
    gates: np.ndarray | None = None


def full_sequence(seq: Sequence, settings: NetworkSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tutorial + unobserved practice + observed trials: ``(task, features, observed)``.

    Returns arrays over the whole simulated life of the participant; the
    generated trials are never observed.
    """
    rng = np.random.default_rng(settings.seed)
    r = seq.n_responses
    parts_task, parts_feat = [], []
    # 1. tutorial: long single-task blocks
    if settings.tutorial_blocks and settings.tutorial_block_trials:
        n = settings.tutorial_blocks * settings.tutorial_block_trials
        parts_task.append((np.arange(n) // settings.tutorial_block_trials % 2).astype(np.int8))
        parts_feat.append(rng.integers(0, r, size=(n, 2)).astype(np.int8))
    # 2. unobserved sessions, generated like the participant's own
    sessions = np.unique(seq.session)
    first = sessions.min()
    per_session = settings.trials_per_session or len(seq) / max(len(sessions), 1)
    switch_rate, congruent_rate = _rates(seq)
    n_lead = min(int(round(max(first - 1, 0) * per_session)), settings.max_practice_trials)
    if n_lead:
        t, f = _generate(rng, n_lead, int(round(per_session)), switch_rate, congruent_rate, r)
        parts_task.append(t)
        parts_feat.append(f)
    observed_part = []
    task_all = list(parts_task)
    feat_all = list(parts_feat)
    n_gen = sum(len(t) for t in parts_task)
    observed_part.append(np.zeros(n_gen, dtype=bool))
    # gaps between observed sessions
    starts = np.flatnonzero(np.r_[True, seq.session[1:] != seq.session[:-1]])
    bounds = list(starts) + [len(seq)]
    for k in range(len(starts)):
        s = seq.session[bounds[k]]
        if k > 0:
            gap = int(s - seq.session[bounds[k - 1]] - 1)
            if gap > 0:
                t, f = _generate(rng, int(round(gap * per_session)), int(round(per_session)), switch_rate,
                                 congruent_rate, r)
                task_all.append(t)
                feat_all.append(f)
                observed_part.append(np.zeros(len(t), dtype=bool))
        sl = slice(bounds[k], bounds[k + 1])
        task_all.append(seq.task[sl])
        feat_all.append(seq.features[sl])
        observed_part.append(seq.observed[sl])
    return (np.concatenate(task_all).astype(np.int64), np.concatenate(feat_all).astype(np.int64),
            np.concatenate(observed_part))


def _rates(seq: Sequence) -> tuple[float, float]:
    same_session = seq.session[1:] == seq.session[:-1]
    switches = (seq.task[1:] != seq.task[:-1]) & same_session
    switch_rate = float(switches.sum() / max(same_session.sum(), 1))
    congruent_rate = float(seq.congruent.mean()) if len(seq) else 0.25
    return switch_rate, congruent_rate


def _generate(rng: np.random.Generator, n: int, per_session: int, switch_rate: float, congruent_rate: float,
              r: int) -> tuple[np.ndarray, np.ndarray]:
    per_session = max(per_session, 1)
    task = np.empty(n, dtype=np.int8)
    cur = 0
    flips = rng.random(n) < switch_rate
    fresh = rng.integers(0, 2, size=n)
    for i in range(n):
        if i % per_session == 0:
            cur = fresh[i]
        elif flips[i]:
            cur = 1 - cur
        task[i] = cur
    first = rng.integers(0, r, size=n)
    other = (first + rng.integers(1, r, size=n)) % r
    second = np.where(rng.random(n) < congruent_rate, first, other)
    return task, np.stack([first, second], axis=1).astype(np.int8)


def run_network(seq: Sequence, gate_timescale, weight_timescale, regularization, settings: NetworkSettings,
                *, record_gates: bool = False, progress=None) -> Predictors:
    """Run G networks (one per parameter set) over the participant's life; predictors on observed trials.

    Parameters
    ----------
    seq
        The participant's encoded trials.
    gate_timescale, weight_timescale, regularization
        tau_c and tau_W (in trials) and lambda, arrays of length G (scalars broadcast).
    settings
        Tutorial, practice and integration settings.
    record_gates
        Also return the gates before every observed trial.
    progress
        Optional callable ``progress(n_trials_done)`` called every 1000 trials.

    Raises
    ------
    DivergenceError
        When a network's state stops being finite (timescale too short for
        the number of sub-steps).
    """
    tau_c, tau_w, lam = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, dtype=float))
                                              for v in (gate_timescale, weight_timescale, regularization)))
    if (tau_c <= 0).any() or (tau_w <= 0).any():
        raise ConfigError("timescale", "gate and weight timescales must be positive")
    if (lam < 0).any():
        raise ConfigError("regularization", "must not be negative")
    g = len(tau_c)
    dtype = getattr(torch, settings.dtype)
    r = seq.n_responses
    d_in = 2 * r
    task, feat, observed = full_sequence(seq, settings)
    gen = torch.Generator().manual_seed(settings.seed)
    weights = torch.randn(1, settings.paths, r, d_in, generator=gen, dtype=torch.float64) * settings.weight_init_std
    eye = torch.eye(r, dtype=torch.float64)
    zeros = torch.zeros(r, r, dtype=torch.float64)
    teachers = torch.stack([torch.cat([eye, zeros], 1), torch.cat([zeros, eye], 1)]).unsqueeze(0)
    gates = torch.full((1, 1, settings.paths), settings.gate_init, dtype=torch.float64)
    batch = NetworkBatch.build(weights.to(dtype), teachers.to(dtype), gates.to(dtype), grid_points=g,
                               gating="path", compress=False)
    dt = 1.0 / settings.substeps
    reg = GateRegularizer.from_weights(Regularizer(nonnegative=settings.regularizer_nonnegative,
                                                   l1=settings.regularizer_l1, l2=0.0),
                                       torch.as_tensor(lam, dtype=dtype))
    batch.set_learning(torch.as_tensor(dt / tau_w, dtype=dtype), torch.as_tensor(dt / tau_c, dtype=dtype), reg)
    # Inputs: x = e_a + e_{R+b}; covariances x x^T for all R^2 feature pairs, precomputed.
    xs = torch.zeros(r * r, d_in, dtype=dtype)
    pair = np.arange(r * r)
    xs[pair, pair // r] = 1.0
    xs[pair, r + pair % r] = 1.0
    covs = (xs[:, :, None] * xs[:, None, :]).unsqueeze(1)  # (R^2, 1, d_in, d_in)
    mixtures = torch.eye(2, dtype=dtype).unsqueeze(1).expand(2, g, 2).contiguous()
    pair_idx = feat[:, 0] * r + feat[:, 1]
    n_obs = int(observed.sum())
    out = torch.empty(n_obs, g, r, dtype=dtype)  # y - y* before each observed trial
    gate_rec = torch.empty(n_obs, g, settings.paths, dtype=dtype) if record_gates else None
    loss_buf = torch.empty(g, 1, 1, dtype=dtype)
    err_view_shape = (g, r, d_in)
    k = 0
    current_task = -1
    for i in range(len(task)):
        if task[i] != current_task:
            current_task = int(task[i])
            batch.set_task(mixtures[current_task])
        cov = covs[pair_idx[i]]
        if observed[i]:
            err = torch.bmm(batch._mix_t, batch._vectors).view(err_view_shape)
            torch.mv(err.view(g * r, d_in), xs[pair_idx[i]], out=out[k].view(-1))
            if gate_rec is not None:
                gate_rec[k] = batch.gates[:, 0, :]
            k += 1
        for _ in range(settings.substeps):
            batch.step(cov, loss_buf)
        if progress is not None and i % 1000 == 999:
            progress(1000)
            if not torch.isfinite(batch.z).all():
                break
    if not torch.isfinite(batch.z).all():
        bad = np.flatnonzero(~torch.isfinite(batch.z.view(g, -1)).all(1).numpy())
        j = int(bad[0])
        raise DivergenceError(f"network diverged for tau_c={tau_c[j]:.3g}, tau_W={tau_w[j]:.3g}, "
                              f"lambda={lam[j]:.3g}: use more substeps or longer timescales")
    err = out.permute(1, 0, 2).to(torch.float64).numpy()  # (G, n_obs, R)
    target = seq.target[seq.observed]
    loss = 0.5 * (err**2).sum(-1)
    y = err.copy()
    idx = np.arange(n_obs)
    y[:, idx, target] += 1.0
    correct_out = y[:, idx, target]
    y[:, idx, target] = -np.inf
    margin = correct_out - y.max(-1)
    gates_np = gate_rec.permute(1, 0, 2).to(torch.float64).numpy() if gate_rec is not None else None
    return Predictors(loss=loss, margin=margin, gates=gates_np)
