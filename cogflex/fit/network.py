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
large step per trial makes them overshoot, DESIGN §4). Where a trial is
stiffer than the sub-steps allow (fast, unregularised gates that have
grown large), its sub-steps are split further by the step-size rule of
:mod:`cogflex.fit.kernel`, in both engines, so that every node of a model's
box integrates stably on any sequence.

**Unobserved histories.** The tutorial draws, the practice trials and the
initial weights are unknown, and a single draw of them makes the
likelihood rugged in the parameters: near regime boundaries (gates just
fast enough to keep up with ~5-trial runs, weights fast enough to drift)
the network's trajectory over tens of thousands of trials flips between
qualitatively different paths, and the log-likelihood jumps by tens to
hundreds between neighbouring parameter values. The network is therefore
run for ``histories`` independent draws of the unobserved trials and initial
weights, and the predictors are their average (the population-average
network over the unknown past; 8 in the bundled models). Every grid point
sees the same draws (common random numbers).
The stepping is :class:`cogflex.nta.dynamics.NetworkBatch` (the simulator's
own step, taken by :func:`cogflex.nta.integrate.advance`) with the trial's
input covariance ``x x^T``.

**Tasks and inputs.** The task mapping gives every trial one stimulus
feature per task (:func:`task_count` tasks M, R response values each); the
input is the features' one-hot codes side by side, x = sum_m e_{mR + f_m}
(M R entries), and task m's teacher answers with feature m
(:func:`task_teachers`; for two tasks W*_0 = [I 0], W*_1 = [0 I]).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cogflex.errors import ConfigError, DivergenceError
from cogflex.fit.sequence import Sequence
from cogflex.nta.config import Regularizer
from cogflex.nta.dynamics import NetworkBatch
from cogflex.nta.integrate import advance
from cogflex.nta.regularizers import GateRegularizer

__all__ = ["NetworkSettings", "Reconfiguration", "Predictors", "stimulus_moment", "full_sequence", "run_network",
           "task_count", "task_teachers"]


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
    histories: int = 1
    seed: int = 0
    dtype: str = "float32"  # torch engine only; the compiled engine runs in float64
    engine: str = "compiled"  # "compiled" (cogflex.fit.kernel, numba) or "torch" (the NetworkBatch reference)

    def __post_init__(self) -> None:
        for name in ("weight_init_std", "gate_init", "regularizer_nonnegative", "regularizer_l1", "trials_per_session"):
            if not np.isfinite(getattr(self, name)):
                raise ConfigError(name, f"must be a finite number, got {getattr(self, name)!r}")
        for name in ("weight_init_std", "regularizer_nonnegative", "regularizer_l1"):
            if getattr(self, name) < 0:
                raise ConfigError(name, "must not be negative")
        for name in ("paths", "substeps", "histories"):
            if getattr(self, name) < 1:
                raise ConfigError(name, "must be at least 1")
        for name in ("tutorial_blocks", "tutorial_block_trials", "max_practice_trials"):
            if getattr(self, name) < 0:
                raise ConfigError(name, "must not be negative")
        if self.trials_per_session < 0:
            raise ConfigError("trials_per_session", "must not be negative (0 = the participant's mean)")
        if self.dtype not in ("float32", "float64"):
            raise ConfigError("dtype", "must be float32 or float64")
        if self.engine not in ("compiled", "torch"):
            raise ConfigError("engine", f"must be 'compiled' or 'torch', got {self.engine!r}")


