"""Does every node of every built-in network model's box integrate stably on a long, varied life?

Builds one synthetic player of ``--sessions`` games x 70 trials in four stretches (switch rates 0.05, 0.5,
0.9, 0.2; congruent rates 0, 0.25, 1, 0.5 — the sequence on which the shipped forgetful network at tau = 0.5
diverged before the step-size rule of :mod:`cogflex.fit.kernel`), and runs each built-in network model at
every node of its grid with the shipped settings (8 unobserved histories, tutorial, practice), exactly as a
fit builds its predictor tables. Prints per model the nodes, how many diverged or gave non-finite
predictors, and the time.

    ./run python analyses/box_stability.py [--sessions 300] [--seed 0] [--models forgetful flexible ...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _common import ROOT  # noqa: F401 - puts the repository on the path
from cogflex.errors import DivergenceError
from cogflex.fit.models import builtin_models, load_model
from cogflex.fit.sequence import encode
from cogflex.fit.simulate import Design, design_trials
from cogflex.fit.tables import grid_points


def long_design(sessions: int, seed: int) -> Design:
    stretch = max(sessions // 4, 1)
    return Design(participants=1, sessions=sessions, trials_per_session=70, first_session=150, seed=seed,
                  session_switch_rates=tuple(np.repeat([0.05, 0.5, 0.9, 0.2], stretch)),
                  session_congruent_rates=tuple(np.repeat([0.0, 0.25, 1.0, 0.5], stretch)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=300, help="games of 70 trials (default 300: 21,000 trials)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the trial sequence (default 0)")
    parser.add_argument("--models", nargs="+", default=None, help="built-in models (default: every network model)")
    args = parser.parse_args()
    data = design_trials(long_design(args.sessions, args.seed))
    seq = encode(data, np.ones(len(data.trials), dtype=bool))[0]
    names = args.models or [n for n in builtin_models() if load_model(n).family.startswith("nta")]
    print(f"{len(seq)} trials, seed {args.seed}")
    for name in names:
        model = load_model(name)
        nodes = grid_points(model)
        start = time.perf_counter()
        try:
            pred = model.run(seq, nodes)
            bad = int((~(np.isfinite(pred.loss).all(1) & np.isfinite(pred.margin).all(1))).sum())
            verdict = f"{bad} non-finite"
        except DivergenceError as err:
            verdict = f"DIVERGED: {err}"
        n_nodes = len(next(iter(nodes.values())))
        print(f"{name:26s} {n_nodes:5d} nodes  {verdict:14s}  {time.perf_counter() - start:7.1f} s", flush=True)


if __name__ == "__main__":
    main()
