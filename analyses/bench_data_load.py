"""Benchmark reading a large trial file: load + validate + derive 1,000,000 trials.

Generates an Ebb and Flow-format file of the requested size (synthetic, in a
temporary folder; plain and gzip-compressed, and the same trials as a generic
lab CSV read through a column mapping), then times
:func:`cogflex.data.load_trials` on each in a fresh process and reports wall
time and peak resident memory (target: <= 10 s and <= 1 GB for 10^6 trials).

Usage::

    ./run python analyses/bench_data_load.py [--trials 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

LOAD = """
import resource, sys, time
t = time.perf_counter()
from cogflex.data import CsvMapping, load_trials
if sys.argv[2] == "csv":
    mapping = CsvMapping({"participant": "subject", "session": "block", "trial": "trial", "task": "cue",
                          "correct": "acc", "rt": "RT", "response": "resp_dir", "stim_point": "point_dir",
                          "stim_move": "mv_dir"})
    data = load_trials(sys.argv[1], "csv", mapping=mapping)
else:
    data = load_trials(sys.argv[1], "ebb-and-flow")
wall = time.perf_counter() - t
print(wall, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, data.n_trials)
"""


def synthetic_ebb_and_flow(n_trials: int, seed: int = 0) -> pd.DataFrame:
    """An Ebb and Flow export of about ``n_trials`` trials (games of 72 trials, switch probability 0.18)."""
    rng = np.random.default_rng(seed)
    per_game, games_per_player = 72, 70
    n_games = int(np.ceil(n_trials / per_game))
    game = np.repeat(np.arange(n_games), per_game)[:n_trials]
    player = game // games_per_player
    trial = np.tile(np.arange(1, per_game + 1), n_games)[:n_trials]
    switch = (rng.random(n_trials) < 0.18) & (trial > 1)
    start = trial == 1
    first_cue = np.repeat(rng.integers(0, 2, start.sum()), per_game)[:n_trials]
    flips = np.cumsum(switch)  # the cue flips at every switch, counted from the game's start
    cue_index = (first_cue + flips - np.repeat(flips[start], per_game)[:n_trials]) % 2
    dirs = np.array(list("UDLR"))
    point, move = rng.integers(0, 4, n_trials), rng.integers(0, 4, n_trials)
    correct = rng.random(n_trials) < 0.97
    target = np.where(cue_index == 0, point, move)
    response = np.where(correct, target, (target + 1) % 4)
    return pd.DataFrame({
        "user_id": 1000 + player,
        "age": 20 + player % 50,
        "game_result_id": 10**9 + game,
        "nth_master": 1 + game % games_per_player,
        "timestamp_rel_days": (game % games_per_player) * 1.5,
        "trial": trial,
        "time_offset": (trial - 1) * 800,
        "task_cue": np.where(cue_index == 0, "P", "M"),
        "switch": np.where(switch, "T", "F"),
        "point_dir": dirs[point],
        "mv_dir": dirs[move],
        "resp_dir": dirs[response],
        "correct": np.where(correct, "T", "F"),
        "resp_time": rng.lognormal(np.log(750), 0.3, n_trials).astype(int),
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="cogflex-bench-"))
    try:
        t = time.perf_counter()
        frame = synthetic_ebb_and_flow(args.trials)
        plain = folder / "ebb_and_flow_synthetic.csv"
        frame.to_csv(plain, index=False)
        with plain.open("rb") as src, gzip.open(folder / "ebb_and_flow_synthetic.csv.gz", "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst)
        lab = frame.rename(columns={"user_id": "subject", "nth_master": "block", "task_cue": "cue", "correct": "acc",
                                    "resp_time": "RT"})
        lab.to_csv(folder / "lab_synthetic.csv", index=False)
        print(f"generated {len(frame):,} trials in {time.perf_counter() - t:.1f} s "
              f"({plain.stat().st_size / 1e6:.0f} MB plain, "
              f"{(folder / 'ebb_and_flow_synthetic.csv.gz').stat().st_size / 1e6:.0f} MB gzip)")
        runs = [(plain, "ebb-and-flow"), (folder / "ebb_and_flow_synthetic.csv.gz", "ebb-and-flow"),
                (folder / "lab_synthetic.csv", "csv")]
        for path, fmt in runs:
            walls, peaks = [], []
            for _ in range(args.repeats):
                out = subprocess.run([sys.executable, "-c", LOAD, str(path), fmt], capture_output=True, text=True,
                                     check=True)
                wall, peak, n = out.stdout.split()
                walls.append(float(wall))
                peaks.append(float(peak))
            print(f"{path.name} ({fmt}): load + validate + derive {int(n):,} trials: "
                  f"median {statistics.median(walls):.2f} s "
                  f"(runs {', '.join(f'{w:.2f}' for w in walls)}; imports included), "
                  f"peak resident memory {max(peaks):.0f} MB")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
