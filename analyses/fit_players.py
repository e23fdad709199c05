"""Fit flexible, forgetful and descriptive models to the two players of the shared Ebb and Flow file.

Per-participant fits (4 chains x 1,000 draws by default), then per player and model: diagnostics
(R-hat, ESS, divergences, E-BFMI), PSIS-LOO with Pareto-k, and a posterior predictive check of the
switch cost by practice bin (gameplays 150-249 / 250-349 / 350-500) and of RT by run position, computed
with the data layer's own summaries on replications of the player's real trial sequence. Fits already in
the output folder are reused (delete them to refit). Outputs stay in analyses/out/fit_players/ (derived
from the shared data: never commit them).

    ./run python analyses/fit_players.py [--data FILE] [--draws 1000] [--tune 1000] [--chains 4] [--quick]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import pandas as pd

from _common import ROOT, out_dir

import cogflex as cf
from cogflex.data import CleaningRules, summarize
from cogflex.fit import FitOptions, FitWarning, fit, load_fit
from cogflex.fit.predictive import replicate

DEFAULT = ROOT.parent / "shared" / "data" / "ebb_and_flow" / "ebb_and_flow_2users.csv.gz"
BINS = [150, 250, 350, 501]

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data", default=str(DEFAULT))
parser.add_argument("--models", nargs="+", default=["flexible", "forgetful", "descriptive"])
parser.add_argument("--draws", type=int, default=1000)
parser.add_argument("--tune", type=int, default=1000)
parser.add_argument("--chains", type=int, default=4)
parser.add_argument("--ppc-draws", type=int, default=20)
parser.add_argument("--quick", action="store_true", help="200 draws, 2 chains, 5 replications (smoke test)")
parser.add_argument("--out", default=None)
args = parser.parse_args()
if args.quick:
    args.draws, args.tune, args.chains, args.ppc_draws = 200, 200, 2, 5

import arviz as az
import xarray as xr

out = out_dir("fit_players") if args.out is None else ROOT / args.out
start = time.perf_counter()
data = cf.load_trials(args.data)
observed = data  # correctness (response == correct response) is set once, at load, for fits and summaries alike
trees = {}
for model in args.models:
    path = out / f"{model}.nc"
    if path.exists():
        trees[model] = load_fit(path)
        print(f"{model}: reusing {path}")
        continue
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        result = fit(data, model, options=FitOptions(draws=args.draws, tune=args.tune, chains=args.chains, seed=1),
                     out=out)
    trees[model] = result.tree
    s = result.summary
    print(f"{model}: {s['wall_seconds']:.0f} s (tables {s['seconds']['tables']:.0f} s, sampling "
          f"{s['seconds']['sampling']:.0f} s)")

rows = []
loo_by = {}
for model, tree in trees.items():
    obs = tree["observed_data"].to_dataset()
    for pid in json.loads(tree.attrs["participants"]):
        mask = obs["participant"].values == pid
        sub = xr.DataTree.from_dict({
            "posterior": tree["posterior"].to_dataset().sel(participant=pid),
            "log_likelihood": tree["log_likelihood"].to_dataset().isel(observation=np.flatnonzero(mask))})
        sub_diag = cf.fit.diagnostics(xr.DataTree.from_dict({
            "posterior": tree["posterior"].to_dataset().sel(participant=pid),
            "sample_stats": (tree["sample_stats"].to_dataset().sel(participant=pid)
                             if "participant" in tree["sample_stats"].dims else tree["sample_stats"].to_dataset())}))
        loo = az.loo(sub, var_name="trial")
        loo_by[(model, pid)] = sub
        k = np.asarray(loo.pareto_k).ravel()
        rows.append({"model": model, "participant": pid, "n_trials": int(mask.sum()), "elpd_loo": float(loo.elpd),
                     "se": float(loo.se), "p_loo": float(loo.p), "pareto_k_max": float(k.max()),
                     "share_k_gt_0.7": float((k > 0.7).mean()), "rhat_max": sub_diag["rhat_max"],
                     "ess_bulk_min": sub_diag["ess_bulk_min"], "ess_tail_min": sub_diag["ess_tail_min"],
                     "divergences": sub_diag["divergences"], "ebfmi_min": sub_diag["ebfmi_min"]})
table = pd.DataFrame(rows)
pd.set_option("display.width", 200)
print("\nDiagnostics and PSIS-LOO per player and model:")
print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
table.to_csv(out / "loo_diagnostics.csv", index=False)

print("\nComparison per player (az.compare, stacking):")
for pid in sorted({p for _, p in loo_by}):
    cmp = az.compare({m: loo_by[(m, pid)] for m in trees}, method="stacking", var_name="trial", round_to="none")
    print(f"player {pid}:")
    print(cmp[["rank", "elpd", "elpd_diff", "dse", "weight"]].to_string(float_format=lambda v: f"{v:.2f}"))

print("\nPosterior predictive: switch cost (ms) by practice bin, observed vs model (mean [5%, 95%] of "
      f"{args.ppc_draws} replications)")
rules = CleaningRules()
obs_summary = summarize(observed, rules, bins=BINS)
obs_cost = obs_summary.switch_cost.set_index(["participant", "practice_bin"])["switch_cost_ms"]
ppc_rows = []
for model, tree in trees.items():
    reps = replicate(tree, data, draws=args.ppc_draws, seed=7)
    costs = [summarize(r, rules, bins=BINS).switch_cost.set_index(["participant", "practice_bin"])["switch_cost_ms"]
             for r in reps]
    costs = pd.concat(costs, axis=1)
    for key, obs_value in obs_cost.items():
        if key not in costs.index:
            continue
        sim = costs.loc[key].to_numpy(dtype=float)
        ppc_rows.append({"model": model, "participant": key[0], "practice_bin": str(key[1]), "observed": obs_value,
                         "predicted": np.nanmean(sim), "low": np.nanquantile(sim, 0.05),
                         "high": np.nanquantile(sim, 0.95)})
ppc = pd.DataFrame(ppc_rows)
print(ppc.to_string(index=False, float_format=lambda v: f"{v:.0f}"))
ppc.to_csv(out / "ppc_switch_cost.csv", index=False)

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

players = sorted(ppc["participant"].unique())
fig, axes = plt.subplots(1, len(players), figsize=(5 * len(players), 3.6), squeeze=False)
for ax, pid in zip(axes[0], players):
    sub = ppc[ppc["participant"] == pid]
    bins = list(dict.fromkeys(sub["practice_bin"]))
    x = np.arange(len(bins))
    first = sub[sub["model"] == sub["model"].iloc[0]]
    ax.plot(x, first["observed"], "ko-", lw=2, label="observed")
    for j, (model, g) in enumerate(sub.groupby("model", sort=False)):
        ax.errorbar(x + 0.08 * (j - 1), g["predicted"], yerr=[g["predicted"] - g["low"], g["high"] - g["predicted"]],
                    fmt="s--", capsize=3, label=model)
    ax.set_xticks(x, bins)
    ax.set_title(f"player {pid}")
    ax.set_xlabel("gameplay bin")
    ax.set_ylabel("switch cost (ms)")
axes[0][0].legend(fontsize=8)
fig.tight_layout()
fig.savefig(out / "ppc_switch_cost.png", dpi=120)
print(f"\nwrote {out}/loo_diagnostics.csv, ppc_switch_cost.csv, ppc_switch_cost.png; "
      f"total {time.perf_counter() - start:.0f} s")
