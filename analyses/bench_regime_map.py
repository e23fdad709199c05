"""Benchmark: a 100 x 100 regime map (block length x gate timescale) in one sweep, on CPU or GPU.

Prepared for a machine with an accelerator (``--device cuda``); it runs on a
CPU too (use ``--size 10`` there: the full map is 10,000 settings x seeds).
The grid is Fig. 5's grid A widened to ``size`` x ``size`` values (tau_B in
[0.1, 1], tau_c in [0.02, 0.1]), expected mode by default; the run goes
through :func:`cogflex.nta.sweeps.run_sweep` (one unit per row, resumable
with ``--out``). Prints wall time, steps x networks per second and the
device, and writes the regime map PNG and a JSON of the numbers. Usage::

    ./run python analyses/bench_regime_map.py --device cuda            # 100 x 100, 10 seeds
    ./run python analyses/bench_regime_map.py --device cpu --size 10   # a CPU smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import torch

from _common import out_dir
from cogflex.executors import LocalExecutor
from cogflex.nta import load_config, plots
from cogflex.nta.config import Sweep
from cogflex.nta.simulation import resolve_device
from cogflex.nta.sweeps import run_sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100, help="values per axis (default 100: 10,000 settings)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--mode", choices=("expected", "sampled"), default="expected")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto")
    parser.add_argument("--out", default=None, help="keep units here (resumable); default: none kept")
    args = parser.parse_args()
    device = str(resolve_device(args.device))
    torch.set_num_threads(1 if device == "cpu" else torch.get_num_threads())
    base = load_config("fig5-grid-a")
    sweep = Sweep(axes=(("block_length", tuple(np.round(np.linspace(1.0, 0.1, args.size), 6))),
                        ("gate_timescale", tuple(np.round(np.linspace(0.02, 0.1, args.size), 6)))))
    config = dataclasses.replace(base, name=f"regime-map-{args.size}x{args.size}", seeds=args.seeds,
                                 sweep=sweep).with_learning(mode=args.mode)
    started = time.perf_counter()
    result = run_sweep(config, out=args.out, executor=LocalExecutor(), device=device)
    wall = time.perf_counter() - started
    networks = args.size * args.size * args.seeds
    rate = networks * config.n_steps / wall
    folder = out_dir("bench_regime_map")
    plots.plot_regime_map(result, folder / f"regime_map_{args.size}x{args.size}_{device}.png")
    numbers = {"size": args.size, "seeds": args.seeds, "networks": networks, "steps": config.n_steps,
               "mode": args.mode, "device": device,
               "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
               "wall_seconds": wall, "steps_x_networks_per_second": rate,
               "flexible_share": float((result.table()["total_alignment"] >= 0.98).mean())}
    (folder / f"bench_{args.size}x{args.size}_{device}.json").write_text(json.dumps(numbers, indent=2))
    print(json.dumps(numbers, indent=2))


if __name__ == "__main__":
    main()
