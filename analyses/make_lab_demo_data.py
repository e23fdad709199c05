"""Generate the bundled synthetic lab dataset ``data/synthetic/lab_demo.csv.gz`` (issue 18's lab-scale demo).

60 participants x 8 blocks x 64 trials of a two-task switching experiment in the layout of a lab's own
script: only the cue, the congruency, accuracy (1/0) and RT in ms per trial, the block's switch proportion
(low-switch blocks 0.25, high-switch blocks 0.75, alternating, the first block's type drawn per participant)
and the participant's age. The responses come from the flexible NTA model (``models/fitting/flexible.toml``)
with age-dependent parameters:

- log tau_c = log 1.5 + 0.3 age_z + 0.25 e (older participants: slower gates), age_z = (age - 45) / 15;
- log tau_W = log 120 + 0.25 e;
- rt_intercept = -0.75 + 0.1 age_z + 0.1 e (older: slower responses);
- acc_intercept = 3.0 + 0.3 e, log acc_slope = log 1.8 + 0.2 e, log rt_slope = log 0.5 + 0.2 e,
  log rt_sigma = log 0.28 + 0.1 e, rt_shift uniform on [0.4, 0.6];

each e an independent standard normal per participant, ages uniform on 18-75 years. The network is run through
the two-task mapping exactly as a fit of this file runs it (tasks ``colour`` / ``shape``, two arbitrary response
codes drawn with the mapping's seed 0, the congruency from the file), so the generating model is the fitted one.
Writes the trials, ``lab_demo.params.json`` (every participant's parameters, the group-level values above, the
design and the seeds) and prints the data's descriptives. Usage::

    ./run python analyses/make_lab_demo_data.py [--out data/synthetic]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from _common import ROOT

from cogflex.fit.models import load_model
from cogflex.fit.simulate import Design, design_trials, simulate_trials
from cogflex.io import write_json

PARTICIPANTS, BLOCKS, TRIALS = 60, 8, 64
SWITCH_RATES = (0.25, 0.75)
GROUP = {"log_gate_timescale": (np.log(1.5), 0.3, 0.25), "log_weight_timescale": (np.log(120.0), 0.0, 0.25),
         "rt_intercept": (-0.75, 0.1, 0.1), "acc_intercept": (3.0, 0.0, 0.3), "log_acc_slope": (np.log(1.8), 0.0, 0.2),
         "log_rt_slope": (np.log(0.5), 0.0, 0.2), "log_rt_sigma": (np.log(0.28), 0.0, 0.1)}
AGE_MEAN, AGE_SD = 45.0, 15.0


def participant_parameters(rng: np.random.Generator, ids: list[str]) -> tuple[np.ndarray, dict[str, dict]]:
    """Ages and each participant's flexible-model parameters (GROUP: mean, age slope, spread per parameter)."""
    age = rng.integers(18, 76, size=len(ids)).astype(float)
    age_z = (age - AGE_MEAN) / AGE_SD
    values = {}
    for name, (mean, slope, spread) in GROUP.items():
        v = mean + slope * age_z + spread * rng.standard_normal(len(ids))
        values[name.removeprefix("log_")] = np.exp(v) if name.startswith("log_") else v
    values["rt_shift"] = rng.uniform(0.4, 0.6, len(ids))
    return age, {k: {pid: round(float(x), 4) for pid, x in zip(ids, v)} for k, v in values.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "data" / "synthetic"), help="output folder")
    parser.add_argument("--seed", type=int, default=2026, help="seed of the design, parameters and responses")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # two designs that differ in which block type comes first; each participant gets one at random
    rng = np.random.default_rng(args.seed)
    ids = [f"sim{k + 1:02d}" for k in range(PARTICIPANTS)]
    tables = []
    for first, rates in enumerate((SWITCH_RATES, SWITCH_RATES[::-1])):
        design = Design(participants=PARTICIPANTS, sessions=BLOCKS, trials_per_session=TRIALS, first_session=1,
                        congruent_rate=0.5, session_switch_rates=rates, seed=args.seed + first)
        tables.append(design_trials(design))
    starts_high = rng.random(PARTICIPANTS) < 0.5
    df = pd.concat([t.trials[t.trials["participant"].astype(str).isin(
        [pid for pid, hi in zip(ids, starts_high) if hi == bool(k)])] for k, t in enumerate(tables)])
    df = df.sort_values(["participant", "session", "trial"]).reset_index(drop=True)
    # what a lab file has: the cue (two tasks), congruency, no stimulus or response labels
    df = df.drop(columns=[c for c in ("stim_point", "stim_move", "response", "correct_response") if c in df])
    df["task"] = pd.Categorical(df["task"].astype(str).map({"point": "colour", "move": "shape"}))
    trials = tables[0].with_trials(df, format="csv", source="lab_demo (generated)")
    age, params = participant_parameters(rng, ids)
    spec = load_model("flexible")
    sim = simulate_trials(spec, {k: v for k, v in params.items()}, trials, seed=args.seed)
    t = sim.trials
    lab = pd.DataFrame({
        "subject": t["participant"].astype(str),
        "age": t["participant"].astype(str).map(dict(zip(ids, age.astype(int)))),
        "block": t["session"].astype(int),
        "switch_prob": t["cond_switch_rate"].astype(float),
        "trial": t["trial"].astype(int),
        "cue": t["task"].astype(str),
        "congruency": np.where(t["congruent"].to_numpy(dtype=bool), "congruent", "incongruent"),
        "accuracy": t["correct"].to_numpy(dtype=bool).astype(int),
        "rt_ms": np.round(t["rt"].to_numpy(dtype=float) * 1000).astype(int),
    })
    path = out / "lab_demo.csv.gz"
    tmp = path.with_suffix(".tmp.gz")
    lab.to_csv(tmp, index=False, compression={"method": "gzip", "mtime": 0})
    tmp.replace(path)
    group = {name: {"mean": float(m), "age_slope": float(s), "spread": float(sd)} for name, (m, s, sd) in GROUP.items()}
    write_json(out / "lab_demo.params.json", {
        "model": "flexible", "seed": args.seed, "mapping": "two-task (seed 0)",
        "design": {"participants": PARTICIPANTS, "blocks": BLOCKS, "trials_per_block": TRIALS,
                   "switch_rates": list(SWITCH_RATES), "congruent_rate": 0.5,
                   "design_seeds": [args.seed, args.seed + 1]},
        "age": {"mean": AGE_MEAN, "sd": AGE_SD, "note": "age_z = (age - mean) / sd"},
        "group": group, "parameters": params,
        "regularization": spec.to_dict().get("regularization")})
    by_type = lab.assign(switch=t["switch"].fillna(False).to_numpy(dtype=bool))
    by_type = by_type[by_type["trial"] > 1]
    rt = by_type.groupby(["switch_prob", "switch"])["rt_ms"].median().unstack()
    print(f"wrote {path} ({len(lab):,} trials of {PARTICIPANTS} participants) and {out / 'lab_demo.params.json'}")
    print(f"accuracy {lab['accuracy'].mean():.3f}, median RT {lab['rt_ms'].median():.0f} ms; median RT (ms) by "
          f"block switch proportion (rows) and switch (columns):\n{rt.round(0)}")


if __name__ == "__main__":
    main()
