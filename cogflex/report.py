"""The model-comparison report: one self-contained HTML file plus ``report.json``.

:func:`build_report` gathers everything a reader needs to judge a set of fits — data and cleaning, per
model the spec, priors, sampling diagnostics with plain-language warnings and the posteriors (with the
paper's symbols tau_c, tau_W, lambda) drawn over their priors (:mod:`cogflex.fit.prior_posterior`; the weakly
identified ones marked), the PSIS-LOO comparison with stacking weights, the posterior
predictive checks, software versions, seeds and hashes — into one mapping (written as ``report.json``)
and :func:`write_html` renders it with every figure embedded as a PNG data URI, so that the file opens
anywhere without a network.
"""

from __future__ import annotations

import base64
import html
import io
import json
import platform
import sys
import time
import types
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from cogflex.fit.compare import PARETO_K_BAD, Comparison, FitSet
from cogflex.io import atomic_path, json_ready, write_json
from cogflex.methods import methods_text
from cogflex.report_figures import (
    _log_ticks,  # noqa: F401  (re-exported for tests)
    loo_pit_figure,
    loo_pit_summary,
)
from cogflex.report_figures import comparison_figure as _comparison_figure
from cogflex.report_figures import figure_uri as _figure_uri
from cogflex.report_figures import posterior_figure as _posterior_figure

__all__ = ["build_report", "write_html", "write_report", "SYMBOLS", "software_versions"]

#: Display names of the fitted parameters (HTML), with the paper's symbols for the network timescales.
SYMBOLS = {
    "gate_timescale": "&tau;<sub>c</sub> gate timescale (trials)",
    "weight_timescale": "&tau;<sub>W</sub> weight timescale (trials)",
    "regularization": "&lambda; gate regulariser",
    "timescale": "&tau; = &tau;<sub>c</sub> = &tau;<sub>W</sub> (trials)",
    "acc_intercept": "accuracy intercept (logit)",
    "acc_slope": "accuracy slope on the network's error",
    "rt_intercept": "log-RT intercept (log s)",
    "rt_slope": "log-RT slope on the network's loss",
    "rt_sigma": "&sigma; of log RT",
    "rt_shift": "RT shift (share of the fastest RT)",
    "rt_coefficient": "log-RT coefficient",
    "acc_coefficient": "accuracy coefficient (logit)",
}
_PLAIN = {"gate_timescale": "tau_c", "weight_timescale": "tau_W", "regularization": "lambda", "timescale": "tau"}
_VERSIONED = ("cogflex", "numpy", "pandas", "xarray", "pymc", "arviz", "arviz-stats", "nutpie", "torch",
              "matplotlib", "h5netcdf")


