"""`cogflex run`: a whole pipeline on tiny data, its outputs, resuming, interruption and configuration errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import xarray as xr

import cogflex.fit.fitting as fitting
from cogflex.errors import InterruptedFit
from cogflex.fit.compare import COMPARISON_COLUMNS
from cogflex.fit.fitting import load_fit
from cogflex.fit.ppc import PPC_COLUMNS
from cogflex.pipeline import load_pipeline, pipelines_dir, run_pipeline
from cogflex.resources import data_path
from tests.data.helpers import assert_one_line_error, cli
from tests.pipeline.helpers import part_files, pipeline_text, snapshot, write_pipeline

MODELS = ("tiny-forgetful", "tiny-descriptive")


def _run(toml: Path, **kwargs) -> list[str]:
    lines: list[str] = []
    run_pipeline(toml, progress=False, log=lines.append, **kwargs)
    return lines


def _line(lines: list[str], start: str) -> str:
    found = [line for line in lines if line.startswith(start)]
    assert len(found) == 1, (start, lines)
    return found[0]


@pytest.fixture(scope="module")
def first_run(trial_file, tmp_path_factory):
    """The tiny pipeline (sim01 only, both tiny models, 2 x 40 draws, 3 replications), run once from scratch."""
    directory = tmp_path_factory.mktemp("pipeline")
    toml = write_pipeline(directory, trial_file)
    lines: list[str] = []
    result = run_pipeline(toml, progress=False, log=lines.append)
    out = directory / "out"
    return SimpleNamespace(dir=directory, toml=toml, out=out, log=lines, result=result,
                           fits=snapshot(sorted((out / "fits").glob("*.nc"))))


def _copy(first_run, tmp_path) -> SimpleNamespace:
    """A copy of the finished pipeline directory (file times kept) to change and rerun."""
    directory = tmp_path / "copy"
    shutil.copytree(first_run.dir, directory)
    return SimpleNamespace(dir=directory, toml=directory / "tiny.toml", out=directory / "out")


def test_outputs_of_a_run(first_run, data):
    """Fits, comparison.csv, PPC tables, report.html/json, pipeline.json and the pipeline file's copy are written."""
    out = first_run.out
    assert first_run.result.out == out and first_run.result.report == out / "report.html"
    assert sorted(p.name for p in (out / "fits").glob("*.nc")) == sorted(f"{m}.nc" for m in MODELS)
    for model in MODELS:
        tree = load_fit(out / "fits" / f"{model}.nc")
        assert tree["posterior"].sizes["draw"] == 40 and tree["posterior"].sizes["chain"] == 2
        assert json.loads(tree.attrs["participants"]) == ["sim01"]
        assert (out / "fits" / f"{model}.summary.json").exists()
        assert "not fitted yet" in _line(first_run.log, f"fit {model}: not")
        ppc = pd.read_csv(out / "ppc" / f"{model}.csv", dtype={"participant": str, "practice_bin": str})
        assert list(ppc.columns) == PPC_COLUMNS and set(ppc["participant"]) == {"sim01", "all"}
        assert ppc["replications"].max() == 3
    comparison = pd.read_csv(out / "comparison.csv", dtype={"participant": str})
    assert list(comparison.columns) == COMPARISON_COLUMNS
    assert sorted(zip(comparison["scope"], comparison["participant"])) == sorted(
        [("pooled", "all")] * 2 + [("participant", "sim01")] * 2)
    html = (out / "report.html").read_text()
    assert "<title>tiny pipeline test</title>" in html and "<h2 id='ppc'>" in html
    report = json.loads((out / "report.json").read_text())
    assert report["pipeline"]["fit"]["draws"] == 40 and report["ppc"]["settings"]["draws"] == 3
    manifest = json.loads((out / "pipeline.json").read_text())
    digest = load_fit(out / "fits" / "tiny-forgetful.nc").attrs["data_digest"]
    assert manifest["data_digest"] == digest == report["data"]["data_digest"]
    assert digest != data.digest()  # the hash of sim01's trials, not of the whole file
    steps = [s["step"] for s in manifest["steps"]]
    assert steps == ["data", "fit tiny-forgetful", "fit tiny-descriptive", "comparison", "ppc tiny-forgetful",
                     "ppc tiny-descriptive", "report"]
    assert all(s["seconds"] >= 0 for s in manifest["steps"])
    assert [s["reused"] for s in manifest["steps"] if s["step"].startswith("fit ")] == [False, False]
    assert manifest["pipeline"]["data"]["participants"] == ["sim01"]
    assert (out / "pipeline.toml").read_bytes() == first_run.toml.read_bytes()
    assert not part_files(first_run.dir)
    assert first_run.log[-1].startswith(f"wrote {out / 'report.html'}")


