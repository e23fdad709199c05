"""The descriptive baseline: the regression labs run today, with the same observation model as the networks.

    log(RT - shift) ~ Normal(rt_intercept + b . [switch, log practice, switch x log practice, incongruent,
                                                 switch x incongruent, log run position], rt_sigma)
    logit P(correct) = acc_intercept + a . [switch, incongruent, log practice, switch x incongruent]

log practice is log(session) centred per participant (:func:`cogflex.fit.prepare.covariates`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from cogflex.errors import ConfigError
from cogflex.fit.link import LinearLink, Term
from cogflex.fit.models import register
from cogflex.fit.models.base import CognitiveModel
from cogflex.fit.models.parameters import Coefficients, Hierarchy, Prior
from cogflex.typed_config import from_mapping

__all__ = ["RT_TERMS", "ACC_TERMS", "ObservationPriors", "CoefficientPriors", "DescriptiveModel"]

RT_TERMS = ("switch", "log_practice", "switch_x_log_practice", "incongruent", "switch_x_incongruent", "log_run")
ACC_TERMS = ("switch", "incongruent", "log_practice", "switch_x_incongruent")


@dataclass(frozen=True)
class ObservationPriors:
    """Priors of the observation model's intercepts, RT spread and shift (fraction of the fastest kept RT)."""

    acc_intercept: Prior = field(default_factory=lambda: Prior("normal", mu=3.0, sigma=1.5))
    rt_intercept: Prior = field(default_factory=lambda: Prior("normal", mu=-0.9, sigma=0.4))
    rt_sigma: Prior = field(default_factory=lambda: Prior("lognormal", mu=-1.4, sigma=0.4))
    rt_shift: Prior = field(default_factory=lambda: Prior("beta", alpha=2.0, beta=2.0))


@dataclass(frozen=True)
class CoefficientPriors:
    """Priors of the regression's coefficients (each coefficient of a block has the same prior)."""

    rt_coefficient: Prior = field(default_factory=lambda: Prior("normal", mu=0.0, sigma=0.5))
    acc_coefficient: Prior = field(default_factory=lambda: Prior("normal", mu=0.0, sigma=1.5))


@register
@dataclass(frozen=True)
class DescriptiveModel(CognitiveModel):
    """The regression baseline (``kind = "descriptive"``); it has no network."""

    family: ClassVar[str] = "descriptive"

    name: str
    description: str = ""
    link: ObservationPriors = field(default_factory=ObservationPriors)
    descriptive: CoefficientPriors = field(default_factory=CoefficientPriors)
    hierarchy: Hierarchy = field(default_factory=Hierarchy)

    @property
    def priors(self) -> dict[str, Prior]:
        """The observation model's scalars."""
        p = self.link
        return {"acc_intercept": p.acc_intercept, "rt_intercept": p.rt_intercept, "rt_sigma": p.rt_sigma,
                "rt_shift": p.rt_shift}

    @property
    def coefficients(self) -> dict[str, Coefficients]:
        """RT and accuracy coefficients (flat names ``rt_<term>``, ``acc_<term>``)."""
        return {"rt_coefficient": Coefficients(self.descriptive.rt_coefficient, RT_TERMS, "rt"),
                "acc_coefficient": Coefficients(self.descriptive.acc_coefficient, ACC_TERMS, "acc")}

    @property
    def formula(self) -> LinearLink:
        """Both linear predictors are regressions on the trial covariates."""
        return LinearLink(rt=(Term("rt_coefficient", RT_TERMS, block=True),),
                          acc=(Term("acc_coefficient", ACC_TERMS, block=True),))

    @classmethod
    def from_dict(cls, data: dict) -> DescriptiveModel:
        """A model from its TOML mapping (``kind`` removed)."""
        if "parameters" in data:
            params = data["parameters"]
            first = next(iter(params), "") if isinstance(params, dict) else ""
            raise ConfigError(f"parameters.{first}".rstrip("."),
                              "a descriptive model has no network parameters (remove the [parameters] table)")
        if "network" in data:
            raise ConfigError("network", "a descriptive model has no network (remove the [network] table)")
        return from_mapping(cls, data, section="")