def software_versions() -> dict[str, str]:
    """Versions of Python and the packages a fit depends on."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def build_report(fits: FitSet, comparison: Comparison, *, ppc: pd.DataFrame | None = None, data=None,
                 title: str = "cogflex model comparison", pipeline: dict | None = None,
                 ppc_settings: dict | None = None, ppc_note: str | None = None) -> tuple[dict, dict]:
    """Gather the report's content: ``(report, figures)``.

    ``report`` is JSON-ready (written as ``report.json``); ``figures`` maps figure names to PNG data URIs
    for the HTML.
    """
    from cogflex.fit.checks import participant_diagnostics, participants_diagnostics
    from cogflex.fit.fitting import summarize_fit
    from cogflex.fit.group_plots import rank_figure, trace_figure
    from cogflex.fit.prior_posterior import MAX_PARTICIPANTS, plot_prior_posterior, weak_parameters
    from cogflex.fit.schema import fixed_parameters, model_of
    from cogflex.fit.truth import load_truth, truth_figure, truth_rows, truth_summary

    attrs = fits.attrs
    participants = fits.participants
    figures: dict[str, str] = {"comparison": _figure_uri(_comparison_figure(comparison))}
    models = {}
    truth = load_truth(data.source if data is not None else attrs.get("data_source"))  # synthetic data's truth
    for name, tree in fits.trees.items():
        spec = json.loads(tree.attrs["model_spec"])
        fitted = model_of(tree)
        summary = summarize_fit(tree)
        per = participants_diagnostics(tree)  # R-hat and ESS once, sliced per participant
        per = {pid: per.get(pid) or participant_diagnostics(tree, pid) for pid in participants}
        for d in per.values():
            d.pop("per_parameter", None)
        fig = _posterior_figure(tree, name)
        if fig is not None:
            figures[f"posterior_{name}"] = _figure_uri(fig)
        truth_rows_ = truth_rows(summary["parameters"], truth) if truth else []
        if truth_rows_:
            figures[f"truth_{name}"] = _figure_uri(truth_figure(truth_rows_, name))
        for kind, draw in (("trace", trace_figure), ("rank", rank_figure)):
            png = draw(tree)  # hierarchical fits: the group level's convergence
            if png is not None:
                figures[f"{kind}_{name}"] = "data:image/png;base64," + base64.b64encode(png).decode()
        weak = weak_parameters(tree)
        overlay = plot_prior_posterior(tree, title=name, weak=weak, max_participants=MAX_PARTICIPANTS)
        if overlay is not None:
            figures[f"prior_{name}"] = _figure_uri(overlay)
        models[name] = {
            "file": str(fits.paths.get(name, "")), "spec": spec, "priors": fitted.prior_rows(),
            "fixed": fixed_parameters(tree), "family": fitted.family,
            "description": spec.get("description", ""), "diagnostics": per,
            "diagnostics_overall": {k: summary[k] for k in ("rhat_max", "ess_bulk_min", "ess_tail_min",
                                                            "divergences", "ebfmi_min")},
            "warnings": summary["warnings"],
            "parameters": summary["parameters"],
            "group": summary.get("group", {}),
            "truth": None if not truth_rows_ else {"file": truth["file"], "generating_model": truth.get("model"),
                                                  "summary": truth_summary(truth_rows_)},
            "weak_parameters": weak,
            "separate_modes": summary.get("separate_modes", []),
            "prior_overlay": None if overlay is None else {
                "participants": participants[:MAX_PARTICIPANTS], "not_drawn": list(fitted.coefficients)},
            "sampler": {k: summary[k] for k in ("sampler", "draws", "chains", "seed")} | {
                "tune": int(tree.attrs.get("tune", 0)), "target_accept": float(tree.attrs.get("target_accept", 0)),
                "job_seeds": json.loads(tree.attrs.get("job_seeds", "[]")),
                "hierarchical": bool(int(tree.attrs.get("hierarchical", 0)))},
            "wall_seconds": summary["wall_seconds"], "seconds": summary["seconds"],
            "grid_refinement": _refinement_rows(tree),
            "cogflex_version": tree.attrs.get("cogflex_version"),
        }
    cleaning = pd.read_json(io.StringIO(attrs["cleaning"])) if attrs.get("cleaning") else None
    data_section = {"source": attrs.get("data_source"), "data_digest": attrs.get("data_digest"),
                    "trial_set": attrs.get("trial_set"), "n_trials_fitted": int(attrs["n_trials"]),
                    "participants": participants, "notes": json.loads(attrs.get("notes", "[]")),
                    "cleaning": None if cleaning is None else cleaning.reset_index(names="participant").to_dict(
                        orient="records")}
    if data is not None:
        t = data.trials
        data_section.update({"n_trials_in_file": int(len(t)), "n_sessions": int(
            t.groupby("participant", observed=True)["session"].nunique().sum()),
            "switch_rate": float(t["switch"].mean(skipna=True)), "accuracy": float(
                t["correct"].astype(float).mean(skipna=True)), "correctness": data.correctness_line()})
    ppc_records = None
    if ppc is not None and len(ppc):
        from cogflex.fit.ppc import plot_ppc

        shown = ["all"] if len(participants) > 1 else []
        shown += participants[:12]
        for pid in shown:
            if (ppc["participant"].astype(str) == pid).any():
                figures[f"ppc_{pid}"] = _figure_uri(plot_ppc(ppc, pid))
        ppc_records = ppc.to_dict(orient="records")
    pits = {name: tree["loo_pit"]["rt"].values for name, tree in fits.trees.items() if "loo_pit" in tree.children}
    if pits:
        figures["loo_pit"] = _figure_uri(loo_pit_figure(pits))
    interpolation = {name: {str(c["participant"]): float(c["difference"]) for c in m_summary}
                     for name, m_summary in ((n, json.loads(t.attrs.get("interpolation_check", "[]")))
                                             for n, t in fits.trees.items())}
    report = {
        "title": title,
        "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "data": data_section,
        "models": models,
        "comparison": {"pooled": comparison.pooled().to_dict(orient="records"),
                       "per_participant": comparison.per_participant().to_dict(orient="records"),
                       "wins": comparison.wins.to_dict(orient="records"), "winners": comparison.winners(),
                       "pairwise": ([] if comparison.pairwise is None
                                    else comparison.pairwise.to_dict(orient="records")),
                       "pareto_k_threshold": PARETO_K_BAD, "thin": comparison.thin,
                       "grid_cautions": _grid_cautions([] if comparison.pairwise is None else
                                                       comparison.pairwise.to_dict(orient="records"),
                                                       interpolation, participants)},
        "ppc": {"settings": ppc_settings or {}, "note": ppc_note, "table": ppc_records},
        "loo_pit": {name: loo_pit_summary(pit) for name, pit in pits.items()},
        "software": software_versions(),
        "pipeline": pipeline,
    }
    report = json_ready(report)
    report["methods"] = methods_text(report)
    return report, figures


def _refinement_rows(tree) -> list[dict]:
    """Per refined participant: the final window, its nodes, the error on the model's own grid and at the end."""
    final = {str(c["participant"]): float(c["difference"])
             for c in json.loads(tree.attrs.get("interpolation_check", "[]") or "[]")}
    rows = []
    for record in json.loads(tree.attrs.get("grid_refinement", "[]") or "[]"):
        pid, rounds = str(record["participant"]), record["rounds"]
        window = ", ".join(f"{n} {lo:.4g}–{hi:.4g}" for n, (lo, hi) in record["window"]["values"].items())
        rows.append({"participant": pid, "window": window, "nodes": " x ".join(map(str, record["window"]["points"])),
                     "whole_box_error": rounds[0]["pilot_error"], "final_error": final.get(pid, float("nan")),
                     "rounds": len(rounds) - 1, "seconds": sum(r.get("seconds", 0.0) for r in rounds),
                     "at_edge": ", ".join(record.get("final_at_edge") or []) or "no"})
    return rows


