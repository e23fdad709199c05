"""Local and Ray backends run the same units with the same results; killed runs resume exactly."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from cogflex.cli import main
from cogflex.errors import ConfigError
from cogflex.executors import LocalExecutor, RayExecutor, make_executor
from cogflex.fit.fitting import FitOptions, fit
from cogflex.nta import load_config, simulate
from cogflex.nta.sweeps import run_sweep, sweep_units
from tests.fit.helpers import tiny_trials, write_model

pytestmark = pytest.mark.filterwarnings("ignore::cogflex.fit.fitting.FitWarning")

OPTIONS = FitOptions(draws=40, tune=40, chains=2, seed=5, progress=False)


def small_grid():
    config = load_config("fig5-grid-b")
    return dataclasses.replace(config, seeds=2, curriculum=dataclasses.replace(config.curriculum, duration=2.0))


@pytest.fixture(scope="module")
def ray_executor():
    executor = RayExecutor(num_cpus=2)
    yield executor
    executor.close()


def assert_same(a: xr.Dataset, b: xr.Dataset) -> None:
    assert list(a.data_vars) == list(b.data_vars)
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    for name in ("seed", "grid_point", "gate_timescale", "regularization", "block_length"):
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


# -- sweeps ----------------------------------------------------------------------------------------


def test_units_merge_into_exactly_the_one_batch_run(tmp_path):
    config = small_grid()
    assert len(sweep_units(config)) == 5
    assert_same(run_sweep(config, out=tmp_path).dataset, simulate(config).dataset)


def test_ray_sweep_equals_local_sweep(ray_executor, tmp_path):
    config = small_grid()
    local = run_sweep(config, out=tmp_path / "local", executor=LocalExecutor())
    distributed = run_sweep(config, out=tmp_path / "ray", executor=ray_executor)
    assert_same(local.dataset, distributed.dataset)


def test_changed_row_recomputes_exactly_that_unit(tmp_path):
    config = small_grid()
    lines: list[str] = []
    run_sweep(config, out=tmp_path, log=lines.append)
    axes = list(config.sweep.axes)
    name, values = axes[0]
    axes[0] = (name, (*values[:2], 0.55, *values[3:]))  # change the third row only
    changed = dataclasses.replace(config, sweep=dataclasses.replace(config.sweep, axes=tuple(axes)))
    lines.clear()
    result = run_sweep(changed, out=tmp_path, log=lines.append)
    assert any("reusing 4 of 5" in line for line in lines), lines
    assert any(line.startswith("unit 002: config changed") for line in lines), lines
    assert_same(result.dataset, simulate(changed).dataset)


def test_damaged_unit_is_recomputed(tmp_path):
    config = small_grid()
    run_sweep(config, out=tmp_path)
    unit = sorted((tmp_path / ".units" / "sweep").glob("unit_001*.unit"))[0]
    unit.write_bytes(b"not a pickle")
    lines: list[str] = []
    result = run_sweep(config, out=tmp_path, log=lines.append)
    assert any("unit 001: stored result unreadable" in line for line in lines)
    assert_same(result.dataset, simulate(config).dataset)


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 300) -> None:
    try:
        deadline = time.monotonic() + timeout
        while not ready() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ready(), "the first unit was never written"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def test_sigkilled_sweep_resumes_and_equals_an_uninterrupted_run(tmp_path):
    grid = tmp_path / "grid.toml"
    preset = Path(__file__).resolve().parents[2] / "models" / "simulation" / "fig5-grid-b.toml"
    text = preset.read_text()
    assert "duration = 7.0" in text
    grid.write_text(text.replace("duration = 7.0", "duration = 3.0"))
    out = tmp_path / "out"
    units = out / ".units" / "sweep"
    args = [sys.executable, "-m", "cogflex.cli", "sweep", str(grid), "--seeds", "6", "--out", str(out), "--quiet"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    _kill_when(proc, lambda: len(list(units.glob("*.unit"))) >= 1)
    finished = {p.name: p.stat().st_mtime_ns for p in units.glob("*.unit")}
    assert 1 <= len(finished) < 5
    assert not (out / "results.csv").exists()
    rerun = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"reusing {len(finished)} of 5" in rerun.stderr
    assert {p.name: p.stat().st_mtime_ns for p in units.glob("*.unit") if p.name in finished} == finished
    resumed = xr.open_dataset(out / "trajectories.nc", engine="h5netcdf").load()
    whole = simulate(dataclasses.replace(load_config(grid), seeds=6)).dataset
    for name in ("loss", "final_gates", "final_total_alignment", "time_to_criterion"):
        np.testing.assert_array_equal(resumed[name].values, whole[name].values, err_msg=name)


# -- per-participant fits ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def four_players():
    return tiny_trials(participants=4, sessions=2, trials_per_session=20, seed=4)


def posterior_values(tree) -> dict[str, np.ndarray]:
    post = tree["posterior"].to_dataset()
    return {name: post[name].values for name in post.data_vars}


def test_ray_fit_equals_local_fit_for_four_participants(ray_executor, four_players, tmp_path):
    model = write_model(tmp_path, "descriptive")
    local = fit(four_players, model, options=OPTIONS, out=tmp_path / "local", executor=LocalExecutor())
    distributed = fit(four_players, model, options=OPTIONS, out=tmp_path / "ray", executor=ray_executor)
    assert local.tree.attrs["participants"] == distributed.tree.attrs["participants"]
    a, b = posterior_values(local.tree), posterior_values(distributed.tree)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    np.testing.assert_array_equal(local.tree["log_likelihood"]["trial"].values,
                                  distributed.tree["log_likelihood"]["trial"].values)


def test_fit_reuses_finished_participants_and_names_what_changed(four_players, tmp_path, capsys):
    model = write_model(tmp_path, "descriptive")
    first = fit(four_players, model, options=OPTIONS, out=tmp_path / "out")
    capsys.readouterr()
    again = fit(four_players, model, options=OPTIONS, out=tmp_path / "out")
    assert "reusing 4 finished participant fit(s)" in capsys.readouterr().err
    for name, values in posterior_values(first.tree).items():
        np.testing.assert_array_equal(values, posterior_values(again.tree)[name])
    fit(four_players, model, options=dataclasses.replace(OPTIONS, draws=30), out=tmp_path / "out")
    err = capsys.readouterr().err
    assert err.count("draws changed since it was computed; recomputing") == 4, err


def test_sigkilled_fit_resumes_and_equals_an_uninterrupted_fit(four_players, tmp_path):
    from cogflex.fit.fitting import load_fit
    from cogflex.fit.simulate import to_ebb_and_flow

    model = write_model(tmp_path, "descriptive")
    csv = tmp_path / "players.csv"
    to_ebb_and_flow(four_players).to_csv(csv, index=False)

    def args(out: Path) -> list[str]:
        return [sys.executable, "-m", "cogflex.cli", "fit", str(csv), "--model", str(model), "--draws", "40",
                "--tune", "40", "--chains", "2", "--seed", "5", "--out", str(out), "--quiet"]

    reference = subprocess.run(args(tmp_path / "reference"), capture_output=True, text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr
    out = tmp_path / "out"
    units = out / ".units" / "tiny-descriptive"
    proc = subprocess.Popen(args(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    _kill_when(proc, lambda: len(list(units.glob("*.unit"))) >= 1)
    assert not (out / "tiny-descriptive.nc").exists()
    rerun = subprocess.run(args(out), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert "reusing" in rerun.stderr
    expected = posterior_values(load_fit(tmp_path / "reference" / "tiny-descriptive.nc"))
    resumed = posterior_values(load_fit(out / "tiny-descriptive.nc"))
    for name, values in expected.items():
        np.testing.assert_array_equal(values, resumed[name], err_msg=name)


# -- choosing a backend ---------------------------------------------------------------------------------


def test_backend_choice_errors_are_config_errors():
    with pytest.raises(ConfigError, match="unknown backend"):
        make_executor("dask")
    with pytest.raises(ConfigError, match="only used with --backend ray"):
        make_executor("local", address="auto")


def test_cli_rejects_an_address_without_ray(tmp_path, capsys):
    assert main(["sweep", "fig5-grid-b", "--seeds", "1", "--address", "auto", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cogflex: error:") and len(err.splitlines()) == 1 and "address" in err


def test_changed_data_of_one_participant_refits_only_that_participant(four_players, tmp_path, capsys):
    model = write_model(tmp_path, "descriptive")
    fit(four_players, model, options=OPTIONS, out=tmp_path / "out")
    trials = four_players.trials
    victim = trials["participant"].unique()[2]
    rows = trials.index[trials["participant"] == victim]
    changed = four_players.with_trials(trials.drop(index=rows[7]).reset_index(drop=True))
    capsys.readouterr()
    fit(changed, model, options=OPTIONS, out=tmp_path / "out")
    err = capsys.readouterr().err
    assert "reusing 3 finished participant fit(s)" in err, err
    assert f"tiny-descriptive {victim}: data changed" in err, err


def test_regime_map_benchmark_runs_on_cpu(tmp_path):
    script = Path(__file__).resolve().parents[2] / "analyses" / "bench_regime_map.py"
    done = subprocess.run([sys.executable, str(script), "--size", "3", "--seeds", "1", "--device", "cpu"],
                          capture_output=True, text=True, timeout=300, cwd=script.parent)
    assert done.returncode == 0, done.stderr
    assert '"networks": 9' in done.stdout and '"device": "cpu"' in done.stdout
