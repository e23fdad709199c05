"""Run batches of NTA networks through a curriculum and record what happens.

:func:`simulate` is the front door: a :class:`SimulationConfig` in, a
:class:`~cogflex.nta.results.SimulationResult` out. All seeds and all grid
points of ``config.sweep`` advance together as one batch (see
:mod:`cogflex.nta.dynamics`); the run proceeds in chunks of
:data:`CHUNK_STEPS` steps, after each of which the recorded quantities are
reduced, so memory does not grow with the number of steps.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from cogflex.errors import ConfigError, DivergenceError
from cogflex.nta.config import SWEEPABLE, SimulationConfig
from cogflex.nta.curricula import BlockedSchedule, ExplicitSchedule, Schedule
from cogflex.nta.dynamics import NetworkBatch, sample_input_covariance
from cogflex.nta.integrate import euler_steps
from cogflex.nta.metrics import SwitchTracker, alignment, best_matching
from cogflex.nta.regularizers import GateRegularizer
from cogflex.nta.results import SimulationResult, build_dataset
from cogflex.nta.teachers import compose_tasks, make_teachers

__all__ = ["simulate", "simulate_batch", "InitialState", "initial_state", "CHUNK_STEPS", "resolve_device"]

#: Steps per chunk. Sampling noise is drawn per chunk, so this is fixed (not a
#: user setting): results for a seed do not depend on how the run is split.
CHUNK_STEPS = 256


@dataclass(frozen=True)
class InitialState:
    """Initial paths, teachers and gates of every seed's network.

    Attributes
    ----------
    weights
        ``(S, P, d_out, d_in)``.
    teachers
        ``(S, M, d_out, d_in)``.
    gates
        ``(S, R, P)``.
    """

    weights: torch.Tensor
    teachers: torch.Tensor
    gates: torch.Tensor


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available) as a torch device."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError("device", f"unknown device {str(device)!r} (use cpu, cuda or auto)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "CUDA was requested but no CUDA device is available")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError("device", f"unsupported device {str(device)!r} (use cpu or cuda)")
    return dev


def _seed_streams(seed: int) -> tuple[int, int]:
    """Two independent 63-bit seeds (initial state, input noise) derived from ``seed``."""
    init, noise = np.random.SeedSequence(seed).generate_state(2, dtype=np.uint64)
    return int(init >> np.uint64(1)), int(noise >> np.uint64(1))


def initial_state(
    config: SimulationConfig, *, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"
) -> InitialState:
    """Draw the teachers and initial weights of every seed (independent of the grid).

    Seed ``s`` always gives the same teachers and initial weights, whatever
    else is in the batch: every seed has its own generator.
    """
    net = config.network
    weights, teachers = [], []
    for seed in config.seed_values:
        gen = torch.Generator().manual_seed(_seed_streams(seed)[0])
        teachers.append(make_teachers(config.teachers, net.output_dim, net.input_dim, generator=gen,
                                      dtype=torch.float64))
        w = torch.randn(net.paths, net.output_dim, net.input_dim, generator=gen, dtype=torch.float64)
        weights.append(w * (net.weight_init_std / net.input_dim**0.5))
    gates = torch.full((config.seeds, net.gate_rows, net.paths), net.gate_init, dtype=torch.float64)
    to = dict(dtype=dtype, device=device)
    return InitialState(torch.stack(weights).to(**to), torch.stack(teachers).to(**to), gates.to(**to))


def simulate(
    config: SimulationConfig,
    *,
    device: str | torch.device = "cpu",
    task_sequence: Sequence[int] | np.ndarray | None = None,
    initial: InitialState | None = None,
    compress: bool = True,
    dtype: torch.dtype = torch.float32,
    progress: bool = False,
) -> SimulationResult:
    """Train every network of ``config`` (seeds x sweep grid) and record the run.

    Parameters
    ----------
    config
        What to simulate; ``config.sweep`` may list grid points.
    device
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    task_sequence
        Explicit task index per step, ``(n_steps,)`` or ``(B, n_steps)``,
        replacing the blocked curriculum (its length sets the run length).
    initial
        Initial state to use instead of drawing one from the seeds.
    compress
        In expected mode, integrate in the span of paths and teachers
        (exact and much faster). Ignored in sampled mode.
    dtype
        Floating-point type of the state (float64 for reference checks).
    progress
        Show a progress bar on stderr.

    Returns
    -------
    SimulationResult
        Trajectories, per-switch metrics and the config, as an xarray dataset.

    Raises
    ------
    DivergenceError
        When a network's loss becomes NaN or infinite; names the network and step.
    """
    dev = resolve_device(device)
    init = initial or initial_state(config, dtype=dtype, device=dev)
    _check_initial(init, config)
    teachers = init.teachers.to(dtype=dtype, device=dev)
    # Composed tasks (Fig. 3) are further targets built from the teachers.
    targets = torch.cat([teachers, compose_tasks(teachers, config.composition)], dim=1)
    batch = NetworkBatch.build(
        init.weights.to(dtype=dtype, device=dev),
        targets,
        init.gates.to(dtype=dtype, device=dev),
        grid_points=len(list(config.sweep.points())),
        gating=config.network.gating,
        compress=compress and config.learning.mode == "expected",
    )
    return simulate_batch(config, batch, task_sequence=task_sequence, progress=progress)


def _check_initial(init: InitialState, config: SimulationConfig) -> None:
    net = config.network
    expected = {
        "weights": (config.seeds, net.paths, net.output_dim, net.input_dim),
        "teachers": (config.seeds, config.teachers.tasks, net.output_dim, net.input_dim),
        "gates": (config.seeds, net.gate_rows, net.paths),
    }
    for name, shape in expected.items():
        got = tuple(getattr(init, name).shape)
        if got != shape:
            raise ConfigError(f"initial.{name}", f"has shape {got}, the config needs {shape}")


def simulate_batch(
    config: SimulationConfig,
    batch: NetworkBatch,
    *,
    task_sequence: Sequence[int] | np.ndarray | None = None,
    progress: bool = False,
) -> SimulationResult:
    """Run a prepared :class:`NetworkBatch` through ``config``'s curriculum and record it.

    The common engine behind :func:`simulate` and
    :func:`cogflex.nta.reduced.simulate_reduced`; ``batch`` must hold
    ``config.seeds`` x (sweep grid points) networks, seed-major.
    """
    started = time.perf_counter()
    points = list(config.sweep.points())
    n_seeds, n_points = config.seeds, len(points)
    n_net = n_seeds * n_points
    if batch.n_networks != n_net:
        raise ValueError(f"batch holds {batch.n_networks} networks, config needs {n_net}")
    params = {name: np.array([config.value(name, p) for p in points] * n_seeds) for name in SWEEPABLE}
    dt = config.learning.dt
    n_targets = config.n_targets
    if batch.z.shape[1] - batch.paths != n_targets:
        raise ValueError(f"batch holds {batch.z.shape[1] - batch.paths} tasks, config needs {n_targets}")
    if task_sequence is None:
        steps_per_block = np.rint(params["block_length"] / dt).astype(np.int64)
        order = config.curriculum.order or tuple(range(config.teachers.tasks))
        composed = tuple(range(config.teachers.tasks, n_targets))
        schedule: Schedule = BlockedSchedule(steps_per_block, order, then=composed,
                                             switch_block=config.composition.start_block)
        n_steps = config.n_steps
    else:
        schedule = ExplicitSchedule(np.asarray(task_sequence), n_net)
        n_steps = schedule.n_steps
        seq = schedule.tasks(0, n_steps)
        if n_steps == 0 or seq.min() < 0 or seq.max() >= n_targets:
            raise ConfigError("task_sequence",
                              f"needs at least one step, task indices in 0..{n_targets - 1}")
    sampled = config.learning.mode == "sampled"
    result_data = _run(batch, schedule, n_steps, params, config, sampled=sampled, progress=progress)
    wall = time.perf_counter() - started
    dataset = build_dataset(config, points, params, result_data, n_steps=n_steps, wall_seconds=wall,
                            device=str(batch.z.device))
    return SimulationResult(config=config, dataset=dataset)


def _run(
    batch: NetworkBatch,
    schedule: Schedule,
    n_steps: int,
    params: dict[str, np.ndarray],
    config: SimulationConfig,
    *,
    sampled: bool,
    progress: bool,
) -> dict[str, np.ndarray]:
    """Integrate ``n_steps`` Euler steps; return the recorded arrays (numpy)."""
    with torch.inference_mode():
        return _integrate(batch, schedule, n_steps, params, config, sampled=sampled, progress=progress)


def _integrate(batch, schedule, n_steps, params, config, *, sampled, progress):
    dev, dtype = batch.z.device, batch.z.dtype
    learning, recording = config.learning, config.recording
    n_net, rows = batch.n_networks, batch.gate_rows
    as_tensor = lambda a: torch.as_tensor(a, dtype=dtype, device=dev)  # noqa: E731
    reg = GateRegularizer.from_weights(learning.regularizer, as_tensor(params["regularization"]), rows=rows,
                                       per_row=learning.regularizer.per_unit)
    batch.set_learning(as_tensor(learning.dt / params["weight_timescale"]),
                       as_tensor(learning.dt / params["gate_timescale"]), reg)
    onehot = torch.eye(config.n_targets, dtype=dtype, device=dev)

    log_every = recording.log_every or max(1, n_steps // 1000)
    tracker = SwitchTracker(n_net, schedule.segments(n_steps), recording.criterion, recording.switch_curve)
    noise = _InputNoise(config, batch.input_dim, dtype=dtype, device=dev) if sampled else None
    # Alignment is measured against the M teachers (composed tasks follow them).
    teachers_full = batch.to_full(batch.teachers)[:, : config.teachers.tasks]  # (B, M, d_out, d_in)
    logs: dict[str, list[np.ndarray]] = {k: [] for k in ("step", "loss", "task", "gates", "alignment",
                                                          "total_alignment", "weight_speed", "gate_speed")}
    loss_buf = torch.empty(CHUNK_STEPS, n_net, 1, 1, dtype=dtype, device=dev)
    loss_slots = loss_buf.unbind(0)
    bar = tqdm(total=n_steps, unit="step", disable=not progress, desc=config.name, leave=False)
    try:
        for start in range(0, n_steps, CHUNK_STEPS):
            stop = min(start + CHUNK_STEPS, n_steps)
            k = stop - start
            tasks = schedule.tasks(max(start - 1, 0), min(stop + 1, n_steps))
            if start == 0:
                tasks = np.concatenate([tasks[:, :1], tasks], axis=1)
            current = tasks[:, 1 : k + 1]  # tasks of steps start .. stop - 1
            changes = set(np.flatnonzero((current != tasks[:, :k]).any(axis=0)).tolist())
            if start == 0:
                changes.add(0)
            covs = noise.chunk(k) if noise is not None else [None] * k
            log_idx = [j for j in range(k) if (start + j) % log_every == 0]
            snapshots = _advance_chunk(batch, current, changes, log_idx, covs, loss_slots[:k], onehot)
            loss = 0.5 * loss_buf[:k, :, 0, 0].T.double().cpu().numpy()  # (B, k)
            if not np.isfinite(loss).all():
                _raise_divergence(loss, start, params, config)
            tracker.update(start, loss, tasks, is_last=stop == n_steps)
            if log_idx:
                _record(logs, batch, reg, teachers_full, snapshots, onehot, current[:, log_idx],
                        loss[:, log_idx], np.asarray(log_idx) + start, params)
            bar.update(k)
    finally:
        bar.close()

    final_w = batch.to_full(batch.weights)
    final_align = alignment(final_w, teachers_full)
    return {
        "final_weights": final_w.double().cpu().numpy(),
        "teachers": teachers_full.double().cpu().numpy(),
        **{k: np.concatenate(v, axis=-1 if k == "step" else 1) for k, v in logs.items()},
        "final_gates": batch.gates.double().cpu().numpy(),
        "final_alignment": final_align.double().cpu().numpy(),
        "final_total_alignment": best_matching(final_align).double().cpu().numpy(),
        "segment_start": tracker.start_step,
        "steps_to_criterion": tracker.steps_to_criterion(),
        "block_end_loss": tracker.end_loss,
        "switch_curve": tracker.curve,
    }


def _advance_chunk(batch: NetworkBatch, tasks: np.ndarray, changes: set[int], log_idx: list[int],
                   covariances: Sequence[torch.Tensor | None], losses: Sequence[torch.Tensor],
                   onehot: torch.Tensor) -> torch.Tensor:
    """Take one chunk's steps: set the task where it ``changes``, snapshot the state at the log points.

    Returns the snapshots of :attr:`NetworkBatch.paths_with_gates` before each step of ``log_idx``.
    """
    snapshots = torch.empty((len(log_idx), *batch.paths_with_gates.shape), dtype=batch.z.dtype,
                            device=batch.z.device)
    slot = {j: n for n, j in enumerate(log_idx)}

    def on_event(j: int) -> None:
        if j in changes:
            batch.set_task(onehot[torch.as_tensor(tasks[:, j], device=batch.z.device)])
        if j in slot:
            snapshots[slot[j]].copy_(batch.paths_with_gates)

    euler_steps(batch.step, covariances, losses, events=changes.union(log_idx), on_event=on_event)
    return snapshots


class _InputNoise:
    """Sampled input covariances, one chunk of steps at a time.

    Each seed has its own generator, so a seed's noise does not depend on the
    rest of the batch, and chunks have a fixed size, so the stream does not
    depend on how the run is recorded. (Drawing ahead in a thread was tried:
    the second thread's OpenMP team and the GIL slowed the small operations
    of the Euler steps about threefold.)
    """

    def __init__(self, config: SimulationConfig, input_dim: int, *, dtype, device):
        self._gens = []
        for seed in config.seed_values:
            gen = torch.Generator(device=device)
            gen.manual_seed(_seed_streams(seed)[1])
            self._gens.append(gen)
        self._args = dict(input_dim=input_dim, batch_size=config.learning.batch_size, dtype=dtype, device=device)

    def chunk(self, steps: int) -> tuple[torch.Tensor, ...]:
        """Covariances ``(S, d, d)`` of the next ``steps`` steps."""
        covs = [sample_input_covariance(steps, generator=g, **self._args) for g in self._gens]
        return torch.stack(covs, dim=1).unbind(0)


def _record(logs, batch, reg, teachers_full, snapshots, onehot, tasks, loss, steps, params) -> None:
    """Reduce the states snapshotted at log points to the recorded metrics."""
    w_log, c_log = snapshots[..., :-1], snapshots[..., -1]  # (n, B, R, P, D), (n, B, R, P)
    full = batch.to_full(w_log)  # (n, B, P, d_out, d_in)
    mix = onehot[torch.as_tensor(tasks.T, device=w_log.device)].unsqueeze(2)  # (n, B, 1, M)
    err = (c_log.unsqueeze(-2) @ w_log).squeeze(-2) - (mix.unsqueeze(-2) @ batch.teachers).squeeze(-2)
    grad_w = c_log.unsqueeze(-1) * err.unsqueeze(-2)
    n = c_log.shape[0]
    reg_grad = reg.gradient(c_log.reshape(n, -1, batch.paths)).view_as(c_log)
    grad_c = (w_log @ err.unsqueeze(-1)).squeeze(-1) + reg_grad
    tau_w = torch.as_tensor(params["weight_timescale"], dtype=err.dtype, device=err.device)
    tau_c = torch.as_tensor(params["gate_timescale"], dtype=err.dtype, device=err.device)
    np_ = lambda t: t.double().cpu().numpy()  # noqa: E731
    logs["step"].append(steps)
    logs["loss"].append(loss)
    logs["task"].append(tasks)
    logs["gates"].append(np.moveaxis(np_(c_log), 0, 1))  # (B, n, R, P)
    align = alignment(full, teachers_full)
    logs["alignment"].append(np.moveaxis(np_(align), 0, 1))
    logs["total_alignment"].append(np_(best_matching(align)).T)
    logs["weight_speed"].append(np_(torch.linalg.vector_norm(grad_w, dim=(-3, -2, -1)) / tau_w).T)
    logs["gate_speed"].append(np_(torch.linalg.vector_norm(grad_c, dim=(-2, -1)) / tau_c).T)


def _raise_divergence(loss: np.ndarray, start: int, params: dict[str, np.ndarray], config: SimulationConfig) -> None:
    bad_net, bad_step = np.argwhere(~np.isfinite(loss))[0]
    seed = config.seed_values[bad_net // (len(loss) // config.seeds)]
    settings = ", ".join(f"{n}={params[n][bad_net]:g}" for n in SWEEPABLE)
    step = start + bad_step
    raise DivergenceError(
        f"simulation diverged (loss is not finite) at step {step} (t = {step * config.learning.dt:g}) "
        f"in network {bad_net} (seed {seed}, {settings}); reduce learning.dt or the regularisation"
    )
