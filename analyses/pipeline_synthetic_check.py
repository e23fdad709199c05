"""Synthetic check of the whole pipeline: data simulated from flexible -> flexible wins; from forgetful -> forgetful.

Simulates players from each NTA model on the bundled design (3 players x 24 games x 70 trials, as
data/synthetic/flexible_players.csv.gz; forgetful parameters drawn from its priors, seeded), runs the demo
pipeline settings (flexible, forgetful, descriptive; 2 chains x 500 draws) on each dataset with
`cogflex.pipeline.run_pipeline` and prints the winners (pooled and per player) with ELPD differences.
The flexible dataset is the bundled one. Outputs: analyses/out/pipeline_synthetic/ (resumable: rerunning
reuses finished fits).

    ./run python analyses/pipeline_synthetic_check.py [--players 3] [--seed 11]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import replace

from _common import ROOT, out_dir

from cogflex.pipeline import DataStep, load_pipeline, run_pipeline

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--players", type=int, default=3, help="players simulated from forgetful (default 3)")
parser.add_argument("--seed", type=int, default=11, help="seed of the forgetful parameters and responses")
args = parser.parse_args()

out = out_dir("pipeline_synthetic")
forgetful_data = out / "forgetful_players.csv.gz"
if not forgetful_data.exists():
    subprocess.run([sys.executable, "-m", "cogflex.cli", "simulate-data", "--model", "forgetful", "--design",
                    f"participants={args.players},sessions=24,trials_per_session=70,first_session=11,"
                    "switch_rate=0.18,congruent_rate=0.25", "--seed", str(args.seed), "--out", str(forgetful_data)],
                   check=True)
start = time.perf_counter()
base = load_pipeline("demo")
results = {}
for truth, data in (("flexible", ROOT / "data" / "synthetic" / "flexible_players.csv.gz"),
                    ("forgetful", forgetful_data)):
    pipe = replace(base, name=f"from-{truth}", data=DataStep(file=str(data)),
                   report=replace(base.report, title=f"Synthetic check: players simulated from the {truth} model"))
    print(f"\n== data simulated from {truth} ==")
    results[truth] = run_pipeline(pipe, out=out / f"from_{truth}", progress=False)

print("\nSummary (winner vs runner-up, ELPD difference +- SE):")
ok = True
for truth, result in results.items():
    for pid, w in result.comparison.winners().items():
        scope = "pooled" if pid == "all" else f"player {pid}"
        flag = "" if w["model"] == truth else "   <- not the generating model"
        print(f"  from {truth:9s} {scope:13s} {w['model']:11s} by {w['elpd_diff']:7.1f} +- {w['dse']:5.1f} over "
              f"{w['runner_up']}{'' if w['decisive'] else ' (within 2 SE)'}{flag}")
    ok &= result.comparison.winners()["all"]["model"] == truth
print(f"pooled winner is the generating model for both datasets: {ok}; {time.perf_counter() - start:.0f} s")
