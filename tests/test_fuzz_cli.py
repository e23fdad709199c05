"""Property-based fuzz tests of every command's file inputs: TOML configs, CSV trial files, fit and IDX files.

The contract (cogflex/cli.py): bad input exits 2 with exactly one stderr line ``cogflex: error: ...``; a
diverging simulation exits 3; success exits 0; never a traceback. Each test draws inputs derived from the real
presets (``models/``) and the bundled synthetic players, mutates them (tests/fuzz_strategies.py) and runs the
command in process. Inputs that pass validation and would start real work are either made tiny and run, or stop
at a patched heavy function (sampling, network simulation, training) that raises ``WouldRun``.

Covered elsewhere (not repeated here): the trial-file loaders behind ``data check`` / ``data summarize`` and the
``--map``/``--recode`` options (tests/data/test_properties.py, tests/data/test_corrupted.py). Here: the ``data``
mapping TOML, and the trial CSVs of ``fit``, ``simulate-data --sequence`` and ``run``; and the input classes of
issue 17 on every command that reads trials: decimal commas, a lab CSV read as Ebb and Flow, 10,000-character
column names and values, command lines argparse rejects, and the correctness rule (``--correctness``).

Examples are derandomized (the same ones on every run); ``COGFLEX_FUZZ_SCALE=k`` runs k times as many fresh
random ones for local fuzzing.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from hypothesis import event, given, settings
from hypothesis import strategies as st

from cogflex.data import CsvMapping, load_csv
from tests.adapt.test_data import idx_bytes
from tests.data.helpers import JSPSYCH, PSYCHOPY
from tests.fuzz_strategies import (
    LONG_NAME,
    MODELS,
    PLAYERS,
    SETTINGS,
    TEXT,
    WouldRun,
    broken_text,
    cli_outcome,
    cli_run,
    csv_bytes,
    decimal_rows,
    examples,
    guard,
    mutated,
    mutated_csv,
    read_csv_rows,
    read_toml,
    toml_dumps,
    usage_argv,
    would_run,
)

SIMULATION = {p.stem: read_toml(p) for p in sorted((MODELS / "simulation").glob("*.toml"))}
FITTING = {p.stem: read_toml(p) for p in sorted((MODELS / "fitting").glob("*.toml"))}
PIPELINE = read_toml(MODELS / "pipelines" / "demo.toml")
ADAPT = read_toml(MODELS / "adapt" / "mnist-switch.toml")
REPRODUCE = {p.stem: read_toml(p) for p in sorted((MODELS / "reproduce").glob("*.toml"))}
LAB = Path(__file__).resolve().parent / "fixtures" / "data" / "lab_parity_magnitude.csv"
LAB_MAPPING = read_toml(LAB.with_suffix(".toml"))
#: The bundled synthetic players, first 40 trials of each (the fit tests only reach the sampler's door).
PLAYER_ROWS = read_csv_rows(PLAYERS, per_participant=40)


@pytest.fixture
def tmp():
    """A fresh working directory per test function; examples make their own folders inside it."""
    with tempfile.TemporaryDirectory(prefix="cogflex-fuzz-") as folder:
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            yield Path(folder)
        finally:
            os.chdir(cwd)


def fresh(root: Path) -> Path:
    """A new empty folder for one example."""
    return Path(tempfile.mkdtemp(dir=root))


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def all_finite(value) -> bool:
    """No NaN or infinity anywhere in a nested config mapping."""
    if isinstance(value, dict):
        return all(all_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(all_finite(v) for v in value)
    return not (isinstance(value, float) and not math.isfinite(value))


# -- simulate / sweep / presets ----------------------------------------------------------------------------------


def cheap_simulation(data: dict) -> dict:
    """A preset made tiny: one seed, two blocks, at most two values per swept axis."""
    data = json.loads(json.dumps(data))
    data["seeds"] = 1
    curriculum = data.setdefault("curriculum", {})
    curriculum["duration"] = 2 * curriculum.get("block_length", 1.0)
    data.get("learning", {})["batch_size"] = 16
    if "composition" in data:
        data["composition"]["start_block"] = 1
    for name, values in data.get("sweep", {}).items():
        data["sweep"][name] = values[:2]
    return data


def _simulation_is_cheap(config, *args, **kwargs) -> bool:
    net = config.network
    networks = config.seeds * len(list(config.sweep.points()))
    return (networks <= 4 and config.n_steps * networks <= 6000 and net.paths * net.output_dim * net.input_dim <= 2000
            and config.learning.batch_size <= 200 and config.n_targets <= 8)


@pytest.fixture
def simulation_guard(monkeypatch):
    """Simulations run when tiny; otherwise they stop where the work would start."""
    import cogflex.nta
    import cogflex.nta.simulation

    guarded = guard(cogflex.nta.simulation.simulate, _simulation_is_cheap)
    monkeypatch.setattr(cogflex.nta, "simulate", guarded)
    monkeypatch.setattr(cogflex.nta.simulation, "simulate", guarded)


SIM_ARGS = st.tuples(st.sampled_from([[], ["--seeds", "1"], ["--seeds", "0"], ["--seeds", "-2"], ["--seeds", "2"]]),
                     st.sampled_from([[], ["--mode", "expected"], ["--mode", "sampled"]]))


@settings(max_examples=examples(70), **SETTINGS)
@given(data=st.data())
def test_simulate_and_sweep_with_mutated_presets(data, tmp, simulation_guard):
    """simulate / sweep PRESET.toml: mutated presets exit 0, 2 or (diverged) 3."""
    name = data.draw(st.sampled_from(sorted(SIMULATION)), label="preset")
    base = SIMULATION[name]
    if data.draw(st.booleans(), label="tiny"):
        base = cheap_simulation(base)
    config = data.draw(mutated(base), label="config")
    command = data.draw(st.sampled_from(["simulate", "sweep"]), label="command")
    seeds, mode = data.draw(SIM_ARGS, label="options")
    folder = fresh(tmp)
    path = write(folder / "config.toml", toml_dumps(config))
    cli_outcome(command, path, "--quiet", "--device", "cpu", "--out", folder / "out", *seeds, *mode,
                allowed=(0, 2, 3))


def test_diverging_simulation_exits_3_with_one_line(tmp, simulation_guard):
    """The one documented exit status besides 0 and 2 (allowed for simulate and sweep above)."""
    config = cheap_simulation(SIMULATION["fig2-flexible"])
    config["network"]["gate_init"] = 1e30
    path = write(tmp / "diverges.toml", toml_dumps(config))
    assert cli_outcome("simulate", path, "--quiet", "--out", tmp / "out", allowed=(3,)) == "diverged"


@settings(max_examples=examples(25), **SETTINGS)
@given(data=st.data())
def test_presets_with_a_mutated_models_folder(data, tmp, monkeypatch):
    """presets [NAME]: names from the user, and a models folder ($COGFLEX_MODELS) holding a damaged preset."""
    folder = fresh(tmp)
    shutil.copytree(MODELS / "simulation", folder / "models" / "simulation")
    name = data.draw(st.sampled_from(sorted(SIMULATION)), label="preset")
    target = folder / "models" / "simulation" / f"{name}.toml"
    if data.draw(st.booleans(), label="raw"):
        target.write_bytes(data.draw(broken_text(target.read_bytes()), label="bytes"))
    else:
        target.write_text(toml_dumps(data.draw(mutated(SIMULATION[name]), label="config")))
    monkeypatch.setenv("COGFLEX_MODELS", str(folder / "models"))
    asked = data.draw(st.one_of(st.none(), st.sampled_from([*SIMULATION, "../simulation/" + name, "nope", ""]),
                                st.text(TEXT.filter(lambda c: c != "\x00"), max_size=12)), label="NAME")
    cli_outcome("presets", *([] if asked is None else ["--", asked]))


# -- data: the mapping TOML --------------------------------------------------------------------------------------


@settings(max_examples=examples(40), **SETTINGS)
@given(data=st.data())
def test_data_check_with_a_mutated_mapping_file(data, tmp):
    """data check --format csv --mapping FILE.toml (the CSV side is fuzzed in tests/data/test_properties.py)."""
    folder = fresh(tmp)
    mapping = folder / "mapping.toml"
    if data.draw(st.integers(0, 3), label="raw") == 0:
        mapping.write_bytes(data.draw(broken_text(LAB.with_suffix(".toml").read_bytes()), label="bytes"))
    else:
        mapping.write_text(toml_dumps(data.draw(mutated(LAB_MAPPING), label="mapping")))
    cli_outcome("data", "check", LAB, "--format", "csv", "--mapping", mapping)


# -- fit -----------------------------------------------------------------------------------------------------------


def fake_fit_one(spec, fd, options, *args, **kwargs):
    """The sampler's door: whatever passed validation must be finite and non-empty."""
    assert all_finite(spec.to_dict()), f"a non-finite value reached sampling: {spec.to_dict()}"
    assert fd.n_trials > 0 and len(fd.participants) > 0, "sampling reached with no trials"
    raise WouldRun("sampling")


