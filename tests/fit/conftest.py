"""Fixtures of the fitting-layer tests: tiny trial tables and model specs (one torch thread: tests/conftest.py)."""

from __future__ import annotations

import pytest

from cogflex.fit.models import load_model
from tests.fit.helpers import tiny_trials, write_model


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
