"""Checks of a fit that do not need sampling: a posterior pressed against its model's box."""

from __future__ import annotations

import numpy as np
import xarray as xr

from cogflex.fit.checks import BOUND_SHARE, BOUND_ZONE, box_bound_check, box_bound_warnings
from cogflex.fit.models import load_model


def _posterior(model, positions: dict[str, np.ndarray]) -> xr.Dataset:
    """A posterior over (chain, draw, participant) whose grid parameters sit at the given box positions."""
    data = {name: (("chain", "draw", "participant"), model.grid[name].value(pos))
            for name, pos in positions.items()}
    return xr.Dataset(data, coords={"participant": ["a", "b"]})


def test_a_posterior_piled_against_a_box_bound_is_flagged():
    """Participant a's tau_c sits at the bottom of the box and b's tau_W at the top; the others are inside."""
    model = load_model("flexible-reconfig")
    rng = np.random.default_rng(0)
    inside = rng.uniform(0.3, 0.7, size=(2, 200, 2))
    tau_c, tau_w = inside.copy(), inside.copy()
    tau_c[..., 0] = rng.uniform(0.0, BOUND_ZONE / 2, size=(2, 200))  # a: all draws at the lower end
    tau_w[..., 1] = np.where(rng.uniform(size=(2, 200)) < 2 * BOUND_SHARE, 0.995, 0.9)  # b: ~20% at the upper end
    found = box_bound_check(model, _posterior(model, {"gate_timescale": tau_c, "weight_timescale": tau_w}))
    assert {(e["participant"], e["parameter"], e["bound"]) for e in found} == {
        ("a", "gate_timescale", "lower"), ("b", "weight_timescale", "upper")}
    lower = next(e for e in found if e["participant"] == "a")
    assert lower["edge"] == model.grid["gate_timescale"].lower and lower["share"] == 1.0
    (line,) = [w for w in box_bound_warnings(found) if "gate_timescale" in w]
    assert "participant a" in line and "lower bound" in line and "widen it" in line


def test_a_posterior_inside_its_box_is_not_flagged():
    model = load_model("forgetful-reconfig")
    rng = np.random.default_rng(1)
    pos = rng.uniform(BOUND_ZONE, 1 - BOUND_ZONE, size=(2, 300, 2))
    pos[0, :20, 0] = 0.001  # a few draws (3%) at the bound are not a pile
    assert box_bound_check(model, _posterior(model, {"timescale": pos})) == []


def test_a_posterior_that_is_the_prior_is_flagged_as_weakly_identified():
    """Draws from the prior itself (residue, tau_c) are flagged; a posterior far narrower than its prior is not."""
    from cogflex.fit.checks import weak_warnings, weakly_identified

    model = load_model("flexible-reconfig")
    rng = np.random.default_rng(2)
    shape = (2, 500, 2)
    residue = np.stack([rng.beta(1.5, 4.0, size=shape[:2]), rng.normal(0.3, 0.01, size=shape[:2])], -1)
    gate = model.grid["gate_timescale"]
    logit = np.stack([rng.normal(gate.prior_mu, gate.prior_sigma, size=shape[:2]),
                      rng.normal(0.2, 0.05, size=shape[:2])], -1)
    rt_slope = np.exp(rng.normal(-2.0, 0.05, size=shape))  # narrow on the log scale for both
    post = xr.Dataset({"residue": (("chain", "draw", "participant"), residue),
                       "gate_timescale_logit": (("chain", "draw", "participant"), logit),
                       "rt_slope": (("chain", "draw", "participant"), rt_slope)},
                      coords={"participant": ["a", "b"]})
    found = weakly_identified(model, post)
    assert {(e["participant"], e["parameter"]) for e in found} == {("a", "residue"), ("a", "gate_timescale")}
    assert all(0.8 < e["sd_ratio"] < 1.2 for e in found)
    assert all("barely moved from its prior" in w for w in weak_warnings(found))


def test_chains_in_separate_modes_are_named_per_participant():
    """Participant a's chains sit in two modes of the timescale (two chains each); b's chains mix."""
    from cogflex.fit.checks import mode_warnings, separate_modes

    model = load_model("forgetful")
    gp = model.grid["timescale"]
    rng = np.random.default_rng(3)
    logit = rng.normal(0.0, 0.3, size=(4, 400, 2))
    logit[:2, :, 0] += 2.5  # a: chains 0 and 1 in a second mode
    value = gp.value(1.0 / (1.0 + np.exp(-logit)))
    post = xr.Dataset({"timescale_logit": (("chain", "draw", "participant"), logit),
                       "timescale": (("chain", "draw", "participant"), value)}, coords={"participant": ["a", "b"]})
    (entry,) = separate_modes(model, post)
    assert entry["participant"] == "a" and entry["parameter"] == "timescale" and entry["rhat"] > 1.5
    medians = np.array(entry["chain_medians"])
    assert medians[:2].min() > 5 * medians[2:].max()  # the two modes, in the parameter's units
    (line,) = mode_warnings([entry])
    assert "participant a" in line and "separate modes" in line
    assert separate_modes(model, post.isel(chain=[0])) == []  # one chain: nothing to compare


def test_all_participants_diagnostics_at_once_are_each_participants_own():
    """R-hat/ESS computed once and sliced == computed on each participant's part (with the group level)."""
    from cogflex.fit.checks import participant_diagnostics, participants_diagnostics

    rng = np.random.default_rng(4)
    shape = (3, 200, 3)
    drift = np.zeros(shape)
    drift[0, :, 2] = 1.0  # participant c: one chain off, R-hat well above 1
    post = xr.Dataset({"rt_slope": (("chain", "draw", "participant"), rng.normal(size=shape) + drift),
                       "rt_slope_z": (("chain", "draw", "participant"), rng.normal(size=shape)),
                       "rt_slope_sd": (("chain", "draw"), rng.gamma(2.0, size=shape[:2]))},
                      coords={"participant": ["a", "b", "c"]})
    stats = xr.Dataset({"diverging": (("chain", "draw"), rng.uniform(size=shape[:2]) < 0.01),
                        "energy": (("chain", "draw"), rng.normal(size=shape[:2]))})
    tree = xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})
    together = participants_diagnostics(tree)
    assert list(together) == ["a", "b", "c"]
    for pid, d in together.items():
        assert d == participant_diagnostics(tree, pid)
    assert together["c"]["rhat_max"] > 1.1 > together["a"]["rhat_max"]
