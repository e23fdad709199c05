"""Alignment metrics and the per-switch bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cogflex.nta.metrics import SwitchTracker, alignment, total_alignment
from cogflex.nta.teachers import orthogonal_teachers


@pytest.fixture
def teachers() -> torch.Tensor:
    return orthogonal_teachers(2, 3, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def test_specialised_paths_have_alignment_one_and_zero(teachers):
    paths = torch.stack([2.0 * teachers[1], 0.5 * teachers[0]])  # path 0 = B, path 1 = A (scaled)
    align = alignment(paths, teachers)
    torch.testing.assert_close(align, torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64))
    assert total_alignment(paths, teachers).item() == pytest.approx(1.0)


def test_identical_paths_mixing_both_teachers(teachers):
    mix = 0.8 * teachers[0] + 0.6 * teachers[1]
    paths = torch.stack([mix, mix])
    # row-wise cosine with A is 0.8, with B 0.6: any matching averages to 0.7
    assert total_alignment(paths, teachers).item() == pytest.approx(0.7)


def test_metrics_broadcast_over_leading_dimensions(teachers):
    paths = torch.randn(4, 5, 2, 3, 8, dtype=torch.float64)
    assert alignment(paths, teachers).shape == (4, 5, 2, 2)
    assert total_alignment(paths, teachers).shape == (4, 5)


def brute_force(loss: np.ndarray, tasks: np.ndarray, criterion: float, curve: int):
    """Segments, first crossings, end losses and switch curves, from the whole run at once."""
    out = []
    for row_loss, row_task in zip(loss, tasks):
        starts = [0] + [t for t in range(1, len(row_task)) if row_task[t] != row_task[t - 1]]
        ends = starts[1:] + [len(row_task)]
        segs = []
        for a, b in zip(starts, ends):
            below = np.flatnonzero(row_loss[a:b] < criterion)
            segs.append((a, below[0] if below.size else np.nan, row_loss[b - 1], row_loss[a : min(b, a + curve)]))
        out.append(segs)
    return out


@pytest.mark.parametrize("chunk", [1, 7, 50, 1000])
def test_switch_tracker_matches_brute_force_for_any_chunking(chunk):
    rng = np.random.default_rng(0)
    n_net, n_steps = 3, 200
    tasks = np.stack([(np.arange(n_steps) // block) % 2 for block in (13, 40, 7)])
    loss = rng.uniform(0, 1, size=(n_net, n_steps))
    tracker = SwitchTracker(n_net, 40, criterion=0.1, curve_steps=4)
    for start in range(0, n_steps, chunk):
        stop = min(start + chunk, n_steps)
        cols = tasks[:, max(start - 1, 0) : min(stop + 1, n_steps)]
        if start == 0:
            cols = np.concatenate([cols[:, :1], cols], axis=1)
        tracker.update(start, loss[:, start:stop], cols, is_last=stop == n_steps)
    steps = tracker.steps_to_criterion()
    for b, segs in enumerate(brute_force(loss, tasks, 0.1, 4)):
        assert tracker.n_segments[b] == len(segs)
        for k, (start, first, end_loss, curve) in enumerate(segs):
            assert tracker.start_step[b, k] == start
            np.testing.assert_equal(steps[b, k], first)
            assert tracker.end_loss[b, k] == end_loss
            np.testing.assert_array_equal(tracker.curve[b, k, : len(curve)], curve)
