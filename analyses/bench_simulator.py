"""Benchmark the NTA simulator: wall time, steps x networks per second, memory.

Prints medians over repeated runs (these machines are noisy) for

- Fig. 2 flexible, 10 seeds, sampled mode (the paper's setting) and expected mode;
- the full Fig. 5 grid A (25 settings x 10 seeds, one batch), sampled mode;
- a 10^6-step run logged at 1,000 points: peak resident memory (a subprocess);
- the dispatch floor: what the tensor operations of one Euler step cost when
  they do no arithmetic at all, i.e. how close the simulator is to what eager
  PyTorch allows on this machine.

Compared with the authors' JAX code on the same kind of machine: about 20 s
for Fig. 2 flexible and about 3 min for the Fig. 5 grid (settings one by one).

Usage::

    ./run python analyses/bench_simulator.py [--repeats 5] [--skip-long]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch

from _common import out_dir, reference
from cogflex.nta import load_config, simulate
from cogflex.nta.dynamics import NetworkBatch
from cogflex.nta.regularizers import GateRegularizer
from cogflex.nta.simulation import initial_state

LONG_RUN = """
import dataclasses, os, sys, threading, time
from cogflex.nta import load_config, simulate

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

baseline, peak, done = rss_mb(), [0.0], threading.Event()

def watch():  # resident memory, sampled every 20 ms during the run
    while not done.wait(0.02):
        peak[0] = max(peak[0], rss_mb())

threading.Thread(target=watch, daemon=True).start()
config = load_config("fig2-flexible").with_learning(mode=sys.argv[1])
config = dataclasses.replace(config, curriculum=dataclasses.replace(config.curriculum, duration=1000.0),
                             recording=dataclasses.replace(config.recording, log_every=1000))
t = time.perf_counter()
result = simulate(config)
wall = time.perf_counter() - t
done.set()
print(wall, baseline, max(peak[0], rss_mb()), result.dataset.sizes["time"])
"""


def timed(config, repeats: int) -> tuple[float, float, list[float]]:
    """(first-call seconds, median of the following repeats, all repeats)."""
    t = time.perf_counter()
    simulate(config)
    first = time.perf_counter() - t
    walls = []
    for _ in range(repeats):
        t = time.perf_counter()
        simulate(config)
        walls.append(time.perf_counter() - t)
    return first, statistics.median(walls), walls


def dispatch_floor(config, repeats: int = 3000) -> float:
    """Seconds per step of the step's operations on the same shapes, minus the arithmetic (tiny)."""
    init = initial_state(config)
    batch = NetworkBatch.build(init.weights, init.teachers, init.gates, grid_points=1, gating="path",
                               compress=config.learning.mode == "expected")
    n = batch.n_networks
    reg = GateRegularizer.from_weights(config.learning.regularizer, torch.full((n,), 0.1))
    batch.set_learning(torch.full((n,), 1e-3), torch.full((n,), 1e-3), reg)
    out = torch.empty(n, 1, 1)
    cov = None
    if config.learning.mode == "sampled":
        cov = torch.eye(batch.input_dim).expand(config.seeds, -1, -1).contiguous()
    with torch.inference_mode():
        for _ in range(200):
            batch.step(cov, out)
        t = time.perf_counter()
        for _ in range(repeats):
            batch.step(cov, out)
    return (time.perf_counter() - t) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-long", action="store_true", help="skip the 10^6-step memory run")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    authors = reference()["timing_authors_jax"]
    report = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"medians of {args.repeats} runs after one warm-up\n")

    fig2 = load_config("fig2-flexible")
    for mode in ("sampled", "expected"):
        config = fig2.with_learning(mode=mode)
        first, median, walls = timed(config, args.repeats)
        rate = config.n_steps * config.seeds / median
        step_us = median / config.n_steps * 1e6
        floor_us = dispatch_floor(config) * 1e6
        print(f"Fig. 2 flexible, 10 seeds, {mode:8s}: {median:.3f} s (first call {first:.3f} s; runs "
              f"{', '.join(f'{w:.2f}' for w in walls)}); {rate:,.0f} steps x networks / s; "
              f"{step_us:.1f} us/step, of which the step itself is {floor_us:.1f} us; "
              f"{authors['fig2_flexible_10_seeds_seconds'] / median:.0f}x faster than the authors' JAX code (~20 s)")
        report[f"fig2_{mode}"] = {"median_s": median, "first_s": first, "runs_s": walls,
                                  "steps_networks_per_s": rate, "us_per_step": step_us, "step_only_us": floor_us}

    grid = load_config("fig5-grid-a")
    first, median, walls = timed(grid, max(1, args.repeats // 2))
    n_net = grid.seeds * 25
    rate = grid.n_steps * n_net / median
    print(f"Fig. 5 grid A, 25 settings x 10 seeds, sampled: {median:.2f} s (first {first:.2f} s); "
          f"{rate:,.0f} steps x networks / s; {authors['fig5_grid_a_seconds'] / median:.0f}x faster than "
          f"the authors' code run setting by setting (~3 min)")
    report["fig5_grid_a"] = {"median_s": median, "first_s": first, "runs_s": walls, "steps_networks_per_s": rate}

    if not args.skip_long:
        for mode in ("expected", "sampled"):
            out = subprocess.run([sys.executable, "-c", LONG_RUN, mode], capture_output=True, text=True, check=True)
            wall, base_mb, rss_mb, points = (float(v) for v in out.stdout.split())
            print(f"10^6 steps x 10 seeds ({mode}), logged at {points:.0f} points: {wall:.1f} s; peak resident "
                  f"memory during the run {rss_mb:.0f} MB, of which {base_mb:.0f} MB is the imported libraries "
                  f"(torch's CUDA build, xarray, matplotlib): the run itself adds {rss_mb - base_mb:.0f} MB")
            report[f"million_steps_{mode}"] = {"wall_s": wall, "peak_rss_mb": rss_mb, "baseline_rss_mb": base_mb}

    path = out_dir("bench") / "bench_simulator.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
