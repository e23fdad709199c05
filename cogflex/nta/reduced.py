"""The teacher-subspace reduction of the NTA network (Sandbrink et al., 2024).

With M mutually orthogonal teachers of equal squared norm S, write every path
in the teachers' span, W_p = sum_m w_pm W*_m. Then, for the expected gradient,

    tau_W dw_p/dt = c_p eps,        tau_c dc_p/dt = S (w_p . eps) - lambda dR/dc_p,

with eps = e_task - sum_q c_q w_q (e_task the task's teacher mixture): P * M
weight coordinates and P gates (6 numbers for P = M = 2) that reproduce the full
network exactly when it starts in the subspace (a part orthogonal to the
teachers would only decay). This module states those equations
(:func:`reduced_rhs`) and integrates them with the full network's own stepper
(:func:`simulate_reduced`): the state is the full network's, in coordinates of
the normalised teachers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from cogflex.errors import ConfigError
from cogflex.nta.config import SimulationConfig
from cogflex.nta.dynamics import NetworkBatch
from cogflex.nta.regularizers import GateRegularizer
from cogflex.nta.results import SimulationResult
from cogflex.nta.simulation import initial_state, resolve_device, simulate_batch

__all__ = ["teacher_norm", "project", "reduced_rhs", "reduced_batch", "simulate_reduced"]


def teacher_norm(teachers: torch.Tensor) -> torch.Tensor:
    """S, the common squared Frobenius norm of orthogonal teachers ``(..., M, d_out, d_in)``.

    Raises
    ------
    ValueError
        If the teachers are not mutually orthogonal with equal norms (the
        reduction assumes both).
    """
    flat = teachers.flatten(-2)
    gram = flat @ flat.transpose(-2, -1)
    norm = torch.diagonal(gram, dim1=-2, dim2=-1)
    s = norm.mean(-1)
    scale = s.abs().max().clamp_min(1e-30)
    off = gram - torch.diag_embed(norm)
    if off.abs().max() > 1e-4 * scale or (norm - s.unsqueeze(-1)).abs().max() > 1e-4 * scale:
        raise ValueError("the teacher-subspace reduction needs mutually orthogonal teachers of equal norm")
    return s


def project(weights: torch.Tensor, teachers: torch.Tensor) -> torch.Tensor:
    """Reduced coordinates w_pm = <W_p, W*_m> / S of paths ``(..., P, d_out, d_in)``, shape ``(..., P, M)``."""
    s = teacher_norm(teachers)
    return torch.einsum("...pij,...mij->...pm", weights, teachers) / s[..., None, None]


def reduced_rhs(
    w: torch.Tensor,
    c: torch.Tensor,
    task: torch.Tensor,
    *,
    norm: float | torch.Tensor,
    regularizer: GateRegularizer,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-hand sides (tau_W dw/dt, tau_c dc/dt) of the reduced model.

    Parameters
    ----------
    w
        Weight coordinates ``(B, P, M)``.
    c
        Gates ``(B, P)``.
    task
        Current teacher mixture ``(B, M)`` (one-hot for a single task).
    norm
        S, the teachers' squared norm.
    regularizer
        Gate regulariser with coefficients shaped ``(B, 1)``.
    """
    eps = task - torch.einsum("bq,bqm->bm", c, w)
    dw = c.unsqueeze(-1) * eps.unsqueeze(1)
    dc = norm * torch.einsum("bpm,bm->bp", w, eps) - regularizer.gradient(c)
    return dw, dc


def reduced_batch(
    w: torch.Tensor, c: torch.Tensor, teachers: torch.Tensor, *, grid_points: int = 1
) -> NetworkBatch:
    """Lay out the reduced state for the full network's stepper.

    Parameters
    ----------
    w
        Weight coordinates per seed ``(S, P, M)``.
    c
        Gates per seed ``(S, P)``.
    teachers
        The orthogonal teachers per seed ``(S, M, d_out, d_in)``, used to map
        the state back to full weight matrices for the recorded metrics.
    grid_points
        Networks per seed (sweep grid points), seed-major.
    """
    s = teacher_norm(teachers)  # (S,)
    root = s.sqrt()[:, None, None]
    n_seeds, paths, tasks = w.shape
    d_out, d_in = teachers.shape[-2:]
    eye = torch.eye(tasks, dtype=w.dtype, device=w.device).expand(n_seeds, tasks, tasks)
    vectors = torch.cat([root * w, root * eye], dim=1)  # (S, P + M, M): coordinates in units of W*/sqrt(S)
    last = torch.zeros(n_seeds, paths + tasks, 1, dtype=w.dtype, device=w.device)
    last[:, :paths, 0] = c
    z = torch.cat([vectors, last], dim=-1).repeat_interleave(grid_points, dim=0).contiguous()
    basis = (teachers.reshape(n_seeds, 1, tasks, d_out * d_in) / root.unsqueeze(-1)).contiguous()
    return NetworkBatch(z, paths=paths, n_seeds=n_seeds, output_dim=d_out, input_dim=d_in,
                        gate_rows=1, basis=basis)


def simulate_reduced(
    config: SimulationConfig,
    *,
    weights: torch.Tensor | None = None,
    gates: torch.Tensor | None = None,
    device: str | torch.device = "cpu",
    task_sequence: Sequence[int] | np.ndarray | None = None,
    dtype: torch.dtype = torch.float32,
    progress: bool = False,
) -> SimulationResult:
    """Run the reduced model with ``config``'s teachers, curriculum and learning rule.

    Parameters
    ----------
    weights
        Initial coordinates w ``(S, P, M)``; default: the projection of the
        seeds' random initial weights onto the teachers.
    gates
        Initial gates ``(S, P)``; default ``network.gate_init``.

    Raises
    ------
    ConfigError
        For settings the reduction does not cover (sampled inputs, per-unit
        gates, non-orthogonal teachers).
    """
    if config.learning.mode != "expected":
        raise ConfigError("learning.mode", "the reduced model follows the expected gradient; use mode = 'expected'")
    if config.network.gating != "path":
        raise ConfigError("network.gating", "the reduced model has one gate per path; use gating = 'path'")
    if config.teachers.kind != "orthogonal":
        raise ConfigError("teachers.kind", "the reduced model needs orthogonal teachers")
    if config.composition.active:
        raise ConfigError("composition", "the reduced model covers the M teachers only; simulate the full network")
    dev = resolve_device(device)
    init = initial_state(config, dtype=torch.float64, device=dev)
    w0 = project(init.weights, init.teachers) if weights is None else weights
    c0 = init.gates[:, 0] if gates is None else gates
    to = dict(dtype=dtype, device=dev)
    batch = reduced_batch(w0.to(**to), c0.to(**to), init.teachers.to(**to),
                          grid_points=len(list(config.sweep.points())))
    return simulate_batch(config, batch, task_sequence=task_sequence, progress=progress)
