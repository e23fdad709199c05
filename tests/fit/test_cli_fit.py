"""``cogflex simulate-data`` and ``cogflex fit`` on the command line: a round trip and the one-line errors."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cogflex.data import load_trials
from cogflex.fit.simulate import to_ebb_and_flow
from tests.data.helpers import EBB_HEADER, assert_one_line_error, cli
from tests.fit.helpers import model_dict, toml_text, write_model


@pytest.fixture(scope="module")
def trial_file(tmp_path_factory, trials):
    """The tiny trial table as an Ebb and Flow export (no simulation needed)."""
    path = tmp_path_factory.mktemp("data") / "tiny.csv"
    to_ebb_and_flow(trials).to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_simulate_data_then_fit(tmp_path, capsys):
    data = tmp_path / "X.csv"
    status, out, err = cli(capsys, "simulate-data", "--model", "forgetful", "--design", "participants=2,sessions=5",
                           "--out", data, "--seed", "2")
    assert status == 0, err
    assert "forgetful: simulated 700 trials of 2 participant(s)" in out
    assert data.read_text().splitlines()[0] == EBB_HEADER
    params = json.loads((tmp_path / "X.params.json").read_text())
    assert params["model"] == "forgetful" and params["seed"] == 2
    assert set(params["parameters"]["timescale"]) == {"sim01", "sim02"}
    loaded = load_trials(data, "ebb-and-flow")
    assert loaded.n_trials == 700 and loaded.participants == ["sim01", "sim02"]
    assert loaded.trials["session"].min() == 150  # the default design starts at gameplay 150

    out_dir = tmp_path / "fit"
    status, out, err = cli(capsys, "fit", data, "--model", "descriptive", "--draws", "30", "--tune", "30",
                           "--chains", "1", "--out", out_dir, "--quiet")
    assert status == 0, err
    assert (out_dir / "descriptive.nc").exists() and (out_dir / "descriptive.summary.json").exists()
    summary = json.loads((out_dir / "descriptive.summary.json").read_text())
    for key in ("model", "n_trials", "participants", "rhat_max", "ess_bulk_min", "divergences", "wall_seconds",
                "parameters"):
        assert key in summary
    assert summary["model"] == "descriptive" and summary["participants"] == ["sim01", "sim02"]
    assert summary["sampler"] == "nutpie"  # the default (auto) when nutpie is installed
    assert "descriptive: " in out and f"wrote {out_dir / 'descriptive.nc'}" in out
    assert "WARNING: bulk ESS" in out  # 30 draws: the diagnostics say so


def test_simulate_data_with_given_parameters(tmp_path, capsys):
    data = tmp_path / "d.csv"
    values = "acc_intercept=2,rt_intercept=-0.7,rt_sigma=0.3,rt_shift=0.5"
    coefficients = ",".join(f"rt_{t}=0.1" for t in ("switch", "log_practice", "switch_x_log_practice", "incongruent",
                                                    "switch_x_incongruent", "log_run"))
    coefficients += "," + ",".join(f"acc_{t}=-0.5" for t in ("switch", "incongruent", "log_practice",
                                                            "switch_x_incongruent"))
    status, out, err = cli(capsys, "simulate-data", "--model", "descriptive", "--design",
                           "participants=1,sessions=3,trials_per_session=30", "--params", values, "--params",
                           coefficients, "--out", data)
    assert status == 0, err
    table = pd.read_csv(data)
    assert len(table) == 90 and set(table["resp_dir"]) <= set("UDLR")
    params = json.loads((tmp_path / "d.params.json").read_text())["parameters"]
    assert params["rt_sigma"] == 0.3 and params["acc_switch"] == -0.5
    # the params file written by simulate-data is accepted back by --params
    again = tmp_path / "again.csv"
    status, _, err = cli(capsys, "simulate-data", "--model", "descriptive", "--design",
                         "participants=1,sessions=3,trials_per_session=30", "--params", tmp_path / "d.params.json",
                         "--out", again)
    assert status == 0, err
    pd.testing.assert_frame_equal(pd.read_csv(again), table)


@pytest.mark.parametrize(("args", "words"), [
    (["--model", "nosuch"], ["unknown model 'nosuch'"]),
    (["--model", "descriptive", "--participants", "nobody"], ["participant 'nobody' not in the data"]),
    (["--model", "descriptive", "--hierarchical", "--per-participant"],
     ["--per-participant: not allowed with argument --hierarchical"]),
])
def test_fit_errors(trial_file, tmp_path, capsys, args, words):
    status, _, err = cli(capsys, "fit", trial_file, *args, "--out", tmp_path / "o", "--quiet")
    assert_one_line_error(status, err, *words)
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").glob("*.nc"))


def test_fit_missing_file(tmp_path, capsys):
    status, _, err = cli(capsys, "fit", tmp_path / "missing.csv", "--model", "descriptive", "--out", tmp_path / "o")
    assert_one_line_error(status, err, "missing.csv", "no such file")


def test_model_toml_with_an_unknown_key(trial_file, tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(toml_text(model_dict("forgetful", network={"substep": 3})))
    status, _, err = cli(capsys, "fit", trial_file, "--model", bad, "--out", tmp_path / "o")
    assert_one_line_error(status, err, "network.substep", "unknown key", str(bad))


def test_flexible_toml_with_overlapping_timescales(trial_file, tmp_path, capsys):
    bad = write_model(tmp_path, "flexible", parameters={"gate_timescale": {"upper": 30.0}})  # weight lower is 20
    status, _, err = cli(capsys, "fit", trial_file, "--model", bad, "--out", tmp_path / "o")
    assert_one_line_error(status, err, "parameters.gate_timescale.upper", "must not exceed weight_timescale.lower",
                          str(bad))


@pytest.mark.parametrize(("params", "words"), [
    (["timescale=10,acc_intercept=2,acc_slope=2,rt_intercept=-0.8,rt_slope=1,rt_sigma=0.3,rt_shift=0.5,bogus=1"],
     ["params.bogus", "not a parameter of forgetful"]),
    (["timescale=abc"], ["params.timescale", "not a number: 'abc'"]),
    (["timescale"], ["expected NAME=VALUE"]),
    (["timescale=10"], ["params.acc_intercept", "missing"]),
    (["missing.json"], ["no such file"]),
])
def test_simulate_data_bad_params(tmp_path, capsys, params, words):
    args = [arg for p in params for arg in ("--params", str(tmp_path / p) if p.endswith(".json") else p)]
    status, _, err = cli(capsys, "simulate-data", "--model", "forgetful", "--design",
                         "participants=1,sessions=2,trials_per_session=10", *args, "--out", tmp_path / "x.csv")
    assert_one_line_error(status, err, *words)
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize(("args", "words"), [
    (["--model", "nosuch"], ["unknown model 'nosuch'"]),
    (["--model", "descriptive", "--design", "sessions=0"], ["design.sessions", "at least 1"]),
    (["--model", "descriptive", "--design", "colour=3"], ["design.colour", "unknown key"]),
    (["--model", "descriptive", "--design", "switch_rate=2"], ["design.switch_rate", "between 0 and 1"]),
    (["--model", "descriptive", "--design", "sessions=2", "--sequence", "x.csv"], ["either --sequence"]),
])
def test_simulate_data_errors(tmp_path, capsys, args, words):
    status, _, err = cli(capsys, "simulate-data", *args, "--out", tmp_path / "x.csv")
    assert_one_line_error(status, err, *words)


def test_fit_and_simulate_data_have_help(capsys):
    for command in ("fit", "simulate-data"):
        with pytest.raises(SystemExit) as info:
            cli(capsys, command, "--help")
        assert info.value.code == 0
        assert f"usage: cogflex {command}" in capsys.readouterr().out


def test_simulate_data_params_file_missing_a_participant(tmp_path, capsys):
    values = {"timescale": {"sim01": 10.0}, "acc_intercept": 2.0, "acc_slope": 2.0, "rt_intercept": -0.8,
              "rt_slope": 1.0, "rt_sigma": 0.3, "rt_shift": 0.5}
    (tmp_path / "p.json").write_text(json.dumps(values))
    status, _, err = cli(capsys, "simulate-data", "--model", "forgetful", "--design",
                         "participants=2,sessions=1,trials_per_session=5", "--params", tmp_path / "p.json", "--out",
                         tmp_path / "x.csv")
    assert_one_line_error(status, err, "params.timescale", "sim02")


def test_simulate_data_params_file_with_text(tmp_path, capsys):
    values = {"timescale": "ten", "acc_intercept": 2.0, "acc_slope": 2.0, "rt_intercept": -0.8, "rt_slope": 1.0,
              "rt_sigma": 0.3, "rt_shift": 0.5}
    (tmp_path / "p.json").write_text(json.dumps(values))
    status, _, err = cli(capsys, "simulate-data", "--model", "forgetful", "--design",
                         "participants=1,sessions=1,trials_per_session=5", "--params", tmp_path / "p.json", "--out",
                         tmp_path / "x.csv")
    assert_one_line_error(status, err, "params.timescale", "not a number")


@pytest.mark.parametrize(("setting", "field"), [({"draws": 0}, "draws"), ({"chains": 0}, "chains"),
                                                ({"target_accept": 1.5}, "target_accept")])
def test_fit_options_reject_invalid_sampler_settings(setting, field):
    from cogflex.errors import ConfigError
    from cogflex.fit.fitting import FitOptions

    with pytest.raises(ConfigError) as info:
        FitOptions(**setting)
    assert info.value.field == field


@pytest.mark.parametrize("args, fragment", [
    (["--seed", "-1"], "seed: must be an integer from 0 to 2^63 - 1, got -1"),
    (["--seed", str(2**63)], "seed: must be an integer from 0 to 2^63 - 1"),
    (["--draws", "10", "--chains", "2"], "PSIS-LOO needs at least 25"),
])
def test_fit_refuses_bad_sampler_settings_before_any_work(args, fragment, trial_file, tmp_path, capsys):
    """A negative or too-large seed (a numpy traceback, or an h5py error after sampling) and too few draws for
    PSIS-LOO are one-line errors before anything is computed or written."""
    out = tmp_path / "o"
    status, _, err = cli(capsys, "fit", trial_file, "--model", "descriptive", "--out", out, "--quiet",
                         *(["--draws", "30"] if "--draws" not in args else []), *args)
    assert_one_line_error(status, err, fragment)
    assert not out.exists()


def test_fit_and_simulate_refuse_an_out_that_is_a_file(trial_file, tmp_path, capsys):
    existing = tmp_path / "taken.txt"
    existing.write_text("keep me")
    status, _, err = cli(capsys, "fit", trial_file, "--model", "descriptive", "--out", existing, "--draws", "30",
                         "--quiet")
    assert_one_line_error(status, err, "taken.txt is a file")
    status, _, err = cli(capsys, "fit", trial_file, "--model", "descriptive", "--out", existing / "sub",
                         "--draws", "30", "--quiet")
    assert_one_line_error(status, err, "cannot be made", "taken.txt is a file")
    status, _, err = cli(capsys, "simulate", "fig2-flexible", "--out", existing, "--quiet")
    assert_one_line_error(status, err, "taken.txt is a file")
    assert existing.read_text() == "keep me"


def test_simulate_data_refuses_a_negative_seed(tmp_path, capsys):
    status, _, err = cli(capsys, "simulate-data", "--model", "forgetful", "--design", "participants=1,sessions=2",
                         "--out", tmp_path / "x.csv", "--seed", "-3")
    assert_one_line_error(status, err, "seed")
    assert not (tmp_path / "x.csv").exists()