@dataclass(frozen=True)
class Reconfiguration:
    """The cue-driven gate flow before each response (:mod:`cogflex.fit.kernel`).

    ``horizon``: the longest preparation, in trials (the unit of tau_c); ``flow_steps``: exact linear steps
    over the horizon; ``criterion``: the cued task's expected loss counts as reached at this fraction of its
    value with all gates closed (1/2 ||W*_m||^2; the paper's time-to-criterion); ``criterion_spread`` s: the
    criterion varies from trial to trial, uniform on criterion x [1 - s, 1 + s], and the reconfiguration time
    is its expected time to criterion (0: one fixed criterion, the first crossing; :mod:`cogflex.fit.kernel`).
    """

    horizon: float = 4.0
    flow_steps: int = 40
    criterion: float = 0.1
    criterion_spread: float = 0.0

    def __post_init__(self) -> None:
        for name in ("horizon", "criterion"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ConfigError(f"reconfiguration.{name}", f"must be a positive number, got {value!r}")
        if self.criterion >= 1:
            raise ConfigError("reconfiguration.criterion", "must be below 1 (a fraction of the closed-gate loss)")
        if not 0 <= self.criterion_spread < 1:
            raise ConfigError("reconfiguration.criterion_spread",
                              f"must be in [0, 1), got {self.criterion_spread!r}")
        if self.criterion * (1 + self.criterion_spread) >= 1:
            top = self.criterion * (1 + self.criterion_spread)
            raise ConfigError("reconfiguration.criterion_spread", f"criterion x (1 + spread) must stay below 1 "
                                                                  f"(got {top:g})")
        if self.flow_steps < 1:
            raise ConfigError("reconfiguration.flow_steps", "must be at least 1")


@dataclass
class Predictors:
    """Per observed trial, per parameter set: the network's state before the trial's update.

    ``loss`` = 1/2 ||y* - y||^2; ``margin`` = y[correct] - max over the other
    responses of y; ``gates`` ``(G, n_obs, P)`` optional (torch engine). The compiled engine adds
    ``reconfig`` (the cue-driven reconfiguration time, 0 without reconfiguration) and ``margin_mixed`` (the
    margin with every path at the mean gate). With reconfiguration,
    loss and margin are those of the response, after the gate flow.
    """

    loss: np.ndarray  # (G, n_obs)
    margin: np.ndarray  # (G, n_obs)
    gates: np.ndarray | None = None
    reconfig: np.ndarray | None = None
    margin_mixed: np.ndarray | None = None


def task_count(seq: Sequence) -> int:
    """M, the number of tasks of the participant's task mapping (one teacher each).

    The mapping gives every trial one stimulus feature per task, so the
    encoded features are ``(N, M)`` (:mod:`cogflex.fit.sequence`).
    """
    return seq.features.shape[1]


def task_teachers(n_tasks: int, n_responses: int) -> torch.Tensor:
    """The teachers W*_m of the task mapping, ``(M, R, M R)`` float64 (module docstring).

    Task m's teacher reads feature m's one-hot block of the input: W*_m has
    the R x R identity in columns m R .. (m + 1) R - 1 and zeros elsewhere.
    """
    r = n_responses
    teachers = torch.zeros(n_tasks, r, n_tasks * r, dtype=torch.float64)
    for m in range(n_tasks):
        teachers[m, :, m * r : (m + 1) * r] = torch.eye(r, dtype=torch.float64)
    return teachers


def _inputs(n_tasks: int, n_responses: int, dtype: torch.dtype) -> torch.Tensor:
    """Inputs x = sum_m e_{mR + f_m} of all feature combinations, ``(R^M, M R)``: row sum_m f_m R^(M-1-m)."""
    r = n_responses
    combination = np.arange(r**n_tasks)
    xs = torch.zeros(r**n_tasks, n_tasks * r, dtype=dtype)
    for m in range(n_tasks):
        xs[combination, m * r + combination // r ** (n_tasks - 1 - m) % r] = 1.0
    return xs


def _input_index(features: np.ndarray, n_responses: int) -> np.ndarray:
    """Row of :func:`_inputs` of every trial's features ``(..., M)``."""
    place = n_responses ** np.arange(features.shape[-1] - 1, -1, -1)
    return (features * place).sum(-1)


def _history_seed(settings: NetworkSettings, history: int) -> int:
    return int(np.random.SeedSequence([settings.seed, history]).generate_state(1)[0]) if history else settings.seed


def full_sequence(seq: Sequence, settings: NetworkSettings, *, history: int = 0
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tutorial + unobserved practice + observed trials: ``(task, features, observed)``.

    Returns arrays over the whole simulated life of the participant; the
    generated trials are never observed. ``history`` selects one of the
    ``settings.histories`` draws of the unobserved trials (0 uses ``settings.seed`` itself).
    """
    rng = np.random.default_rng(_history_seed(settings, history))
    r, n_tasks = seq.n_responses, task_count(seq)
    parts_task, parts_feat = [], []
    # 1. tutorial: long single-task blocks, tasks in turn
    if settings.tutorial_blocks and settings.tutorial_block_trials:
        n = settings.tutorial_blocks * settings.tutorial_block_trials
        parts_task.append((np.arange(n) // settings.tutorial_block_trials % n_tasks).astype(np.int8))
        parts_feat.append(rng.integers(0, r, size=(n, n_tasks)).astype(np.int8))
    # 2. unobserved sessions, generated like the participant's own
    sessions = np.unique(seq.session)
    first = sessions.min()
    per_session = settings.trials_per_session or len(seq) / max(len(sessions), 1)
    switch_rate, congruent_rate = _rates(seq)
    n_lead = min(int(round(max(first - 1, 0) * per_session)), settings.max_practice_trials)
    if n_lead:
        t, f = _generate(rng, n_lead, int(round(per_session)), switch_rate, congruent_rate, r, n_tasks)
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
                                 congruent_rate, r, n_tasks)
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
              r: int, n_tasks: int) -> tuple[np.ndarray, np.ndarray]:
    """Tasks and features of ``n`` unobserved two-task trials, sessions of ``per_session`` trials.

    The cue flips at ``switch_rate``; the two features agree at ``congruent_rate``.
    """
    if n_tasks != 2:
        raise ConfigError("mapping", f"unobserved practice trials are generated for two tasks only, "
                                     f"the mapping has {n_tasks}")
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
                *, reconfiguration: Reconfiguration | None = None, record_gates: bool = False,
                progress=None) -> Predictors:
    """Run G networks (one per parameter set) over the participant's life; predictors on observed trials.

    Parameters
    ----------
    seq
        The participant's encoded trials.
    gate_timescale, weight_timescale, regularization
        tau_c and tau_W (in trials) and lambda, arrays of length G (scalars broadcast).
    settings
        Tutorial, practice and integration settings, and the engine.
    reconfiguration
        The cue-driven gate flow before every response (compiled engine only); ``None``: feedback only.
    record_gates
        Also return the gates before every observed trial (torch engine only).
    progress
        Optional callable ``progress(n_trials_done)`` called every 1000 trials.

    Raises
    ------
    DivergenceError
        When a network's state stops being finite (timescale too short for
        the number of sub-steps).
    """
    tau_c, tau_w, lam = (np.array(v) for v in np.broadcast_arrays(
        *(np.atleast_1d(np.asarray(v, dtype=float)) for v in (gate_timescale, weight_timescale, regularization))))
    if (tau_c <= 0).any() or (tau_w <= 0).any():
        raise ConfigError("timescale", "gate and weight timescales must be positive")
    if (lam < 0).any():
        raise ConfigError("regularization", "must not be negative")
    if settings.engine == "compiled" and not record_gates:
        return _run_compiled(seq, tau_c, tau_w, lam, settings, reconfiguration, progress=progress)
    if reconfiguration is not None:
        raise ConfigError("engine", "the cue-driven reconfiguration runs on the compiled engine only")
    threads = torch.get_num_threads()
    # Many small tensor operations: one thread avoids oversubscription when several fits or
    # samplers share the cores (with 2 threads and a busy machine a table took ~60x longer).
    torch.set_num_threads(1)
    try:
        return _run(seq, tau_c, tau_w, lam, settings, record_gates=record_gates, progress=progress)
    finally:
        torch.set_num_threads(threads)


def _run(seq, tau_c, tau_w, lam, settings, *, record_gates, progress) -> Predictors:
    g = len(tau_c)
    n_hist = settings.histories
    dtype = getattr(torch, settings.dtype)
    r, n_tasks = seq.n_responses, task_count(seq)
    d_in = n_tasks * r
    lives = [full_sequence(seq, settings, history=h) for h in range(n_hist)]
    task = np.stack([life[0] for life in lives])  # (S, T)
    feat = np.stack([life[1] for life in lives])  # (S, T, M)
    observed = lives[0][2]
    weights = torch.cat([torch.randn(1, settings.paths, r, d_in, dtype=torch.float64,
                                     generator=torch.Generator().manual_seed(_history_seed(settings, h)))
                         for h in range(n_hist)]) * settings.weight_init_std
    teachers = task_teachers(n_tasks, r).expand(n_hist, n_tasks, r, d_in)
    gates = torch.full((n_hist, 1, settings.paths), settings.gate_init, dtype=torch.float64)
    batch = NetworkBatch.build(weights.to(dtype), teachers.to(dtype), gates.to(dtype), grid_points=g,
                               gating="path", compress=False)
    dt = 1.0 / settings.substeps
    tile = lambda v: torch.as_tensor(np.tile(v, n_hist), dtype=dtype)  # noqa: E731 - seed-major layout
    reg = GateRegularizer.from_weights(Regularizer(nonnegative=settings.regularizer_nonnegative,
                                                   l1=settings.regularizer_l1, l2=0.0), tile(lam))
    batch.set_learning(tile(dt / tau_w), tile(dt / tau_c), reg)
    base_rates = batch.rates.clone()
    weight_rate, gate_rate = tile(dt / tau_w), tile(dt / tau_c)
    _, w_l1, _ = Regularizer(nonnegative=settings.regularizer_nonnegative, l1=settings.regularizer_l1,
                             l2=0.0).normalized()
    curvature_reg = tile(settings.paths * 10.0 * w_l1 * lam)
    # Inputs and their covariances x x^T for all R^M feature combinations, precomputed.
    xs = _inputs(n_tasks, r, dtype)
    covs = xs[:, :, None] * xs[:, None, :]  # (R^M, d_in, d_in)
    input_idx = torch.as_tensor(_input_index(feat, r))  # (S, T)
    onehot = torch.eye(n_tasks, dtype=dtype)
    n_obs = int(observed.sum())
    # Per observed trial: loss and margin averaged over histories, gates likewise.
    loss_out = torch.empty(n_obs, g, dtype=dtype)
    margin_out = torch.empty(n_obs, g, dtype=dtype)
    gate_rec = torch.empty(n_obs, g, settings.paths, dtype=dtype) if record_gates else None
    target = seq.target[seq.observed]
    loss_buf = torch.empty(n_hist * g, 1, 1, dtype=dtype)
    others = torch.ones(r, dtype=torch.bool)
    k = 0
    current = None
    mixture_cache: dict[bytes, torch.Tensor] = {}
    for i in range(task.shape[1]):
        key = task[:, i].tobytes()
        if key != current:
            current = key
            mix = mixture_cache.get(key)
            if mix is None:
                mix = onehot[torch.as_tensor(task[:, i])].repeat_interleave(g, dim=0)
                mixture_cache[key] = mix
            batch.set_task(mix)
        idx = input_idx[:, i]
        cov = covs[idx] if n_hist > 1 else covs[idx[0]].unsqueeze(0)
        if observed[i]:
            ex = batch.output_error(xs[idx])  # y - y* before the update, (S, G, R)
            loss_out[k] = 0.5 * ex.square().sum(-1).mean(0)
            t = int(target[k])
            others[t] = False
            margin_out[k] = (ex[:, :, t] + 1.0 - ex[:, :, others].amax(-1)).mean(0)
            others[t] = True
            if gate_rec is not None:
                gate_rec[k] = batch.gates[:, 0, :].view(n_hist, g, -1).mean(0)
            k += 1
        inputs = xs[idx] if n_hist > 1 else xs[idx[0]].unsqueeze(0)
        split = _refinement(batch, inputs, weight_rate, gate_rate, curvature_reg, g, r)
        if split is None:
            advance(batch, settings.substeps, cov, loss=loss_buf)
        else:  # the step-size rule: stiff networks take more, shorter steps; the others wait
            for step in range(settings.substeps * int(split.max())):
                batch.rates.copy_(base_rates * ((step < settings.substeps * split) / split)[:, None, None])
                advance(batch, 1, cov, loss=loss_buf)
            batch.rates.copy_(base_rates)
        if i % 1000 == 999:
            if progress is not None:
                progress(1000)
            if not torch.isfinite(loss_buf).all():
                break
    if not torch.isfinite(batch.z).all():
        bad = np.flatnonzero(~torch.isfinite(batch.z.view(n_hist * g, -1)).all(1).numpy()) % g
        raise _diverged(tau_c, tau_w, lam, int(bad[0]))
    loss = loss_out.T.to(torch.float64).numpy()
    margin = margin_out.T.to(torch.float64).numpy()
    gates_np = gate_rec.permute(1, 0, 2).to(torch.float64).numpy() if gate_rec is not None else None
    return Predictors(loss=loss, margin=margin, gates=gates_np)


def _diverged(tau_c, tau_w, lam, j: int) -> DivergenceError:
    """The error for grid node ``j`` whose state stopped being finite (both engines)."""
    from cogflex.fit.kernel import MAX_REFINEMENT

    return DivergenceError(f"network diverged for tau_c={tau_c[j]:.3g}, tau_W={tau_w[j]:.3g}, lambda={lam[j]:.3g} "
                           f"even with {MAX_REFINEMENT}x refined sub-steps: use longer timescales")


def _refinement(batch: NetworkBatch, inputs: torch.Tensor, weight_rate: torch.Tensor, gate_rate: torch.Tensor,
                curvature_reg: torch.Tensor, g: int, r: int) -> torch.Tensor | None:
    """Steps per sub-step of every network on this trial (:mod:`cogflex.fit.kernel`'s step-size rule), or ``None``.

    ``inputs`` ``(S, d_in)``: the trial's input per history; networks are seed-major (``s * G + g``).
    """
    from cogflex.fit.kernel import ACCURACY, MAX_REFINEMENT, STIFFNESS

    n, paths = batch.n_networks, batch.paths
    w = batch.weights.reshape(n, paths, r, -1)
    x = inputs.repeat_interleave(g, dim=0)  # (B, d_in)
    out_sq = torch.einsum("bprd,bd->bpr", w, x).square().sum((1, 2))
    gates = batch.gates.reshape(n, paths)
    fit = weight_rate * x.square().sum(1) * gates.square().sum(1) + gate_rate * out_sq
    k = torch.maximum(fit / ACCURACY, (fit + gate_rate * curvature_reg) / STIFFNESS)
    if not bool((k > 1.0).any()):
        return None
    return torch.where(k > 1.0, torch.ceil(k).clamp(max=MAX_REFINEMENT), torch.ones_like(k)).to(batch.rates.dtype)


#: Trials per call of the compiled kernel (the progress bar moves between calls).
_CHUNK = 2000


def _run_compiled(seq, tau_c, tau_w, lam, settings: NetworkSettings, reconfiguration: Reconfiguration | None, *,
                  progress) -> Predictors:
    """:func:`run_network` on the compiled kernel (:mod:`cogflex.fit.kernel`): same networks, float64."""
    from cogflex.fit.kernel import RECORDS, run_chunk

    if reconfiguration is not None and settings.paths != 2:
        raise ConfigError("network.paths", f"the cue-driven reconfiguration needs 2 paths, got {settings.paths}")
    g, n_hist = len(tau_c), settings.histories
    r, n_tasks = seq.n_responses, task_count(seq)
    d_in = n_tasks * r
    lives = [full_sequence(seq, settings, history=h) for h in range(n_hist)]
    task = np.ascontiguousarray(np.stack([life[0] for life in lives]))  # (S, T)
    feat = np.stack([life[1] for life in lives])  # (S, T, M)
    observed = lives[0][2]
    columns = np.ascontiguousarray(feat + r * np.arange(n_tasks))  # active input entries m R + f_m
    target = np.ascontiguousarray(np.take_along_axis(feat, task[:, :, None], axis=2)[:, :, 0])
    n_obs = int(observed.sum())
    slot = np.full(len(observed), -1, dtype=np.int64)
    slot[observed] = np.arange(n_obs)
    init = np.stack([torch.randn(settings.paths, r, d_in, dtype=torch.float64,
                                 generator=torch.Generator().manual_seed(_history_seed(settings, h))).numpy()
                     for h in range(n_hist)]) * settings.weight_init_std
    weights = np.repeat(init[None], g, axis=0)
    gates = np.full((g, n_hist, settings.paths), settings.gate_init, dtype=np.float64)
    w_nn, w_l1, _ = Regularizer(nonnegative=settings.regularizer_nonnegative, l1=settings.regularizer_l1,
                                l2=0.0).normalized()
    out = np.zeros((g, n_obs, len(RECORDS)))
    flow = reconfiguration or Reconfiguration()
    moment = stimulus_moment(seq)
    for start in range(0, task.shape[1], _CHUNK):
        sl = slice(start, start + _CHUNK)
        run_chunk(weights, gates, task[:, sl], columns[:, sl], target[:, sl], slot[sl], moment, tau_c, tau_w,
                  lam * w_nn, lam * w_l1, settings.substeps, reconfiguration is not None, flow.horizon,
                  flow.flow_steps, flow.criterion, flow.criterion_spread, out)
        if not np.isfinite(gates).all():
            break
        if progress is not None:
            progress(min(_CHUNK, task.shape[1] - start))
    finite = np.isfinite(weights).all(axis=(1, 2, 3, 4)) & np.isfinite(gates).all(axis=(1, 2))
    if not finite.all():
        raise _diverged(tau_c, tau_w, lam, int(np.flatnonzero(~finite)[0]))
    out /= n_hist
    named = dict(zip(RECORDS, np.moveaxis(out, -1, 0)))
    return Predictors(loss=named["loss"], margin=named["margin"],
                      reconfig=named["reconfig"] if reconfiguration is not None else None,
                      margin_mixed=named["margin_mixed"])


def stimulus_moment(seq: Sequence) -> np.ndarray:
    """E[x x^T] over the participant's trials, ``(M R, M R)``: the metric of a task's expected loss.

    x has one active entry per task (m R + f_m), so the diagonal holds each feature value's frequency and the
    off-diagonal blocks the joint frequencies of two tasks' features (the congruency rate among them).
    """
    r, n_tasks = seq.n_responses, task_count(seq)
    columns = seq.features.astype(np.int64) + r * np.arange(n_tasks)
    x = np.zeros((len(seq), n_tasks * r))
    np.put_along_axis(x, columns, 1.0, axis=1)
    return x.T @ x / max(len(seq), 1)
