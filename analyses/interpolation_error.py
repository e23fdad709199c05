"""How exact is the interpolated likelihood at a fit's posterior? Every interpolant, side by side.

For each network fit given (``.nc`` files or folders of them) and each of its participants, the network is
run exactly at the posterior mean and at ``--draws`` posterior draws spread through the chains, and the
data's log-likelihood is computed with the exact predictors and with the predictor table interpolated by
each interpolant (multilinear, the default, and cubic), on the participant's refined grid window (when the fit
refined it: ``grid_refinement``) and on the model's whole-box grid — the fit's own check
(:func:`cogflex.fit.checks.interpolation_check`) for every table and interpolant at the same points: the error
before and after refinement, at the same posterior. The tables come from the fit folder's cache (``.cache``)
when they are there, else they are recomputed.

    ./run python analyses/interpolation_error.py analyses/out/pipeline_players/fits [--draws 8]

Prints one line per fit x participant x interpolant: exact minus interpolated log-likelihood at the mean and
at each draw, and the largest in size.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np

from _common import ROOT  # noqa: F401 - puts the repository on the path
from cogflex.data import load_trials
from cogflex.fit import checks
from cogflex.fit.compare import find_fit_files
from cogflex.fit.interpolate import INTERPOLANTS
from cogflex.fit.prepare import prepare
from cogflex.fit.schema import load_fit, model_of
from cogflex.fit.refine import fitted_windows
from cogflex.fit.tables import GridWindow, predictor_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("fits", nargs="+", help="fit files or folders")
    ap.add_argument("--draws", type=int, default=8, help="posterior draws checked besides the mean (default 8)")
    ap.add_argument("--data", help="the fits' data file (default: the one recorded in the fit)")
    args = ap.parse_args()
    for path in find_fit_files(args.fits):
        tree = load_fit(path)
        model = model_of(tree)
        if not model.uses_network:
            continue
        attrs = tree.attrs
        data = load_trials(args.data or attrs["data_source"], "ebb-and-flow")
        windows = fitted_windows(tree)
        post = tree["posterior"].to_dataset()
        cache = str(path.parent / ".cache")
        for pid in json.loads(attrs["participants"]):
            fd = prepare(data, participants=[pid])
            for label, window in (("refined", windows.get(pid)), ("whole-box", GridWindow.full(model))):
                if window is None:
                    continue
                for method in INTERPOLANTS:
                    m = dataclasses.replace(model, interpolation=method)
                    tables = [predictor_table(m, seq, cache_dir=cache, window=window) for seq in fd.sequences]
                    for c in checks.interpolation_check(m, fd, tables, post, draws=args.draws, windows=[window]):
                        diffs = np.round(c["differences"], 2).tolist()
                        print(f"{model.name} {pid} {label:9s} {'x'.join(map(str, window.points)):7s} {method:6s} "
                              f"fitted-with={model.interpolation}: largest {c['difference']:+.2f}, at the mean "
                              f"{diffs[0]:+.2f}, at draws {diffs[1:]}", flush=True)


if __name__ == "__main__":
    main()