@pytest.fixture
def no_sampling(monkeypatch):
    import cogflex.fit.fitting

    monkeypatch.setattr(cogflex.fit.fitting, "sample_job", fake_fit_one)


FIT_ARGS = ["--draws", "25", "--tune", "10", "--chains", "1", "--quiet"]


@settings(max_examples=examples(60), **SETTINGS)
@given(data=st.data())
def test_fit_with_mutated_trial_files(data, tmp, no_sampling):
    """fit FILE: the bundled players' rows and columns mutated (plain or gzipped, any file name)."""
    folder = fresh(tmp)
    content = data.draw(mutated_csv(PLAYER_ROWS), label="csv")
    path = write(folder / data.draw(st.sampled_from(["players.csv", "players.csv.gz", "players.txt"])), content)
    model = data.draw(st.sampled_from(sorted(FITTING)), label="model")
    participants = data.draw(st.sampled_from([[], ["sim01"], ["sim02", "sim03"], ["nobody"]]), label="participants")
    extra = ["--participants", *participants] if participants else []
    cli_outcome("fit", path, "--model", model, "--out", folder / "fits", *FIT_ARGS, *extra)


@settings(max_examples=examples(60), **SETTINGS)
@given(data=st.data())
def test_fit_with_mutated_model_files(data, tmp, no_sampling):
    """fit --model FILE.toml: the bundled model specs mutated, and damaged TOML."""
    folder = fresh(tmp)
    data_file = write(folder / "players.csv", csv_bytes(PLAYER_ROWS))
    name = data.draw(st.sampled_from(sorted(FITTING)), label="model")
    model = folder / f"{name}.toml"
    if data.draw(st.integers(0, 4), label="raw") == 0:
        model.write_bytes(data.draw(broken_text((MODELS / "fitting" / f"{name}.toml").read_bytes()), label="bytes"))
    else:
        model.write_text(toml_dumps(data.draw(mutated(FITTING[name]), label="spec")))
    options = data.draw(st.sampled_from([[], ["--hierarchical"], ["--target-accept", "1.0"], ["--draws", "0"],
                                         ["--chains", "-1"], ["--tune", "0"], ["--posterior-predictive", "-3"],
                                         ["--sampler", "pymc"]]), label="options")
    cli_outcome("fit", data_file, "--model", model, "--out", folder / "fits", *FIT_ARGS, *options)


# -- simulate-data ---------------------------------------------------------------------------------------------------

TINY_NETWORK = {"tutorial_blocks": 1, "tutorial_block_trials": 20, "max_practice_trials": 20, "histories": 1,
                "substeps": 2}


def _cheap_trials(spec, params, trials, *args, **kwargs) -> bool:
    n = len(trials.trials)
    if not spec.uses_network:
        return n <= 2000
    net = spec.network
    return (n <= 400 and net.tutorial_blocks * net.tutorial_block_trials <= 200 and net.max_practice_trials <= 200
            and net.histories <= 2 and net.substeps <= 10 and net.paths <= 4)


def _cheap_design(design) -> bool:
    return design.participants * design.sessions * design.trials_per_session <= 600 and design.sessions <= 50


@pytest.fixture
def simulate_data_guard(monkeypatch):
    import cogflex.fit.simulate as sim

    monkeypatch.setattr(sim, "simulate_trials", guard(sim.simulate_trials, _cheap_trials))
    monkeypatch.setattr(sim, "design_trials", guard(sim.design_trials, _cheap_design))


DESIGN = {"participants": 2, "sessions": 2, "trials_per_session": 10, "first_session": 3, "switch_rate": 0.3,
          "congruent_rate": 0.25}


@st.composite
def design_args(draw) -> list[str]:
    design = draw(mutated(DESIGN))
    parts = [f"{k}={v}" for k, v in design.items() if not isinstance(v, dict | list)]
    if draw(st.booleans()):
        parts.append(draw(st.sampled_from(["", "participants", "=3", "seed=1", "a=b=c", " , "])))
    return [f"--design={','.join(parts)}"] if parts else []


@st.composite
def params_args(draw, spec_name: str, folder: Path) -> list[str]:
    from cogflex.fit.models import load_model
    from cogflex.fit.simulate import draw_parameters, model_parameter_names

    spec = load_model(spec_name)
    values = draw_parameters(spec, np.random.default_rng(0))
    assert set(values) == set(model_parameter_names(spec))
    values = draw(mutated(values))
    kind = draw(st.sampled_from(["none", "inline", "json", "json-nested", "toml", "broken-json"]))
    if kind == "none":
        return []
    if kind == "inline":
        return ["--params=" + ",".join(f"{k}={v}" for k, v in values.items())]
    if kind == "toml":
        return ["--params", write(folder / "params.toml", toml_dumps(values))]
    if kind == "broken-json":
        broken = draw(broken_text(json.dumps(values).encode()))
        return ["--params", write(folder / "params.json", broken)]
    if kind == "json-nested":
        values = {"parameters": {k: {"sim01": v, "sim02": v} for k, v in values.items()}}
    return ["--params", write(folder / "params.json", json.dumps(values))]


