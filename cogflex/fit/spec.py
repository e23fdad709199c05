"""Declarative model specifications (``models/*.toml``): what is fitted, with which priors.

Three kinds of model share one observation model per trial, the joint density
of (correct, RT):

- ``nta`` with ``variant = "flexible"``: the network's gate timescale tau_c and
  weight timescale tau_W (tau_c < tau_W: the two ranges do not overlap) are
  inferred; the regulariser strength lambda > 0 is fixed (``regularization``),
  or inferred when ``[parameters.regularization]`` is given (it is hardly
  identifiable from a few thousand trials: docs/fitting_recovery.md);
- ``nta`` with ``variant = "forgetful"``: one timescale tau = tau_c = tau_W,
  lambda = 0;
- ``descriptive``: the regression labs run today (log RT on switch,
  congruency, log practice, run position; logistic accuracy).

Network parameters live in a box (``lower``..``upper``, on a log scale for
timescales); the prior is logit-normal on the position in the box
(``prior_mu``, ``prior_sigma``). The fitting engine simulates the network on
a grid over the box (``points`` per parameter) and interpolates; see
:mod:`cogflex.fit.engine`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from cogflex.errors import ConfigError
from cogflex.fit.network import NetworkSettings
from cogflex.typed_config import from_mapping, read_toml, to_mapping

__all__ = ["Prior", "GridParameter", "Link", "Descriptive", "ModelSpec", "load_model", "BUILTIN_MODELS",
           "models_dir", "from_dict"]

BUILTIN_MODELS = ("flexible", "forgetful", "descriptive")


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
        _finite(self, ("mu", "sigma", "alpha", "beta"))
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
        _finite(self, ("lower", "upper", "prior_mu", "prior_sigma"))
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


def _finite(obj, names: tuple[str, ...]) -> None:
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
class Link:
    """Priors of the observation model shared by every model.

    P(correct) = logistic(acc_intercept + acc_slope * m_t) and
    RT = shift + LogNormal(rt_intercept + rt_slope * L_t, rt_sigma), where for
    the NTA models m_t is the network's output margin for the correct
    response and L_t its squared error before trial t; ``rt_shift`` is the
    shift as a fraction of the participant's fastest kept RT.
    """

    acc_intercept: Prior = field(default_factory=lambda: Prior("normal", mu=3.0, sigma=1.5))
    acc_slope: Prior = field(default_factory=lambda: Prior("halfnormal", sigma=3.0))
    rt_intercept: Prior = field(default_factory=lambda: Prior("normal", mu=-0.9, sigma=0.4))
    rt_slope: Prior = field(default_factory=lambda: Prior("lognormal", mu=-0.7, sigma=0.6))
    rt_sigma: Prior = field(default_factory=lambda: Prior("lognormal", mu=-1.4, sigma=0.4))
    rt_shift: Prior = field(default_factory=lambda: Prior("beta", alpha=2.0, beta=2.0))


@dataclass(frozen=True)
class Descriptive:
    """Priors of the descriptive regression's coefficients (besides the link's intercepts, sigma, shift)."""

    rt_coefficient: Prior = field(default_factory=lambda: Prior("normal", mu=0.0, sigma=0.5))
    acc_coefficient: Prior = field(default_factory=lambda: Prior("normal", mu=0.0, sigma=1.5))


@dataclass(frozen=True)
class Hierarchy:
    """Scales of the group-level standard deviations (half-normal) in hierarchical fits."""

    position_sd: float = 1.0  # of the logit box positions of network parameters
    link_sd: float = 0.5  # of link parameters (on their unconstrained scale)

    def __post_init__(self) -> None:
        _finite(self, ("position_sd", "link_sd"))
        for name in ("position_sd", "link_sd"):
            if getattr(self, name) <= 0:
                raise ConfigError(name, f"must be positive, got {getattr(self, name)}")


@dataclass(frozen=True)
class ModelSpec:
    """One model to fit (a ``models/*.toml`` file)."""

    name: str
    kind: Literal["nta", "descriptive"]
    description: str = ""
    variant: Literal["flexible", "forgetful", ""] = ""
    parameters: dict[str, GridParameter] = field(default_factory=dict)
    regularization: float = 0.1  # lambda of the flexible model when it is not in [parameters]
    network: NetworkSettings = field(default_factory=NetworkSettings)
    link: Link = field(default_factory=Link)
    descriptive: Descriptive = field(default_factory=Descriptive)
    hierarchy: Hierarchy = field(default_factory=Hierarchy)

    def __post_init__(self) -> None:
        _finite(self, ("regularization",))
        if self.kind == "descriptive" and self.parameters:
            raise ConfigError(f"parameters.{next(iter(self.parameters))}",
                              "a descriptive model has no network parameters (remove the [parameters] table)")
        if self.kind == "nta":
            needed = {"flexible": ("gate_timescale", "weight_timescale"),
                      "forgetful": ("timescale",)}.get(self.variant)
            if needed is None:
                raise ConfigError("variant", "an nta model needs variant = \"flexible\" or \"forgetful\"")
            allowed = (*needed, "regularization") if self.variant == "flexible" else needed
            missing = [p for p in needed if p not in self.parameters]
            extra = sorted(set(self.parameters) - set(allowed))
            if missing:
                raise ConfigError(f"parameters.{missing[0]}", "missing")
            if extra:
                raise ConfigError(f"parameters.{extra[0]}", f"not a parameter of the {self.variant} model "
                                                          f"(expected {', '.join(needed)})")
            if self.variant == "flexible":
                tc, tw = self.parameters["gate_timescale"], self.parameters["weight_timescale"]
                if tc.upper > tw.lower:
                    raise ConfigError("parameters.gate_timescale.upper",
                                      f"must not exceed weight_timescale.lower ({tc.upper} > {tw.lower}): "
                                      "the flexible model has tau_c < tau_W")
                if "regularization" in self.parameters and self.parameters["regularization"].lower <= 0:
                    raise ConfigError("parameters.regularization.lower", "must be positive (lambda > 0)")
                if "regularization" not in self.parameters and self.regularization <= 0:
                    raise ConfigError("regularization", "must be positive (the flexible model has lambda > 0)")

    @property
    def grid_names(self) -> tuple[str, ...]:
        """Names of the network parameters spanning the predictor grid, in grid order."""
        return tuple(self.parameters)

    def network_values(self, values: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(tau_c, tau_W, lambda) arrays from named grid-parameter values."""
        if self.variant == "forgetful":
            tau = np.asarray(values["timescale"], dtype=float)
            return tau, tau, np.zeros_like(tau)
        tau_c = np.asarray(values["gate_timescale"], dtype=float)
        lam = values["regularization"] if "regularization" in values else np.full_like(tau_c, self.regularization)
        return tau_c, np.asarray(values["weight_timescale"], dtype=float), np.asarray(lam, dtype=float)

    def to_dict(self) -> dict:
        """Plain mapping (for attributes of saved fits)."""
        return to_mapping(self)


def models_dir() -> Path:
    """The ``models/`` directory of the cogflex checkout (fitting specs under ``models/fitting``)."""
    return Path(__file__).resolve().parents[2] / "models" / "fitting"


def load_model(name_or_path: str | Path) -> ModelSpec:
    """Load a built-in model by name (``flexible``, ``forgetful``, ``descriptive``) or a TOML file."""
    path = Path(name_or_path)
    if str(name_or_path) in BUILTIN_MODELS:
        path = models_dir() / f"{name_or_path}.toml"
    elif not path.suffix == ".toml":
        raise ConfigError("model", f"unknown model {str(name_or_path)!r} "
                                   f"(built in: {', '.join(BUILTIN_MODELS)}; or a path to a .toml file)")
    data = read_toml(path)
    try:
        return from_dict(data)
    except ConfigError as exc:
        raise exc.within(source=str(path)) from None


def from_dict(data: dict) -> ModelSpec:
    """A spec from its plain mapping (parsed TOML, or :meth:`ModelSpec.to_dict` output)."""
    data = dict(data)
    params = data.pop("parameters", {})
    if not isinstance(params, dict):
        raise ConfigError("parameters", "expected a table")
    parsed = {k: from_mapping(GridParameter, v, section=f"parameters.{k}") for k, v in params.items()}
    return from_mapping(ModelSpec, {**data, "parameters": parsed}, section="")
