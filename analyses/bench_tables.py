"""Benchmark: predictor tables of one player, torch engine vs the compiled kernel (cold and warm).

A predictor table is the model's network run over the player's whole life (tutorial, unobserved practice,
observed trials) at every grid node and history. This script times, for each model:

- ``torch``: the reference engine (:class:`cogflex.nta.dynamics.NetworkBatch`), feedback-only models only;
- ``compiled cold``: a fresh process with an empty numba cache (import, compile, run);
- ``compiled warm``: the same table again in that process (what every later fit pays; the on-disk numba
  cache makes later processes start warm too);

and prints the network-trial throughput next to the arithmetic of the run. Defaults: player 1089 of the
shared Ebb and Flow file, models ``flexible`` and ``flexible-reconfig``.

    ./run python analyses/bench_tables.py [--data FILE] [--participant ID] [--models flexible flexible-reconfig]
        [--skip-torch]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from _common import ROOT

SHARED = ROOT.parent / "shared" / "data" / "ebb_and_flow" / "ebb_and_flow_2users.csv.gz"

_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import cogflex as cf
from dataclasses import replace
from cogflex.fit.models import load_model
from cogflex.fit.network import full_sequence
from cogflex.fit.prepare import prepare
from cogflex.fit.tables import grid_points
data_path, participant, name, engine = sys.argv[1:5]
model = load_model(name)
if engine == "torch":
    model = replace(model, network=replace(model.network, engine="torch"))
seq = prepare(cf.load_trials(data_path), participants=[participant]).sequences[0]
points = grid_points(model)
t_ready = time.perf_counter()
model.compute_predictors(seq, points)
t_first = time.perf_counter()
out = {"setup": t_ready - t0, "first": t_first - t_ready}
if engine == "compiled":
    model.compute_predictors(seq, points)
    out["warm"] = time.perf_counter() - t_first
out["nodes"] = len(next(iter(points.values())))
out["histories"] = model.network.histories
out["trials"] = len(full_sequence(seq, model.network)[0])
out["substeps"] = model.network.substeps
flow = getattr(model, "reconfiguration", None)
out["flow_steps"] = flow.flow_steps if flow is not None else 0
print(json.dumps(out))
"""


def run_child(data: str, participant: str, model: str, engine: str, cache: str) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    done = subprocess.run([sys.executable, "-c", _CHILD, data, participant, model, engine], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(SHARED))
    parser.add_argument("--participant", default="1089")
    parser.add_argument("--models", nargs="+", default=["flexible", "flexible-reconfig"])
    parser.add_argument("--skip-torch", action="store_true", help="do not time the torch engine (slow)")
    args = parser.parse_args()
    rows = []
    for name in args.models:
        with tempfile.TemporaryDirectory() as cache:
            compiled = run_child(args.data, args.participant, name, "compiled", cache)
        row = {"model": name, "nodes": compiled["nodes"], "histories": compiled["histories"],
               "trials": compiled["trials"], "compiled_cold_s": compiled["first"], "compiled_warm_s": compiled["warm"],
               "compile_s": compiled["first"] - compiled["warm"]}
        networks = compiled["nodes"] * compiled["histories"]
        row["network_trials_per_s_warm"] = networks * compiled["trials"] / compiled["warm"]
        row["substeps_per_trial"] = compiled["substeps"] + compiled["flow_steps"]
        if not args.skip_torch and compiled["flow_steps"] == 0:
            with tempfile.TemporaryDirectory() as cache:
                reference = run_child(args.data, args.participant, name, "torch", cache)
            row["torch_s"] = reference["first"]
            row["speedup_warm_vs_torch"] = reference["first"] / compiled["warm"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps({"participant": args.participant, "cpus": os.cpu_count(), "rows": rows}, indent=2))


if __name__ == "__main__":
    t = time.perf_counter()
    main()
    print(f"benchmark wall {time.perf_counter() - t:.0f} s", file=sys.stderr)
