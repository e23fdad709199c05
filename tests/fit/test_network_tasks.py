"""The task mapping's teachers and inputs inside the fitter's network: task m answers with feature m."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from cogflex.fit.network import _input_index, _inputs, task_teachers


def test_two_task_teachers_are_identity_blocks():
    eye, zeros = torch.eye(4, dtype=torch.float64), torch.zeros(4, 4, dtype=torch.float64)
    expected = torch.stack([torch.cat([eye, zeros], 1), torch.cat([zeros, eye], 1)])
    assert torch.equal(task_teachers(2, 4), expected)


@pytest.mark.parametrize(("n_tasks", "n_responses"), [(2, 4), (2, 3), (3, 2), (1, 5)])
def test_each_teacher_answers_with_its_own_feature(n_tasks, n_responses):
    teachers = task_teachers(n_tasks, n_responses)
    xs = _inputs(n_tasks, n_responses, torch.float64)
    features = np.array(list(itertools.product(range(n_responses), repeat=n_tasks)))
    rows = xs[torch.as_tensor(_input_index(features, n_responses))]
    assert rows.sum(-1).eq(n_tasks).all()
    for m in range(n_tasks):
        answers = rows @ teachers[m].T  # (combinations, R)
        assert torch.equal(answers, torch.eye(n_responses, dtype=torch.float64)[features[:, m]])