@settings(max_examples=examples(50), **SETTINGS)
@given(data=st.data())
def test_simulate_data_with_mutated_models_designs_and_params(data, tmp, simulate_data_guard):
    """simulate-data: model TOML, --design values, --params (inline, JSON, TOML) and a --sequence CSV."""
    folder = fresh(tmp)
    name = data.draw(st.sampled_from(sorted(FITTING)), label="model")
    base = json.loads(json.dumps(FITTING[name]))
    if "network" in base:
        base["network"].update(TINY_NETWORK)
    model = write(folder / "model.toml", toml_dumps(data.draw(mutated(base), label="spec")))
    source = data.draw(st.sampled_from(["design", "sequence", "neither"]), label="trials")
    trials: list = []
    if source == "design":
        trials = data.draw(design_args(), label="design")
    elif source == "sequence":
        rows = read_csv_rows(PLAYERS, per_participant=15)
        trials = ["--sequence", write(folder / "sequence.csv", data.draw(mutated_csv(rows), label="sequence"))]
    params = data.draw(params_args(name, folder), label="params")
    # 3: the network diverged for the given timescales (e.g. gate_timescale=2e-6), a one-line DivergenceError:
    # "a run that diverges exits with status 3" (cogflex/cli.py)
    cli_outcome("simulate-data", "--model", model, *trials, *params, "--out", folder / "sim.csv", "--seed", "1",
                allowed=(0, 2, 3))


# -- run (pipelines) and demo ----------------------------------------------------------------------------------------


def confined(pipeline: dict) -> dict:
    """The pipeline with its output folder (``out``, or ``<name>-out``) kept inside the example's folder.

    A run cleans up ``.*.part`` files under its output folder: a generated ``out = "~"`` or ``name = "/"``
    must not point it at the rest of the machine.
    """
    def unsafe(value) -> bool:
        return isinstance(value, str) and (value.startswith(("/", "~", "\\")) or ".." in value or "\x00" in value)

    out = pipeline.get("out")
    if unsafe(out) or isinstance(out, str) and out and not out.strip("./"):
        pipeline["out"] = "out"
    if isinstance(pipeline.get("name"), str) and (unsafe(pipeline["name"]) or "/" in pipeline["name"]):
        pipeline["name"] = "pipe"
    return pipeline


@settings(max_examples=examples(60), **SETTINGS)
@given(data=st.data())
def test_run_with_mutated_pipelines_and_trial_files(data, tmp, no_sampling):
    """run PIPELINE.toml: the demo pipeline mutated, pointing at mutated copies of the players and model specs."""
    folder = fresh(tmp)
    base = json.loads(json.dumps(PIPELINE))
    base["data"]["file"] = "players.csv"
    base["out"] = "out"
    base["fit"]["models"] = data.draw(st.sampled_from([["descriptive"], ["flexible.toml"], ["forgetful.toml",
                                                                                           "descriptive"]]))
    base["fit"]["jobs"] = 1
    pipeline = confined(data.draw(mutated(base), label="pipeline"))
    csv_content = data.draw(st.one_of(st.just(csv_bytes(PLAYER_ROWS)), mutated_csv(PLAYER_ROWS)), label="csv")
    write(folder / "players.csv", csv_content)
    for name in ("flexible", "forgetful"):
        spec = FITTING[name] if data.draw(st.integers(0, 2)) else data.draw(mutated(FITTING[name]), label=name)
        write(folder / f"{name}.toml", toml_dumps(spec))
    path = write(folder / "pipeline.toml", toml_dumps(pipeline))
    out = data.draw(st.sampled_from([[], ["--out", str(folder / "elsewhere")]]), label="out")
    cli_outcome("run", path, "--quiet", *out)


def test_run_with_out_naming_an_existing_file(tmp, no_sampling):
    """out naming an existing file was a FileExistsError traceback."""
    folder = fresh(tmp)
    write(folder / "players.csv", csv_bytes(PLAYER_ROWS))
    pipeline = json.loads(json.dumps(PIPELINE))
    pipeline["data"]["file"] = "players.csv"
    pipeline["out"] = "players.csv"
    path = write(folder / "pipeline.toml", toml_dumps(pipeline))
    assert cli_outcome("run", path, "--quiet") == "error"


@pytest.mark.parametrize("key, value, fragment", [
    *[pytest.param(k, v, "NUL character", id=f"nul-{k}") for k, v in (
        ("data.file", "players\x00.csv"), ("data.mapping", "map\x00.toml"), ("fit.models", "model\x00.toml"),
        ("out", "o\x00ut"))],
    *[pytest.param(k, v, "cannot expand", id=f"home-{k}") for k, v in (
        ("data.file", "~nosuchuser/players.csv"), ("out", "~nosuchuser/out"))],
])
def test_run_with_unusable_paths_regression(key, value, fragment, tmp, no_sampling):
    """Paths with NUL or an unknown ~user were ValueError / RuntimeError tracebacks."""
    folder = fresh(tmp)
    write(folder / "players.csv", csv_bytes(PLAYER_ROWS))
    pipeline = {"out": "out", "data": {"file": "players.csv"}, "fit": {"models": ["descriptive", "flexible"]}}
    if key == "data.mapping":
        pipeline["data"].update(format="csv", mapping=value)
    elif key == "fit.models":
        pipeline["fit"]["models"] = [value, "descriptive"]
    elif key == "out":
        pipeline["out"] = value
    else:
        pipeline["data"]["file"] = value
    error_line("run", write(folder / "pipeline.toml", toml_dumps(pipeline)), "--quiet", fragments=[key, fragment])


def test_demo_reaches_its_heavy_work_only_after_validation(tmp, no_sampling, simulation_guard):
    """demo (no input files): the bundled pipeline and the --networks presets pass validation."""
    assert cli_outcome("demo", "--quick", "--quiet", "--out", tmp / "demo") == "would-run"
    assert cli_outcome("demo", "--networks", "--quick", "--quiet", "--out", tmp / "networks") == "would-run"


# -- issue 17: decimal commas, lab CSVs read as Ebb and Flow, long names, usage errors, the correctness rule --------

LAB_ROWS = read_csv_rows(LAB, delimiter=";")
LAB_RT = LAB_ROWS[0].index(LAB_MAPPING["map"]["rt"])
#: The lab mapping with its delimiter left to detection (the tests write the file with either).
LAB_MAPPING_DETECTED = {k: v for k, v in LAB_MAPPING.items() if k != "delimiter"}
#: Lab CSVs that are not Ebb and Flow exports, and their delimiters.
LABS = {"lab": (LAB, ";"), "psychopy": (PSYCHOPY, ","), "jspsych": (JSPSYCH, ",")}


