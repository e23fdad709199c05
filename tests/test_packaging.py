"""A wheel built from the repository carries the presets and the data, and cogflex finds them when installed from it.

The wheel is built from a copy of the sources (so the build leaves nothing in the clone), installed with pip
into a fresh ``--target`` folder and used from a directory outside the clone, with the test's own interpreter
(whose environment provides the dependencies).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = ["cogflex", "models", "data", "pyproject.toml", "setup.py", "MANIFEST.in", "README.md"]
#: The bundled data every user of the package relies on.
DATA = ["synthetic/flexible_players.csv.gz", "reference/sandbrink2024.json"]

pytestmark = pytest.mark.slow  # builds and installs a wheel: about 10 s


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.part"))
        else:
            shutil.copy2(origin, source / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    str(source), "-w", str(out)], check=True, cwd=out, timeout=300)
    (built,) = out.glob("cogflex-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("target")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", "--target",
                    str(target), str(wheel)], check=True, timeout=300)
    return target


def run_installed(target: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """``python ARGS`` from ``cwd`` (outside the clone) with the wheel's install first on the path."""
    env = {**os.environ, "PYTHONPATH": str(target), "XDG_CONFIG_HOME": str(cwd / "config")}
    env.pop("COGFLEX_MODELS", None)
    result = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def test_the_wheel_holds_every_preset_the_data_and_every_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind in ("simulation", "fitting", "pipelines", "adapt", "reproduce"):
        presets = sorted((REPO / "models" / kind).glob("*.toml"))
        assert presets, kind
        for preset in presets:
            assert f"cogflex/_bundled/models/{kind}/{preset.name}" in names
    for relative in DATA:
        assert f"cogflex/_bundled/data/{relative}" in names
    assert "cogflex/py.typed" in names
    packages = [p.parent.relative_to(REPO).as_posix() for p in (REPO / "cogflex").rglob("__init__.py")]
    missing = [p for p in packages if f"{p}/__init__.py" not in names]
    assert not missing, f"packages left out of the wheel: {missing}"


def test_an_installed_wheel_finds_its_presets_and_data(installed, tmp_path):
    script = """
import json
import cogflex as cf
from cogflex import resources
from cogflex.data import load_trials
from cogflex.pipeline import load_pipeline

config = cf.load_config("fig2-flexible")
pipe = load_pipeline("demo")
players = pipe.path(pipe.data.file)
print(json.dumps({
    "package": cf.__file__,
    "models": str(resources.bundled_models_dir()),
    "config": config.name,
    "fitting": resources.preset_names("fitting"),
    "players": str(players),
    "participants": load_trials(players, pipe.data.format).participants,
    "reference": str(resources.data_path("reference/sandbrink2024.json")),
}))
"""
    found = json.loads(run_installed(installed, tmp_path, "-c", script).stdout)
    for key in ("package", "models", "players", "reference"):
        assert Path(found[key]).is_relative_to(installed), (key, found[key])
    assert found["config"] == "fig2-flexible"
    assert found["fitting"] == ["descriptive", "fast-gates-unregularised", "flexible", "flexible-age",
                                "flexible-reconfig", "forgetful", "forgetful-reconfig"]
    assert Path(found["players"]) == installed / "cogflex" / "_bundled" / "data" / DATA[0]
    assert found["participants"] == ["sim01", "sim02", "sim03"]


def test_the_installed_command_lists_and_prints_every_kind_of_preset(installed, tmp_path):
    # the console script's entry point, cogflex.cli:main, in one process (building the parser imports torch)
    script = """
import contextlib, io, json, sys
from cogflex.cli import main

out = {}
for name in ["", "flexible", "demo", "mnist-switch"]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["presets", name] if name else ["presets"]) == 0
    out[name] = buffer.getvalue()
print(json.dumps(out))
"""
    printed = json.loads(run_installed(installed, tmp_path, "-c", script).stdout)
    listing = printed.pop("")
    for heading, name in (("simulation", "fig2-flexible"), ("fitting", "flexible"), ("pipelines", "demo"),
                          ("adapt", "mnist-switch"), ("reproduce", "fig6-fully-connected")):
        assert f"\n{heading} (" in f"\n{listing}" and f"  {name} " in listing
    assert str(installed / "cogflex" / "_bundled" / "models") in listing
    for name, text in printed.items():
        assert tomllib.loads(text)["name"] == name
