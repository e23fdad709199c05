"""cogflex.resources: the search path of the presets, the bundled data, and what every bundled preset declares."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import cogflex
from cogflex import resources
from cogflex.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
FROM_CHECKOUT = Path(cogflex.__file__).resolve().parent == REPO / "cogflex"


@pytest.mark.skipif(not FROM_CHECKOUT, reason="cogflex is not imported from this checkout")
def test_a_checkout_or_editable_install_reads_the_repository_folders():
    assert resources.bundled_models_dir() == REPO / "models"
    assert resources.bundled_data_dir() == REPO / "data"


@pytest.mark.parametrize("kind", resources.PRESET_KINDS)
def test_every_bundled_preset_is_found_and_declares_a_description(kind):
    names = resources.preset_names(kind)
    assert names == sorted(p.stem for p in (resources.bundled_models_dir() / kind).glob("*.toml")) and names
    for name in names:
        path = resources.preset_path(kind, name)
        assert path == resources.bundled_models_dir() / kind / f"{name}.toml"
        raw = tomllib.loads(path.read_text())
        assert isinstance(raw.get("description"), str) and raw["description"], f"{path} has no description"


def test_bundled_data_files():
    players = resources.data_path("synthetic/flexible_players.csv.gz")
    assert players.is_file() and players.parent.parent == resources.bundled_data_dir().resolve()
    assert resources.data_path("reference/sandbrink2024.json").is_file()
    with pytest.raises(ConfigError, match="no bundled data file 'nope.csv'.*synthetic/flexible_players.csv.gz"):
        resources.data_path("nope.csv")
    with pytest.raises(ConfigError, match="no bundled data file"):
        resources.data_path("../models/pipelines/demo.toml")  # outside the data folder


def test_user_folders_come_first_and_add_or_replace_presets(tmp_path, monkeypatch):
    first, config = tmp_path / "first", tmp_path / "xdg"
    (first / "fitting").mkdir(parents=True)
    (first / "fitting" / "flexible.toml").write_text('name = "flexible"\ndescription = "mine"\n')
    (config / "cogflex" / "models" / "fitting").mkdir(parents=True)
    (config / "cogflex" / "models" / "fitting" / "extra.toml").write_text('name = "extra"\n')
    (config / "cogflex" / "models" / "fitting" / "flexible.toml").write_text('name = "shadowed"\n')
    monkeypatch.setenv("COGFLEX_MODELS", str(first))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))

    assert resources.preset_dirs("fitting") == [first / "fitting", config / "cogflex" / "models" / "fitting",
                                                resources.bundled_models_dir() / "fitting"]
    assert resources.preset_names("fitting") == ["descriptive", "extra", "fast-gates-unregularised", "flexible",
                                                 "flexible-age", "flexible-reconfig", "forgetful",
                                                 "forgetful-reconfig"]
    assert resources.preset_path("fitting", "flexible") == first / "fitting" / "flexible.toml"
    assert resources.preset_path("fitting", "extra") == config / "cogflex" / "models" / "fitting" / "extra.toml"
    assert resources.preset_path("fitting", "forgetful").parent.parent == resources.bundled_models_dir()
    assert resources.preset_kinds("extra") == ["fitting"]


def test_several_folders_in_cogflex_models(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, text in ((a, "a"), (b, "b")):
        (folder / "pipelines").mkdir(parents=True)
        (folder / "pipelines" / "study.toml").write_text(f'name = "{text}"\n')
    monkeypatch.setenv("COGFLEX_MODELS", f"{a}:{b}")
    assert resources.preset_path("pipelines", "study") == a / "pipelines" / "study.toml"
    assert resources.preset_names("pipelines") == ["demo", "lab-demo", "study"]


def test_unknown_names_and_kinds_list_what_exists():
    with pytest.raises(ConfigError, match=r"unknown preset 'fig9' \(available simulation presets: .*fig2-flexible"):
        resources.preset_path("simulation", "fig9")
    for name in ("../fitting/flexible", "fitting/flexible", "", "flexible.toml"):
        with pytest.raises(ConfigError, match="unknown preset"):
            resources.preset_path("fitting", name)
    with pytest.raises(ConfigError, match="unknown preset kind 'fits'.*simulation, fitting, pipelines"):
        resources.preset_names("fits")
