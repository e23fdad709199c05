"""Descriptive statistics of the shared Ebb and Flow file (two Lumosity players).

Switch cost by practice bin (gameplays 150-249 / 250-349 / 350-500), RT by
position in the task run, congruency effect and accuracy, with the usual
cleaning (correct trials after a correct trial, 0.15-3 s, no first trial of a
game). Writes tables and plots to analyses/out/ebb_and_flow/. Usage::

    ./run python analyses/lumosity_players_descriptives.py [FILE]
"""

from __future__ import annotations

import sys

import pandas as pd

from _common import ROOT, out_dir
from cogflex.data import CleaningRules, load_trials, summarize
from cogflex.data import plots as data_plots

DEFAULT = ROOT.parent / "shared" / "data" / "ebb_and_flow" / "ebb_and_flow_2users.csv.gz"


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT
    out = out_dir("ebb_and_flow")
    data = load_trials(path, "ebb-and-flow")
    summary = summarize(data, CleaningRules(), bins=[150, 250, 350, 501])
    pd.set_option("display.width", 160)
    print(f"{data.n_trials:,} trials, {len(data.participants)} participants, {data.n_sessions} sessions")
    for note in data.notes:
        print("note:", note)
    print("\nswitch cost (ms, median switch - median repeat):")
    print(summary.switch_cost.pivot(index="practice_bin", columns="participant", values="switch_cost_ms"))
    congruency = summary.congruency[summary.congruency["trial_type"] == "repeat"]
    print("\ncongruency effect on repeat trials (ms):")
    print(congruency.pivot(index="practice_bin", columns="participant", values="congruency_effect_ms"))
    print("\naccuracy:")
    print(summary.by_trial_type.pivot_table(index=["practice_bin", "trial_type"], columns="participant",
                                            values="accuracy").round(4))
    print("\nmedian RT by run position (ms):")
    print(summary.run_position.pivot(index="run_position", columns="participant", values="rt_median_ms"))
    print("\ncleaning:")
    print(summary.cleaning)
    summary.tidy().to_csv(out / "summary_tidy.csv", index=False)
    data_plots.plot_switch_cost(summary, out / "switch_cost.png")
    data_plots.plot_run_position(summary, out / "run_position.png")
    data_plots.plot_accuracy(summary, out / "accuracy.png")
    print(f"\nwrote {out}/summary_tidy.csv, switch_cost.png, run_position.png, accuracy.png")


if __name__ == "__main__":
    main()
