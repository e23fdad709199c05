"""Benchmark of the adapter trainer: steps per second of `mnist-switch` (frozen and trainable backbone).

Times `run_adapt` on the shared MNIST test set with per-step held-out evaluation (the preset), without it
(evaluation every 300 steps) and with the CNN backbone trainable (lr 1e-4), 3 repetitions each, and prints
medians. Steps include the SGD step and, where on, the evaluation on 2,000 held-out images.

    ./run python analyses/bench_adapt.py [--device cpu|cuda] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch

from _common import ROOT

from cogflex.adapt.train import load_adapt_config, run_adapt

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--device", default="cpu")
parser.add_argument("--repeats", type=int, default=3)
parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "mnist"))
args = parser.parse_args()

base = load_adapt_config("mnist-switch")
cases = {
    "frozen CNN, eval every step (preset)": base,
    "frozen CNN, eval at block ends": replace(base, curriculum=replace(base.curriculum, eval_every=300)),
    "trainable CNN (lr 1e-4), eval every 10 steps": replace(
        base, backbone=replace(base.backbone, lr=1e-4), curriculum=replace(base.curriculum, eval_every=10)),
}
print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}; "
      f"{base.curriculum.blocks} blocks x {base.curriculum.block_steps} steps, batch {base.curriculum.batch_size}")
for name, config in cases.items():
    walls, rates = [], []
    for r in range(args.repeats):
        t0 = time.perf_counter()
        result = run_adapt(replace(config, seed=r), args.data, progress=False, device=args.device)
        walls.append(time.perf_counter() - t0)
        curriculum_steps = config.curriculum.blocks * config.curriculum.block_steps
        rates.append(curriculum_steps / result.seconds["curriculum"])
    print(f"{name:45s} run {statistics.median(walls):6.1f} s (median of {args.repeats}), "
          f"{statistics.median(rates):7.0f} curriculum steps/s (setup: data, pretraining, features excluded)")