def written(folder: Path, *names: str) -> list[str]:
    """Which of ``names`` exist in ``folder`` (an error must leave none of a command's outputs)."""
    return [name for name in names if (folder / name).exists()]


@settings(max_examples=examples(30), **SETTINGS)
@given(data=st.data())
def test_decimal_comma_files(data, tmp):
    """A ;- or tab-separated lab file with decimal commas: without --decimal , one line with the hint; with it,
    exactly the trials of the same file written with decimal points; damaged numbers are one-line errors."""
    folder = fresh(tmp)
    fraction = data.draw(st.sampled_from(["5", "25", "125", "0"]), label="fraction")
    delimiter = data.draw(st.sampled_from([";", "\t"]), label="delimiter")
    rows = decimal_rows(LAB_ROWS, LAB_RT, fraction, ",")
    damage = data.draw(st.sampled_from(["none", "none", "thousands", "two-commas", "mutated"]), label="damage")
    if damage in ("thousands", "two-commas"):
        rows[data.draw(st.integers(1, len(rows) - 1))][LAB_RT] = "1.234,5" if damage == "thousands" else "0,5,5"
    content = data.draw(mutated_csv(rows), label="csv") if damage == "mutated" else csv_bytes(rows, delimiter)
    path = write(folder / "komma.csv", content)
    mapping = write(folder / "mapping.toml", toml_dumps(LAB_MAPPING_DETECTED))
    option = data.draw(st.sampled_from([[], ["--decimal", ","], ["--decimal", "."]]), label="option")
    outcome, err = cli_run("data", "check", path, "--format", "csv", "--mapping", mapping, *option,
                           "--json", folder / "check.json")
    if outcome == "error":
        assert not written(folder, "check.json")
    if damage == "none" and option == ["--decimal", ","]:
        assert outcome == "ok", err
        point = write(folder / "punkt.csv", csv_bytes(decimal_rows(LAB_ROWS, LAB_RT, fraction, "."), delimiter))
        want = load_csv(point, CsvMapping.from_args(toml=mapping)).digest()
        assert json.loads((folder / "check.json").read_text())["data_sha256"] == want
    elif damage == "none":
        assert outcome == "error" and err.rstrip().endswith("the values look like decimal commas: pass --decimal ,")
    elif damage == "thousands" and option == ["--decimal", ","]:
        assert outcome == "error" and "a thousands separator?" in err


@settings(max_examples=examples(25), **SETTINGS)
@given(data=st.data())
def test_lab_csvs_read_as_ebb_and_flow(data, tmp, no_sampling, simulate_data_guard):
    """data check / fit / simulate-data --sequence on a lab CSV (intact or mutated) without --format csv: one line,
    suggesting --format csv when the header is the lab's; nothing written."""
    folder = fresh(tmp)
    name = data.draw(st.sampled_from(sorted(LABS)), label="lab")
    source, delimiter = LABS[name]
    intact = data.draw(st.booleans(), label="intact")
    content = source.read_bytes() if intact else data.draw(mutated_csv(read_csv_rows(source, delimiter=delimiter)),
                                                            label="csv")
    path = write(folder / f"{name}.csv", content)
    command = data.draw(st.sampled_from(["check", "fit", "simulate-data"]), label="command")
    args = {"check": ["data", "check", path, "--json", folder / "check.json"],
            "fit": ["fit", path, "--model", "descriptive", "--out", folder / "fits", *FIT_ARGS],
            "simulate-data": ["simulate-data", "--model", "descriptive", "--sequence", path, "--out",
                              folder / "sim.csv"]}[command]
    outcome, err = cli_run(*args)
    assert outcome == "error"
    if intact:
        assert "not an Ebb and Flow export" in err and "--format csv and a column mapping" in err
    assert not written(folder, "check.json", "fits", "sim.csv")


@settings(max_examples=examples(30), **SETTINGS)
@given(data=st.data())
def test_long_column_names_and_values(data, tmp, no_sampling):
    """A column name or cell of up to 10,000 characters, in the players (data check, fit) or the lab file (mapped
    to it, or mapped twice): the error line stays short."""
    folder = fresh(tmp)
    long = data.draw(LONG_NAME, label="name")
    target = data.draw(st.sampled_from(["players", "lab"]), label="file")
    rows = [list(r) for r in (PLAYER_ROWS if target == "players" else LAB_ROWS)]
    j = data.draw(st.integers(0, len(rows[0]) - 1), label="column")
    old = rows[0][j]
    where = data.draw(st.sampled_from(["header", "cell", "both"]), label="where")
    if where != "cell":
        rows[0][j] = long
    if where != "header":
        rows[data.draw(st.integers(1, len(rows) - 1), label="row")][j] = long
    if target == "players":
        path = write(folder / "players.csv", csv_bytes(rows))
        args = data.draw(st.sampled_from([["data", "check", path],
                                          ["fit", path, "--model", "descriptive", "--out", folder / "fits",
                                           *FIT_ARGS]]), label="command")
    else:
        path = write(folder / "lab.csv", csv_bytes(rows, ";"))
        mapping = json.loads(json.dumps(LAB_MAPPING))
        if where != "cell" and data.draw(st.booleans(), label="follow"):  # the mapping names the long column
            mapping["map"] = {k: long if v == old else v for k, v in mapping["map"].items()}
        if data.draw(st.booleans(), label="extra"):  # one more schema field on it (mapped twice when it follows)
            mapping["map"]["cond_long"] = long
        args = ["data", "check", path, "--format", "csv", "--mapping", write(folder / "m.toml", toml_dumps(mapping))]
    outcome, err = cli_run(*args)
    if outcome == "error":
        line = err.strip("\n").replace(str(folder), "")
        assert len(line) < 1500, f"{len(line)}-character error line: {line[:300]}..."
        assert len(long) < 200 or long not in line


@settings(max_examples=examples(40), **SETTINGS)
@given(data=st.data())
def test_usage_errors(data, tmp, no_sampling, simulate_data_guard):
    """Command lines argparse rejects (unknown options, missing or bad values, long values, --participants taking
    FILE): one line, exit 2, with the hint when the id list swallowed FILE."""
    folder = fresh(tmp)
    players = write(folder / "players.csv", csv_bytes(PLAYER_ROWS))
    command = data.draw(st.sampled_from([["data", "check"], ["fit"], ["simulate-data"]]), label="command")
    tokens = [str(players), str(players), "--participants", "sim01", "sim02", "--model", "descriptive", "--out",
              str(folder / "out"), "--format", "csv", "ebb-and-flow", "--decimal", ",", ";", "--correctness",
              "column", "--map", "rt=resp_time", "--mapping", "--delimiter", "--draws", "25", "-1", "x", "--chains",
              "1", "--seed", "--quiet", "--nope", "--", "--jobs", "0", "--sequence", "--design",
              "participants=1,sessions=1", "--rt-unit"]
    argv = data.draw(usage_argv(command, tokens), label="argv")
    swallowed = data.draw(st.booleans(), label="swallowed")
    if swallowed:  # the classic: an id list before FILE
        argv = [*command, "--participants", "sim01", str(players), *argv[len(command):]]
    outcome, err = cli_run(*argv)
    if swallowed and "the following arguments are required: FILE" in err:
        assert "put FILE before --participants" in err


