"""Configs and presets: defaults, TOML round trips and the errors users see."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cogflex.errors import ConfigError
from cogflex.nta.config import SimulationConfig, config_from_dict, load_config, preset_names

PRESETS = ["fig2-flexible", "fig2-forgetful", "fig5-grid-a", "fig5-grid-b", "fig8-flexible", "fig8-forgetful"]


def test_all_documented_presets_exist_and_load():
    assert set(PRESETS) <= set(preset_names())
    for name in preset_names():
        config = load_config(name)
        assert config.name == name


def test_fig2_presets_hold_the_papers_settings():
    flexible, forgetful = load_config("fig2-flexible"), load_config("fig2-forgetful")
    assert (flexible.learning.weight_timescale, flexible.learning.gate_timescale) == (1.3, 0.03)
    assert flexible.learning.regularization == 0.1
    assert flexible.learning.regularizer.normalized() == pytest.approx((1 / 11, 10 / 11, 0.0))
    assert forgetful.learning.gate_timescale == forgetful.learning.weight_timescale
    assert forgetful.learning.regularization == 0.0
    grid = load_config("fig5-grid-a")
    assert grid.sweep.names == ("block_length", "gate_timescale") and grid.sweep.shape == (5, 5)


def test_config_round_trips_through_its_dict(tmp_path):
    config = load_config("fig5-grid-b")
    again = config_from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config


def write(tmp_path, text: str):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("[learning]\nweight_timescale = -1.0\n", "learning.weight_timescale", "positive"),
        ("[learning]\ngate_timescale = 0.0\n", "learning.gate_timescale", "positive"),
        ("[learning]\ndt = 0.5\n", "learning.dt", "dt / tau_c"),
        ("[curriculum]\nblock_length = 10.0\nduration = 100.0\n[learning]\ndt = 3.0\ngate_timescale = 10.0\n",
         "learning.dt", "dt / tau_W"),
        ("[learning]\ndt = 2.0\n", "curriculum.block_length", "shorter than one step"),
        ("[learning]\nmode = 'noisy'\n", "learning.mode", "one of"),
        ("[learning.regularizer]\nl3 = 1.0\n", "learning.regularizer.l3", "unknown key"),
        ("[network]\nwidth = 3\n", "network.width", "unknown key"),
        ("[network]\npaths = 'two'\n", "network.paths", "integer"),
        ("[teachers]\ntasks = 5\n", "teachers.tasks", "input_dim"),
        ("[curriculum]\norder = [0, 4]\n", "curriculum.order", "does not exist"),
        ("[sweep]\ndt = [0.1]\n", "sweep.dt", "cannot be swept"),
        ("[sweep]\ngate_timescale = [0.03, -1.0]\n", "sweep.gate_timescale", "positive"),
        ("seeds = 0\n", "seeds", "at least 1"),
        ("colour = 'red'\n", "colour", "unknown key"),
        ("[learning\n", "toml", "invalid TOML"),
    ],
)
def test_bad_values_name_the_field(tmp_path, text, field, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.field == field
    assert words in str(info.value)
    assert str(path) in str(info.value)


def test_unknown_preset_lists_the_available_ones():
    with pytest.raises(ConfigError, match="unknown preset 'fig9'.*fig2-flexible"):
        load_config("fig9")


def test_stability_check_applies_to_every_grid_point():
    config = load_config("fig5-grid-b")
    with pytest.raises(ConfigError, match="gate_timescale 0.0001"):
        grid = dataclasses.replace(config.sweep, axes=(("gate_timescale", (0.005, 0.0001)),))
        dataclasses.replace(config, sweep=grid)


def test_defaults_are_valid():
    config = SimulationConfig()
    assert config.n_steps == round(config.curriculum.duration / config.learning.dt)
