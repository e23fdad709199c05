"""Fig. 2: flexible vs forgetful networks on two alternating tasks.

The flexible network (fast gates bounded by the regulariser) specialises one
path per task and switches ever faster; the forgetful one (gates as slow as
the weights, no regulariser) overwrites its weights every block. Checked
against the reference numbers of DESIGN section 2 (the authors' code).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cogflex.nta import load_config, plots, simulate
from cogflex.reproduce.base import Figure, Quantity, Scale, reference_numbers, scaled

__all__ = ["FIGURE", "run"]


def run(scale: Scale, out: Path) -> list[Quantity]:
    """Simulate fig2-flexible and fig2-forgetful; write ``fig2_flexible_vs_forgetful.png``."""
    ref = reference_numbers()
    results = {name: simulate(scaled(load_config(name), scale)) for name in ("fig2-flexible", "fig2-forgetful")}
    plots.plot_comparison(results, out / "fig2_flexible_vs_forgetful.png")
    flex, forget = (results[n].summary() for n in ("fig2-flexible", "fig2-forgetful"))
    ttc = np.array([np.nan if v is None else v for v in flex["time_to_criterion"]])
    ref_ttc = np.array(ref["fig2_flexible"]["time_to_criterion"])  # entry 0 = first block, k = switch k
    first5 = ttc[:5]
    late = float(np.nanmean(ttc[15:20])) if len(ttc) >= 20 else float("nan")
    forget_ttc = np.array([np.nan if v is None else v for v in forget["time_to_criterion"]])
    forget_mean = float(np.nanmean(forget_ttc[9:20])) if len(forget_ttc) >= 10 else float("nan")
    gates = flex["final_gates"]
    return [
        Quantity("flexible_time_to_criterion_switch_1_5", first5.tolist(),
                 "flexible: time to loss < 0.1 after switches 1-5", unit="tau_W",
                 reference=" ".join(f"{v:g}" for v in ref_ttc[1:6]),
                 passed=bool(np.nanmax(np.abs(first5 - ref_ttc[1:6])) <= 0.12)),
        Quantity("flexible_time_to_criterion_switch_16_20", late,
                 "flexible: mean time to criterion, switches 16-20", unit="tau_W",
                 reference="<= 0.06 (0.041-0.048)", passed=bool(late <= 0.06)),
        Quantity("flexible_total_alignment", flex["total_alignment"], "flexible: total alignment at the end",
                 reference=f"{ref['fig2_flexible']['total_alignment']} (>= 0.99)",
                 passed=bool(flex["total_alignment"] >= 0.99)),
        Quantity("flexible_final_gates", gates, "flexible: final gates, sorted", reference="(0, 1)",
                 passed=bool(min(gates) <= 0.05 and max(gates) >= 0.95)),
        Quantity("forgetful_time_to_criterion_switch_10_20", forget_mean,
                 "forgetful: mean time to criterion, switches 10-20", unit="tau_W",
                 reference="0.43 (0.33-0.53)", passed=bool(0.33 <= forget_mean <= 0.53)),
        Quantity("forgetful_total_alignment", forget["total_alignment"], "forgetful: total alignment at the end",
                 reference=f"{ref['fig2_forgetful']['total_alignment']} (<= 0.8)",
                 passed=bool(forget["total_alignment"] <= 0.8)),
        Quantity("forgetful_final_gates", forget["final_gates"], "forgetful: final gates, sorted",
                 reference="(0.645, 0.645)"),
    ]


FIGURE = Figure(key="fig2", title="Fig. 2: flexible vs forgetful on two alternating tasks", run=run)