def test_rerun_reuses_fits_and_checks(first_run):
    """A second run recomputes nothing: fit files untouched, 'not recomputed' and PPC tables reused."""
    lines = _run(first_run.toml)
    for model in MODELS:
        assert "finished fit found, not recomputed" in _line(lines, f"fit {model}:")
        assert _line(lines, f"ppc {model}:").startswith(f"ppc {model}: reusing")
    assert snapshot(sorted((first_run.out / "fits").glob("*.nc"))) == first_run.fits
    manifest = json.loads((first_run.out / "pipeline.json").read_text())
    assert [s["reused"] for s in manifest["steps"] if s["step"].startswith("fit ")] == [True, True]
    assert not part_files(first_run.dir)


def test_changed_draws_refit_both_models(first_run, tmp_path):
    """Changing fit.draws names the change and refits every model (and recomputes their checks)."""
    run = _copy(first_run, tmp_path)
    run.toml.write_text(pipeline_text(draws=30))
    lines = _run(run.toml)
    for model in MODELS:
        assert _line(lines, f"fit {model}: draws").startswith(f"fit {model}: draws changed (40 -> 30); refitting")
        assert load_fit(run.out / "fits" / f"{model}.nc")["posterior"].sizes["draw"] == 30
        assert _line(lines, f"ppc {model}:").startswith(f"ppc {model}: 3 replications")  # recomputed
    assert snapshot(sorted((run.out / "fits").glob("*.nc"))) != first_run.fits
    assert json.loads((run.out / "report.json").read_text())["pipeline"]["fit"]["draws"] == 30