@settings(max_examples=examples(25), **SETTINGS)
@given(data=st.data())
def test_correctness_rule_option(data, tmp, no_sampling):
    """--correctness RULE on data check and fit, on the players intact or mutated: an unknown rule is one line
    naming the option; a known one loads (or fails on the file alone)."""
    folder = fresh(tmp)
    intact = data.draw(st.booleans(), label="intact")
    content = csv_bytes(PLAYER_ROWS) if intact else data.draw(mutated_csv(PLAYER_ROWS), label="csv")
    path = write(folder / "players.csv", content)
    rule = data.draw(st.one_of(st.sampled_from(["response", "column", "", "Column", "correct", "nope"]),
                               LONG_NAME), label="rule")
    command = data.draw(st.sampled_from(["check", "fit"]), label="command")
    args = (["data", "check", path, "--json", folder / "check.json"] if command == "check"
            else ["fit", path, "--model", "descriptive", "--out", folder / "fits", *FIT_ARGS])
    outcome, err = cli_run(*args, "--correctness", rule)
    if rule not in ("response", "column"):
        assert outcome == "error" and "argument --correctness: invalid choice" in err
    elif intact:
        assert outcome in ("ok", "would-run"), err
    if outcome == "error":
        assert not written(folder, "check.json")


# -- compare / report ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fit_file(tmp_path_factory):
    """One real tiny fit (descriptive model, one synthetic participant, 1 chain x 25 draws: PSIS-LOO's minimum)."""
    import warnings

    from cogflex.data import load_trials
    from cogflex.fit.fitting import FitOptions, fit
    from cogflex.fit.simulate import to_ebb_and_flow
    from tests.fit.helpers import tiny_trials, write_model

    folder = tmp_path_factory.mktemp("fuzz-fit")
    trials = folder / "tiny.csv"
    to_ebb_and_flow(tiny_trials(participants=1)).to_csv(trials, index=False)
    model = write_model(folder, "descriptive")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit(load_trials(trials, "ebb-and-flow"), model, out=folder / "fits",
                     options=FitOptions(draws=25, tune=10, chains=1, sampler="pymc", progress=False))
    return result.path


@pytest.fixture(scope="module")
def fit_tree(fit_file):
    return xr.open_datatree(fit_file, engine="h5netcdf").load()


FIT_ATTRS = ["participants", "data_digest", "trial_set", "model", "n_trials", "model_spec", "model_family",
             "data_source", "seed", "draws", "chains", "cleaning", "notes", "mode_search", "interpolation_check",
             "seconds", "job_seeds", "hierarchical", "sampler"]
GARBAGE = st.sampled_from(["", "not json", "[]", "{}", "null", "[1, 2]", '["nobody"]', "NaN", 0, -1, 1.5])


@st.composite
def mutated_fit(draw, tree: xr.DataTree, model: str) -> xr.DataTree:
    """A fit with its groups, variables, attributes or values damaged (or only renamed to ``model``)."""
    groups = {path: node.to_dataset() for path, node in tree.subtree_with_keys if path != "."}
    attrs = dict(tree.attrs, model=model)
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(["drop_group", "drop_var", "drop_attr", "garbage_attr", "nan", "inf", "empty",
                                     "one_draw", "rename_dim", "transpose"]))
        event(f"fit: {kind}")
        name = draw(st.sampled_from(sorted(groups)))
        ds = groups[name]
        if kind == "drop_group":
            del groups[name]
        elif kind == "drop_var" and ds.data_vars:
            groups[name] = ds.drop_vars(draw(st.sampled_from(sorted(ds.data_vars))))
        elif kind == "drop_attr":
            attrs.pop(draw(st.sampled_from(FIT_ATTRS)), None)
        elif kind == "garbage_attr":
            attrs[draw(st.sampled_from(FIT_ATTRS))] = draw(GARBAGE)
        elif kind in ("nan", "inf") and ds.data_vars:
            var = draw(st.sampled_from(sorted(ds.data_vars)))
            if ds[var].dtype.kind == "f" and ds[var].size:
                values = ds[var].values.copy()
                values.flat[draw(st.integers(0, values.size - 1))] = np.nan if kind == "nan" else -np.inf
                groups[name] = ds.assign({var: (ds[var].dims, values)})
        elif kind == "empty" and "observation" in ds.dims:
            groups[name] = ds.isel(observation=slice(0, 0))
        elif kind == "one_draw" and "draw" in ds.dims:
            groups[name] = ds.isel(draw=slice(0, 1))
        elif kind == "rename_dim" and ds.dims:
            dim = draw(st.sampled_from(sorted(ds.dims)))
            groups[name] = ds.rename_dims({dim: f"{dim}_renamed"})
        elif kind == "transpose" and ds.data_vars:
            groups[name] = ds.transpose(*reversed(list(ds.dims)))
    out = xr.DataTree.from_dict(groups)
    out.attrs = attrs
    return out


@pytest.mark.slow
@settings(max_examples=examples(25), **SETTINGS)
@given(data=st.data())
def test_compare_and_report_with_damaged_fit_files(data, tmp, fit_file, fit_tree):
    """compare / report FIT.nc...: a real tiny fit next to a damaged copy (groups, attributes, values, bytes)."""
    from cogflex.fit.fitting import save_tree

    folder = fresh(tmp)
    tree = fit_tree
    good = folder / "good.nc"
    shutil.copyfile(fit_file, good)
    damaged = folder / "damaged.nc"
    kind = data.draw(st.sampled_from(["tree", "tree", "tree", "bytes", "directory", "missing"]), label="kind")
    files = [good, damaged]
    if kind == "tree":
        save_tree(data.draw(mutated_fit(tree, data.draw(st.sampled_from(["other", str(tree.attrs["model"])]))),
                            label="fit"), damaged)
    elif kind == "bytes":
        damaged.write_bytes(data.draw(broken_text(fit_file.read_bytes()), label="bytes"))
    elif kind == "directory":
        (folder / "empty").mkdir()
        files = [good, folder / "empty"]
    command = data.draw(st.sampled_from(["compare", "report"]), label="command")
    if command == "compare":
        cli_outcome("compare", *files, "--out", folder / "comparison.csv", "--quiet")
    else:
        ppc = data.draw(st.sampled_from([["--ppc-draws", "0"], ["--ppc-draws", "0"], ["--ppc-draws", "2"]]),
                        label="ppc")
        cli_outcome("report", *files, "--out", folder / "report.html", "--quiet", *ppc)


