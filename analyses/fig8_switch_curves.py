"""Reproduce Fig. 8 of Sandbrink et al. (2024): loss in the first steps after
each task switch, flexible vs forgetful, and how it changes with practice.

Usage::

    ./run python analyses/fig8_switch_curves.py
"""

from __future__ import annotations

import numpy as np

from _common import out_dir
from cogflex.nta import load_config, plots, simulate


def main() -> None:
    out = out_dir("fig8")
    results = {name: simulate(load_config(name)) for name in ("fig8-flexible", "fig8-forgetful")}
    for name, result in results.items():
        curves = np.nanmean(result.dataset["switch_curve"].values, axis=0)  # (segment, offset)
        print(f"{name}: loss k steps after switch (rows: switch 1-4; columns: k = 1..5)")
        print(np.array2string(curves[1:5, 1:6], precision=3, suppress_small=True))
        drop = 1 - curves[4, 1] / curves[1, 1]
        print(f"  step-1 loss falls by {100 * drop:.0f}% from switch 1 to switch 4 "
              f"({curves[1, 1]:.3f} -> {curves[4, 1]:.3f}); step 5 after switch 4: {curves[4, 5]:.4f}\n")
    plots.plot_switch_curves(results, out / "fig8_switch_curves.png")
    print(f"wrote {out / 'fig8_switch_curves.png'}")


if __name__ == "__main__":
    main()
