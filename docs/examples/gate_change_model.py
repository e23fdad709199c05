"""A user's own model, fitted without editing cogflex: the flexible NTA network plus an RT term on the gate change.

Hypothesis: besides the network's error, RT grows with how far the gates had to move since the previous
trial (reconfiguring the network takes time). The family adds one predictor and one link term to the
built-in NTA family:

    gate_change_t = sum_p |c_p(t) - c_p(t-1)|      (gates before trial t and before the previous trial)
    RT_t = shift + LogNormal(rt_intercept + rt_slope * L_t + rt_gate * gate_change_t, rt_sigma)

Fit it like a built-in model::

    cogflex fit data/synthetic/flexible_players.csv.gz --model docs/examples/gate_change_model.py --out fits

or from Python: ``cf.fit(data, model="docs/examples/gate_change_model.py")`` (or ``model=MODEL``). The fit
then appears in ``cogflex compare`` / ``cogflex report`` next to the built-in models. See
docs/custom_models.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from cogflex.fit.link import LinearLink, Term
from cogflex.fit.models import load_model, register
from cogflex.fit.models.nta import NTAModel
from cogflex.fit.models.parameters import Prior


@register
@dataclass(frozen=True)
class GateChangeModel(NTAModel):
    """Flexible NTA with RT location + rt_gate x (gate change since the previous trial)."""

    family: ClassVar[str] = "nta-gate-change"
    symbols: ClassVar[dict[str, str]] = {**NTAModel.symbols, "rt_gate": r"$\beta_{\Delta c}$ (log s per unit)"}

    rt_gate: Prior = field(default_factory=lambda: Prior("normal", mu=0.0, sigma=0.5))

    @property
    def priors(self) -> dict[str, Prior]:
        """The NTA link's priors and the gate-change coefficient."""
        return {**super().priors, "rt_gate": self.rt_gate}

    @property
    def predictors(self) -> tuple[str, ...]:
        """Loss and margin, and the gate change."""
        return ("loss", "margin", "gate_change")

    @property
    def formula(self) -> LinearLink:
        """The NTA link with one more RT term."""
        base = super().formula
        return LinearLink(rt=(*base.rt, Term("rt_gate", ("gate_change",))), acc=base.acc)

    def compute_predictors(self, seq, values, *, progress=None) -> np.ndarray:
        """``(G, n_observed, 3)``: the network's loss and margin, and the L1 change of its gates."""
        pred = self.run(seq, values, record_gates=True, progress=progress)
        change = np.zeros_like(pred.loss)
        change[:, 1:] = np.abs(np.diff(pred.gates, axis=1)).sum(-1)
        return np.stack([pred.loss, pred.margin, change], axis=-1)


#: The built-in flexible model's boxes, network and priors, under a new name.
_base = load_model("flexible").to_dict()
_base.pop("kind")
MODEL = GateChangeModel.from_dict({**_base, "name": "flexible-gate-change",
                                   "description": "flexible NTA + RT term on the gate change between trials"})
