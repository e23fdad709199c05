"""The Euler step loop shared by the package's torch integrators.

All the networks here learn by Euler steps of a gradient flow, and every
torch integrator runs the same loop: take a run of steps, each under its own input
covariance (``None`` for the expected gradient), write each step's loss into
a buffer, and stop just before some steps to change the task or read the
state out. :func:`euler_steps` is that loop, for any step function;
:func:`advance` is its common case for a :class:`~cogflex.nta.dynamics.NetworkBatch`:
n steps under one covariance (the sub-steps of one trial).

Callers keep their own recording: the simulator snapshots the state at its
log points (:mod:`cogflex.nta.simulation`), the mechanism's integrator at
its record points (:mod:`cogflex.nta.mechanism`), the fitter reads the output
error before each trial (:mod:`cogflex.fit.network`), and the fully connected
network has its own step (:mod:`cogflex.nta.fully_connected`).

The loop adds nothing per step but the call: a step of a small batch costs
only tens of microseconds, nearly all of it per-operation overhead, so any
extra work per step would show. (The numpy two-variable integrator,
:func:`cogflex.nta.mechanism.simulate_two_variable`, keeps its own loop.)
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence

import torch

from cogflex.nta.dynamics import NetworkBatch

__all__ = ["StepFunction", "euler_steps", "advance"]

#: One Euler step in place: ``step(covariance, loss_out)`` with the input
#: covariance (``None``: the expected gradient) and a buffer receiving the loss.
StepFunction = Callable[[torch.Tensor | None, torch.Tensor], None]


def euler_steps(
    step: StepFunction,
    covariances: Sequence[torch.Tensor | None],
    losses: Sequence[torch.Tensor],
    *,
    events: Container[int] = (),
    on_event: Callable[[int], None] | None = None,
) -> None:
    """Take ``len(covariances)`` Euler steps: step j is ``step(covariances[j], losses[j])``.

    Parameters
    ----------
    step
        The Euler step, e.g. :meth:`NetworkBatch.step <cogflex.nta.dynamics.NetworkBatch.step>`.
    covariances
        Input covariance of every step (``None`` entries for the expected gradient).
    losses
        Loss buffer of every step, as long as ``covariances`` (the same buffer
        may repeat: it then holds the loss of the last step that wrote it).
    events
        Steps (counted from 0) before which ``on_event`` is called, e.g. task
        changes and log points; a set, for fast membership tests.
    on_event
        ``on_event(j)``, called just before step j for every j in ``events``.
    """
    if on_event is None:
        for covariance, loss in zip(covariances, losses, strict=True):
            step(covariance, loss)
        return
    for j, (covariance, loss) in enumerate(zip(covariances, losses, strict=True)):
        if j in events:
            on_event(j)
        step(covariance, loss)


def advance(
    batch: NetworkBatch, n_steps: int, covariance: torch.Tensor | None = None, *, loss: torch.Tensor | None = None,
) -> None:
    """Advance every network of ``batch`` by ``n_steps`` Euler steps under one input covariance, in place.

    Parameters
    ----------
    batch
        The networks, with rates and regulariser set (:meth:`NetworkBatch.set_learning
        <cogflex.nta.dynamics.NetworkBatch.set_learning>`) and the task set.
    n_steps
        Number of steps.
    covariance
        Input covariance per seed ``(S, d_in, d_in)`` for every step, or
        ``None`` for the expected gradient.
    loss
        ``(B, 1, 1)`` buffer receiving twice the data loss before the last
        step (see :meth:`NetworkBatch.step <cogflex.nta.dynamics.NetworkBatch.step>`);
        a scratch buffer when ``None``.
    """
    if loss is None:
        loss = torch.empty(batch.n_networks, 1, 1, dtype=batch.z.dtype, device=batch.z.device)
    euler_steps(batch.step, (covariance,) * n_steps, (loss,) * n_steps)
