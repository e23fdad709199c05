"""Parameters of cognitive models: priors, grid (network) parameters, coefficient blocks, hierarchy scales.

- :class:`Prior`: a univariate prior of a per-participant parameter (``normal``, ``halfnormal``,
  ``lognormal``, ``beta``);
- :class:`GridParameter`: a network parameter living in a box (``lower``..``upper``, log or linear scale)
  with a logit-normal prior on its position in the box; the fitting engine simulates the network on a grid
  of ``points`` nodes per parameter and interpolates;
- :class:`Coefficients`: a block of regression coefficients over named terms (the descriptive model);
- :class:`Hierarchy`: the scales of group-level standard deviations in hierarchical fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from cogflex.errors import ConfigError

__all__ = ["Prior", "GridParameter", "Coefficients", "Hierarchy", "finite", "COVARIATES"]


@dataclass(frozen=True)
class Prior:
    """A univariate prior.

    ``normal`` (mu, sigma), ``halfnormal`` (sigma), ``lognormal`` (mu, sigma of the log) or ``beta``
    (alpha, beta).
    """

    dist: Literal["normal", "halfnormal", "lognormal", "beta"] = "normal"
    mu: float = 0.0
    sigma: float = 1.0
    alpha: float = 2.0
    beta: float = 2.0

    def __post_init__(self) -> None:
        finite(self, ("mu", "sigma", "alpha", "beta"))
        if self.sigma <= 0 or self.alpha <= 0 or self.beta <= 0:
            raise ConfigError("prior", "sigma, alpha and beta must be positive")


@dataclass(frozen=True)
class GridParameter:
    """A network parameter: its box, grid resolution and prior on the box position."""

    lower: float
    upper: float
    scale: Literal["log", "linear"] = "log"
    points: int = 6
    prior_mu: float = 0.0
    prior_sigma: float = 1.5

    def __post_init__(self) -> None:
        finite(self, ("lower", "upper", "prior_mu", "prior_sigma"))
        if not self.lower < self.upper:
            raise ConfigError("lower", f"must be below upper ({self.lower} >= {self.upper})")
        if self.scale == "log" and self.lower <= 0:
            raise ConfigError("lower", "must be positive on a log scale")
        if self.points < 2:
            raise ConfigError("points", "need at least 2 grid points")
        if self.prior_sigma <= 0:
            raise ConfigError("prior_sigma", "must be positive")

    def nodes(self) -> np.ndarray:
        """Grid values of the parameter."""
        if self.scale == "log":
            return np.geomspace(self.lower, self.upper, self.points)
        return np.linspace(self.lower, self.upper, self.points)

    def value(self, position):
        """Parameter value at box position(s) in [0, 1] (numpy or PyTensor)."""
        if self.scale == "log":
            lo, hi = np.log(self.lower), np.log(self.upper)
            return _exp(lo + (hi - lo) * position)
        return self.lower + (self.upper - self.lower) * position

    def position(self, value) -> np.ndarray:
        """Box position of parameter value(s) (numpy)."""
        value = np.asarray(value, dtype=float)
        if self.scale == "log":
            return (np.log(value) - np.log(self.lower)) / (np.log(self.upper) - np.log(self.lower))
        return (value - self.lower) / (self.upper - self.lower)


def finite(obj, names: tuple[str, ...]) -> None:
    """Every field in ``names`` is a finite number (NaN or infinity in a spec would reach the sampler)."""
    for name in names:
        if not np.isfinite(getattr(obj, name)):
            raise ConfigError(name, f"must be a finite number, got {getattr(obj, name)!r}")


def _exp(x):
    if isinstance(x, np.ndarray | float | int):
        return np.exp(x)
    import pytensor.tensor as pt

    return pt.exp(x)


@dataclass(frozen=True)
class Coefficients:
    """A block of per-participant regression coefficients over ``terms``, each with the same prior.

    ``flat_prefix`` names the coefficients one by one outside the posterior (simulation parameters,
    ``--params``): ``<flat_prefix>_<term>``.
    """

    prior: Prior
    terms: tuple[str, ...]
    flat_prefix: str

    @staticmethod
    def term_dim(name: str) -> str:
        """The posterior dimension of block ``name``'s terms (``rt_coefficient`` -> ``rt_term``)."""
        return f"{name.removesuffix('_coefficient')}_term"

    def flat_names(self) -> tuple[str, ...]:
        """``<flat_prefix>_<term>`` for every term."""
        return tuple(f"{self.flat_prefix}_{t}" for t in self.terms)


