"""How exact is the interpolated likelihood at a fit's posterior? Every interpolant, side by side.

For each network fit given (``.nc`` files or folders of them) and each of its participants, the network is
run exactly at the posterior mean and at ``--draws`` posterior draws spread through the chains, and the
data's log-likelihood is computed with the exact predictors and with the predictor table interpolated by
each interpolant (multilinear, the default, and cubic) — the fit's own check
(:func:`cogflex.fit.checks.interpolation_check`) for both interpolants at the same points. The tables come
from the fit folder's cache (``.cache``) when they are there, else they are recomputed.

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
from cogflex.fit.tables import predictor_table


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
        fd = prepare(data, participants=json.loads(attrs["participants"]))
        post = tree["posterior"].to_dataset()
        cache = str(path.parent / ".cache")
        for method in INTERPOLANTS:
            m = dataclasses.replace(model, interpolation=method)
            tables = [predictor_table(m, seq, cache_dir=cache) for seq in fd.sequences]
            for c in checks.interpolation_check(m, fd, tables, post, draws=args.draws):
                diffs = np.round(c["differences"], 2).tolist()
                print(f"{model.name} {c['participant']} {method:6s} fitted-with={model.interpolation}: "
                      f"largest {c['difference']:+.2f}, at the mean {diffs[0]:+.2f}, at draws {diffs[1:]}")


if __name__ == "__main__":
    main()