def _grid_cautions(pairwise: list[dict], interpolation: dict, participants: list[str]) -> list[dict]:
    """Pairwise leads that the network grid's interpolation error could undo.

    A fit's ``interpolation_check`` gives, per participant, exact minus interpolated log-likelihood at the
    posterior (the largest in size over the mean and several draws). Correcting a lead by the two models'
    differences is a rough estimate (at a few points, not over the posterior); a decisive lead (> 2 SE of
    the difference) whose corrected value falls below 2 SE is flagged: the grid error could change the
    verdict. (Leads within 2 SE are undecided anyway.)
    """
    out = []
    for r in pairwise:
        better, worse = (r["model_a"], r["model_b"]) if r["elpd_diff"] >= 0 else (r["model_b"], r["model_a"])
        scope = participants if r["participant"] == "all" else [r["participant"]]
        d_better = sum(interpolation.get(better, {}).get(p, 0.0) for p in scope)
        d_worse = sum(interpolation.get(worse, {}).get(p, 0.0) for p in scope)
        if d_better == d_worse == 0.0:
            continue
        lead = abs(r["elpd_diff"])
        corrected = lead + d_better - d_worse
        if lead >= 2 * r["se"] and corrected < 2 * r["se"]:
            out.append({"participant": r["participant"], "model": better, "other": worse, "elpd_diff": lead,
                        "se": r["se"], "interpolation_model": d_better, "interpolation_other": d_worse,
                        "corrected_elpd_diff": corrected})
    return out


