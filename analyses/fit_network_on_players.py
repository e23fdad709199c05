"""How the task abstraction forms and behaves on the real players' trial sequences.

Runs the fitting network (tutorial in long blocks, simulated unobserved practice, then the player's own
games) for a few settings and prints, per player: the network's squared error on incongruent trials by
position in the task run (1 = switch trial), on congruent trials, the gate selectivity (share of gate
mass on the larger gate) and the range of the gates over the observed trials. Settings: flexible
(tau_c 1, tau_W 150, lambda 0.1), flexible without tutorial, forgetful slow (tau 100) and fast (tau 2).
Outputs stay in analyses/out/fit_network_players/ (derived from the shared data: never commit them).

    ./run python analyses/fit_network_on_players.py [--data FILE]
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import pandas as pd

from _common import ROOT, out_dir

import cogflex as cf
from cogflex.fit.prepare import prepare
from cogflex.fit.network import run_network
from cogflex.fit.models import load_model

DEFAULT = ROOT.parent / "shared" / "data" / "ebb_and_flow" / "ebb_and_flow_2users.csv.gz"
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data", default=str(DEFAULT))
args = parser.parse_args()

flexible = load_model("flexible").network
settings = {
    "flexible (tau_c 1, tau_W 150, lambda 0.1)": (1.0, 150.0, 0.1, flexible),
    "flexible, no tutorial": (1.0, 150.0, 0.1, dataclasses.replace(flexible, tutorial_blocks=0)),
    "forgetful slow (tau 100)": (100.0, 100.0, 0.0, flexible),
    "forgetful fast (tau 2)": (2.0, 2.0, 0.0, flexible),
}
data = cf.load_trials(args.data)
fd = prepare(data)
rows = []
for seq in fd.sequences:
    tr = fd.trials[fd.trials["participant"] == seq.participant]
    incongruent = ~tr["congruent"].to_numpy(dtype=bool)
    run = tr["run_position"].to_numpy()
    for label, (tau_c, tau_w, lam, net) in settings.items():
        pred = run_network(seq, tau_c, tau_w, lam, net, record_gates=True)
        loss, gates = pred.loss[0], pred.gates[0]
        row = {"participant": seq.participant, "setting": label}
        for k in (1, 2, 3, 4):
            row[f"incongruent run {k}"] = loss[incongruent & (run == k)].mean()
        row["incongruent run 5+"] = loss[incongruent & (run >= 5)].mean()
        row["congruent"] = loss[~incongruent].mean()
        row["gate selectivity"] = (gates.max(1) / np.abs(gates).sum(1).clip(1e-9)).mean()
        row["gate min"], row["gate max"] = gates.min(), gates.max()
        rows.append(row)
table = pd.DataFrame(rows)
pd.set_option("display.width", 220)
print("Network squared error before each trial (mean), by run position on incongruent trials:")
print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
path = out_dir("fit_network_players") / "network_on_players.csv"
table.to_csv(path, index=False)
print(f"wrote {path}")