# -- adapt -----------------------------------------------------------------------------------------------------------


def cheap_adapt(data: dict) -> dict:
    data = json.loads(json.dumps(data))
    data["backbone"].update(pretrain_steps=2)
    data["curriculum"].update(blocks=2, block_steps=2, batch_size=8, eval_size=8, offsets=[1, 2])
    return data


@st.composite
def adapt_variant(draw) -> dict:
    """The tiny preset with other valid settings: backbones, tasks, gating, optimizers, edge values."""
    data = cheap_adapt(ADAPT)
    one = lambda *options: draw(st.sampled_from(options))  # noqa: E731
    data["train_fraction"] = one(0.8, 0.5, 0.95, 0.05)
    data["regime"] = one("flexible", "forgetful")
    data["backbone"].update(kind=one("cnn", "mlp"), features=one(10, 1, 2), hidden=one(8, 1),
                            pretrain_task=one("digit", "parity", "remapped"), pretrain_steps=one(0, 1, 2),
                            lr=one(0.0, 0.01))
    data["adapter"].update(paths=one(2, 1, 3), gating=one("path", "unit"), nonnegative=one(1.0, 0.0),
                           l1=one(1.0, 0.0), l2=one(0.0, 1.0), weight_init_std=one(0.01, 0.0))
    data["curriculum"].update(tasks=one(["digit", "remapped"], ["parity", "digit"], ["digit", "digit"],
                                        ["digit", "remapped", "parity"], ["mine", "digit"]),
                              block_steps=one(2, 1, 3), blocks=one(2, 1, 3), batch_size=one(8, 1),
                              optimizer=one("sgd", "adam"), eval_every=one(1, 2, 5), eval_size=one(8, 1),
                              offsets=one([1, 2], [], [1, 100], [0]), criterion=one(0.9, 1.0, 0.01),
                              return_offset=one(5, 0, 1))
    data["tasks"] = {"mine": one({"mapping": [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]}, {"mapping": list(range(9, -1, -1))},
                                 {"groups": [[0, 1], [2, 3, 4, 5, 6, 7, 8, 9]]})}
    return data


def _adapt_is_cheap(config, data_dir, **kwargs) -> bool:
    cur, bb = config.curriculum, config.backbone
    return (cur.blocks * cur.block_steps <= 20 and bb.pretrain_steps <= 10 and cur.batch_size <= 32
            and cur.eval_size <= 64 and bb.features <= 64 and bb.hidden <= 256 and config.adapter.paths <= 8)


def _adapt_checks(config, data_dir, **kwargs) -> None:
    from cogflex.adapt.data import load_idx_dataset

    load_idx_dataset(data_dir, dataset=config.dataset, split=config.split)


@pytest.fixture
def adapt_guard(monkeypatch):
    import cogflex.adapt.train as train

    monkeypatch.setattr(train, "run_adapt", guard(train.run_adapt, _adapt_is_cheap, _adapt_checks))


