"""The worked Makefile (analyses/pipelines/Makefile): fits as separate rules, then comparison and report."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.fit.helpers import write_model

REPO = Path(__file__).resolve().parents[2]
MAKEFILE = REPO / "analyses" / "pipelines" / "Makefile"
MAKE = shutil.which("make")


def _make(tmp_path: Path, trial_file: Path, *targets: str) -> subprocess.CompletedProcess:
    settings = {
        "COGFLEX": f"{sys.executable} -m cogflex", "DATA": str(trial_file), "LOADER": "",
        "MODELS": "tiny-forgetful tiny-descriptive", "MODEL_DIR": str(tmp_path / "models"),
        "FIT": "--draws 30 --tune 30 --chains 1 --seed 2 --sampler pymc --per-participant",
        "PPC_DRAWS": "2", "OUT": str(tmp_path / "out"),
    }
    args = [MAKE, "-f", str(MAKEFILE), "-j", "2", *(f"{k}={v}" for k, v in settings.items()), *targets]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


def test_the_makefile_fits_compares_reports_and_reruns_only_what_changed(trial_file, tmp_path):
    if MAKE is None:
        if os.environ.get("COGFLEX_REQUIRE_MAKE"):  # CI installs make: the test must run there
            pytest.fail("GNU make is required (COGFLEX_REQUIRE_MAKE is set) but not installed")
        pytest.skip("GNU make is not installed (apt-get install make)")
    (tmp_path / "models").mkdir()
    for variant in ("forgetful", "descriptive"):
        write_model(tmp_path / "models", variant)
    first = _make(tmp_path, trial_file)
    assert first.returncode == 0, first.stderr[-3000:]
    out = tmp_path / "out"
    for name in ("fits/tiny-forgetful.nc", "fits/tiny-descriptive.nc", "comparison.csv", "report.html",
                 "report.json"):
        assert (out / name).exists(), name
    table = pd.read_csv(out / "comparison.csv")
    assert set(table["model"]) == {"tiny-forgetful", "tiny-descriptive"}
    assert first.stdout.count("-m cogflex fit ") == 2  # one rule per model (the commands make echoes)
    # nothing changed: nothing runs
    again = _make(tmp_path, trial_file)
    assert again.returncode == 0 and "-m cogflex" not in again.stdout, again.stdout
    # one model changed: only its fit, the comparison and the report run again
    time.sleep(1.1)
    (tmp_path / "models" / "tiny-descriptive.toml").touch()
    third = _make(tmp_path, trial_file)
    assert third.returncode == 0, third.stderr[-3000:]
    changed = "--model " + str(tmp_path / "models" / "tiny-descriptive.toml")
    assert third.stdout.count("-m cogflex fit ") == 1 and changed in third.stdout
    assert "-m cogflex compare " in third.stdout and "-m cogflex report " in third.stdout