# -- HTML ---------------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;max-width:1180px;
padding:0 24px 60px;color:#1d2733;line-height:1.45}
h1{margin:28px 0 4px;font-size:28px}
h2{margin:36px 0 10px;padding:4px 0 4px 12px;border-left:8px solid #888;font-size:21px}
h2#comparison{border-left-color:#1b9e77}
h2#ppc{border-left-color:#d95f02}
h2#models{border-left-color:#7570b3}
h2#data{border-left-color:#e7298a}
h2#reproducibility{border-left-color:#66a61e}
h3{margin:24px 0 8px;font-size:17px}
h4{margin:16px 0 6px;font-size:15px}
.sub{color:#566;margin:0 0 18px}
table{border-collapse:collapse;margin:8px 0 14px;font-size:13px}
th,td{border-bottom:1px solid #dde;padding:3px 9px;text-align:right}
th{background:#f1f3f6;text-align:center}
td:first-child,th:first-child{text-align:left}
.verdict{background:#eef7f2;border:1px solid #b9dcc8;border-radius:6px;padding:10px 16px;font-size:15px}
.warn{background:#fff4e5;border:1px solid #f0c58a;border-radius:6px;padding:6px 14px;margin:6px 0;font-size:13px}
.ok{color:#1b7a3d} .caution{color:#a35200}
img{max-width:100%;height:auto;margin:6px 0;border:1px solid #eee}
pre{background:#f6f8fa;padding:10px;font-size:12px;overflow-x:auto;max-height:340px}
nav a{margin-right:14px}
details{margin:6px 0}
.win{font-weight:600;background:#eef7f2}
"""


class _Html(str):
    """Text that is already HTML (not escaped again by :func:`_fmt`)."""


def _fmt(value, digits: int = 2) -> str:
    if isinstance(value, _Html):
        return value
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "&ndash;"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1e6:
            return f"{value:.3g}"
        return f"{value:,.{digits}f}"
    return html.escape(str(value))


def _table(rows: list[dict], columns: list[tuple[str, str]], *, digits: dict | None = None,
           highlight: str | None = None) -> str:
    digits = digits or {}
    head = "".join(f"<th>{label}</th>" for _, label in columns)
    body = []
    for r in rows:
        cls = ' class="win"' if highlight and r.get(highlight) else ""
        cells = "".join(f"<td>{_fmt(r.get(k), digits.get(k, 2))}</td>" for k, _ in columns)
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _img(figures: dict, key: str, alt: str) -> str:
    return f'<img src="{figures[key]}" alt="{html.escape(alt)}">' if key in figures else ""


def _verdict(report: dict) -> str:
    cmp = report["comparison"]
    winners = cmp["winners"]
    lines = []
    pooled = winners.get("all")
    if pooled and pooled["runner_up"]:
        strength = ("decisively (more than 2 SE, and both fits pass the diagnostics)" if pooled["decisive"]
                    else f"<span class='caution'>not decisively: {html.escape(pooled['caveat'])}</span>")
        lines.append(f"Over all participants <b>{html.escape(pooled['model'])}</b> predicts the held-out trials best: "
                     f"ELPD {pooled['elpd_diff']:+.1f} &plusmn; {pooled['dse']:.1f} over "
                     f"{html.escape(pooled['runner_up'])}, {strength}.")
    n = len(report["data"]["participants"])
    if n > 1:
        parts = [f"<b>{html.escape(w['model'])}</b> wins for {w['participants_won']} of {n} participants "
                 f"({w['won_decisively']} decisively)" for w in cmp["wins"] if w["participants_won"]]
        lines.append("Per participant: " + "; ".join(parts) + ".")
    for pid, w in winners.items():
        if pid == "all" or not w["runner_up"] or n > 12:
            continue
        lines.append(f"Participant {html.escape(pid)}: <b>{html.escape(w['model'])}</b> by "
                     f"{w['elpd_diff']:.1f} &plusmn; {w['dse']:.1f} ELPD over {html.escape(w['runner_up'])}"
                     f"{'' if w['decisive'] else ' (not decisive: ' + html.escape(w['caveat']) + ')'}.")
    for c in cmp.get("grid_cautions") or []:
        who = "all participants" if c["participant"] == "all" else f"participant {html.escape(c['participant'])}"
        lines.append(f"<span class='caution'>&#9888; {who}: the lead of {html.escape(c['model'])} over "
                     f"{html.escape(c['other'])} ({c['elpd_diff']:.1f} &plusmn; {c['se']:.1f}) is within the network "
                     f"grid's interpolation error (exact minus interpolated log-likelihood at the posterior, "
                     f"largest over the mean and the checked draws: "
                     f"{c['interpolation_model']:+.1f} vs {c['interpolation_other']:+.1f}; corrected lead about "
                     f"{c['corrected_elpd_diff']:.1f}): treat it as undecided, or refit with finer grids.</span>")
    bad = [r for r in cmp["pooled"] if r["share_pareto_k_bad"] > 0]
    if bad:
        worst = max(bad, key=lambda r: r["share_pareto_k_bad"])
        lines.append(f"Pareto k &gt; {cmp['pareto_k_threshold']}: up to {worst['n_pareto_k_bad']} trial(s) "
                     f"({100 * worst['share_pareto_k_bad']:.2g}% of trials, {html.escape(worst['model'])}); "
                     "PSIS-LOO is unreliable for those trials only.")
    else:
        lines.append(f"All Pareto k &le; {cmp['pareto_k_threshold']}: the PSIS-LOO estimates are reliable.")
    return "<br>".join(lines)


def _prior_overlay_html(name: str, m: dict, figures: dict, *, n_participants: int) -> str:
    """The prior-vs-posterior figure of one model, its caption and the warnings of its weak parameters."""
    from cogflex.fit.checks import WEAK_SD_RATIO, weak_warnings

    key = f"prior_{name}"
    if key not in figures:
        return ""
    e = html.escape
    info = m["prior_overlay"]
    shown = len(info["participants"])
    notes = []
    if shown < n_participants:
        notes.append(f"The first {shown} of {n_participants} participants are shown.")
    if info["not_drawn"]:
        notes.append(f"Coefficient blocks ({e(', '.join(info['not_drawn']))}) are not drawn.")
    if m["sampler"]["hierarchical"]:
        notes.append("In this hierarchical fit the grey curve is the prior as specified for one participant; "
                     "the participants' own prior is the group-level distribution.")
    weak = weak_warnings(m.get("weak_parameters") or [])
    out = [f"<h4 id='prior-{e(name)}'>Prior vs posterior</h4>",
           "<p>Per parameter (panel) and participant (row): the prior density (grey) under a histogram of the "
           "posterior draws (blue), both on the scale the parameter is reported and scaled together within each "
           "row. Network timescales (log boxes; their prior is logit-normal on the position in the box) and "
           "lognormal priors are on log axes, with densities per unit of log<sub>10</sub> of the value so that "
           "areas are probabilities. <b style='color:#d62728'>Red</b>: the posterior barely moved from its prior "
           f"(posterior SD above {WEAK_SD_RATIO:.0%} of the prior's, on the prior's own scale): the data say little "
           f"about that parameter. {' '.join(notes)}</p>",
           _img(figures, key, f"prior vs posterior of {name}")]
    if weak:
        out.extend(f"<div class='warn'>&#9888; {e(w)}</div>" for w in weak)
    else:
        out.append("<p class='ok'>&#10003; Every posterior drawn moved away from its prior.</p>")
    return "\n".join(out)


def _bins_text(bins) -> str:
    if isinstance(bins, list | tuple) and len(bins) > 1:
        return ", ".join(f"{a:g}–{b - 1:g}" for a, b in zip(bins[:-1], bins[1:])) + " (sessions)"
    return f"{bins}, of about equal numbers of sessions"


def write_html(report: dict, figures: dict, path: str | Path) -> Path:
    """Render ``report`` (from :func:`build_report`) with its ``figures`` into one self-contained HTML file."""
    from cogflex.fit.checks import weak_warnings

    e = html.escape
    data = report["data"]
    cmp = report["comparison"]
    out = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{e(report['title'])}</title>"
           f"<style>{_CSS}</style></head><body>",
           f"<h1>{e(report['title'])}</h1><p class='sub'>{e(report['created'])} &middot; cogflex "
           f"{e(report['software'].get('cogflex', ''))} &middot; {len(report['models'])} models, "
           f"{len(data['participants'])} participant(s), {data['n_trials_fitted']:,} trials in the likelihood</p>",
           "<nav><a href='#comparison'>Comparison</a><a href='#ppc'>Posterior predictive checks</a>"
           "<a href='#models'>Models</a><a href='#data'>Data</a><a href='#reproducibility'>Reproducibility</a></nav>",
           f"<h2 id='comparison'>Model comparison</h2><div class='verdict'>{_verdict(report)}</div>",
           "<p>PSIS-LOO (ArviZ): expected log pointwise predictive density of each trial's correctness and RT when "
           "it is left out; higher is better. <i>elpd diff</i> and <i>SE diff</i> are relative to the best model "
           "of each row; weights are stacking weights. Rows in green are the winners.</p>"]
    cols = [("model", "model"), ("rank", "rank"), ("elpd_loo", "ELPD-LOO"), ("se", "SE"), ("p_loo", "p_loo"),
            ("elpd_diff", "elpd diff"), ("dse", "SE diff"), ("weight", "weight"), ("n_trials", "trials"),
            ("pareto_k_max", "max Pareto k"), ("n_pareto_k_bad", f"k &gt; {cmp['pareto_k_threshold']}"),
            ("decisive", "decisive"), ("rhat_max", "max R-hat"), ("divergences", "divergences"),
            ("interpolation_error", "interp. error")]
    digits = {"weight": 3, "pareto_k_max": 2, "share_pareto_k_bad": 4, "rhat_max": 3}
    out.append("<h3>All participants (pooled)</h3>" + _table(cmp["pooled"], cols, digits=digits, highlight="winner"))
    out.append("<h3>Wins per model</h3>" + _table(cmp["wins"], [("model", "model"), ("participants_won", "won"),
                                                               ("won_decisively", "won decisively"),
                                                               ("share_won", "share")]))
    out.append(_img(figures, "comparison", "ELPD differences per participant"))
    if cmp.get("pairwise"):
        out.append("<h3>Every pair of models</h3><p>ELPD(model A) &minus; ELPD(model B) with the standard error of "
                   "the pointwise differences; |z| &gt; 2 is a clear difference. Model A is the one ranked higher "
                   "overall. Next to each difference, each network fit's interpolation error: the largest "
                   "|exact &minus; interpolated| log-likelihood at the posterior (mean and several draws), summed "
                   "over the row's participants; a difference not well above the two errors is not decided by "
                   "the network.</p>" + _table(
                       cmp["pairwise"], [("participant", "participant"), ("model_a", "model A"),
                                         ("model_b", "model B"), ("elpd_diff", "ELPD A &minus; B"), ("se", "SE"),
                                         ("z", "z"), ("interpolation_error_a", "interp. error A"),
                                         ("interpolation_error_b", "interp. error B")]))
    per = cmp["per_participant"]
    if per:
        out.append(f"<details {'open' if len(data['participants']) <= 12 else ''}><summary>Per participant "
                   f"({len(data['participants'])})</summary>" +
                   _table(per, [("participant", "participant")] + cols, digits=digits, highlight="winner") +
                   "</details>")

    out.append("<h2 id='ppc'>Posterior predictive checks</h2>")
    ppc = report["ppc"]
    if ppc["table"]:
        s = ppc["settings"]
        out.append(f"<p>Each model replicates the experiment {s.get('draws', '?')} times under posterior draws "
                   f"(seed {s.get('seed', '?')}) on every participant's own trial sequence; replications are "
                   "summarised with the same cleaning and statistics as the observed data (black). Bands: central "
                   f"90% of the replications; practice bins: {e(_bins_text(s.get('bins')))}.</p>")
        for key in [k for k in figures if k.startswith("ppc_")]:
            out.append(_img(figures, key, f"posterior predictive check {key[4:]}"))
        misses = [r for r in ppc["table"] if r["participant"] == (data["participants"][0] if len(
            data["participants"]) == 1 else "all") and r["observed"] is not None and r["low"] is not None and not (
            r["low"] <= r["observed"] <= r["high"])]
        if misses:
            out.append("<details><summary>Statistics outside the 90% band (pooled)</summary>" + _table(
                misses, [("model", "model"), ("measure", "measure"), ("condition", "condition"),
                         ("practice_bin", "practice"), ("observed", "observed"), ("mean", "predicted"),
                         ("low", "5%"), ("high", "95%")], digits={"observed": 3, "mean": 3, "low": 3, "high": 3})
                + "</details>")
    else:
        out.append(f"<p class='warn'>No posterior predictive checks: {e(ppc.get('note') or 'not requested')}.</p>")

    if report.get("loo_pit"):
        out.append("<h3>Calibration of the RT predictions (LOO-PIT)</h3><p>For every trial, where its observed RT "
                   "falls in the model's predictive RT distribution for that trial when the trial is left out "
                   "(PSIS-LOO weights on the shifted log-normal's CDF, per posterior draw). A calibrated model gives "
                   "uniform values: its curve stays in the grey band. A curve above zero on the left half and below "
                   "on the right (too many values near 0 and 1) means predictive distributions too narrow, the mirror "
                   "image too wide; a curve on one side throughout, RTs predicted too slow (above zero) or too fast "
                   "(below). "
                   "The band assumes independent values; with thousands of trials small deviations are visible "
                   "and the ranking of models matters more than the band.</p>")
        out.append(_img(figures, "loo_pit", "LOO-PIT of the RT predictions"))
        rows = [{"model": name, **v} for name, v in report["loo_pit"].items()]
        out.append(_table(rows, [("model", "model"), ("ks", "largest ECDF distance"), ("band", "95% band"),
                                 ("below_5", "share below 0.05"), ("above_95", "share above 0.95"),
                                 ("n", "trials")], digits={"ks": 3, "band": 3, "below_5": 3, "above_95": 3}))

    out.append("<h2 id='models'>Models</h2>")
    for name, m in report["models"].items():
        out.append(f"<h3>{e(name)}</h3><p>{e(m['description'])} &middot; {e(m['sampler']['sampler'])}, "
                   f"{m['sampler']['chains']} chains &times; {m['sampler']['draws']} draws (+{m['sampler']['tune']} "
                   f"tuning), target accept {m['sampler']['target_accept']:g}, seed {m['sampler']['seed']}, "
                   f"{'hierarchical' if m['sampler']['hierarchical'] else 'per participant'}; "
                   f"{m['wall_seconds']:.0f} s</p>")
        weak = weak_warnings(m.get("weak_parameters") or [])
        general = [w for w in m["warnings"] if w not in weak]  # the weak ones stand next to their figure
        if general:
            out.extend(f"<div class='warn'>&#9888; {e(w)}</div>" for w in general)
        else:
            out.append("<p class='ok'>&#10003; All sampling diagnostics pass (R-hat &le; 1.01, bulk and tail ESS "
                       "&ge; 400, no divergences, E-BFMI &ge; 0.3).</p>")
        if weak and f"prior_{name}" in figures:
            out.append(f"<div class='warn'>&#9888; {len(weak)} posterior(s) barely moved from their prior: see "
                       f"<a href='#prior-{e(name)}'>prior vs posterior</a> below.</div>")
        elif weak:
            out.extend(f"<div class='warn'>&#9888; {e(w)}</div>" for w in weak)
        rows = [{"participant": p, **d} for p, d in m["diagnostics"].items()]
        out.append(_table(rows, [("participant", "participant"), ("rhat_max", "R-hat max"),
                                 ("ess_bulk_min", "bulk ESS min"), ("ess_tail_min", "tail ESS min"),
                                 ("divergences", "divergences"), ("ebfmi_min", "E-BFMI min")],
                          digits={"rhat_max": 3, "ess_bulk_min": 0, "ess_tail_min": 0}))
        if m.get("grid_refinement"):
            out.append("<p>Network grid refined around each participant's posterior (docs/fitting.md): "
                       "exact minus interpolated log-likelihood at the pilot posterior on the model's own grid, "
                       "and at the final posterior (mean and 4 draws, largest) on the refined window.</p>")
            out.append(_table(m["grid_refinement"], [
                ("participant", "participant"), ("window", "window"), ("nodes", "nodes"),
                ("whole_box_error", "error, model's grid"), ("final_error", "error, refined"),
                ("rounds", "windows"), ("seconds", "seconds"), ("at_edge", "posterior at window edge")],
                digits={"whole_box_error": 2, "final_error": 2, "seconds": 0}))
        prow = []
        for pname, entry in m["parameters"].items():
            for pid, v in entry.items():
                items = v.items() if "mean" not in v else [(None, v)]
                for term, iv in items:
                    label = _Html(SYMBOLS.get(pname, e(pname)) + (f" [{e(term)}]" if term else ""))
                    prow.append({"parameter": label, "participant": pid, "mean": iv["mean"], "low": iv["low_94"],
                                 "high": iv["high_94"]})
        if m.get("group"):
            out.append("<p>Group level (hierarchical fit): group means on each parameter's unconstrained scale "
                       "(<code>_mu</code>, <code>_logmu</code>, <code>_logitmu</code>), spreads (<code>_sd</code>), "
                       "covariate slopes (logit box position per covariate SD; <code>_log</code>: change of the "
                       "parameter's log value per SD at the group median) and each network parameter's group "
                       "median on its own scale (<code>_median</code>).</p>")
            grow = [{"parameter": k, "mean": v["mean"], "low": v["low_94"], "high": v["high_94"]}
                    for k, v in m["group"].items()]
            out.append(_table(grow, [("parameter", "group parameter"), ("mean", "mean"), ("low", "3%"),
                                     ("high", "97%")], digits={"mean": 3, "low": 3, "high": 3}))
            out.append("<p>Group level: per-chain distributions (ECDF) and traces, then rank plots (flat when the "
                       "chains mix).</p>" + _img(figures, f"trace_{name}", f"group-level traces of {name}")
                       + _img(figures, f"rank_{name}", f"group-level rank plots of {name}"))
        if m.get("truth"):
            t = m["truth"]
            out.append(f"<p>Estimated vs true: the data are synthetic, generated by {e(t['generating_model'])} with "
                       f"the parameters in {e(t['file'])}. Per parameter the correlation of posterior means with the "
                       "truth and the share of true values inside the 94% interval:</p>" + _table(
                           t["summary"], [("parameter", "parameter"), ("participants", "participants"),
                                          ("r", "Pearson r"), ("coverage_94", "coverage (94%)")],
                           digits={"r": 3, "coverage_94": 2}) + _img(figures, f"truth_{name}",
                                                                     f"estimated vs true, {name}"))
        out.append(f"<details {'open' if len(prow) <= 40 else ''}><summary>Posteriors (mean, 94% interval; "
                   f"{len(prow)} rows)</summary>" +
                   _table(prow, [("parameter", "parameter"), ("participant", "participant"), ("mean", "mean"),
                                 ("low", "3%"), ("high", "97%")], digits={"mean": 3, "low": 3, "high": 3})
                   + "</details>")
        out.append(_img(figures, f"posterior_{name}", f"posteriors of {name}"))
        out.append(_prior_overlay_html(name, m, figures, n_participants=len(data["participants"])))
        out.append("<details><summary>Priors</summary>" + _table(m["priors"], [("parameter", "parameter"),
                                                                             ("prior", "prior"), ("grid", "grid")])
                   + "</details>")
        out.append(f"<details><summary>Model specification (as fitted)</summary><pre>"
                   f"{e(json.dumps(m['spec'], indent=2))}</pre></details>")

    out.append("<h2 id='data'>Data and cleaning</h2>")
    facts = [("data file", data.get("source")), ("data hash (SHA-256 of the trial table)", data.get("data_digest")),
             ("trial-set hash (trials in the likelihood)", data.get("trial_set")),
             ("trials in the file", data.get("n_trials_in_file")),
             ("trials in the likelihood", data["n_trials_fitted"]),
             ("participants", len(data["participants"])), ("sessions", data.get("n_sessions")),
             ("switch rate", data.get("switch_rate")), ("accuracy", data.get("accuracy")),
             ("correctness rule (check, fit, PPC and this report alike)", data.get("correctness") or next(
                 (n for n in data.get("notes", []) if n.startswith("correctness:")), None))]
    out.append(_table([{"what": k, "value": v} for k, v in facts if v is not None],
                      [("what", "what"), ("value", "value")], digits={"value": 3}))
    if data.get("cleaning"):
        keys = list(data["cleaning"][0])
        out.append("<p>Trials removed before fitting, per rule (a session's first trial, RTs outside 0.15&ndash;3 s; "
                   "errors are kept and modelled):</p>" + _table(data["cleaning"], [(k, k) for k in keys]))
    out.extend(f"<p class='warn'>{e(n)}</p>" for n in data.get("notes") or [])

    out.append("<h2 id='methods'>Methods (generated from the fits, to adapt for a paper)</h2>")
    out.extend(f"<p class='methods'>{e(p)}</p>" for p in report.get("methods") or methods_text(report))
    out.append("<h2 id='reproducibility'>Reproducibility</h2>")
    seeds = [{"what": f"{n}: fit seed / per-job seeds", "value": f"{m['sampler']['seed']} / "
              f"{', '.join(map(str, m['sampler']['job_seeds']))}"} for n, m in report["models"].items()]
    if ppc["settings"]:
        seeds.append({"what": "posterior predictive seed", "value": ppc["settings"].get("seed")})
    out.append(_table(seeds + [{"what": k, "value": v} for k, v in report["software"].items()],
                      [("what", "what"), ("value", "value")]))
    files = [{"model": n, "file": m["file"]} for n, m in report["models"].items()]
    out.append(_table(files, [("model", "model"), ("file", "fit file")]))
    if report.get("pipeline"):
        out.append(f"<details><summary>Pipeline configuration</summary><pre>"
                   f"{e(json.dumps(report['pipeline'], indent=2))}</pre></details>")
    out.append("</body></html>")
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(out), encoding="utf-8")
    return path


def write_report(fits: FitSet, comparison: Comparison, out_html: str | Path, *, out_json: str | Path | None = None,
                 **kwargs) -> dict:
    """:func:`build_report` then write the HTML (and ``report.json`` when ``out_json`` is given)."""
    report, figures = build_report(fits, comparison, **kwargs)
    write_html(report, figures, out_html)
    if out_json is not None:
        write_json(out_json, report)
    return report


class _ReportModule(types.ModuleType):
    """The report module, callable as :func:`cogflex.workflow.report`.

    So ``cf.report(fits, "report.html")`` works whether or not ``cogflex.report`` has been imported.
    """

    def __call__(self, *args, **kwargs):
        """:func:`cogflex.workflow.report`."""
        from cogflex.workflow import report

        return report(*args, **kwargs)


sys.modules[__name__].__class__ = _ReportModule
