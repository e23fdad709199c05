"""Prior densities on each parameter's own scale (the report's prior-vs-posterior figure): they are densities,
and they are the densities of the priors the sampler draws from."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from scipy import integrate

from cogflex.fit.models import load_model
from cogflex.fit.models.base import draw_from_prior
from cogflex.fit.models.parameters import GridParameter, Prior
from cogflex.fit.prior_posterior import (
    PRIOR_MASS,
    on_log_axis,
    plot_prior_posterior,
    prior_curve,
    prior_density,
    prior_range,
)

PRIORS = {
    "normal": Prior("normal", mu=0.5, sigma=2.0),
    "halfnormal": Prior("halfnormal", sigma=3.0),
    "lognormal": Prior("lognormal", mu=-2.0, sigma=1.0),
    "beta": Prior("beta", alpha=1.5, beta=4.0),
    "grid-log": GridParameter(0.3, 30.0, "log", prior_mu=0.4, prior_sigma=1.5),
    "grid-log-wide": GridParameter(0.5, 400.0, "log", prior_mu=-1.0, prior_sigma=3.0),
    "grid-linear": GridParameter(0.05, 0.2, "linear", prior_mu=0.0, prior_sigma=1.0),
}


def _support(prior) -> tuple[float, float]:
    if isinstance(prior, GridParameter):
        return prior.lower, prior.upper
    return {"normal": (-np.inf, np.inf), "halfnormal": (0.0, np.inf), "lognormal": (0.0, np.inf),
            "beta": (0.0, 1.0)}[prior.dist]


def _prior_draws(prior, n: int, rng) -> np.ndarray:
    """Draws as the model defines its priors: draw_from_prior, or a normal logit of the box position."""
    if isinstance(prior, GridParameter):
        logit = rng.normal(prior.prior_mu, prior.prior_sigma, n)
        return prior.value(1.0 / (1.0 + np.exp(-logit)))
    return np.array([draw_from_prior(prior, rng) for _ in range(n)])


@pytest.mark.parametrize("kind", list(PRIORS))
def test_prior_density_integrates_to_one_over_the_support(kind):
    """Over the whole support (a grid parameter's box) every prior density has mass 1."""
    prior = PRIORS[kind]
    lo, hi = _support(prior)
    if isinstance(prior, GridParameter) and prior.scale == "log":
        # substitute s = log x (the logit-normal piles up steeply near both ends of a wide box)
        mass, err = integrate.quad(lambda s: prior_density(prior, np.exp(s)) * np.exp(s), np.log(lo), np.log(hi),
                                   limit=400)
    else:
        mass, err = integrate.quad(lambda x: prior_density(prior, x), lo, hi, limit=400)
    assert mass == pytest.approx(1.0, abs=1e-6), (mass, err)
    outside = [lo - 1.0, hi + 1.0] if np.isfinite(hi) else [lo - 1.0] if np.isfinite(lo) else []
    assert np.all(prior_density(prior, np.array(outside)) == 0.0)


@pytest.mark.parametrize("kind", list(PRIORS))
def test_the_drawn_curve_holds_the_prior_mass_of_its_range_on_the_figure_axis(kind):
    """The curve the figure draws, integrated along its axis (log10 of the value on a log axis), is the prior's
    mass in the panel's range: all of it for a box or a bounded prior, PRIOR_MASS otherwise."""
    prior = PRIORS[kind]
    log_axis = on_log_axis(prior)
    assert log_axis == (kind in ("lognormal", "grid-log", "grid-log-wide"))
    lo, hi = prior_range(prior)
    x, density = prior_curve(prior, lo, hi, log_axis=log_axis)
    t = np.log10(x) if log_axis else x
    mass = np.trapezoid(density, t)
    bounded = isinstance(prior, GridParameter) or prior.dist == "beta"
    assert mass == pytest.approx(1.0 if bounded else PRIOR_MASS, abs=2e-3)


@pytest.mark.parametrize("kind", list(PRIORS))
def test_the_drawn_curve_is_the_distribution_the_priors_draw_from(kind):
    """The cumulative integral of the drawn curve matches the empirical CDF of 20,000 prior draws
    (Kolmogorov-Smirnov distance well below the 1% critical value, 0.0115)."""
    prior = PRIORS[kind]
    draws = _prior_draws(prior, 20_000, np.random.default_rng(7))
    log_axis = on_log_axis(prior)
    lo, hi = prior_range(prior, mass=1 - 1e-9)
    x, density = prior_curve(prior, lo, hi, log_axis=log_axis)
    t = np.log10(x) if log_axis else x
    cdf = integrate.cumulative_trapezoid(density, t, initial=0.0)
    empirical = np.searchsorted(np.sort(draws), x, side="right") / len(draws)
    assert np.max(np.abs(cdf - empirical)) < 0.01


def _tree(model, posterior: dict[str, np.ndarray], participants: list[str], weak: list[dict]) -> xr.DataTree:
    post = xr.Dataset({k: (("chain", "draw", "participant"), v) for k, v in posterior.items()},
                      coords={"participant": participants})
    tree = xr.DataTree.from_dict({"posterior": post})
    tree.attrs.update({"model_spec": json.dumps(model.to_dict()), "weak_parameters": json.dumps(weak)})
    return tree


def test_the_figure_marks_the_weak_parameters_and_says_when_participants_are_capped():
    """One panel per grid and scalar parameter; the weak (participant, parameter) pairs are red (title and row
    label), the others not; with more participants than the cap the title says which are shown."""
    import matplotlib.colors as mcolors
    import matplotlib.pyplot as plt

    model = load_model("forgetful")
    rng = np.random.default_rng(3)
    people = ["a", "b", "c"]
    posterior = {name: np.stack([[[draw_from_prior(p, rng) for _ in people] for _ in range(50)]]) for name, p in
                 model.priors.items()}
    box = model.grid["timescale"]
    posterior["timescale"] = rng.uniform(2.0, 50.0, size=(1, 50, 3))
    weak = [{"participant": "b", "parameter": "timescale", "sd_ratio": 0.9}]
    fig = plot_prior_posterior(_tree(model, posterior, people, weak), max_participants=2)
    try:
        panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
        assert len(panels) == len(model.grid) + len(model.priors)
        red = mcolors.to_hex("#d62728")
        for ax in panels:
            is_weak = "barely moved from prior" in ax.get_title()
            assert is_weak == (ax.get_title().startswith(model.label("timescale")))
            assert (mcolors.to_hex(ax.title.get_color()) == red) == is_weak
            labels = {t.get_text(): mcolors.to_hex(t.get_color()) for t in ax.get_yticklabels()}
            assert set(labels) == {"a", "b"}  # capped at 2 of 3
            assert {k for k, c in labels.items() if c == red} == ({"b"} if is_weak else set())
        assert "first 2 of 3 participants" in fig._suptitle.get_text()
        log_panel = next(ax for ax in panels if ax.get_title().startswith(model.label("timescale")))
        assert log_panel.get_xscale() == "log" and log_panel.get_xlim() == pytest.approx((box.lower, box.upper))
    finally:
        plt.close(fig)
