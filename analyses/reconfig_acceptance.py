"""Does the network explain how people switch? The reconfiguration models' checks on a pipeline's outputs.

Reads a finished pipeline folder (default the shared players', ``analyses/out/pipeline_players`` from
``./run cogflex run analyses/pipelines/players.toml``) and prints, per player:

1. for each network model: the posterior predictive statistics with the observed value and the 90% band —
   switch cost per practice bin, median RT at run positions 1-5, accuracy on switch and repeat trials, the
   repeat-trial congruency effect — and whether the observed value lies inside;
2. every model's ELPD-LOO, the pairwise differences, and how much of the feedback-only flexible model's gap
   to the descriptive regression the best network model closes (the gap measured before the
   reconfiguration models: 1,706 ELPD for player 1089 and 428 for 1365, docs/comparison.md);
3. the flexible-vs-forgetful answer of the reconfiguration models with its SE, next to the interpolation
   error of each network fit (exact minus interpolated log-likelihood at the posterior mean): a lead smaller
   than the interpolation errors is flagged as undecided;
4. diagnostics of every fit (R-hat, ESS, divergences).

Writes ``reconfig_acceptance.json`` into the pipeline folder.

    ./run python analyses/reconfig_acceptance.py [--out analyses/out/pipeline_players]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from _common import ROOT

#: The feedback-only flexible model's ELPD gap to the descriptive regression (docs/comparison.md, issue 16).
REFERENCE_GAP = {"1089": 1706.2, "1365": 427.6}
#: The feedback-only models' ELPD-LOO on the same trials (docs/comparison.md; fitted before this analysis).
FEEDBACK_ONLY_ELPD = {"1089": {"flexible": 10491.2, "forgetful": 10254.3},
                      "1365": {"flexible": 17336.9, "forgetful": 17384.1}}
NETWORK_MODELS = ("flexible-reconfig", "forgetful-reconfig", "fast-gates-unregularised")
FLEXIBLE_VS_FORGETFUL = (("flexible-reconfig", "forgetful-reconfig"), ("flexible-reconfig", "fast-gates-unregularised"))


def ppc_checks(ppc: pd.DataFrame, participant: str) -> pd.DataFrame:
    """The statistics the issue names, one row each: observed, band, inside."""
    sub = ppc[ppc["participant"].astype(str) == participant]
    keep = (
        ((sub["measure"] == "switch_cost_ms") & (sub["condition"] == "switch-repeat") & (sub["practice_bin"] != "all"))
        | ((sub["measure"] == "rt_median_ms") & sub["condition"].isin([f"run_position_{k}" for k in range(1, 6)])
           & (sub["practice_bin"] == "all"))
        | ((sub["measure"] == "accuracy") & sub["condition"].isin(["switch", "repeat"])
           & (sub["practice_bin"] == "all"))
        | ((sub["measure"] == "congruency_effect_ms") & (sub["condition"] == "incongruent-congruent_repeat"))
    )
    rows = sub[keep][["measure", "condition", "practice_bin", "observed", "mean", "low", "high"]].copy()
    rows["inside"] = (rows["observed"] >= rows["low"]) & (rows["observed"] <= rows["high"])
    return rows.reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "analyses" / "out" / "pipeline_players"))
    args = parser.parse_args()
    out = Path(args.out)
    comparison = pd.read_csv(out / "comparison.csv")
    pairwise = pd.read_csv(out / "comparison_pairwise.csv")
    summaries = {m: json.loads((out / "fits" / f"{m}.summary.json").read_text())
                 for m in comparison["model"].unique()}
    result: dict = {}
    for participant in sorted(map(str, comparison["participant"].unique())):
        if participant in ("pooled", "all"):
            continue
        print(f"\n=== player {participant} ===")
        entry: dict = {"ppc": {}, "elpd": {}, "pairwise": [], "diagnostics": {}}
        for model in NETWORK_MODELS:
            path = out / "ppc" / f"{model}.csv"
            if not path.exists():
                continue
            checks = ppc_checks(pd.read_csv(path, dtype={"participant": str, "practice_bin": str}), participant)
            print(f"\n{model}: posterior predictive statistics (90% band)")
            print(checks.round(3).to_string(index=False))
            entry["ppc"][model] = {"all_inside": bool(checks["inside"].all()), "rows": checks.to_dict("records")}
        rows = comparison[comparison["participant"].astype(str) == participant]
        print("\nELPD-LOO")
        print(rows[["model", "elpd_loo", "se", "elpd_diff", "dse", "weight"]].round(3).to_string(index=False))
        elpd = dict(zip(rows["model"], rows["elpd_loo"]))
        entry["elpd"] = {k: float(v) for k, v in elpd.items()}
        best_network = max((m for m in NETWORK_MODELS if m in elpd), key=elpd.get, default=None)
        if best_network is not None and "descriptive" in elpd:
            flexible_then = elpd["descriptive"] - REFERENCE_GAP[participant]
            closed = (elpd[best_network] - flexible_then) / REFERENCE_GAP[participant]
            entry["gap_closed"] = {"best_network": best_network, "fraction": float(closed),
                                   "lead_over_descriptive": float(elpd[best_network] - elpd["descriptive"])}
            print(f"best network model {best_network}: closes {closed:.0%} of the feedback-only flexible model's "
                  f"gap of {REFERENCE_GAP[participant]:,.0f} (lead over descriptive "
                  f"{elpd[best_network] - elpd['descriptive']:+.1f}); feedback-only ELPDs (earlier fits): "
                  f"{FEEDBACK_ONLY_ELPD[participant]}")
        interp = {m: {str(c["participant"]): float(c["difference"]) for c in s.get("interpolation_check") or []}
                  for m, s in summaries.items()}
        pw = pairwise[pairwise["participant"].astype(str) == participant]
        for a, b in FLEXIBLE_VS_FORGETFUL:
            row = pw[((pw["model_a"] == a) & (pw["model_b"] == b)) | ((pw["model_a"] == b) & (pw["model_b"] == a))]
            if row.empty:
                continue
            r = row.iloc[0]
            diff = float(r["elpd_diff"]) * (1 if r["model_a"] == a else -1)
            errors = [abs(interp.get(m, {}).get(participant, np.nan)) for m in (a, b)]
            undecided = abs(diff) < 2 * float(r["se"]) or abs(diff) < sum(errors)
            entry["pairwise"].append({"a": a, "b": b, "elpd_diff": diff, "se": float(r["se"]),
                                      "interpolation_error": errors, "undecided": bool(undecided)})
            print(f"{a} - {b}: {diff:+.1f} +- {float(r['se']):.1f} ELPD; interpolation errors "
                  f"{errors[0]:.1f} / {errors[1]:.1f}" + ("  -> undecided" if undecided else ""))
        for m, s in summaries.items():
            entry["diagnostics"][m] = {k: s.get(k) for k in ("rhat_max", "ess_bulk_min", "ess_tail_min",
                                                             "divergences", "ebfmi_min")}
            entry["diagnostics"][m]["interpolation_error"] = interp.get(m, {}).get(participant)
        print("\ndiagnostics (whole fit, both players)")
        print(pd.DataFrame(entry["diagnostics"]).T.round(4).to_string())
        result[participant] = entry
    (out / "reconfig_acceptance.json").write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwrote {out / 'reconfig_acceptance.json'}")


if __name__ == "__main__":
    main()
