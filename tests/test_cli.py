"""The command line: outputs of simulate/sweep and the one-line errors (exit 2, no traceback)."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
import xarray as xr

from cogflex.cli import main
from cogflex.nta import load_result

SMALL = """
name = "tiny"
seeds = 2
[network]
input_dim = 6
output_dim = 3
[curriculum]
block_length = 0.5
duration = 2.0
[learning]
dt = 0.01
weight_timescale = 0.5
gate_timescale = 0.05
regularization = 0.2
batch_size = 16
[learning.regularizer]
nonnegative = 1.0
l1 = 5.0
"""


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(SMALL)
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cogflex.cli", *args], capture_output=True, text=True, timeout=300)


def test_simulate_writes_summary_trajectories_and_figure(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["simulate", str(tiny), "--mode", "expected", "--seeds", "3", "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    for key in ("time_to_criterion", "total_alignment", "final_gates", "block_end_loss", "wall_seconds", "config"):
        assert key in summary
    assert len(summary["time_to_criterion"]) == 3  # 4 blocks, 3 switches
    assert len(summary["final_gates"]) == 2 and summary["config"]["seeds"] == 3
    assert summary["config"]["learning"]["mode"] == "expected"
    ds = xr.load_dataset(out / "trajectories.nc")
    assert ds.sizes["network"] == 3 and "total_alignment" in ds
    reloaded = load_result(out / "trajectories.nc")
    assert reloaded.config.seeds == 3 and reloaded.summary()["total_alignment"] == summary["total_alignment"]
    assert (out / "simulation.png").stat().st_size > 10_000
    assert "total alignment" in capsys.readouterr().out


def test_sweep_writes_one_row_per_grid_point(tiny, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(SMALL + "\n[sweep]\nblock_length = [0.5, 0.25]\nregularization = [0.0, 0.1, 0.2]\n")
    out = tmp_path / "sweep"
    assert main(["sweep", str(grid), "--out", str(out), "--quiet"]) == 0
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 6
    assert {"block_length", "gate_timescale", "weight_timescale", "regularization",
            "total_alignment", "time_to_criterion"} <= set(table.columns)
    assert list(table["regularization"][:3]) == [0.0, 0.1, 0.2]
    assert (out / "regime_map.png").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["simulate", "no-such-preset"], "unknown preset"),
        (["simulate", "fig5-grid-a"], "cogflex sweep"),
        (["sweep", "fig2-flexible"], "no [sweep]"),
        (["simulate", "fig2-flexible", "--device", "cuda"], "CUDA"),
        (["simulate", "fig2-flexible", "--device", "tpu9"], "unknown device"),
        (["simulate", "/nonexistent/file.toml"], "no such file"),
    ],
)
def test_errors_are_one_line_with_exit_status_2(args, words):
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in result.stderr


def test_invalid_toml_value_exits_2_naming_the_field(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[learning]\ngate_timescale = -0.1\n")
    result = run_cli("simulate", str(bad))
    assert result.returncode == 2
    assert "learning.gate_timescale" in result.stderr and str(bad) in result.stderr


def test_diverging_run_exits_3_and_says_so(tmp_path):
    bad = tmp_path / "diverge.toml"
    bad.write_text(SMALL.replace("output_dim = 3", "output_dim = 3\ngate_init = 60.0"))
    result = run_cli("simulate", str(bad), "--out", str(tmp_path / "o"), "--quiet")
    assert result.returncode == 3 and "diverged" in result.stderr
    assert not (tmp_path / "o" / "summary.json").exists()


def test_every_subcommand_has_help():
    for command in ("simulate", "sweep", "presets", "demo"):
        result = run_cli(command, "--help")
        assert result.returncode == 0 and "usage: cogflex" in result.stdout


def test_presets_lists_every_kind_with_the_command_that_uses_it(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    headings = [line.split(" (")[0] for line in out.splitlines() if line and not line.startswith(" ")]
    assert headings[:5] == ["simulation", "fitting", "pipelines", "adapt", "reproduce"]
    for name in ("fig2-flexible", "fig5-grid-a", "flexible", "descriptive", "demo", "mnist-switch",
                 "correlated-teachers", "fig6-fully-connected"):
        assert f"  {name} " in out
    assert "cogflex fit --model NAME" in out and "cogflex run NAME" in out
    assert main(["presets", "--kind", "fitting"]) == 0
    assert capsys.readouterr().out.startswith("fitting (")


@pytest.mark.parametrize(("name", "kind"), [("fig2-flexible", "simulation"), ("flexible", "fitting"),
                                            ("demo", "pipelines"), ("mnist-switch", "adapt"),
                                            ("fig6-fully-connected", "reproduce")])
def test_presets_name_prints_the_file_of_any_kind(name, kind, capsys):
    from cogflex.resources import preset_path

    assert main(["presets", name]) == 0
    assert capsys.readouterr().out == preset_path(kind, name).read_text()


def test_presets_name_of_several_kinds_asks_for_kind(tmp_path, monkeypatch, capsys):
    (tmp_path / "fitting").mkdir()
    (tmp_path / "fitting" / "demo.toml").write_text('name = "demo"\ndescription = "a fitting demo"\n')
    monkeypatch.setenv("COGFLEX_MODELS", str(tmp_path))
    assert main(["presets", "demo"]) == 2
    assert "several kinds (fitting, pipelines); choose one with --kind" in capsys.readouterr().err
    assert main(["presets", "demo", "--kind", "fitting"]) == 0
    assert capsys.readouterr().out == 'name = "demo"\ndescription = "a fitting demo"\n'
    assert main(["presets"]) == 0
    assert f"a fitting demo  [{tmp_path / 'fitting' / 'demo.toml'}]" in capsys.readouterr().out


def test_presets_unknown_name_lists_every_kind(capsys):
    assert main(["presets", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown preset 'nope'" in err
    assert "simulation: " in err and "fitting: descriptive, fast-gates-unregularised, flexible" in err
    assert "pipelines: demo" in err
    assert main(["presets", "nope", "--kind", "adapt"]) == 2
    assert "available adapt presets: mnist-switch" in capsys.readouterr().err


def test_adapt_help_shows_the_remapping_formula(capsys):
    with pytest.raises(SystemExit):
        main(["adapt", "--help"])
    out = capsys.readouterr().out
    assert "5*(y%2)" in " ".join(out.split()) and "%%" not in out


def one_error_line(capsys, *args) -> str:
    """Run ``cogflex ARGS`` in process; it must exit 2 with one line on stderr and no traceback."""
    capsys.readouterr()
    status = main([str(a) for a in args])
    err = capsys.readouterr().err
    lines = err.strip("\n").split("\n")
    assert status == 2 and len(lines) == 1 and lines[0].startswith("cogflex: error: ") and "Traceback" not in err, err
    return lines[0]


def test_participants_before_file_says_it_swallowed_the_file(tmp_path, capsys):
    players = tmp_path / "players.csv"
    players.write_text("user_id\n")
    line = one_error_line(capsys, "fit", "--participants", "1", "2", players, "--model", "descriptive", "--out",
                          tmp_path / "fits")
    assert "required: FILE" in line and f"--participants took '{players}' as one of its values" in line
    assert "put FILE before --participants, or end the list with --" in line
    assert not (tmp_path / "fits").exists()


def test_usage_errors_cut_long_values_and_escape_control_characters(capsys):
    line = one_error_line(capsys, "data", "check", "x.csv", "--format", "c" * 10_000)
    assert "invalid choice: 'ccc" in line and "... (10,002 characters)" in line and len(line) < 300
    line = one_error_line(capsys, "data", "check", "x.csv", "\x1f\n")
    assert line.isprintable() and "unrecognized arguments: \\x1f\\n" in line


@pytest.mark.parametrize("where", ["out", "config", "data"])
def test_a_file_name_too_long_for_the_file_system_is_one_line(where, tmp_path, capsys):
    """An OSError (ENAMETOOLONG) traceback where a path was only stat-ed or opened."""
    long = tmp_path / ("n" * 300)
    args = {"out": ["simulate", "fig2-flexible", "--out", long],
            "config": ["simulate", f"{long}.toml"],
            "data": ["data", "check", long]}[where]
    assert "file name too long" in one_error_line(capsys, *args).lower()
