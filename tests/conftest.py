"""Shared fixtures: small configs that run in a fraction of a second."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from cogflex.nta.config import Curriculum, Learning, Network, Regularizer, SimulationConfig, Sweep, Teachers


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One torch thread for the whole suite.

    The fitting layer's per-trial network is thousands of tiny batched products; with two OpenMP threads on a
    busy two-core machine each waits on the other (measured: 7 s instead of 0.03 s per table). run_network
    takes one thread itself; this also covers the reference computations and simulations of the tests.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True, scope="session")
def _bundled_presets_only(tmp_path_factory):
    """No user preset folders (``$COGFLEX_MODELS``, ``~/.config/cogflex/models``): the suite sees the bundled presets.

    Set in ``os.environ``, so the command-line subprocesses of the tests inherit it; a test that needs a user
    folder sets ``COGFLEX_MODELS`` itself.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("COGFLEX_MODELS", raising=False)
        patch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
        yield


def small_config(**learning) -> SimulationConfig:
    """A 6-in / 3-out network, two tasks, short blocks: milliseconds per run."""
    base = dict(dt=0.01, weight_timescale=0.5, gate_timescale=0.05, regularization=0.2,
                regularizer=Regularizer(nonnegative=1.0, l1=5.0), mode="expected", batch_size=16)
    base.update(learning)
    return SimulationConfig(
        name="small",
        seeds=3,
        network=Network(input_dim=6, output_dim=3, paths=2),
        teachers=Teachers(tasks=2),
        curriculum=Curriculum(block_length=0.5, duration=3.0),
        learning=Learning(**base),
    )


@pytest.fixture
def small() -> SimulationConfig:
    """See :func:`small_config`."""
    return small_config()


@pytest.fixture
def small_grid() -> SimulationConfig:
    """:func:`small_config` with a 2 x 2 sweep over block length and gate timescale."""
    return dataclasses.replace(
        small_config(mode="sampled"),
        sweep=Sweep(axes=(("block_length", (0.5, 0.3)), ("gate_timescale", (0.05, 0.2)))),
    )
