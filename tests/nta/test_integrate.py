"""The shared Euler step loop: the same steps as calling the step by hand, events just before their steps."""

from __future__ import annotations

import pytest
import torch

from cogflex.nta.dynamics import sample_input_covariance
from cogflex.nta.integrate import advance, euler_steps
from tests.nta.test_dynamics import D_IN, DT, N, S, make_batch


def learning_batch():
    batch, *_, reg = make_batch("path")
    batch.set_learning(torch.full((batch.n_networks,), 0.01, dtype=DT), torch.full((batch.n_networks,), 0.05, dtype=DT),
                       reg)
    return batch


@pytest.mark.parametrize("sampled", [False, True])
def test_advance_takes_the_same_steps_as_the_step_by_hand(sampled):
    cov = sample_input_covariance(S, D_IN, N, generator=torch.Generator().manual_seed(2), dtype=DT) if sampled else None
    by_hand, looped = learning_batch(), learning_batch()
    out_hand = torch.empty(by_hand.n_networks, 1, 1, dtype=DT)
    for _ in range(7):
        by_hand.step(cov, out_hand)
    out = torch.empty_like(out_hand)
    advance(looped, 7, cov, loss=out)
    assert torch.equal(looped.z, by_hand.z) and torch.equal(out, out_hand)
    advance(looped, 3)  # a scratch loss buffer
    assert not torch.equal(looped.z, by_hand.z)


def test_euler_steps_calls_events_just_before_their_steps():
    calls = []
    covs = [torch.tensor(float(j)) for j in range(6)]
    losses = [torch.empty(()) for _ in range(6)]

    def step(cov, loss):
        calls.append(("step", int(cov)))
        loss.fill_(cov)

    euler_steps(step, covs, losses, events={0, 2, 5}, on_event=lambda j: calls.append(("event", j)))
    assert calls == [("event", 0), ("step", 0), ("step", 1), ("event", 2), ("step", 2), ("step", 3), ("step", 4),
                     ("event", 5), ("step", 5)]
    assert [float(x) for x in losses] == list(range(6))


def test_euler_steps_needs_one_loss_buffer_per_step():
    with pytest.raises(ValueError):
        euler_steps(lambda cov, loss: None, [None] * 3, [torch.empty(())] * 2)
