"""The verdict rules: when a lead in ELPD may be called decisive, and why not in words.

:mod:`cogflex.fit.compare` ranks models by PSIS-LOO; this module judges the fits behind a ranking. A lead is
decisive only when it exceeds 2 SE of the difference *and* the fits of the winner and its runner-up pass
:data:`VERDICT_RULES` over the scope's participants (:func:`fit_quality`, pooled over participants or shards
by :func:`pool_quality`); :func:`verdict_caveats` lists, in plain words, every rule a comparison fails.
"""

from __future__ import annotations

import json

import xarray as xr

__all__ = ["PARETO_K_BAD", "VERDICT_RULES", "verdict_caveats", "verdict_phrase", "fit_quality", "pool_quality",
           "NO_QUALITY"]

#: Pareto k above this value makes a trial's PSIS estimate unreliable (Vehtari et al. 2024: 0.7 for S > 2,200).
PARETO_K_BAD = 0.7

#: What the fits of a winner and its runner-up must meet for the lead to be called decisive (besides
#: a lead of more than 2 SE of the difference): R-hat, bulk ESS, no divergences, E-BFMI, the share of
#: trials whose PSIS Pareto k exceeds :data:`PARETO_K_BAD`, and a lead that stays above 2 SE when the two
#: fits' interpolation errors (exact minus interpolated network log-likelihood, :mod:`cogflex.fit.checks`)
#: are taken off it.
VERDICT_RULES = {"rhat_max": 1.01, "ess_bulk_min": 400.0, "ebfmi_min": 0.3, "share_pareto_k_bad": 0.01}


#: Diagnostics of a model without a fit-quality record (all checks pass vacuously).
NO_QUALITY = {"rhat_max": float("nan"), "ess_bulk_min": float("nan"), "divergences": 0, "ebfmi_min": float("nan"),
               "interpolation_error": 0.0}


def verdict_caveats(best: dict, second: dict) -> list[str]:
    """Plain-language reasons why ``best``'s lead over ``second`` is not decisive (none: it is).

    ``best`` and ``second`` are table rows (:data:`COMPARISON_COLUMNS`); the rules are :data:`VERDICT_RULES`.
    """
    lead, dse = -float(second["elpd_diff"]), float(second["dse"])
    out = []
    if not lead > 2 * dse:
        out.append(f"the lead ({lead:.1f} ELPD) is within 2 SE of the difference ({2 * dse:.1f})")
    rules = VERDICT_RULES
    for r in (best, second):
        name, bad = r["model"], []
        if r["rhat_max"] == r["rhat_max"] and r["rhat_max"] > rules["rhat_max"]:
            bad.append(f"R-hat {r['rhat_max']:.3f} > {rules['rhat_max']}")
        elif r["rhat_max"] != r["rhat_max"] and r["ess_bulk_min"] == r["ess_bulk_min"]:
            bad.append("R-hat not computable (one chain)")
        if r["ess_bulk_min"] == r["ess_bulk_min"] and r["ess_bulk_min"] < rules["ess_bulk_min"]:
            bad.append(f"bulk ESS {r['ess_bulk_min']:.0f} < {rules['ess_bulk_min']:.0f}")
        if r["divergences"]:
            bad.append(f"{int(r['divergences'])} divergent transitions")
        if r["ebfmi_min"] == r["ebfmi_min"] and r["ebfmi_min"] < rules["ebfmi_min"]:
            bad.append(f"E-BFMI {r['ebfmi_min']:.2f} < {rules['ebfmi_min']}")
        if r["share_pareto_k_bad"] > rules["share_pareto_k_bad"]:
            bad.append(f"Pareto k > {PARETO_K_BAD} on {100 * r['share_pareto_k_bad']:.1f}% of trials "
                       f"(> {100 * rules['share_pareto_k_bad']:g}%)")
        bad += list(r.get("box_bounds") or [])
        if bad:
            out.append(f"{name}'s fit is not reliable ({', '.join(bad)})")
    grid = float(best["interpolation_error"]) + float(second["interpolation_error"])
    if grid and lead > 2 * dse and lead - grid <= 2 * dse:
        out.append(f"the network grids' interpolation error ({grid:.1f} log-likelihood units over both fits) could "
                   "undo the lead (refit on finer grids)")
    return out


def verdict_phrase(winner: dict) -> str:
    """``"decisively"`` or ``"not decisively: <why>"`` for an entry of :meth:`Comparison.winners`."""
    return "decisively" if winner["decisive"] else f"not decisively: {winner['caveat']}"


def fit_quality(tree: xr.DataTree, participant: str | None = None, *, diagnosed: dict | None = None) -> dict:
    """Diagnostics of a fit for one participant (``None``: the whole fit).

    R-hat, bulk ESS, divergences, E-BFMI, the interpolation error (largest per participant, summed) and
    the parameters at a box bound. ``diagnosed``: the participant's sampling diagnostics when already
    computed (:func:`cogflex.fit.checks.participants_diagnostics`).
    """
    from cogflex.fit.checks import diagnostics, participant_diagnostics

    d = diagnosed or (diagnostics(tree) if participant is None else participant_diagnostics(tree, participant))
    mine = (lambda pid: True) if participant is None else (lambda pid: str(pid) in (participant, "None"))
    worst: dict[str, float] = {}
    for c in json.loads(tree.attrs.get("interpolation_check", "[]") or "[]"):
        if mine(c["participant"]):
            key = str(c["participant"])
            worst[key] = max(worst.get(key, 0.0), abs(float(c["difference"])))
    err = float(sum(worst.values()))
    bounds = sorted({f"{b['parameter']} at its {b['bound']} bound" for b in json.loads(tree.attrs.get(
        "box_bounds", "[]") or "[]") if mine(b["participant"])})
    return {"rhat_max": float(d["rhat_max"]), "ess_bulk_min": float(d["ess_bulk_min"]),
            "divergences": int(d["divergences"]), "ebfmi_min": float(d["ebfmi_min"]), "interpolation_error": err,
            "box_bounds": bounds}


def pool_quality(parts: list[dict]) -> dict:
    """Diagnostics over several parts (shards' fits): worst R-hat, ESS and E-BFMI; summed divergences, errors."""
    def worst(key, fn):
        vals = [p[key] for p in parts if p[key] == p[key]]
        return float(fn(vals)) if vals else float("nan")

    return {"rhat_max": worst("rhat_max", max), "ess_bulk_min": worst("ess_bulk_min", min),
            "divergences": int(sum(p["divergences"] for p in parts)), "ebfmi_min": worst("ebfmi_min", min),
            "interpolation_error": float(sum(p["interpolation_error"] for p in parts)),
            "box_bounds": sorted({b for p in parts for b in p.get("box_bounds", [])})}
