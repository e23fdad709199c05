"""Benchmark: one participant of ~23,000 trials, flexible model, 4 chains x 1,000 draws (target <= 15 min).

Runs the same `fit()` the CLI runs (network predictor tables, mode search, NUTS with nutpie, pointwise
log-likelihood) and prints the time split, gradient evaluations per second and ESS per second. Uses player
1089 of the shared Ebb and Flow file by default; predictor tables are not cached between runs (a fresh
temporary output folder each time).

    ./run python analyses/bench_fit.py [--data FILE] [--participant ID] [--model flexible] [--draws 1000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings

import numpy as np

from _common import ROOT, out_dir

import cogflex as cf
from cogflex.fit import FitOptions, FitWarning, fit

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
SHARED = ROOT.parent / "shared" / "data" / "ebb_and_flow" / "ebb_and_flow_2users.csv.gz"
parser.add_argument("--data", default=str(SHARED))
parser.add_argument("--participant", default="1089")
parser.add_argument("--model", default="flexible")
parser.add_argument("--draws", type=int, default=1000)
parser.add_argument("--tune", type=int, default=1000)
parser.add_argument("--chains", type=int, default=4)
parser.add_argument("--sampler", choices=("nutpie", "pymc"), default="nutpie")
args = parser.parse_args()

t_start = time.perf_counter()
data = cf.load_trials(args.data)
t_load = time.perf_counter() - t_start
with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
    warnings.simplefilter("ignore", FitWarning)
    result = fit(data, args.model, participants=[args.participant], out=tmp,
                 options=FitOptions(draws=args.draws, tune=args.tune, chains=args.chains, seed=1,
                                    sampler=args.sampler, progress=False))
total = time.perf_counter() - t_start
s = result.summary
sec = s["seconds"]
stats = result.tree["sample_stats"].to_dataset()
steps = float(stats["n_steps"].sum()) if "n_steps" in stats else float("nan")
# Leapfrog steps are recorded for the kept draws; tuning draws cost about as much per draw.
grad_per_s = steps * (args.draws + args.tune) / args.draws / sec["sampling"]
other = total - t_load - sec["tables"] - sec["mode_search"] - sec["sampling"]
report = {"participant": args.participant, "model": args.model, "n_trials": s["n_trials"],
          "seconds": {"load": t_load, "network_tables": sec["tables"], "mode_search": sec["mode_search"],
                      "sampling_incl_compile": sec["sampling"], "loglik_and_saving": other, "total": total},
          "leapfrog_steps_kept_draws": steps, "gradient_evals_per_second": grad_per_s,
          "ess_bulk_min": s["ess_bulk_min"], "ess_bulk_min_per_second": s["ess_bulk_min"] / sec["sampling"],
          "rhat_max": s["rhat_max"], "divergences": s["divergences"], "sampler": s["sampler"],
          "draws": args.draws, "tune": args.tune, "chains": args.chains}
print(json.dumps(report, indent=2))
print(f"{args.model}, participant {args.participant}, {s['n_trials']} trials: load {t_load:.0f} s + network tables "
      f"{sec['tables']:.0f} s + mode search {sec['mode_search']:.0f} s + sampling {sec['sampling']:.0f} s "
      f"+ log-likelihood/saving {other:.0f} s = {total:.0f} s (target 900 s)")
print(f"  ~{grad_per_s:.0f} gradient evaluations/s; bulk ESS min {s['ess_bulk_min']:.0f} "
      f"({s['ess_bulk_min'] / sec['sampling']:.1f}/s); R-hat max {s['rhat_max']:.4f}; divergences {s['divergences']}")
(out_dir("bench_fit") / f"{args.model}-{args.participant}.json").write_text(json.dumps(report, indent=2))
del np