#: Participant-level columns a hierarchical fit can regress the network parameters on.
COVARIATES = ("age",)


@dataclass(frozen=True)
class Hierarchy:
    """Group level of hierarchical fits: scales of the group standard deviations (half-normal) and covariates.

    ``covariates`` (e.g. ``["age"]``): participant columns on which every network (grid) parameter's group mean
    is regressed, ``logit position = mu + slope x z + sd x offset`` with ``z`` the covariate standardised over
    the fitted participants and ``slope ~ N(0, covariate_slope_sd)`` (``<parameter>_<covariate>_slope``).
    Per-participant fits have no group level and ignore them (with a warning).

    ``interpolation`` replaces the model's own interpolant in hierarchical fits (default ``"cubic"``, C1: with
    60 participants the multilinear kinks cost twice the leapfrog steps per draw; docs/lab.md).

    ``pooled`` (e.g. ``["rt_shift"]``) names scalar parameters that take one value for all participants in
    hierarchical fits, with the model's own prior, instead of a group distribution: for a parameter that few
    hundred trials per participant barely tell apart from another one (``rt_shift`` against ``rt_intercept``,
    posterior correlation -0.93), the group spread is not identified and its funnel stalls NUTS (docs/lab.md).
    ``rt_shift`` stays individual in seconds: a shared fraction of each participant's fastest RT.

    ``centred`` names scalar parameters whose group distribution is centred (the participants' values are the
    sampled variables) instead of non-centred (offsets ``*_z``). Centred suits parameters that every
    participant's trials pin down far more tightly than the group spread (``rt_intercept``, ``rt_sigma`` from a
    few hundred RTs); non-centred suits weakly informed ones (docs/lab.md).
    """

    position_sd: float = 1.0  # of the logit box positions of network parameters
    link_sd: float = 0.5  # of link parameters (on their unconstrained scale)
    covariates: tuple[str, ...] = ()
    covariate_slope_sd: float = 1.0  # prior scale of a covariate's slope (logit position per covariate SD)
    #: interpolant of the predictor tables in hierarchical fits ("cubic" or "linear"): with many participants some
    #: posterior always straddles a node, and the multilinear interpolant's kinks there halve NUTS's step size
    interpolation: str = "cubic"
    #: scalar parameters shared by all participants in hierarchical fits (no group distribution)
    pooled: tuple[str, ...] = ()
    #: scalar parameters with a centred group distribution (default: non-centred)
    centred: tuple[str, ...] = ()
    #: coordinates NUTS samples rt_intercept and rt_sigma in: "location-spread" (the RTs' median above the
    #: fastest RT and their spread, which the shift does not move; same model) or "natural"
    rt_coordinates: str = "location-spread"

    def __post_init__(self) -> None:
        finite(self, ("position_sd", "link_sd", "covariate_slope_sd"))
        for name in ("position_sd", "link_sd", "covariate_slope_sd"):
            if getattr(self, name) <= 0:
                raise ConfigError(name, f"must be positive, got {getattr(self, name)}")
        from cogflex.fit.interpolate import INTERPOLANTS

        if self.interpolation not in INTERPOLANTS:
            raise ConfigError("interpolation", f"must be {' or '.join(INTERPOLANTS)}, got {self.interpolation!r}")
        object.__setattr__(self, "covariates", tuple(self.covariates))
        for field_name in ("pooled", "centred"):
            names = tuple(getattr(self, field_name))
            object.__setattr__(self, field_name, names)
            if len(set(names)) != len(names):
                raise ConfigError(field_name, "a parameter is listed twice")
        if self.rt_coordinates not in ("location-spread", "natural"):
            raise ConfigError("rt_coordinates", f"must be \"location-spread\" or \"natural\", "
                                                f"got {self.rt_coordinates!r}")
        both = sorted(set(self.pooled) & set(self.centred))
        if both:
            raise ConfigError("centred", f"{both[0]!r} is pooled: one value has no group distribution to centre")
        for c in self.covariates:
            if c not in COVARIATES:
                raise ConfigError("covariates", f"unknown participant covariate {c!r} (known: {', '.join(COVARIATES)})")
        if len(set(self.covariates)) != len(self.covariates):
            raise ConfigError("covariates", "a covariate is listed twice")