@st.composite
def idx_folder(draw, folder: Path, *, damaged: bool) -> Path:
    """A folder of t10k IDX files: small valid images and labels of any size, or damaged ones."""
    n = draw(st.sampled_from([20, 20, 20, 3, 1, 0]))
    height, width = draw(st.sampled_from([(28, 28), (28, 28), (16, 16), (12, 12), (8, 8), (1, 1), (28, 5)]))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, height, width), dtype=np.uint8)
    labels = np.arange(n, dtype=np.uint8) % 10
    image_bytes, label_bytes = idx_bytes(images, 0x08), idx_bytes(labels, 0x08)
    kind = draw(st.sampled_from(["labels_out_of_range", "count_mismatch", "broken_images", "broken_labels",
                                 "no_labels", "two_dim_images", "float_images", "one_label"])) if damaged else "valid"
    event(f"idx: {kind}, {n} x {height} x {width}")
    if kind == "labels_out_of_range" and n:
        label_bytes = idx_bytes(np.full(n, 11, dtype=np.uint8), 0x08)
    elif kind == "count_mismatch":
        label_bytes = idx_bytes(labels[: n // 2], 0x08)
    elif kind == "broken_images":
        image_bytes = draw(broken_text(image_bytes))
    elif kind == "broken_labels":
        label_bytes = draw(broken_text(label_bytes))
    elif kind == "two_dim_images":
        image_bytes = idx_bytes(images.reshape(n, height * width), 0x08)
    elif kind == "float_images":
        image_bytes = idx_bytes(images.astype(">f4"), 0x0D)
    elif kind == "one_label":
        label_bytes = idx_bytes(np.zeros(n, dtype=np.uint8), 0x08)
    gz = draw(st.booleans())
    suffix = ".gz" if gz else ""
    pack = (lambda b: gzip.compress(b, mtime=0)) if gz else (lambda b: b)
    write(folder / f"t10k-images-idx3-ubyte{suffix}", pack(image_bytes))
    if kind != "no_labels":
        write(folder / f"t10k-labels-idx1-ubyte{suffix}", pack(label_bytes))
    return folder


ADAPT_ARGS = st.sampled_from([[], ["--regime", "forgetful"], ["--regime", "nope"], ["--blocks", "0"],
                              ["--blocks", "1"], ["--seed", "-1"], ["--seed", "3"]])


@settings(max_examples=examples(50), **SETTINGS)
@given(data=st.data())
def test_adapt_with_mutated_configs_and_idx_files(data, tmp, adapt_guard):
    """adapt FILE.toml --data DIR: the mnist-switch preset mutated (or made tiny and run) on tiny IDX files, or
    the tiny preset on damaged IDX files."""
    folder = fresh(tmp)
    config = folder / "adapt.toml"
    target = data.draw(st.sampled_from(["config", "config", "idx"]), label="target")
    if target == "idx":
        config.write_text(toml_dumps(cheap_adapt(ADAPT)))
    elif data.draw(st.integers(0, 5), label="raw") == 0:
        config.write_bytes(data.draw(broken_text((MODELS / "adapt" / "mnist-switch.toml").read_bytes())))
    else:
        base = data.draw(st.sampled_from(["preset", "tiny", "variant"]), label="base")
        base = {"preset": ADAPT, "tiny": cheap_adapt(ADAPT)}.get(base) or data.draw(adapt_variant(), label="variant")
        config.write_text(toml_dumps(data.draw(mutated(base), label="config")))
    idx = data.draw(idx_folder(folder / "mnist", damaged=target == "idx"), label="idx")
    options = data.draw(ADAPT_ARGS, label="options")
    cli_outcome("adapt", config, "--data", idx, "--device", "cpu", "--quiet", "--out", folder / "out", *options)


# -- reproduce -------------------------------------------------------------------------------------------------------


@pytest.fixture
def no_figures(monkeypatch):
    """Every figure stops where its experiment would start."""
    import importlib

    from cogflex.reproduce.runner import FIGURE_KEYS

    for key in FIGURE_KEYS:
        module = importlib.import_module(f"cogflex.reproduce.{key}")
        monkeypatch.setattr(module, "FIGURE", dataclasses.replace(module.FIGURE, run=would_run))


@settings(max_examples=examples(25), **SETTINGS)
@given(names=st.lists(st.one_of(st.sampled_from(["fig2", "fig6", "correlated", "fig1", "FIG2", "fig 2", "all", ""]),
                                st.text(TEXT.filter(lambda c: c != "\x00"), max_size=6)), max_size=3),
       options=st.sampled_from([[], ["--quick"], ["--list"]]))
def test_reproduce_with_figure_names(names, options, tmp, no_figures):
    """reproduce FIG...: unknown figure names are one-line errors; known ones reach their experiment."""
    cli_outcome("reproduce", "--out", fresh(tmp) / "out", *options, "--", *names)


@pytest.fixture
def no_experiments(monkeypatch):
    import cogflex.reproduce.correlated
    import cogflex.reproduce.fig6

    monkeypatch.setattr(cogflex.reproduce.fig6, "simulate_fully_connected", would_run)
    monkeypatch.setattr(cogflex.reproduce.correlated, "sweep", would_run)


@settings(max_examples=examples(40), **SETTINGS)
@given(data=st.data())
def test_reproduce_with_mutated_settings_files(data, tmp, monkeypatch, no_experiments):
    """reproduce fig6 / correlated with their TOML (models/reproduce, via $COGFLEX_MODELS) mutated."""
    folder = fresh(tmp)
    models = folder / "models"
    shutil.copytree(MODELS / "simulation", models / "simulation")
    shutil.copytree(MODELS / "reproduce", models / "reproduce")
    monkeypatch.setenv("COGFLEX_MODELS", str(models))
    name = data.draw(st.sampled_from(sorted(REPRODUCE)), label="settings")
    target = models / "reproduce" / f"{name}.toml"
    if data.draw(st.integers(0, 4), label="raw") == 0:
        target.write_bytes(data.draw(broken_text(target.read_bytes()), label="bytes"))
    else:
        target.write_text(toml_dumps(data.draw(mutated(REPRODUCE[name]), label="config")))
    figure = "fig6" if name.startswith("fig6") else "correlated"
    scale = data.draw(st.sampled_from([["--quick"], []]), label="scale")
    cli_outcome("reproduce", figure, "--out", folder / "out", *scale)


# -- damaged TOML files, every command that reads one ---------------------------------------------------------------

TOML_COMMANDS = {
    "simulate": (MODELS / "simulation" / "fig2-flexible.toml", lambda p, d: ["simulate", p, "--out", d]),
    "sweep": (MODELS / "simulation" / "fig5-grid-a.toml", lambda p, d: ["sweep", p, "--out", d]),
    "fit": (MODELS / "fitting" / "flexible.toml",
            lambda p, d: ["fit", PLAYERS, "--model", p, "--out", d, *FIT_ARGS]),
    "simulate-data": (MODELS / "fitting" / "descriptive.toml",
                      lambda p, d: ["simulate-data", "--model", p, "--out", d / "x.csv"]),
    "run": (MODELS / "pipelines" / "demo.toml", lambda p, d: ["run", p, "--out", d, "--quiet"]),
    "adapt": (MODELS / "adapt" / "mnist-switch.toml", lambda p, d: ["adapt", p, "--data", d, "--out", d]),
    "data": (LAB.with_suffix(".toml"), lambda p, d: ["data", "check", LAB, "--format", "csv", "--mapping", p]),
}


@settings(max_examples=examples(60), **SETTINGS)
@given(command=st.sampled_from(sorted(TOML_COMMANDS)), data=st.data())
def test_damaged_toml_files(command, data, tmp, no_sampling, simulation_guard, adapt_guard, simulate_data_guard):
    """Random bytes, truncation, flipped bytes, non-UTF-8, NUL, duplicate keys, BOM, empty files: exit 0 or 2."""
    original, args = TOML_COMMANDS[command]
    folder = fresh(tmp)
    path = write(folder / "config.toml", data.draw(broken_text(original.read_bytes()), label="bytes"))
    cli_outcome(*args(path, folder / "out"),
                allowed=(0, 2, 3) if command in ("simulate", "sweep", "simulate-data") else (0, 2))


@pytest.mark.parametrize("command", sorted(TOML_COMMANDS))
@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_toml_path_that_is_missing_or_a_directory(command, kind, tmp, no_sampling, simulation_guard, adapt_guard):
    """A config path that does not exist, or names a directory: one-line error (IsADirectoryError: fixed)."""
    _, args = TOML_COMMANDS[command]
    path = tmp / "config.toml"
    if kind == "directory":
        path.mkdir()
    assert cli_outcome(*args(path, tmp / "out")) == "error"


# -- regressions found by these tests (fixed in the library) --------------------------------------------------------


def error_line(*args, fragments=()) -> str:
    """Run a command that must fail with one line naming every fragment; return the line."""
    outcome, err = cli_run(*args)
    assert outcome == "error", f"expected a one-line error, got {outcome}: {err!r}"
    line = err.strip("\n").split("\n")[-1]
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    return line


@pytest.mark.parametrize("content, fragments", [
    (b'name = "x"\n\xff\xfe = 1\n', ["not UTF-8", "0xff"]),  # was a UnicodeDecodeError traceback
    (b'"a\\nb" = 1\n', ["'a\\nb'", "unknown key"]),  # the key's newline split the error line
    (b'seeds = 1\nsweep = true\n', ["sweep", "expected a table"]),  # was AttributeError
])
def test_simulation_toml_regressions(content, fragments, tmp, simulation_guard):
    error_line("simulate", write(tmp / "c.toml", content), "--out", tmp / "out", fragments=fragments)


def test_config_path_that_is_a_directory_regression(tmp):
    """read_toml: a directory named like a config was an IsADirectoryError traceback."""
    (tmp / "config.toml").mkdir()
    error_line("simulate", tmp / "config.toml", fragments=["is a directory"])


def test_error_messages_are_always_one_line():
    from cogflex.errors import ConfigError, DataError

    assert str(ConfigError("a\nb", "x\u2028y\rz", source="f\x00.toml")) == "f\\x00.toml: a\\nb: x\\u2028y\\rz"
    assert str(DataError("t.csv", "bad\nvalue", column="c\td")) == "t.csv: column 'c\\td': bad\\nvalue"


def test_mapping_recode_value_that_is_a_list_regression(tmp):
    """data mapping TOML: [recode.task] p = ["parity"] was a TypeError (unhashable list) traceback."""
    mapping = json.loads(json.dumps(LAB_MAPPING))
    mapping["recode"]["task"]["p"] = ["parity"]
    path = write(tmp / "m.toml", toml_dumps(mapping))
    error_line("data", "check", LAB, "--format", "csv", "--mapping", path, fragments=["recode.task.p"])


@pytest.mark.parametrize("change, fragments", [
    ({"link": {"rt_intercept": {"dist": "normal", "mu": math.nan, "sigma": 0.4}}}, ["link.rt_intercept.mu", "finite"]),
    ({"parameters": {"gate_timescale": {"lower": 0.5, "upper": math.inf}}}, ["gate_timescale.upper", "finite"]),
    ({"hierarchy": {"position_sd": -1.0}}, ["hierarchy.position_sd", "positive"]),
    ({"network": {"gate_init": math.nan}}, ["network.gate_init", "finite"]),
    ({"network": {"regularizer_l1": -1.0}}, ["network.regularizer_l1", "negative"]),
])
def test_model_spec_non_finite_values_regression(change, fragments, tmp, no_sampling):
    """fit --model: NaN / infinite / negative values passed validation and failed inside PyMC (a traceback)."""
    spec = json.loads(json.dumps(FITTING["flexible"]))
    for section, values in change.items():
        for key, value in values.items():
            spec[section][key] = value
    model = write(tmp / "m.toml", toml_dumps(spec))
    error_line("fit", write(tmp / "p.csv", csv_bytes(PLAYER_ROWS)), "--model", model, "--out", tmp / "fits",
               *FIT_ARGS, fragments=fragments)


@pytest.mark.parametrize("value", ["[]", "[1.0, 2.0]"])
def test_simulate_data_params_that_are_lists_regression(value, tmp, simulate_data_guard):
    """simulate-data --params: a list value was a numpy broadcasting ValueError traceback."""
    from cogflex.fit.models import load_model
    from cogflex.fit.simulate import model_parameter_names

    params = {name: 0.3 for name in model_parameter_names(load_model("descriptive"))}
    params["rt_sigma"] = json.loads(value)
    path = write(tmp / "params.json", json.dumps(params))
    error_line("simulate-data", "--model", "descriptive", "--design", "participants=1,sessions=1", "--params", path,
               "--out", tmp / "sim.csv", fragments=["params.rt_sigma", "one number"])


@pytest.mark.parametrize("change, fragments", [
    (lambda t: t["log_likelihood"].to_dataset().isel(draw=slice(0, 10)), ["10 posterior draws", "at least 25"]),
    ("participants", ["attribute 'participants' is missing"]),
    ("garbage", ["attribute 'participants' is not a JSON list"]),
    (lambda t: t["observed_data"].to_dataset().drop_vars("participant"), ["observed_data", "'participant'"]),
])
def test_compare_damaged_fit_regressions(change, fragments, tmp, fit_tree):
    """compare: too few draws (ArviZ ValueError), missing / garbage attributes (KeyError, JSONDecodeError) and
    missing observed variables (KeyError) were tracebacks."""
    from cogflex.fit.fitting import save_tree

    groups = {path: node.to_dataset() for path, node in fit_tree.subtree_with_keys if path != "."}
    attrs = dict(fit_tree.attrs)
    if change == "participants":
        del attrs["participants"]
    elif change == "garbage":
        attrs["participants"] = "not json"
    else:
        ds = change(fit_tree)
        name = "log_likelihood" if "trial" in ds.data_vars else "observed_data"
        groups[name] = ds
        if name == "log_likelihood":
            groups["posterior"] = groups["posterior"].isel(draw=slice(0, 10))
            groups["sample_stats"] = groups["sample_stats"].isel(draw=slice(0, 10))
    tree = xr.DataTree.from_dict(groups)
    tree.attrs = attrs
    save_tree(tree, tmp / "fit.nc")
    intact = fit_tree.copy()
    intact.attrs = {**fit_tree.attrs, "model": "another-model"}  # a second model: a comparison needs two
    save_tree(intact, tmp / "other.nc")
    error_line("compare", tmp / "fit.nc", tmp / "other.nc", "--out", tmp / "c.csv", "--quiet", fragments=fragments)


@pytest.mark.parametrize("case, fragments", [
    ("regimes-not-a-table", ["regimes", "expected a table"]),  # was AttributeError
    ("curriculum-not-a-table", ["curriculum", "expected a table"]),  # with --blocks: was TypeError
    ("small-images", ["backbone.kind", "16 x 16"]),  # the CNN on 8 x 8 images: a torch RuntimeError
    ("one-image", ["train_fraction", "at least one image"]),  # an empty training split: a torch RuntimeError
])
def test_adapt_regressions(case, fragments, tmp, adapt_guard):
    config = cheap_adapt(ADAPT)
    size, n, extra = 28, 20, []
    if case == "regimes-not-a-table":
        config["regimes"] = True
    elif case == "curriculum-not-a-table":
        config["curriculum"] = [1]
        extra = ["--blocks", "2"]
    elif case == "small-images":
        size = 8
    else:
        n = 1
    images = np.zeros((n, size, size), dtype=np.uint8)
    write(tmp / "mnist" / "t10k-images-idx3-ubyte", idx_bytes(images, 0x08))
    write(tmp / "mnist" / "t10k-labels-idx1-ubyte", idx_bytes(np.zeros(n, dtype=np.uint8), 0x08))
    path = write(tmp / "adapt.toml", toml_dumps(config))
    error_line("adapt", path, "--data", tmp / "mnist", "--device", "cpu", "--quiet", "--out", tmp / "out", *extra,
               fragments=fragments)


# -- regressions: inputs that were tracebacks --------------------------------------------------------------------


@pytest.mark.parametrize("content, fragment", [
    pytest.param(b"[1, 2]", "expected a JSON object", id="not-an-object"),  # was AttributeError
    pytest.param(b"\x80{}", "not UTF-8", id="not-utf8"),  # was UnicodeDecodeError
    pytest.param(None, "cannot read", id="directory"),  # was IsADirectoryError
])
def test_simulate_data_params_json_regression(content, fragment, tmp, simulate_data_guard):
    path = tmp / "params.json"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    error_line("simulate-data", "--model", "descriptive", "--design", "participants=1,sessions=1",
               "--params", path, "--out", tmp / "sim.csv", fragments=["params", fragment])


@pytest.mark.parametrize("command", ["fit", "sweep"])
@pytest.mark.parametrize("jobs", ["0", "-1"])
def test_jobs_below_one_regression(command, jobs, tmp, no_sampling, simulation_guard):
    """--jobs 0 or -1 was a ValueError traceback from the local executor."""
    if command == "fit":
        args = ["fit", write(tmp / "players.csv", csv_bytes(PLAYER_ROWS)), "--model", "descriptive", *FIT_ARGS]
    else:
        args = ["sweep", write(tmp / "grid.toml", toml_dumps(cheap_simulation(SIMULATION["fig5-grid-a"]))), "--quiet"]
    error_line(*args, "--out", tmp / "out", "--jobs", jobs, fragments=["jobs", "at least 1"])
