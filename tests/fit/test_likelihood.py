"""The PyMC models' pointwise log-likelihood against numpy computations written from the formulas."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.special import expit, logit

from cogflex.fit.models.descriptive import ACC_TERMS, RT_TERMS
from cogflex.fit.network import full_sequence
from cogflex.fit.prepare import prepare
from cogflex.fit.pymc_model import build_model
from cogflex.fit.tables import grid_points, predictor_table
from tests.fit.helpers import evaluate, kept_mask, likelihood_part
from tests.fit.reference import interpolant, pointwise_loglik, reference_covariates, run_reference

#: Link parameters per participant (sim01, sim02).
LINK = {"acc_intercept": [2.0, 1.0], "acc_slope": [3.0, 1.5], "rt_intercept": [-0.8, -0.6], "rt_slope": [0.5, 1.2],
        "rt_sigma": [0.3, 0.45], "rt_shift": [0.5, 0.3]}
#: Box positions as logits: sim01 exactly on the middle node (logit 0), sim02 between nodes.
LOGITS = {"flexible": {"gate_timescale": [0.0, -0.7], "weight_timescale": [0.0, 0.4], "regularization": [0.0, 1.3]},
          "forgetful": {"timescale": [0.0, 0.9]}}


@pytest.fixture(scope="module")
def fd(trials):
    return prepare(trials)


def reference_predictors(spec, seq) -> np.ndarray:
    """(grid..., n_obs, 2): the numpy network at every grid node (same initial paths as the engine's)."""
    import torch

    s = spec.network
    gen = torch.Generator().manual_seed(s.seed)
    w0 = torch.randn(1, s.paths, seq.n_responses, 2 * seq.n_responses, dtype=torch.float64,
                     generator=gen)[0].numpy() * s.weight_init_std
    task, feat, observed = full_sequence(seq, s)
    tau_c, tau_w, lam = spec.network_values(grid_points(spec))
    loss, margin, _ = run_reference(task, feat, observed, seq.target[seq.observed], seq.n_responses, w0, s.gate_init,
                                    tau_c, tau_w, lam, substeps=s.substeps, nonnegative=s.regularizer_nonnegative,
                                    l1=s.regularizer_l1)
    shape = tuple(spec.parameters[n].points for n in spec.grid_names)
    return np.stack([loss, margin], -1).reshape(*shape, -1, 2)


def observations(trials, fd):
    """rt, correct, participant index and the per-participant shift base, from the raw trial table."""
    df = trials.trials
    kept = kept_mask(df)
    rt = df["rt"].to_numpy()[kept]
    correct = (df["response"].astype(str) == df["correct_response"].astype(str)).to_numpy()[kept]
    pidx = (df["participant"].astype(str) == "sim02").to_numpy()[kept].astype(int)
    min_rt = np.array([rt[pidx == i].min() for i in range(2)])
    assert np.array_equal(fd.trials["row"].to_numpy(), np.flatnonzero(kept))
    return rt, correct, pidx, min_rt


@pytest.mark.parametrize("variant, interpolation", [("flexible", "linear"), ("forgetful", "linear"),
                                                    ("flexible", "cubic")])
def test_nta_pointwise_loglik_matches_numpy(variant, interpolation, request, trials, fd):
    spec = dataclasses.replace(request.getfixturevalue(variant), interpolation=interpolation)
    tables = [predictor_table(spec, seq) for seq in fd.sequences]
    model, pointwise = build_model(spec, fd, tables=tables)
    values = {**LINK, **{f"{name}_logit": v for name, v in LOGITS[variant].items()}}
    got = evaluate(model, pointwise, values)

    rt, correct, pidx, min_rt = observations(trials, fd)
    link = {k: np.array(v)[pidx] for k, v in LINK.items()}
    loss, margin = np.empty(len(rt)), np.empty(len(rt))
    for i, seq in enumerate(fd.sequences):
        ref = reference_predictors(spec, seq)
        np.testing.assert_allclose(tables[i], ref, rtol=1e-8, atol=1e-10)
        position = expit(np.array([v[i] for v in LOGITS[variant].values()]))
        pred = interpolant(spec.interpolation)(ref, position)
        if i == 0:  # on a grid node the interpolation is the node's network run
            middle = tuple(p.points // 2 for p in spec.parameters.values())
            np.testing.assert_allclose(pred, ref[middle], rtol=1e-12)
        loss[pidx == i], margin[pidx == i] = pred[:, 0], pred[:, 1]
    want = pointwise_loglik(rt, correct, link["acc_intercept"] + link["acc_slope"] * margin,
                            link["rt_intercept"] + link["rt_slope"] * loss, link["rt_sigma"],
                            link["rt_shift"] * min_rt[pidx])
    assert got.shape == (fd.n_trials,)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    # the likelihood potential is the sum of the pointwise terms
    assert likelihood_part(model, values) == pytest.approx(want.sum(), rel=1e-9)
    # the named network parameters: the middle node for sim01, the box position for sim02
    for name in spec.grid_names:
        gp = spec.parameters[name]
        value = evaluate(model, model[name], values)
        assert value[0] == pytest.approx(gp.nodes()[1], rel=1e-12)
        assert value[1] == pytest.approx(gp.value(expit(LOGITS[variant][name][1])), rel=1e-12)
    if variant == "forgetful":  # tau_c = tau_W = tau and lambda = 0 are fixed by the model, not variables
        assert not {"gate_timescale", "weight_timescale", "regularization"} & set(model.named_vars)
        assert spec.fixed == {"regularization": 0.0}


def descriptive_design(trials, fd) -> tuple[np.ndarray, np.ndarray]:
    c = reference_covariates(trials)
    sw, inc, lp, lr = c["switch"], c["incongruent"], c["log_practice"], c["log_run"]
    x_rt = np.column_stack([sw, lp, sw * lp, inc, sw * inc, lr])
    x_acc = np.column_stack([sw, inc, lp, sw * inc])
    assert RT_TERMS == ("switch", "log_practice", "switch_x_log_practice", "incongruent", "switch_x_incongruent",
                        "log_run")
    assert ACC_TERMS == ("switch", "incongruent", "log_practice", "switch_x_incongruent")
    return x_rt, x_acc


def test_descriptive_pointwise_loglik_matches_numpy(descriptive, trials, fd):
    model, pointwise = build_model(descriptive, fd)
    rng = np.random.default_rng(7)
    b_rt, b_acc = rng.normal(0, 0.3, (2, 6)), rng.normal(0, 1.0, (2, 4))
    values = {k: v for k, v in LINK.items() if k not in ("acc_slope", "rt_slope")}
    values.update(rt_coefficient=b_rt, acc_coefficient=b_acc)
    got = evaluate(model, pointwise, values)
    rt, correct, pidx, min_rt = observations(trials, fd)
    x_rt, x_acc = descriptive_design(trials, fd)
    link = {k: np.array(v)[pidx] for k, v in LINK.items()}
    want = pointwise_loglik(rt, correct, link["acc_intercept"] + (x_acc * b_acc[pidx]).sum(1),
                            link["rt_intercept"] + (x_rt * b_rt[pidx]).sum(1), link["rt_sigma"],
                            link["rt_shift"] * min_rt[pidx])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    assert likelihood_part(model, values) == pytest.approx(want.sum(), rel=1e-9)


def _natural(model, **hierarchy):
    """``model`` with its RT parameters sampled in their natural coordinates (non-centred unless ``centred``)."""
    return dataclasses.replace(model, hierarchy=dataclasses.replace(model.hierarchy, rt_coordinates="natural",
                                                                    **hierarchy))


def test_hierarchical_models_map_group_and_offsets_to_participant_values(descriptive, flexible, trials, fd):
    """Hierarchical link parameters: normal mu + sd z; half-normal exp(logmu + sd z); beta sigmoid(logitmu + sd z)."""
    descriptive, flexible = _natural(descriptive), _natural(flexible)
    model, pointwise = build_model(descriptive, fd, hierarchical=True)
    z = {name: np.array([0.4, -1.1]) for name in ("acc_intercept", "rt_intercept", "rt_sigma", "rt_shift")}
    values = {"acc_intercept_mu": 2.0, "acc_intercept_sd": 0.5, "rt_intercept_mu": -0.7, "rt_intercept_sd": 0.2,
              "rt_sigma_logmu": np.log(0.35), "rt_sigma_sd": 0.3, "rt_shift_logitmu": 0.1, "rt_shift_sd": 0.4,
              "rt_coefficient_mu": np.full(6, 0.05), "rt_coefficient_sd": np.full(6, 0.1),
              "rt_coefficient_z": np.tile([[1.0], [-1.0]], (1, 6)), "acc_coefficient_mu": np.full(4, -0.2),
              "acc_coefficient_sd": np.full(4, 0.5), "acc_coefficient_z": np.tile([[0.5], [0.0]], (1, 4)),
              **{f"{k}_z": v for k, v in z.items()}}
    got = evaluate(model, pointwise, values)
    part = {"acc_intercept": 2.0 + 0.5 * z["acc_intercept"], "rt_intercept": -0.7 + 0.2 * z["rt_intercept"],
            "rt_sigma": np.exp(np.log(0.35) + 0.3 * z["rt_sigma"]), "rt_shift": expit(0.1 + 0.4 * z["rt_shift"])}
    b_rt = 0.05 + 0.1 * values["rt_coefficient_z"]
    b_acc = -0.2 + 0.5 * values["acc_coefficient_z"]
    rt, correct, pidx, min_rt = observations(trials, fd)
    x_rt, x_acc = descriptive_design(trials, fd)
    want = pointwise_loglik(rt, correct, part["acc_intercept"][pidx] + (x_acc * b_acc[pidx]).sum(1),
                            part["rt_intercept"][pidx] + (x_rt * b_rt[pidx]).sum(1), part["rt_sigma"][pidx],
                            part["rt_shift"][pidx] * min_rt[pidx])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(evaluate(model, model["rt_sigma"], values), part["rt_sigma"], rtol=1e-12)

    # NTA: box-position logits are mu + sd * z per participant
    tables = [predictor_table(flexible, seq) for seq in fd.sequences]
    model, pointwise = build_model(flexible, fd, tables=tables, hierarchical=True)
    values = {f"{k}_z": np.zeros(2) for k in ("acc_intercept", "rt_intercept", "rt_sigma", "rt_shift", "acc_slope",
                                              "rt_slope")}
    values.update({"acc_intercept_mu": 2.0, "rt_intercept_mu": -0.7, "rt_sigma_logmu": np.log(0.35),
                   "rt_shift_logitmu": 0.0, "acc_slope_logmu": np.log(2.0), "rt_slope_logmu": np.log(0.8)})
    values.update({f"{k}_sd": 0.3 for k in ("acc_intercept", "rt_intercept", "rt_sigma", "rt_shift", "acc_slope",
                                            "rt_slope")})
    for name in flexible.grid_names:
        values.update({f"{name}_mu": 0.2, f"{name}_sd": 0.5, f"{name}_z": np.array([-1.0, 2.0])})
    position = expit(0.2 + 0.5 * np.array([-1.0, 2.0]))
    for name in flexible.grid_names:
        np.testing.assert_allclose(evaluate(model, model[name], values),
                                   flexible.parameters[name].value(position), rtol=1e-12)
    got = evaluate(model, pointwise, values)
    loss, margin = np.empty(len(rt)), np.empty(len(rt))
    for i in range(2):
        pred = interpolant(flexible.interpolation)(tables[i], np.full(3, position[i]))
        loss[pidx == i], margin[pidx == i] = pred[:, 0], pred[:, 1]
    want = pointwise_loglik(rt, correct, 2.0 + 2.0 * margin, -0.7 + 0.8 * loss, 0.35, 0.5 * min_rt[pidx])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_location_spread_coordinates_are_the_same_model(descriptive, fd):
    """The default hierarchical RT coordinates change what NUTS samples, not the model.

    At the same participant values, the log density in location-spread coordinates equals the centred natural
    one's plus the log-Jacobian ``sum(location - rt_intercept)``, and the pointwise log-likelihood is the same.
    """
    from tests.fit.helpers import compile_values

    ls, _ = build_model(descriptive, fd, hierarchical=True)
    natural, _ = build_model(_natural(descriptive, centred=("rt_intercept", "rt_sigma")), fd, hierarchical=True)
    assert {"rt_location", "rt_spread"} <= {rv.name for rv in ls.free_RVs}
    assert {"rt_intercept", "rt_sigma_log"} <= {rv.name for rv in natural.free_RVs}
    shared = {"acc_intercept_mu": 2.0, "acc_intercept_sd": 0.5, "acc_intercept_z": np.array([0.4, -1.1]),
              "rt_intercept_mu": -0.7, "rt_intercept_sd": 0.2, "rt_sigma_logmu": np.log(0.35), "rt_sigma_sd": 0.3,
              "rt_shift_logitmu": 0.1, "rt_shift_sd": 0.4, "rt_shift_z": np.array([-0.5, 0.8]),
              "rt_coefficient_mu": np.full(6, 0.05), "rt_coefficient_sd": np.full(6, 0.1),
              "rt_coefficient_z": np.tile([[1.0], [-1.0]], (1, 6)), "acc_coefficient_mu": np.full(4, -0.2),
              "acc_coefficient_sd": np.full(4, 0.5), "acc_coefficient_z": np.tile([[0.5], [0.0]], (1, 4))}
    location = {**shared, "rt_location": np.log([0.35, 0.6]), "rt_spread": np.log([0.12, 0.2])}
    intercept, sigma, shift = compile_values(ls, [ls["rt_intercept"], ls["rt_sigma"], ls["rt_shift"]])(location)
    fastest = fd.trials.groupby("pidx")["rt"].min().to_numpy()
    np.testing.assert_allclose(np.exp(intercept) + shift * fastest - fastest, [0.35, 0.6], rtol=1e-12)
    np.testing.assert_allclose(np.exp(intercept) * sigma, [0.12, 0.2], rtol=1e-12)
    centred = {**shared, "rt_intercept": intercept, "rt_sigma_log": np.log(sigma)}
    logp_ls, ll_ls = compile_values(ls, [ls.logp(), ls["likelihood"]])(location)
    logp_natural, ll_natural = compile_values(natural, [natural.logp(), natural["likelihood"]])(centred)
    np.testing.assert_allclose(ll_ls, ll_natural, rtol=1e-12)
    np.testing.assert_allclose(logp_ls, logp_natural + np.sum(location["rt_location"] - intercept), rtol=1e-10)


def test_pooled_parameters_take_one_value(descriptive, fd):
    pooled = dataclasses.replace(descriptive, hierarchy=dataclasses.replace(descriptive.hierarchy,
                                                                            pooled=("rt_shift",)))
    model, _ = build_model(pooled, fd, hierarchical=True)
    names = {rv.name for rv in model.free_RVs}
    assert "rt_shift_pooled" in names and not {"rt_shift_z", "rt_shift_sd", "rt_shift_logitmu"} & names
    point = model.initial_point()
    point["rt_shift_pooled_logodds__"] = logit(0.37)
    value = model.rvs_to_values[model["rt_shift_pooled"]]
    shift = model.replace_rvs_by_values([model["rt_shift"]])[0]
    got = model.compile_fn(shift, inputs=[value], point_fn=False)(point[value.name])
    np.testing.assert_allclose(got, [0.37, 0.37])


def test_nta_models_need_one_table_per_participant(flexible, fd):
    tables = [predictor_table(flexible, fd.sequences[0])]
    with pytest.raises(ValueError, match="one predictor table per participant"):
        build_model(flexible, fd, tables=tables)
    with pytest.raises(ValueError, match="one predictor table per participant"):
        build_model(flexible, fd)


def test_logit_of_the_middle_node_is_zero(flexible):
    # the premise of LOGITS: position 0.5 is the middle node of a 3-point grid, on both log and linear boxes
    for gp in flexible.parameters.values():
        assert gp.value(expit(0.0)) == pytest.approx(gp.nodes()[1], rel=1e-12)
        assert logit(gp.position(gp.nodes()[1])) == pytest.approx(0.0, abs=1e-12)
