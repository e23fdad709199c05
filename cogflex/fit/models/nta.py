"""The NTA network family (Sandbrink et al., 2024) as trial-by-trial cognitive models: flexible and forgetful.

The network (:mod:`cogflex.fit.network`) runs on each participant's own trial sequence and supplies two
predictors per observed trial, read before that trial's update: its squared error ``loss`` (L_t) and its
output ``margin`` for the correct response (m_t). The link:

    P(correct) = logistic(acc_intercept + acc_slope * m_t)
    RT = shift + LogNormal(rt_intercept + rt_slope * L_t, rt_sigma)

Variants (``variant`` in the TOML):

- ``flexible``: gate timescale tau_c and weight timescale tau_W inferred (tau_c < tau_W: their boxes do not
  overlap); the regulariser strength lambda > 0 is fixed (``regularization``), or inferred when
  ``[parameters.regularization]`` is given (it is hardly identifiable: docs/fitting_recovery.md);
- ``forgetful``: one timescale tau = tau_c = tau_W, lambda = 0.

Timescales are in trials. Subclass :class:`NTAModel` to add predictors and link terms (a user model:
``docs/examples/gate_change_model.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np

from cogflex.errors import ConfigError
from cogflex.fit.link import LinearLink, Term
from cogflex.fit.models import register
from cogflex.fit.models.base import CognitiveModel
from cogflex.fit.models.parameters import GridParameter, Hierarchy, Prior, finite
from cogflex.fit.network import NetworkSettings, run_network
from cogflex.typed_config import from_mapping

__all__ = ["NTALinkPriors", "NTAModel"]

#: Network parameters of each variant (the regulariser strength is optional for the flexible one).
VARIANT_PARAMETERS = {"flexible": ("gate_timescale", "weight_timescale"), "forgetful": ("timescale",)}


@dataclass(frozen=True)
class NTALinkPriors:
    """Priors of the NTA link: intercepts, slopes on the predictors, RT spread and shift.

    ``rt_shift`` is the RT shift as a fraction of the participant's fastest kept RT.
    """

    acc_intercept: Prior = field(default_factory=lambda: Prior("normal", mu=3.0, sigma=1.5))
    rt_intercept: Prior = field(default_factory=lambda: Prior("normal", mu=-0.9, sigma=0.4))
    rt_sigma: Prior = field(default_factory=lambda: Prior("lognormal", mu=-1.4, sigma=0.4))
    rt_shift: Prior = field(default_factory=lambda: Prior("beta", alpha=2.0, beta=2.0))
    acc_slope: Prior = field(default_factory=lambda: Prior("halfnormal", sigma=3.0))
    rt_slope: Prior = field(default_factory=lambda: Prior("lognormal", mu=-0.7, sigma=0.6))


@register
@dataclass(frozen=True)
class NTAModel(CognitiveModel):
    """A flexible or forgetful NTA network model (a ``models/fitting/*.toml`` with ``kind = "nta"``)."""

    family: ClassVar[str] = "nta"
    symbols: ClassVar[dict[str, str]] = {
        "gate_timescale": r"$\tau_c$ (trials)", "weight_timescale": r"$\tau_W$ (trials)",
        "regularization": r"$\lambda$", "timescale": r"$\tau=\tau_c=\tau_W$ (trials)"}
    log_scale: ClassVar[frozenset[str]] = frozenset({"gate_timescale", "weight_timescale", "timescale"})

    name: str
    variant: Literal["flexible", "forgetful"]
    description: str = ""
    parameters: dict[str, GridParameter] = field(default_factory=dict)
    regularization: float = 0.1  # lambda of the flexible model when it is not in [parameters]
    network: NetworkSettings = field(default_factory=NetworkSettings)
    link: NTALinkPriors = field(default_factory=NTALinkPriors)
    hierarchy: Hierarchy = field(default_factory=Hierarchy)
    interpolation: Literal["linear", "cubic"] = "linear"  # of the predictor tables (cogflex.fit.interpolate)

    def __post_init__(self) -> None:
        finite(self, ("regularization",))
        needed = VARIANT_PARAMETERS[self.variant]
        self._check_parameters(needed, (*needed, "regularization") if self.variant == "flexible" else needed,
                               f"{self.variant} model")
        if self.variant == "flexible":
            self._check_fast_gates(f"the {self.variant} model has tau_c < tau_W")
            if "regularization" in self.parameters and self.parameters["regularization"].lower <= 0:
                raise ConfigError("parameters.regularization.lower", "must be positive (lambda > 0)")
            if "regularization" not in self.parameters and self.regularization <= 0:
                raise ConfigError("regularization", "must be positive (the flexible model has lambda > 0)")

    def _check_parameters(self, needed: tuple[str, ...], allowed: tuple[str, ...], label: str) -> None:
        """Every ``needed`` grid parameter given and none outside ``allowed``."""
        missing = [p for p in needed if p not in self.parameters]
        extra = sorted(set(self.parameters) - set(allowed))
        if missing:
            raise ConfigError(f"parameters.{missing[0]}", "missing")
        if extra:
            raise ConfigError(f"parameters.{extra[0]}", f"not a parameter of the {label} "
                                                      f"(expected {', '.join(needed)})")

    def _check_fast_gates(self, why: str) -> None:
        """The gate timescale's box lies below the weight timescale's (tau_c < tau_W)."""
        tc, tw = self.parameters["gate_timescale"], self.parameters["weight_timescale"]
        if tc.upper > tw.lower:
            raise ConfigError("parameters.gate_timescale.upper",
                              f"must not exceed weight_timescale.lower ({tc.upper} > {tw.lower}): {why}")

    # -- the protocol -------------------------------------------------------------------------------------

    @property
    def priors(self) -> dict[str, Prior]:
        """Intercepts, RT spread and shift, then the slopes on margin and loss."""
        p = self.link
        return {"acc_intercept": p.acc_intercept, "rt_intercept": p.rt_intercept, "rt_sigma": p.rt_sigma,
                "rt_shift": p.rt_shift, "acc_slope": p.acc_slope, "rt_slope": p.rt_slope}

    @property
    def grid(self) -> dict[str, GridParameter]:
        """tau_c, tau_W (and lambda when inferred), or the forgetful model's shared tau."""
        return self.parameters

    @property
    def fixed(self) -> dict[str, float]:
        """Lambda when it is not inferred (forgetful: 0)."""
        if self.variant == "forgetful":
            return {"regularization": 0.0}
        return {} if "regularization" in self.parameters else {"regularization": self.regularization}

    @property
    def predictors(self) -> tuple[str, ...]:
        """The network's squared error L_t and output margin m_t before each observed trial."""
        return ("loss", "margin")

    @property
    def formula(self) -> LinearLink:
        """Accuracy on the margin, RT location on the loss."""
        return LinearLink(rt=(Term("rt_slope", ("loss",)),), acc=(Term("acc_slope", ("margin",)),))

    def network_values(self, values: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(tau_c, tau_W, lambda) arrays from named grid-parameter values (lambda: inferred or ``fixed``)."""
        if self.variant == "forgetful":
            tau = np.asarray(values["timescale"], dtype=float)
            return tau, tau, np.zeros_like(tau)
        tau_c = np.asarray(values["gate_timescale"], dtype=float)
        lam = values["regularization"] if "regularization" in values else np.full_like(
            tau_c, self.fixed["regularization"])
        return tau_c, np.asarray(values["weight_timescale"], dtype=float), np.asarray(lam, dtype=float)

    #: The cue-driven gate flow before each response (:mod:`cogflex.fit.models.reconfig`); none here.
    flow: ClassVar[None] = None

    def run(self, seq, values: dict[str, np.ndarray], *, record_gates: bool = False, progress=None):
        """The network on ``seq`` at G parameter sets (:class:`cogflex.fit.network.Predictors`)."""
        tau_c, tau_w, lam = self.network_values(values)
        return run_network(seq, tau_c, tau_w, lam, self.network, reconfiguration=self.flow,
                           record_gates=record_gates, progress=progress)

    def compute_predictors(self, seq, values: dict[str, np.ndarray], *, progress=None) -> np.ndarray:
        """``(G, n_observed, 2)``: loss and margin."""
        pred = self.run(seq, values, progress=progress)
        return np.stack([pred.loss, pred.margin], axis=-1)

    def table_identity(self) -> dict:
        """The network settings, the variant and the grid nodes (the same key as earlier table caches)."""
        identity = {"network": self.to_dict()["network"], "variant": self.variant,
                    "grid": {n: p.nodes().tolist() for n, p in self.grid.items()}}
        if self.family != NTAModel.family:  # a subclass with predictors of its own
            identity.update(family=self.family, predictors=list(self.predictors))
        return identity

    def progress_length(self, seq) -> int:
        """Tutorial, unobserved practice and observed trials."""
        from cogflex.fit.network import full_sequence

        return len(full_sequence(seq, self.network)[0])

    @classmethod
    def from_dict(cls, data: dict) -> NTAModel:
        """A model from its TOML mapping (``kind`` removed)."""
        data = dict(data)
        params = data.pop("parameters", {})
        if not isinstance(params, dict):
            raise ConfigError("parameters", "expected a table")
        parsed = {k: from_mapping(GridParameter, v, section=f"parameters.{k}") for k, v in params.items()}
        return from_mapping(cls, {**data, "parameters": parsed}, section="")
