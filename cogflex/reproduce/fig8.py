"""Fig. 8: the loss in the first steps after each switch, flexible vs forgetful.

With practice the flexible network's loss one step after a switch falls (the
gates switch before the weights have to relearn); the forgetful network's
does not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cogflex.nta import load_config, plots, simulate
from cogflex.reproduce.base import Figure, Quantity, Scale, scaled

__all__ = ["FIGURE", "run"]


def run(scale: Scale, out: Path) -> list[Quantity]:
    """Simulate fig8-flexible and fig8-forgetful; write ``fig8_switch_curves.png``."""
    results = {name: simulate(scaled(load_config(name), scale)) for name in ("fig8-flexible", "fig8-forgetful")}
    plots.plot_switch_curves(results, out / "fig8_switch_curves.png")
    quantities = []
    for name, result in results.items():
        regime = name.split("-")[1]
        curves = np.nanmean(result.dataset["switch_curve"].values, axis=0)  # (segment, offset)
        drop = float(1 - curves[4, 1] / curves[1, 1])
        flexible = regime == "flexible"
        quantities.append(Quantity(
            f"{regime}_loss_1_step_after_switch_1_4", curves[1:5, 1].tolist(),
            f"{regime}: loss 1 step after switches 1-4",
            reference="0.25 -> 0.11" if flexible else "0.23-0.25 every switch"))
        quantities.append(Quantity(
            f"{regime}_step1_loss_drop_switch_1_to_4", drop,
            f"{regime}: fall of the step-1 loss from switch 1 to switch 4",
            reference=">= 0.40" if flexible else "<= 0.15",
            passed=bool(drop >= 0.40) if flexible else bool(drop <= 0.15)))
        if flexible:
            late = float(curves[4, 5])
            quantities.append(Quantity("flexible_loss_5_steps_after_switch_4", late,
                                       "flexible: loss 5 steps after switch 4", reference="<= 0.01",
                                       passed=bool(late <= 0.01)))
    return quantities


FIGURE = Figure(key="fig8", title="Fig. 8: loss right after each switch", run=run)
