"""The protocol every cognitive model implements: what the fitting machinery asks a model.

A model is one object (HSSM's model configs and sbi's potentials are the idea): its parameters, their
boxes and priors, the fixed ones, the per-trial predictors it needs from the network, its link to
behaviour (``formula``) and the names the report shows all live together. The generic machinery — building the PyMC
model (:mod:`cogflex.fit.pymc_model`), the start search (:mod:`cogflex.fit.start`), sampling, the
exact-vs-interpolated check, simulation, posterior predictive checks and the report — asks the model and
never branches on its name or family.

A model has three kinds of free parameter, all per participant:

- ``priors``: scalars with a univariate prior (the observation model's ``acc_intercept``,
  ``rt_intercept``, ``rt_sigma``, ``rt_shift`` — every model has these — and any slopes);
- ``grid``: network parameters in a box (:class:`~cogflex.fit.models.parameters.GridParameter`), whose
  predictors are simulated on a grid and interpolated (``interpolation``: multilinear by default);
- ``coefficients``: blocks of regression coefficients over named terms.

``fixed`` parameters are part of the model, not of the posterior: they are stored in the fit's
attributes (``fixed_parameters``). Subclasses are frozen dataclasses with at least ``name``,
``description`` and ``hierarchy`` fields, and are registered with :func:`cogflex.fit.models.register`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from cogflex.fit.link import OBSERVATION_PARAMETERS, LinearLink
from cogflex.fit.models.parameters import Coefficients, GridParameter, Hierarchy, Prior
from cogflex.typed_config import to_mapping

__all__ = ["CognitiveModel", "draw_from_prior"]


class CognitiveModel:
    """Base class of model families (see the module docstring for the protocol)."""

    #: Registry key of the family, also the ``kind`` key of its TOML files.
    family: ClassVar[str] = ""
    #: Report labels of parameters (the paper's symbols), by parameter name.
    symbols: ClassVar[dict[str, str]] = {}
    #: Parameters shown on a log axis in figures.
    log_scale: ClassVar[frozenset[str]] = frozenset()
    #: Whether cogflex can simulate the model (posterior predictive checks, ``simulate-data``).
    simulates: ClassVar[bool] = True

    name: str
    description: str
    hierarchy: Hierarchy
    #: Python file the model was loaded from (user models), recorded in fits so that they can be reloaded.
    source: str = ""
    #: Interpolant of the predictor tables, ``"linear"`` or ``"cubic"`` (:mod:`cogflex.fit.interpolate`);
    #: models with a grid declare it as a field so that their TOML can choose.
    interpolation: str = "linear"

    # -- what is fitted -------------------------------------------------------------------------------

    @property
    def priors(self) -> dict[str, Prior]:
        """Per-participant scalar parameters and their priors, in the order the PyMC model creates them."""
        raise NotImplementedError

    @property
    def grid(self) -> dict[str, GridParameter]:
        """Network parameters spanning the predictor grid, in grid order (none: no network)."""
        return {}

    @property
    def coefficients(self) -> dict[str, Coefficients]:
        """Blocks of regression coefficients (none by default)."""
        return {}

    @property
    def fixed(self) -> dict[str, float]:
        """Parameters held fixed (attributes of the fit, not posterior variables)."""
        return {}

    @property
    def predictors(self) -> tuple[str, ...]:
        """Names of the per-trial predictors the network supplies (columns of the predictor table)."""
        return ()

    @property
    def formula(self) -> LinearLink:
        """The linear predictors of accuracy and RT (:class:`~cogflex.fit.link.LinearLink`)."""
        raise NotImplementedError

    @property
    def grid_names(self) -> tuple[str, ...]:
        """Names of the grid parameters, in grid order."""
        return tuple(self.grid)

    @property
    def uses_network(self) -> bool:
        """Whether the model needs predictor tables from the network."""
        return bool(self.predictors)

    def free_parameters(self) -> tuple[str, ...]:
        """Names of the posterior's parameters (scalars, grid parameters, coefficient blocks)."""
        return (*self.priors, *self.grid, *self.coefficients)

    def simulation_parameters(self) -> tuple[str, ...]:
        """Names a simulation needs, coefficient blocks flattened to ``<prefix>_<term>``."""
        flat = tuple(n for block in self.coefficients.values() for n in block.flat_names())
        return (*self.grid, *self.priors, *flat)

    # -- the network boundary -------------------------------------------------------------------------

    def compute_predictors(self, seq, values: dict[str, np.ndarray], *, progress=None) -> np.ndarray:
        """``(G, n_observed, len(predictors))`` predictors of one participant at G parameter sets.

        ``values`` maps each grid parameter to an array of G values; ``progress(n)`` may be called as trials
        are simulated.
        """
        raise NotImplementedError(f"the {self.family} model has no network predictors")

    def table_identity(self) -> dict:
        """Everything a predictor table depends on besides the participant's trials (its cache key)."""
        return {"model": self.to_dict(), "grid": {n: p.nodes().tolist() for n, p in self.grid.items()}}

    def progress_length(self, seq) -> int:
        """Trials the network simulates for ``seq`` (the length of a table's progress bar)."""
        return len(seq)

    # -- priors ----------------------------------------------------------------------------------------

    def draw_parameters(self, rng: np.random.Generator) -> dict[str, float]:
        """One parameter set drawn from the priors (names :meth:`simulation_parameters`)."""
        out = {}
        for name, gp in self.grid.items():
            pos = 1.0 / (1.0 + np.exp(-rng.normal(gp.prior_mu, gp.prior_sigma)))
            out[name] = float(gp.value(pos))
        for name, prior in self.priors.items():
            out[name] = draw_from_prior(prior, rng)
        for block in self.coefficients.values():
            for flat in block.flat_names():
                out[flat] = draw_from_prior(block.prior, rng)
        return out

    # -- what the report shows -----------------------------------------------------------------------

    def label(self, name: str) -> str:
        """The report's label of a parameter (the paper's symbol where there is one)."""
        return self.symbols.get(name, name)

    def prior_rows(self) -> list[dict]:
        """One row per parameter for the report's priors table: parameter, prior, grid."""
        rows = []
        for name, p in self.grid.items():
            rows.append({"parameter": name, "prior": f"logit-normal({p.prior_mu:g}, {p.prior_sigma:g}) on the "
                         f"position in [{p.lower:g}, {p.upper:g}] ({p.scale} scale)", "grid": f"{p.points} points"})
        for name, value in self.fixed.items():
            rows.append({"parameter": name, "prior": f"fixed at {value:g}", "grid": ""})
        for name, prior in self.priors.items():
            rows.append({"parameter": name, "prior": describe_prior(prior), "grid": ""})
        for name, block in self.coefficients.items():
            rows.append({"parameter": name, "prior": f"{describe_prior(block.prior)} each, over "
                         f"{', '.join(block.terms)}", "grid": ""})
        return rows

    def to_dict(self) -> dict:
        """Plain mapping (TOML layout; stored in fits' ``model_spec`` attribute)."""
        data = to_mapping(self)
        data.pop("source", None)
        hierarchy = data.get("hierarchy")
        if isinstance(hierarchy, dict) and not hierarchy.get("covariates"):
            # models without covariates keep the spec (and the fits' model_spec) they had before covariates
            hierarchy.pop("covariates", None)
            if hierarchy.get("covariate_slope_sd") == 1.0:
                hierarchy.pop("covariate_slope_sd")
        if isinstance(hierarchy, dict) and hierarchy.get("interpolation") == "cubic":
            hierarchy.pop("interpolation")  # the default, as in specs written before the option
        for key in ("pooled", "centred"):
            if isinstance(hierarchy, dict) and not hierarchy.get(key):
                hierarchy.pop(key, None)  # as in specs written before the options
        if isinstance(hierarchy, dict) and hierarchy.get("rt_coordinates") == "location-spread":
            hierarchy.pop("rt_coordinates")
        return {"kind": self.family, **data}

    def validate_observation(self) -> None:
        """Every model has the observation model's parameters among its scalar priors."""
        missing = [p for p in OBSERVATION_PARAMETERS if p not in self.priors]
        if missing:
            from cogflex.errors import ConfigError

            raise ConfigError(f"link.{missing[0]}", "missing: every model needs the observation model's "
                                                    f"parameters {', '.join(OBSERVATION_PARAMETERS)}")
        for key in ("pooled", "centred"):
            unknown = [p for p in getattr(self.hierarchy, key) if p not in self.priors]
            if unknown:
                from cogflex.errors import ConfigError

                raise ConfigError(f"hierarchy.{key}", f"{unknown[0]!r} is not a scalar parameter of the model "
                                                      f"(scalar parameters: {', '.join(self.priors)})")


def draw_from_prior(prior: Prior, rng: np.random.Generator) -> float:
    """One draw of a univariate prior."""
    if prior.dist == "normal":
        return float(rng.normal(prior.mu, prior.sigma))
    if prior.dist == "halfnormal":
        return float(abs(rng.normal(0.0, prior.sigma)))
    if prior.dist == "lognormal":
        return float(np.exp(rng.normal(prior.mu, prior.sigma)))
    return float(rng.beta(prior.alpha, prior.beta))


def describe_prior(prior: Prior) -> str:
    """``normal(mu=0, sigma=1)``-style text of a prior."""
    args = {"normal": ("mu", "sigma"), "halfnormal": ("sigma",), "lognormal": ("mu", "sigma"),
            "beta": ("alpha", "beta")}[prior.dist]
    return f"{prior.dist}(" + ", ".join(f"{a}={getattr(prior, a):g}" for a in args) + ")"
