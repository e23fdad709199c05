"""Fixtures of the pipeline tests: tiny fits made once per session and shared (read-only)."""

from __future__ import annotations

import pandas as pd
import pytest

from cogflex.data import load_trials
from cogflex.fit.compare import compare_fits, load_fits
from cogflex.fit.ppc import posterior_predictive_check
from cogflex.fit.simulate import to_ebb_and_flow
from tests.fit.helpers import tiny_trials, write_model
from tests.pipeline.helpers import quiet_fit

#: Replications of the shared posterior predictive table (small: the mean then lies inside the 90% band).
PPC_DRAWS = 4


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("shared")


@pytest.fixture(scope="session")
def trial_file(shared_dir):
    """Two participants x 3 sessions x 20 trials as an Ebb and Flow export."""
    path = shared_dir / "tiny.csv"
    to_ebb_and_flow(tiny_trials()).to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def data(trial_file):
    return load_trials(trial_file, "ebb-and-flow")


@pytest.fixture(scope="session")
def model_files(shared_dir):
    return {v: write_model(shared_dir, v) for v in ("forgetful", "descriptive")}


@pytest.fixture(scope="session")
def fit_files(shared_dir, data, model_files):
    """tiny-forgetful and tiny-descriptive fitted to both participants (2 chains x 60 draws); do not modify."""
    out = shared_dir / "fits"
    return {v: quiet_fit(data, model_files[v], out).path for v in ("forgetful", "descriptive")}


@pytest.fixture(scope="session")
def fits(fit_files):
    return load_fits(list(fit_files.values()))


@pytest.fixture(scope="session")
def comparison(fits):
    return compare_fits(fits)


@pytest.fixture(scope="session")
def ppc_table(fits, data):
    return pd.concat([posterior_predictive_check(t, data, draws=PPC_DRAWS, seed=3, bins=3)
                      for t in fits.trees.values()], ignore_index=True)
