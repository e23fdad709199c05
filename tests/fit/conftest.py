"""Fixtures of the fitting-layer tests: one torch thread, tiny trial tables and model specs."""

from __future__ import annotations

import pytest
import torch

from cogflex.fit.spec import load_model
from tests.fit.helpers import tiny_trials, write_model


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    # The per-trial network does thousands of tiny batched products; with two OpenMP threads on a busy
    # two-core machine each one waits on the other (measured: 7 s instead of 0.03 s per table). run_network
    # now takes one thread itself; this also covers the reference computations and simulations here.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def trials():
    """Two participants x 3 sessions x 20 trials, first observed session 3 (40 practice trials before)."""
    return tiny_trials()


@pytest.fixture(scope="session")
def spec_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def flexible(spec_dir):
    return load_model(write_model(spec_dir, "flexible"))


@pytest.fixture(scope="session")
def forgetful(spec_dir):
    return load_model(write_model(spec_dir, "forgetful"))


@pytest.fixture(scope="session")
def descriptive(spec_dir):
    return load_model(write_model(spec_dir, "descriptive"))