def test_corrupt_fit_is_refitted(first_run, tmp_path):
    """A truncated fit file is reported unusable and refitted; the other fit and its checks are reused."""
    run = _copy(first_run, tmp_path)
    broken = run.out / "fits" / "tiny-descriptive.nc"
    raw = broken.read_bytes()
    broken.write_bytes(raw[: len(raw) // 2])
    lines = _run(run.toml)
    line = _line(lines, "fit tiny-descriptive: existing")
    assert line.startswith("fit tiny-descriptive: existing file unusable (") and line.endswith("; refitting")
    assert "tiny-descriptive.nc" in line
    assert "not recomputed" in _line(lines, "fit tiny-forgetful:")
    assert load_fit(broken)["posterior"].sizes["draw"] == 40
    assert snapshot([run.out / "fits" / "tiny-forgetful.nc"]) == {"tiny-forgetful.nc": first_run.fits[
        "tiny-forgetful.nc"]}
    assert _line(lines, "ppc tiny-forgetful:").startswith("ppc tiny-forgetful: reusing")
    assert "reusing" not in _line(lines, "ppc tiny-descriptive:")
    assert (run.out / "report.html").exists()


def test_interrupted_run_keeps_finished_fits_and_resumes(trial_file, tmp_path, monkeypatch):
    """Interrupted while writing the second fit: the first fit is kept, nothing half-written; a rerun resumes."""
    toml = write_pipeline(tmp_path / "p", trial_file)
    out = tmp_path / "p" / "out"
    real_fit = fitting.fit
    calls: list[str] = []

    def half_written(self, path, *args, **kwargs):
        Path(path).write_bytes(b"\x89HDF\r\n\x1a\n partial")
        raise InterruptedFit("sampling interrupted: nothing was written")

    def interrupted_fit(data, model, **kwargs):
        calls.append(model.name)
        if len(calls) == 2:
            monkeypatch.setattr(xr.DataTree, "to_netcdf", half_written)
        return real_fit(data, model, **kwargs)

    monkeypatch.setattr(fitting, "fit", interrupted_fit)
    with pytest.raises(InterruptedFit):
        _run(toml)
    assert calls == list(MODELS)
    assert load_fit(out / "fits" / "tiny-forgetful.nc")["posterior"].sizes["draw"] == 40
    assert sorted(p.name for p in (out / "fits").iterdir() if not p.name.startswith(".")) == [
        "tiny-forgetful.nc", "tiny-forgetful.summary.json"]
    assert not part_files(out)
    assert not (out / "report.html").exists() and not (out / "comparison.csv").exists()
    before = snapshot([out / "fits" / "tiny-forgetful.nc"])

    monkeypatch.undo()
    lines = _run(toml)
    assert "not recomputed" in _line(lines, "fit tiny-forgetful:")
    assert _line(lines, "fit tiny-descriptive: not").startswith("fit tiny-descriptive: not fitted yet")
    assert snapshot([out / "fits" / "tiny-forgetful.nc"]) == before
    assert load_fit(out / "fits" / "tiny-descriptive.nc")["posterior"].sizes["draw"] == 40
    assert (out / "report.html").exists() and (out / "report.json").exists()
    assert not part_files(out)


# -- command line -----------------------------------------------------------------------------------------------


def test_cli_run_resumes_into_out(first_run, tmp_path, capsys):
    """`cogflex run FILE --out DIR` on a finished pipeline: exit 0, fits not recomputed, report rewritten."""
    run = _copy(first_run, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    shutil.move(run.out, elsewhere)
    status, out, err = cli(capsys, "run", run.toml, "--out", elsewhere, "--quiet")
    assert status == 0, err
    assert out.count("not recomputed") == 2 and f"wrote {elsewhere / 'report.html'}" in out
    assert not run.out.exists()
    assert snapshot(sorted((elsewhere / "fits").glob("*.nc"))) == first_run.fits


def test_cli_interrupted_run_exits_130(trial_file, tmp_path, monkeypatch, capsys):
    """An interrupted fit makes `cogflex run` exit 130 with one line on stderr and no fit file."""
    toml = write_pipeline(tmp_path / "p", trial_file)

    def interrupted_fit(*args, **kwargs):
        raise InterruptedFit("sampling interrupted: nothing was written")

    monkeypatch.setattr(fitting, "fit", interrupted_fit)
    status, _, err = cli(capsys, "run", toml, "--quiet")
    assert status == 130
    assert err.strip().count("\n") == 0 and err.startswith("cogflex: ") and "interrupted" in err
    assert "Traceback" not in err
    assert not list((tmp_path / "p").rglob("*.nc")) and not part_files(tmp_path / "p")


@pytest.mark.parametrize(("change", "words"), [
    ({"extra_fit": "drawz = 3"}, ["fit.drawz", "unknown key"]),
    ({"ppc_draws": 1}, ["ppc.draws", "at least 2"]),
    ({"data_file": "nosuch.csv"}, ["nosuch.csv"]),
    ({"chains": 0}, ["fit.chains", "integer >= 1"]),
    ({"seed": -1}, ["fit.seed", "0 to 2^63 - 1"]),
    ({"draws": 10, "chains": 1}, ["fit.draws", "PSIS-LOO needs at least 25"]),
])
def test_cli_run_config_errors(trial_file, tmp_path, capsys, change, words):
    """Bad pipeline files: exit 2 with one line naming the key (and the pipeline file) or the missing data file,
    and no output folder left behind (an empty one was made before the data were read)."""
    toml = write_pipeline(tmp_path / "p", trial_file, **change)
    status, _, err = cli(capsys, "run", toml, "--quiet")
    assert_one_line_error(status, err, *words)
    assert err.startswith("cogflex: error:")
    if "data_file" not in change:
        assert str(toml) in err
    assert not list((tmp_path / "p").rglob("*.nc"))
    assert not (tmp_path / "p" / "out").exists()


def test_cli_run_without_data_file(trial_file, tmp_path, capsys):
    """A pipeline without data.file: exit 2, one line naming data.file and the pipeline file."""
    toml = write_pipeline(tmp_path / "p", trial_file)
    toml.write_text("\n".join(line for line in toml.read_text().splitlines() if not line.startswith("file =")))
    status, _, err = cli(capsys, "run", toml, "--quiet")
    assert_one_line_error(status, err, "data.file", "missing", str(toml))
    assert not (tmp_path / "p" / "out").exists()


def test_cli_run_missing_pipeline_file(tmp_path, capsys):
    """A pipeline file that does not exist is named."""
    status, _, err = cli(capsys, "run", tmp_path / "none.toml")
    assert_one_line_error(status, err, "none.toml")


def test_demo_preset_resolves():
    """The bundled demo pipeline loads and its data file is the bundled synthetic players (relative path)."""
    pipe = load_pipeline("demo")
    assert pipe.base == str(pipelines_dir())
    assert pipe.path(pipe.data.file) == data_path("synthetic/flexible_players.csv.gz")
    assert set(pipe.fit.models) == {"flexible", "forgetful", "descriptive"}


def test_cli_run_unknown_preset_lists_the_pipeline_presets(capsys):
    status, _, err = cli(capsys, "run", "no-such-pipeline")
    assert_one_line_error(status, err, "unknown preset 'no-such-pipeline'", "pipelines presets: demo")


def test_a_pipeline_in_a_user_folder_is_a_preset(tmp_path, monkeypatch):
    (tmp_path / "pipelines").mkdir()
    study = tmp_path / "pipelines" / "study.toml"
    study.write_text('[data]\nfile = "trials.csv.gz"\n')
    monkeypatch.setenv("COGFLEX_MODELS", str(tmp_path))
    pipe = load_pipeline("study")
    assert pipe.name == "study" and pipe.path(pipe.data.file) == tmp_path / "pipelines" / "trials.csv.gz"


def test_sigkill_loses_at_most_the_fit_in_progress(trial_file, tmp_path, first_run):
    """`cogflex run` killed with SIGKILL after its first fit: the rerun reuses that fit and finishes the rest,
    with the results of an uninterrupted run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    toml = write_pipeline(tmp_path / "p", trial_file)
    out = tmp_path / "p" / "out"
    first = out / "fits" / "tiny-forgetful.nc"
    proc = subprocess.Popen([sys.executable, "-m", "cogflex.cli", "run", str(toml), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.exists(), "the first fit was never written"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "report.html").exists()
    load_fit(first)  # complete: renamed into place only when written
    # whatever the kill left half-written is still under a temporary name, never under a fit's name
    assert all(p.name.startswith(".") for p in part_files(out) for p in [Path(p)])
    before = snapshot([first])
    # what a kill in the middle of writing leaves (atomic_path's temporary name), planted to be sure of one
    (out / "fits" / ".tiny-descriptive.nc.k1ll3d.part").write_bytes(b"\x89HDF\r\n\x1a\n partial")
    lines = _run(toml)
    assert "not recomputed" in _line(lines, "fit tiny-forgetful:")
    assert snapshot([first]) == before
    assert (out / "report.html").exists() and load_fit(out / "fits" / "tiny-descriptive.nc")
    assert not part_files(out)
    assert ".tiny-descriptive.nc.k1ll3d.part" in _line(lines, "removed ")
    # the same fits and comparison as the uninterrupted run (same seeds)
    for name in ("tiny-forgetful.nc", "tiny-descriptive.nc"):
        resumed, whole = load_fit(out / "fits" / name), load_fit(first_run.out / "fits" / name)
        for group in ("posterior", "sample_stats", "log_likelihood"):
            xr.testing.assert_equal(resumed[group].to_dataset(), whole[group].to_dataset())
    pd.testing.assert_frame_equal(pd.read_csv(out / "comparison.csv"), pd.read_csv(first_run.out / "comparison.csv"))
