"""Helpers of the pipeline tests: quiet tiny fits, pipeline files, file snapshots."""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

from cogflex.fit.fitting import FitOptions, fit
from tests.fit.helpers import write_model

#: Sampler settings of the shared fits (seconds per model on two participants).
FIT_SETTINGS = {"draws": 60, "tune": 60, "chains": 2, "seed": 1}
#: The tiny pipeline's settings (one participant: about 10 s for both models).
PIPELINE_FIT = {"draws": 40, "tune": 40, "chains": 2, "seed": 3}


def quiet_fit(data, model, out: Path, *, participants=None, **settings):
    """``fit`` with progress bars and diagnostics warnings off (tiny chains always warn)."""
    options = FitOptions(progress=False, **{**FIT_SETTINGS, **settings})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(data, model, options=options, participants=participants, out=out)


def pipeline_text(*, data_file: str = "tiny.csv", participants=("sim01",), ppc_draws: int = 3, extra_fit: str = "",
                  **fit_settings) -> str:
    """A pipeline TOML for the tiny models next to it."""
    settings = {**PIPELINE_FIT, **fit_settings}
    fit_lines = "\n".join(f"{k} = {v}" for k, v in settings.items())
    people = ", ".join(f'"{p}"' for p in participants)
    return f"""name = "tiny"
out = "out"

[data]
file = "{data_file}"
format = "ebb-and-flow"
participants = [{people}]

[fit]
models = ["tiny-forgetful.toml", "tiny-descriptive.toml"]
{fit_lines}
{extra_fit}

[ppc]
draws = {ppc_draws}
seed = 5
n_bins = 2

[report]
title = "tiny pipeline test"
"""


def write_pipeline(directory: Path, trial_file: Path, **changes) -> Path:
    """``directory/tiny.toml`` with the tiny model TOMLs and a copy of the trial file next to it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tiny.csv").write_bytes(Path(trial_file).read_bytes())
    write_model(directory, "forgetful")
    write_model(directory, "descriptive")
    path = directory / "tiny.toml"
    path.write_text(pipeline_text(**changes))
    return path


def snapshot(paths) -> dict[str, tuple[int, str]]:
    """``{name: (mtime_ns, sha256)}`` of files."""
    return {Path(p).name: (os.stat(p).st_mtime_ns, hashlib.sha256(Path(p).read_bytes()).hexdigest()) for p in paths}


def part_files(directory: Path) -> list[str]:
    """Every temporary ``*.part`` file under ``directory`` (hidden ones included)."""
    return [os.path.join(root, f) for root, _, files in os.walk(directory) for f in files if f.endswith(".part")]
