"""The cue-driven reconfiguration models as registry models: presets, validation, link, identity."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from cogflex.errors import ConfigError
from cogflex.fit.link import NUMPY
from cogflex.fit.models import family, load_model, model_from_dict
from cogflex.fit.models.reconfig import ReconfigModel
from cogflex.fit.start import profile_columns

PRESETS = ("flexible-reconfig", "forgetful-reconfig", "fast-gates-unregularised")


@pytest.mark.parametrize("name", PRESETS)
def test_presets_load_round_trip_and_state_their_regime(name):
    model = load_model(name)
    assert isinstance(model, ReconfigModel) and family("nta-reconfig") is ReconfigModel
    again = model_from_dict(model.to_dict())
    assert again == model
    regime = {"flexible-reconfig": ("flexible", 0.1), "forgetful-reconfig": ("forgetful", 0.0),
              "fast-gates-unregularised": ("fast-gates", 0.0)}[name]
    assert (model.variant, model.fixed["regularization"]) == regime
    tau_c, tau_w, lam = model.network_values({n: np.array([p.nodes()[0]]) for n, p in model.grid.items()})
    assert (lam == regime[1]).all()
    if model.variant == "forgetful":
        assert tau_c == tau_w
    else:  # fast gates: every gate timescale below every weight timescale
        assert model.grid["gate_timescale"].upper <= model.grid["weight_timescale"].lower


def test_variants_have_distinct_table_identities():
    identities = [load_model(n).table_identity() for n in PRESETS]
    assert len({str(i) for i in identities}) == 3
    flexible = load_model("flexible")
    assert flexible.table_identity() not in identities


@pytest.mark.parametrize("change, field", [
    (lambda d: d["parameters"]["gate_timescale"].update(upper=50.0), "gate_timescale.upper"),
    (lambda d: d.update(regularization=0.0), "regularization"),
    (lambda d: d["network"].update(paths=3), "network.paths"),
    (lambda d: d["network"].update(engine="torch"), "network.engine"),
    (lambda d: d["parameters"].pop("weight_timescale"), "parameters.weight_timescale"),
    (lambda d: d["reconfiguration"].update(criterion=0.0), "reconfiguration.criterion"),
])
def test_bad_specs_name_the_field(change, field):
    data = load_model("flexible-reconfig").to_dict()
    change(data)
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        model_from_dict(data)


def test_the_residue_blends_the_mixed_margin_into_accuracy_and_rt():
    """e = m + rho (m_mix - m): rho = 0 reads the response margin, rho = 1 the mixed-gate margin."""
    model = load_model("flexible-reconfig")
    columns = {"reconfig": np.array([0.0, 2.0]), "margin": np.array([1.0, 1.0]), "margin_mixed": np.array([0.0, 1.0])}
    theta = {"acc_intercept": 0.5, "acc_slope": 2.0, "rt_intercept": -0.8, "rt_slope": 0.1, "rt_drift": 0.3}
    for rho in (0.0, 0.25, 1.0):
        eta, mu = model.formula.linear_predictors({**theta, "residue": rho}, columns)
        evidence = np.array([1.0 - rho, 1.0])  # incongruent-like trial loses evidence, congruent-like does not
        np.testing.assert_allclose(eta, 0.5 + 2.0 * evidence)
        np.testing.assert_allclose(mu, -0.8 + 0.1 * columns["reconfig"] + 0.3 * (1.0 - evidence))
    assert set(model.formula.columns) == {"reconfig", "margin", "margin_mixed"}
    # the profile start search reads the response margin in place of the effective one
    assert profile_columns(model)[:2] == (model.predictors.index("reconfig"), model.predictors.index("margin"))
    ll = model.formula.loglik(NUMPY, {**theta, "residue": 0.2, "rt_sigma": 0.3, "rt_shift": 0.5}, columns,
                              np.array([0.6, 0.9]), np.array([True, False]), 0.3)
    assert np.isfinite(ll).all()


def test_reconfiguration_models_cannot_record_all_gates(trials):
    from cogflex.fit.prepare import prepare

    model = replace(load_model("flexible-reconfig"))
    with pytest.raises(ConfigError, match="record_gates"):
        model.run(prepare(trials).sequences[0], {"gate_timescale": np.array([1.0]),
                                                 "weight_timescale": np.array([100.0])}, record_gates=True)
