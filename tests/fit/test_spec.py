"""Model specs: the bundled TOMLs, boxes and priors, validation with the offending field named."""

from __future__ import annotations

import numpy as np
import pytest

from cogflex.errors import ConfigError
from cogflex.fit.models import load_model, model_from_dict
from cogflex.fit.models.parameters import GridParameter
from tests.fit.helpers import model_dict, toml_text


def test_builtin_models_load():
    flexible, forgetful, descriptive = (load_model(name) for name in ("flexible", "forgetful", "descriptive"))
    assert flexible.grid_names == ("gate_timescale", "weight_timescale")
    assert flexible.regularization > 0  # lambda fixed: not identifiable (docs/fitting_recovery.md)
    assert forgetful.grid_names == ("timescale",) and descriptive.grid_names == ()
    assert flexible.family == forgetful.family == "nta" and descriptive.family == "descriptive"
    tc, tw = flexible.parameters["gate_timescale"], flexible.parameters["weight_timescale"]
    assert tc.upper <= tw.lower
    _, _, lam = flexible.network_values({"gate_timescale": np.array([1.0]), "weight_timescale": np.array([50.0])})
    np.testing.assert_array_equal(lam, [flexible.regularization])
    for spec in (flexible, forgetful):
        assert spec.network.histories >= 1 and spec.network.substeps >= 1


def test_grid_parameter_nodes_values_positions():
    log = GridParameter(lower=0.5, upper=8.0, scale="log", points=5)
    np.testing.assert_allclose(log.nodes(), [0.5, 1.0, 2.0, 4.0, 8.0])
    np.testing.assert_allclose(log.value(np.array([0.0, 0.25, 0.5, 1.0])), [0.5, 1.0, 2.0, 8.0])
    np.testing.assert_allclose(log.position(log.nodes()), np.linspace(0, 1, 5), atol=1e-12)
    lin = GridParameter(lower=0.01, upper=0.3, scale="linear", points=3)
    np.testing.assert_allclose(lin.nodes(), [0.01, 0.155, 0.3])
    np.testing.assert_allclose(lin.value(0.5), 0.155)
    x = np.array([0.013, 0.2, 0.29])
    np.testing.assert_allclose(lin.value(lin.position(x)), x)


def test_network_values_per_variant(flexible, forgetful):
    tau_c, tau_w, lam = forgetful.network_values({"timescale": np.array([3.0, 7.0])})
    np.testing.assert_array_equal(tau_c, [3.0, 7.0])
    np.testing.assert_array_equal(tau_w, [3.0, 7.0])
    np.testing.assert_array_equal(lam, [0.0, 0.0])
    tau_c, tau_w, lam = flexible.network_values({"gate_timescale": 1.0, "weight_timescale": 50.0,
                                                 "regularization": 0.1})
    assert (float(tau_c), float(tau_w), float(lam)) == (1.0, 50.0, 0.1)


def test_spec_round_trips_through_its_mapping(flexible, descriptive):
    for spec in (flexible, descriptive, load_model("forgetful")):
        assert model_from_dict(spec.to_dict()) == spec


def test_toml_file_and_dict_agree(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(toml_text(model_dict("flexible")))
    assert load_model(path) == model_from_dict(model_dict("flexible"))


@pytest.mark.parametrize(("data", "field", "words"), [
    (model_dict("forgetful", parameters={"timescale": {"scale": "logarithmic"}}), "parameters.timescale.scale",
     "must be one of"),
    (model_dict("forgetful", parameters={"timescale": {"points": 1}}), "parameters.timescale.points", "at least 2"),
    (model_dict("forgetful", parameters={"timescale": {"points": 2.5}}), "parameters.timescale.points", "integer"),
    (model_dict("forgetful", parameters={"timescale": {"lower": 60.0}}), "parameters.timescale.lower", "below upper"),
    (model_dict("forgetful", parameters={"timescale": {"lower": 0.0}}), "parameters.timescale.lower", "positive"),
    (model_dict("forgetful", parameters={"timescale": {"prior_sigma": 0.0}}), "parameters.timescale.prior_sigma",
     "positive"),
    (model_dict("forgetful", parameters={"gate_timescale": {"lower": 1.0, "upper": 2.0}}),
     "parameters.gate_timescale", "not a parameter of the forgetful model"),
    ({**model_dict("flexible"), "parameters": {k: v for k, v in model_dict("flexible")["parameters"].items()
                                                if k != "weight_timescale"}}, "parameters.weight_timescale", "missing"),
    ({**model_dict("flexible"), "regularization": 0.0,
      "parameters": {k: v for k, v in model_dict("flexible")["parameters"].items() if k != "regularization"}},
     "regularization", "positive"),
    (model_dict("flexible", parameters={"regularization": {"lower": 0.0}}), "parameters.regularization.lower",
     "positive"),
    (model_dict("flexible", parameters={"gate_timescale": {"upper": 25.0}}), "parameters.gate_timescale.upper",
     "must not exceed weight_timescale.lower"),
    ({**model_dict("forgetful"), "variant": "lazy"}, "variant", "must be one of"),
    ({**model_dict("flexible"), "interpolation": "quadratic"}, "interpolation", "must be one of"),
    ({**model_dict("forgetful"), "kind": "neural"}, "kind", "unknown model family 'neural'"),
    ({**model_dict("descriptive"), "link": {"rt_sigma": {"dist": "gamma"}}}, "link.rt_sigma.dist", "must be one of"),
    ({**model_dict("descriptive"), "link": {"rt_slop": {"dist": "halfnormal"}}}, "link.rt_slop", "unknown key"),
    (model_dict("forgetful", network={"dtype": "float16"}), "network.dtype", "float32 or float64"),
    (model_dict("forgetful", network={"substep": 3}), "network.substep", "unknown key"),
    ({**model_dict("forgetful"), "parameters": 3}, "parameters", "expected a table"),
])
def test_invalid_specs_name_the_field(data, field, words):
    with pytest.raises(ConfigError) as info:
        model_from_dict(data)
    assert info.value.field == field and words in str(info.value)


def test_load_model_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown model 'flexibel'"):
        load_model("flexibel")
    with pytest.raises(ConfigError, match="no such file"):
        load_model(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text(toml_text(model_dict("forgetful", network={"substep": 3})))
    with pytest.raises(ConfigError) as info:
        load_model(bad)
    assert info.value.source == str(bad) and info.value.field == "network.substep"


@pytest.mark.parametrize("key", ["name", "kind"])
def test_spec_missing_a_required_key(key):
    data = {k: v for k, v in model_dict("forgetful").items() if k != key}
    with pytest.raises(ConfigError) as info:
        model_from_dict(data)
    assert info.value.field == key


def test_descriptive_spec_with_grid_parameters_is_rejected():
    data = {**model_dict("descriptive"), "parameters": {"timescale": {"lower": 1.0, "upper": 2.0}}}
    with pytest.raises(ConfigError):
        model_from_dict(data)
