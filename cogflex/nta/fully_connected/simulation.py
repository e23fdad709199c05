"""Batched runs of the fully connected network through a blocked curriculum, and what they record."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from cogflex.errors import ConfigError, DivergenceError
from cogflex.nta.dynamics import sample_input_covariance
from cogflex.nta.fully_connected.config import FullyConnectedConfig
from cogflex.nta.fully_connected.dynamics import SecondLayerRegularizer, euler_step
from cogflex.nta.integrate import euler_steps
from cogflex.nta.teachers import orthogonal_teachers

__all__ = ["FullyConnectedResult", "simulate_fully_connected"]


@dataclass(frozen=True)
class FullyConnectedResult:
    """What :func:`simulate_fully_connected` recorded.

    Axes: V conditions (one lambda each), S seeds, blocks, steps.

    Attributes
    ----------
    config
        The settings of the run.
    regularization
        lambda of each condition, ``(V,)``.
    seeds
        The seed of each network, ``(S,)``.
    block_task
        Task of every block, ``(blocks,)``.
    second_layer
        W2 at the end of every block, ``(V, S, blocks, d_out, d_hidden)``.
    first_layer
        W1 at the end of every block, ``(V, S, blocks, d_hidden, d_in)``.
    teachers
        ``(S, M, d_out, d_in)``.
    loss
        Expected loss 1/2 ||W2 W1 - W*_m||^2 before every step, ``(V, S, steps)``.
    wall_seconds
        Wall-clock time of the simulation.
    """

    config: FullyConnectedConfig
    regularization: tuple[float, ...]
    seeds: tuple[int, ...]
    block_task: np.ndarray
    second_layer: np.ndarray
    first_layer: np.ndarray
    teachers: np.ndarray
    loss: np.ndarray
    wall_seconds: float

    @property
    def task(self) -> np.ndarray:
        """Task of every step, ``(steps,)``."""
        return np.repeat(self.block_task, self.config.block_steps)

    @property
    def times(self) -> np.ndarray:
        """Time of every step (before the update), ``(steps,)``."""
        return np.arange(self.loss.shape[-1]) * self.config.dt


def _step(first: torch.Tensor, second: torch.Tensor, target: torch.Tensor, regularizer: SecondLayerRegularizer,
          config: FullyConnectedConfig, covariance: torch.Tensor | None, loss_out: torch.Tensor) -> None:
    """:func:`euler_step` as a :data:`~cogflex.nta.integrate.StepFunction`: its loss goes into ``loss_out``."""
    loss_out.copy_(euler_step(first, second, target, regularizer, config, covariance))


def _initial_state(config: FullyConnectedConfig, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Teachers, W1, W2 of one seed and a seed for its input noise."""
    init_seed, noise_seed = np.random.SeedSequence(seed).generate_state(2, dtype=np.uint64) >> np.uint64(1)
    gen = torch.Generator().manual_seed(int(init_seed))
    teachers = orthogonal_teachers(config.tasks, config.output_dim, config.input_dim, generator=gen,
                                   dtype=torch.float64)
    std = config.weight_init_std / math.sqrt(config.input_dim)
    first = std * torch.randn(config.hidden_dim, config.input_dim, generator=gen, dtype=torch.float64)
    second = std * torch.randn(config.output_dim, config.hidden_dim, generator=gen, dtype=torch.float64)
    return teachers, first, second, int(noise_seed)


def _strengths(config: FullyConnectedConfig, regularized: bool | float | Sequence[bool | float]) -> tuple[float, ...]:
    if isinstance(regularized, bool | int | float):
        return (config.strength(regularized),)
    strengths = tuple(config.strength(r) for r in regularized)
    if not strengths:
        raise ConfigError("regularized", "needs at least one condition")
    return strengths


def simulate_fully_connected(
    config: FullyConnectedConfig, *, regularized: bool | float | Sequence[bool | float] = True,
    progress: bool = False,
) -> FullyConnectedResult:
    """Train ``config.seeds`` networks per condition through the blocked curriculum, all as one batch.

    Parameters
    ----------
    config
        The settings.
    regularized
        The condition(s): ``True`` uses ``config.regularization``, ``False``
        lambda = 0, a number overrides lambda; a sequence runs several
        conditions side by side (same teachers and initial weights per seed).
    progress
        Show a progress bar over blocks.

    Returns
    -------
    FullyConnectedResult
        W2 and W1 at every block end, the loss trace and the settings.

    Raises
    ------
    DivergenceError
        When a weight becomes NaN or infinite.
    """
    start = time.perf_counter()
    strengths = _strengths(config, regularized)
    n_var, n_seed = len(strengths), config.seeds
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        states = [_initial_state(config, seed) for seed in config.seed_values]
        teachers = torch.stack([s[0] for s in states])  # (S, M, O, D)
        first = torch.stack([s[1] for s in states]).repeat(n_var, 1, 1)  # (V*S, H, D), condition-major
        second = torch.stack([s[2] for s in states]).repeat(n_var, 1, 1)
        noise = [torch.Generator().manual_seed(s[3]) for s in states]
        lam = torch.tensor(strengths, dtype=torch.float64).repeat_interleave(n_seed)
        regularizer = SecondLayerRegularizer.build(config.regularizer, lam, config.regularizer_scope,
                                                   config.output_dim, config.hidden_dim)
        block_task = np.asarray(config.block_task)
        steps = config.block_steps
        second_rec = np.empty((config.blocks, *second.shape))
        first_rec = np.empty((config.blocks, *first.shape))
        loss_rec = torch.empty(config.blocks, steps, n_var * n_seed, dtype=torch.float64)
        for block in tqdm(range(config.blocks), disable=not progress, desc=config.name, leave=False):
            target = teachers[:, block_task[block]].repeat(n_var, 1, 1)
            covariance = None
            if config.mode == "sampled":
                covariance = torch.stack([sample_input_covariance(steps, config.input_dim, config.batch_size,
                                                                  generator=g, dtype=torch.float64)
                                          for g in noise], dim=1).repeat(1, n_var, 1, 1)  # (steps, V*S, D, D)
            step = functools.partial(_step, first, second, target, regularizer, config)
            euler_steps(step, [None] * steps if covariance is None else covariance.unbind(0),
                        loss_rec[block].unbind(0))
            if not (torch.isfinite(first).all() and torch.isfinite(second).all()):
                raise DivergenceError(f"{config.name}: weights became NaN or infinite in block {block} "
                                      f"(t = {(block + 1) * config.block_length:g}); reduce dt")
            second_rec[block] = second.numpy()
            first_rec[block] = first.numpy()
    finally:
        torch.set_num_threads(threads)

    def by_condition(x: np.ndarray) -> np.ndarray:  # (blocks, V*S, ...) -> (V, S, blocks, ...)
        return np.moveaxis(x.reshape(config.blocks, n_var, n_seed, *x.shape[2:]), 0, 2)

    loss = loss_rec.reshape(config.blocks * steps, n_var, n_seed).permute(1, 2, 0).numpy()
    return FullyConnectedResult(
        config=config, regularization=strengths, seeds=config.seed_values, block_task=block_task,
        second_layer=by_condition(second_rec), first_layer=by_condition(first_rec),
        teachers=teachers.numpy(), loss=np.ascontiguousarray(loss), wall_seconds=time.perf_counter() - start,
    )
