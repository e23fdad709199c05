"""Cue-driven reconfiguration models: the NTA network prepares for the cued task before it responds.

The feedback-only NTA models (:mod:`cogflex.fit.models.nta`) never see the cue, so on a switch trial they
cannot prepare, and they miss the human switch cost (DESIGN §4b). Here the cue sets the target of a
within-trial gate flow on every trial — tutorial, unobserved practice and observed trials alike:

1. **Reconfiguration.** Before responding, the gates (weights frozen) follow the NTA gradient flow on the
   cued task's expected loss, with the model's gate timescale tau_c and regulariser lambda R(c). The
   *reconfiguration time* T_t is the within-trial time (in trials, the unit of tau_c) until that loss is at or
   below ``criterion`` times its closed-gate value (the paper's time-to-criterion), at most ``horizon``.
   The network responds with the gates of that moment, and they carry over to the next trial.
2. **Response.** The stimulus's output margin under the response gates, m_t, is the evidence for the correct
   response. The **residue** rho (one parameter, 0..1) blends in the margin with every path at the mean gate,
   m^mix_t: the irrelevant path never closes completely, so an incongruent stimulus is harder on repeat
   trials as well (without it, configured gates leave no crosstalk and no repeat congruency effect):

       e_t = m_t + rho (m^mix_t - m_t)

3. **Feedback learning**, as in the feedback-only models (weights and gates, ``substeps`` Euler steps).

The link (the observation model every cogflex model shares, :mod:`cogflex.fit.link`):

    P(correct) = logistic(acc_intercept + acc_slope * e_t)
    RT = shift + LogNormal(rt_intercept + rt_slope * T_t + rt_drift * (1 - e_t), rt_sigma)

so the reconfiguration time and the evidence both scale the decision time (log-additive): a weaker margin
is a lower drift, a slower and less accurate decision. Accuracy comes from the same margin.

Variants (``variant``):

- ``flexible``: tau_c < tau_W, lambda > 0 (fixed, ``regularization``): the paper's flexible regime;
- ``forgetful``: one timescale tau = tau_c = tau_W, lambda = 0 (the paper's Fig. 2 forgetful);
- ``fast-gates``: tau_c < tau_W, lambda = 0 (the paper's Fig. 8 control, "fast-gates-unregularised").

What tells them apart in data (docs/fitting.md): all three can show a switch cost once the cue drives the
gates; the flexible one predicts a cost that shrinks with practice as the paths specialise, the forgetful
one with a fast shared tau a cost that stays constant, and the fast-gates control a cost that shrinks
while its unbounded gates also change the repeat-trial evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np

from cogflex.errors import ConfigError
from cogflex.fit.link import Derived, LinearLink, Term
from cogflex.fit.models import register
from cogflex.fit.models.nta import NTALinkPriors, NTAModel
from cogflex.fit.models.parameters import GridParameter, Hierarchy, Prior
from cogflex.fit.network import NetworkSettings, Reconfiguration

__all__ = ["ReconfigLinkPriors", "ReconfigModel"]

#: Network parameters of each variant.
VARIANT_PARAMETERS = {"flexible": ("gate_timescale", "weight_timescale"), "forgetful": ("timescale",),
                      "fast-gates": ("gate_timescale", "weight_timescale")}


@dataclass(frozen=True)
class ReconfigLinkPriors(NTALinkPriors):
    """The NTA link priors plus the reconfiguration models' own: the residue and the drift slope.

    ``rt_slope`` multiplies the reconfiguration time T_t (trials of gate time), ``rt_drift`` the evidence
    deficit 1 - e_t, ``residue`` is rho.
    """

    rt_slope: Prior = field(default_factory=lambda: Prior("lognormal", mu=-2.0, sigma=1.0))
    rt_drift: Prior = field(default_factory=lambda: Prior("lognormal", mu=-2.0, sigma=1.0))
    residue: Prior = field(default_factory=lambda: Prior("beta", alpha=1.5, beta=4.0))


def _effective_margin(theta, columns):
    return columns["margin"] + theta["residue"] * (columns["margin_mixed"] - columns["margin"])


def _evidence_deficit(theta, columns):
    return 1.0 - columns["margin_eff"]


@register
@dataclass(frozen=True)
class ReconfigModel(NTAModel):
    """A cue-driven reconfiguration model (``kind = "nta-reconfig"``; module docstring)."""

    family: ClassVar[str] = "nta-reconfig"
    symbols: ClassVar[dict[str, str]] = {**NTAModel.symbols, "residue": r"$\rho$ (residue)",
                                         "rt_slope": r"$\beta_T$ (reconfiguration)", "rt_drift": r"$\beta_e$"}

    name: str
    variant: Literal["flexible", "forgetful", "fast-gates"]
    description: str = ""
    parameters: dict[str, GridParameter] = field(default_factory=dict)
    regularization: float = 0.1
    network: NetworkSettings = field(default_factory=NetworkSettings)
    reconfiguration: Reconfiguration = field(default_factory=Reconfiguration)
    link: ReconfigLinkPriors = field(default_factory=ReconfigLinkPriors)
    hierarchy: Hierarchy = field(default_factory=Hierarchy)

    def __post_init__(self) -> None:
        needed = VARIANT_PARAMETERS[self.variant]
        self._check_parameters(needed, needed, f"{self.variant} reconfiguration model")
        if self.variant != "forgetful":
            self._check_fast_gates(f"the {self.variant} model has fast gates, tau_c < tau_W")
        if self.variant == "flexible" and not (np.isfinite(self.regularization) and self.regularization > 0):
            raise ConfigError("regularization", "must be positive (the flexible model has lambda > 0)")
        if self.network.paths != 2:
            raise ConfigError("network.paths", "the reconfiguration models have 2 paths (one per task)")
        if self.network.engine != "compiled":
            raise ConfigError("network.engine", "the reconfiguration models run on the compiled engine")

    @property
    def priors(self) -> dict[str, Prior]:
        """The NTA link's priors, the drift slope and the residue."""
        return {**super().priors, "rt_drift": self.link.rt_drift, "residue": self.link.residue}

    @property
    def fixed(self) -> dict[str, float]:
        """lambda: ``regularization`` for the flexible variant, 0 for the others."""
        return {"regularization": self.regularization if self.variant == "flexible" else 0.0}

    @property
    def predictors(self) -> tuple[str, ...]:
        """Reconfiguration time T_t, response margin m_t, mixed-gate margin m^mix_t."""
        return ("reconfig", "margin", "margin_mixed")

    @property
    def formula(self) -> LinearLink:
        """Accuracy on the effective margin; RT location on the reconfiguration time and the evidence deficit."""
        return LinearLink(
            rt=(Term("rt_slope", ("reconfig",)), Term("rt_drift", ("evidence_deficit",))),
            acc=(Term("acc_slope", ("margin_eff",)),),
            derived=(Derived("margin_eff", _effective_margin, ("margin", "margin_mixed"), base="margin"),
                     Derived("evidence_deficit", _evidence_deficit, ("margin_eff",))))

    @property
    def flow(self) -> Reconfiguration:
        """The cue-driven gate flow before each response."""
        return self.reconfiguration

    def run(self, seq, values: dict[str, np.ndarray], *, record_gates: bool = False, progress=None):
        """The network with the cue-driven gate flow on ``seq`` at G parameter sets."""
        if record_gates:
            raise ConfigError("record_gates", "the reconfiguration models run on the compiled engine, which does "
                                              "not record the gates")
        return super().run(seq, values, progress=progress)

    def compute_predictors(self, seq, values: dict[str, np.ndarray], *, progress=None) -> np.ndarray:
        """``(G, n_observed, 3)``: reconfiguration time, response margin, mixed-gate margin."""
        pred = self.run(seq, values, progress=progress)
        return np.stack([pred.reconfig, pred.margin, pred.margin_mixed], axis=-1)

    def table_identity(self) -> dict:
        """Network, reconfiguration settings, variant and grid nodes."""
        return {"family": self.family, "network": self.to_dict()["network"],
                "reconfiguration": self.to_dict()["reconfiguration"], "variant": self.variant,
                "regularization": self.fixed["regularization"],
                "grid": {n: p.nodes().tolist() for n, p in self.grid.items()}}
