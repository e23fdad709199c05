"""Reproduce Fig. 5 of Sandbrink et al. (2024): regime maps over block length,
gate timescale and regularisation, compared cell by cell with two references:
the table printed in the authors' notebook, and what the authors' current
public code actually gives with the notebook's settings (they differ: the
notebook's table does not reproduce; see data/reference/sandbrink2024.json).

Usage::

    ./run python analyses/fig5_regime_maps.py [--mode sampled|expected]
"""

from __future__ import annotations

import argparse

import numpy as np

from _common import out_dir, reference
from cogflex.nta import load_config, plots, simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("sampled", "expected"), default="sampled")
    args = parser.parse_args()
    out = out_dir("fig5")
    ref = reference()
    for name, key in (("fig5-grid-a", "fig5_grid_a"), ("fig5-grid-b", "fig5_grid_b")):
        result = simulate(load_config(name).with_learning(mode=args.mode))
        shape = result.config.sweep.shape
        ours = result.table()["total_alignment"].to_numpy().reshape(shape)
        plots.plot_regime_map(result, out / f"{name}_{args.mode}.png")
        result.table().to_csv(out / f"{name}_{args.mode}.csv", index=False)
        np.set_printoptions(precision=4, suppress=True, linewidth=120)
        print(f"{name} ({args.mode}, {result.wall_seconds:.1f} s): rows {result.config.sweep.axes[0]}, "
              f"columns {result.config.sweep.axes[1]}")
        print("cogflex total alignment:\n", ours)
        for label, field in (("authors' code", "total_alignment_authors_code"), ("notebook table", "total_alignment")):
            theirs = np.array(ref[key][field])
            diff = ours - theirs
            same_call = ((ours >= 0.98) == (theirs >= 0.98)).sum()
            print(f"vs {label}:\n", theirs)
            print(f"  cells within +/-0.08: {(np.abs(diff) <= 0.08).sum()}/{diff.size}; flexible call (>= 0.98) "
                  f"agrees in {same_call}/{diff.size}; max |diff| {np.abs(diff).max():.3f}")
        print()


if __name__ == "__main__":
    main()
