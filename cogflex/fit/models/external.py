"""Fits made outside cogflex (bambi, HSSM, a user's PyMC model), brought in for comparison.

An external model has no parameters cogflex knows and no simulator: it only contributes its pointwise
log-likelihood on the same trials (see :func:`cogflex.fit.schema.as_fit`). It can be compared and
reported, not replicated by posterior predictive checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from cogflex.fit.link import LinearLink
from cogflex.fit.models import register
from cogflex.fit.models.base import CognitiveModel
from cogflex.fit.models.parameters import Hierarchy, Prior
from cogflex.typed_config import from_mapping

__all__ = ["ExternalModel"]


@register
@dataclass(frozen=True)
class ExternalModel(CognitiveModel):
    """A model fitted elsewhere (``kind = "external"``): only its name and description."""

    family: ClassVar[str] = "external"
    simulates: ClassVar[bool] = False

    name: str
    description: str = ""
    hierarchy: Hierarchy = field(default_factory=Hierarchy)

    @property
    def priors(self) -> dict[str, Prior]:
        """None that cogflex knows."""
        return {}

    @property
    def formula(self) -> LinearLink:
        """None: an external fit brings its pointwise log-likelihood, not a link."""
        raise NotImplementedError(f"{self.name} was fitted outside cogflex: it has no link cogflex can evaluate")

    def validate_observation(self) -> None:
        """External models need not have cogflex's observation model."""

    def simulation_parameters(self) -> tuple[str, ...]:
        """External models cannot be simulated by cogflex."""
        raise NotImplementedError(f"{self.name} was fitted outside cogflex: cogflex cannot simulate it")

    @classmethod
    def from_dict(cls, data: dict) -> ExternalModel:
        """From the fit's ``model_spec``."""
        return from_mapping(cls, data, section="")
