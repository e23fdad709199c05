"""How smooth is the exact network likelihood where a fit's posterior is? The floor under any grid's error.

For each network fit given (``.nc`` files or folders) and each participant, the network is run exactly at
``--points`` parameter values along each grid axis through the posterior mean (the other parameters at their
mean), spanning ``--width`` posterior SDs on each side, and the data's log-likelihood is computed at the
posterior mean's link parameters (the fit's own formula, :func:`cogflex.fit.checks`). A quadratic in the box
position is fitted to the scan; its residuals are the likelihood's roughness at the scale of the posterior.
A predictor grid interpolates a smooth surface: where the exact surface has ridges of R log units between
neighbouring values, no grid (and no interpolant) is exact to better than about R.

    ./run python analyses/likelihood_roughness.py analyses/out/pipeline_players/fits [--points 41] [--width 3]

Prints one line per fit x participant x grid axis: the scanned range, the posterior SD, the largest step
between neighbouring values, and the RMS and largest residual from the quadratic.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from _common import ROOT  # noqa: F401 - puts the repository on the path
from cogflex.data import load_trials
from cogflex.fit import checks
from cogflex.fit.compare import find_fit_files
from cogflex.fit.prepare import covariates, prepare
from cogflex.fit.schema import load_fit, model_of


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("fits", nargs="+", help="fit files or folders")
    ap.add_argument("--points", type=int, default=41, help="values per axis (default 41)")
    ap.add_argument("--width", type=float, default=3.0, help="posterior SDs on each side of the mean (default 3)")
    ap.add_argument("--data", help="the fits' data file (default: the one recorded in the fit)")
    ap.add_argument("--json", help="also write the scans here (JSON)")
    args = ap.parse_args()
    scans = []
    for path in find_fit_files(args.fits):
        tree = load_fit(path)
        model = model_of(tree)
        if not model.uses_network:
            continue
        data = load_trials(args.data or tree.attrs["data_source"], "ebb-and-flow")
        post = tree["posterior"].to_dataset()
        for pid in json.loads(tree.attrs["participants"]):
            fd = prepare(data, participants=[pid])
            sub = fd.trials
            rt, correct = sub["rt"].to_numpy(dtype=float), sub["correct"].to_numpy(dtype=bool)
            samples = {k: checks._participant_values(post, k, pid) for k in model.free_parameters()}
            mean = {k: v.mean(0) for k, v in samples.items()}
            for name, gp in model.grid.items():
                pos = gp.position(samples[name])
                sd = float(np.std(pos))
                grid = np.clip(float(np.mean(pos)) + np.linspace(-args.width, args.width, args.points) * sd, 0, 1)
                values = {g: np.full(args.points, float(mean[g])) for g in model.grid_names}
                values[name] = np.asarray(gp.value(grid), dtype=float)
                exact = model.compute_predictors(fd.sequences[0], values)
                ll = np.array([checks._loglik(model, mean, covariates(sub), pred, rt, correct) for pred in exact])
                resid = ll - np.polyval(np.polyfit(grid - grid.mean(), ll, 2), grid - grid.mean())
                line = {"model": model.name, "participant": pid, "parameter": name,
                        "values": [float(values[name][0]), float(values[name][-1])], "posterior_sd_box": sd,
                        "largest_step": float(np.abs(np.diff(ll)).max()), "rms_residual": float(np.sqrt(
                            np.mean(resid**2))), "largest_residual": float(np.abs(resid).max()),
                        "loglik": ll.tolist()}
                scans.append(line)
                print(f"{model.name} {pid} {name}: {line['values'][0]:.4g}-{line['values'][1]:.4g} "
                      f"({args.points} values, +-{args.width:g} posterior SD): largest step "
                      f"{line['largest_step']:.2f}, residual from a quadratic RMS {line['rms_residual']:.2f} / "
                      f"largest {line['largest_residual']:.2f} log units", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(scans, handle, indent=1)


if __name__ == "__main__":
    main()
