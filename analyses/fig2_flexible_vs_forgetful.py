"""Reproduce Fig. 2 of Sandbrink et al. (2024): flexible vs forgetful networks.

Runs fig2-flexible and fig2-forgetful (10 seeds) in sampled mode (the paper's
setting) and in expected mode, compares time to criterion, total alignment,
final gates and block-end loss with the reference numbers, and writes the
figure and a table. Usage::

    ./run python analyses/fig2_flexible_vs_forgetful.py [--out DIR]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from _common import out_dir, reference
from cogflex.nta import load_config, plots, simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    out = out_dir("fig2") if args.out is None else __import__("pathlib").Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ref = reference()
    rows, results = [], {}
    for mode in ("sampled", "expected"):
        for name, key in (("fig2-flexible", "fig2_flexible"), ("fig2-forgetful", "fig2_forgetful")):
            result = simulate(load_config(name).with_learning(mode=mode))
            results[(name, mode)] = result
            s = result.summary()
            ttc = [np.nan if v is None else v for v in s["time_to_criterion"]]
            measured = [s["time_to_criterion_first_block"], *ttc]  # reference indexing: 0 = first block
            reference_ttc = ref[key]["time_to_criterion"]
            k = min(6, len(reference_ttc))
            rows.append({
                "preset": name, "mode": mode,
                "ttc_first_block": measured[0],
                **{f"ttc_switch_{i}": measured[i] for i in range(1, 6)},
                "max_abs_diff_switch_1_5": float(np.nanmax(np.abs(np.array(measured[1:k]) - reference_ttc[1:k]))),
                "ttc_mean_switch_10_20": float(np.nanmean(measured[10:21])),
                "ttc_mean_switch_16_20": float(np.nanmean(measured[16:21])),
                "total_alignment": s["total_alignment"],
                "reference_total_alignment": ref[key]["total_alignment"],
                "final_gates": " ".join(f"{g:.3f}" for g in s["final_gates"]),
                "block_end_loss_last": s["block_end_loss"][-1],
                "wall_seconds": s["wall_seconds"],
            })
    table = pd.DataFrame(rows)
    table.to_csv(out / "fig2_metrics.csv", index=False)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.round(4).to_string(index=False))
    for mode in ("sampled", "expected"):
        plots.plot_comparison({n: results[(n, mode)] for n in ("fig2-flexible", "fig2-forgetful")},
                              out / f"fig2_{mode}.png")
    print(f"wrote {out}/fig2_metrics.csv and fig2_sampled.png, fig2_expected.png")


if __name__ == "__main__":
    main()
