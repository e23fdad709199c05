"""A methods paragraph written from a report's content: what a paper's methods section says about the fits.

:func:`methods_text` turns the report's JSON content (:func:`cogflex.report.build_report`) into plain
paragraphs — data and cleaning, the task mapping, the models and their priors, the sampler settings, the
diagnostics actually obtained, the comparison, the software versions — and :data:`REFERENCES`, the works
to cite. Every number in it is read from the fits; nothing is assumed. The report shows the text in its
"Methods" section, ready to copy.
"""

from __future__ import annotations

__all__ = ["methods_text", "REFERENCES"]

#: The works a paper using these analyses should cite, by key.
REFERENCES = {
    "nta": "Sandbrink, K., Bauer, J. P., Proca, A. M., Saxe, A. M., Summerfield, C., & Hummos, A. (2024). Flexible "
           "task abstractions emerge in linear networks with fast and bounded units. Advances in Neural Information "
           "Processing Systems 37 (NeurIPS 2024).",
    "steyvers": "Steyvers, M., Hawkins, G. E., Karayanidis, F., & Brown, S. D. (2019). A large-scale analysis of task "
                "switching practice effects across the lifespan. Proceedings of the National Academy of Sciences, "
                "116(36), 17735-17740.",
    "pymc": "Abril-Pla, O., Andreani, V., Carroll, C., Dong, L., Fonnesbeck, C. J., Kochurov, M., Kumar, R., Lao, J., "
            "Luhmann, C. C., Martin, O. A., Osthege, M., Vieira, R., Wiecki, T., & Zinkov, R. (2023). PyMC: a modern, "
            "and comprehensive probabilistic programming framework in Python. PeerJ Computer Science, 9, e1516.",
    "arviz": "Kumar, R., Carroll, C., Hartikainen, A., & Martin, O. (2019). ArviZ a unified library for exploratory "
             "analysis of Bayesian models in Python. Journal of Open Source Software, 4(33), 1143.",
    "nuts": "Hoffman, M. D., & Gelman, A. (2014). The No-U-Turn sampler: adaptively setting path lengths in "
            "Hamiltonian Monte Carlo. Journal of Machine Learning Research, 15, 1593-1623.",
    "loo": "Vehtari, A., Gelman, A., & Gabry, J. (2017). Practical Bayesian model evaluation using leave-one-out "
           "cross-validation and WAIC. Statistics and Computing, 27(5), 1413-1432.",
    "psis": "Vehtari, A., Simpson, D., Gelman, A., Yao, Y., & Gabry, J. (2024). Pareto smoothed importance sampling. "
            "Journal of Machine Learning Research, 25(72), 1-58.",
    "pit": "Gelfand, A. E., Dey, D. K., & Chang, H. (1992). Model determination using predictive distributions with "
           "implementation via sampling-based methods. In Bayesian Statistics 4 (pp. 147-167). Oxford University "
           "Press.",
    "stacking": "Yao, Y., Vehtari, A., Simpson, D., & Gelman, A. (2018). Using stacking to average Bayesian "
                "predictive distributions. Bayesian Analysis, 13(3), 917-1007.",
    "rhat": "Vehtari, A., Gelman, A., Simpson, D., Carpenter, B., & Bürkner, P.-C. (2021). Rank-normalization, "
            "folding, and localization: an improved R-hat for assessing convergence of MCMC. Bayesian Analysis, "
            "16(2), 667-718.",
}

_FAMILY = {
    "nta": "the neural task abstraction (NTA) network of Sandbrink et al. (2024), trained on each participant's "
           "trial sequence",
    "nta-reconfig": "the NTA network with cue-driven reconfiguration of its gates before each response",
    "descriptive": "a descriptive regression of log RT and accuracy on the trial covariates",
}


def _n(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def methods_text(content: dict) -> list[str]:
    """Methods paragraphs (plain text) for the report ``content``; the last one lists the references."""
    data, models = content["data"], content["models"]
    software = content.get("software", {})
    paras = []
    n_part = len(data.get("participants") or [])
    removed = ""
    if data.get("n_trials_in_file"):
        removed = f" of {data['n_trials_in_file']:,} trials in the file"
    notes = data.get("notes") or []
    mapping = next((n for n in notes if n.startswith("no correct_response column")), None)
    correctness = data.get("correctness") or next((n for n in notes if n.startswith("correctness:")), "")
    paras.append(
        f"Data. We analysed {data['n_trials_fitted']:,} trials{removed} from {n_part} participant(s) "
        f"({data.get('source')}). The likelihood used every trial except each session's first trial and trials "
        "with RTs outside 0.15-3 s; the networks were nevertheless run through every trial in order, so that "
        f"their state reflects the whole practice history. {correctness.rstrip('.')}."
        + (f" The task mapping: {mapping.rstrip('.')}." if mapping else ""))
    for name, m in models.items():
        spec = m.get("spec", {})
        family = _FAMILY.get(m.get("family") or spec.get("kind", ""), m.get("family") or "")
        priors = "; ".join(f"{r['parameter']} ~ {r['prior']}" + (f" ({r['grid']})" if r.get("grid") else "")
                           for r in m.get("priors", []))
        s = m["sampler"]
        hs = spec.get("hierarchy") or {}
        pooled = ", ".join(hs.get("pooled") or [])
        rt_coords = (" (rt_intercept and rt_sigma sampled as each participant's median RT above their fastest RT "
                     "and RT spread, with the Jacobian of the change of variables: the same model in coordinates "
                     "that the RT shift does not move)"
                     if hs.get("rt_coordinates", "location-spread") == "location-spread" else "")
        kind = ("a hierarchical model (group-level distributions with non-centred participant offsets"
                + (f"; {pooled} shared by all participants" if pooled else "") + f"){rt_coords}"
                if s.get("hierarchical") else "each participant separately")
        d = m.get("diagnostics_overall", {})
        diag = (f"maximum R-hat {_n(d.get('rhat_max', float('nan')))}, minimum bulk ESS "
                f"{_n(d.get('ess_bulk_min', float('nan')), 4)}, {d.get('divergences', 0)} divergent transition(s), "
                f"minimum E-BFMI {_n(d.get('ebfmi_min', float('nan')))}")
        paras.append(
            f"Model '{name}'. {spec.get('description') or family} ({family}). Priors: {priors}. We fitted "
            f"{kind} with the No-U-Turn sampler ({s['sampler']}; {s['chains']} chains of {s['draws']} draws after "
            f"{s['tune']} tuning steps, target acceptance {s['target_accept']:g}, seed {s['seed']}). Diagnostics "
            f"(rank-normalised R-hat, Vehtari et al., 2021): {diag}.")
    comparison = content.get("comparison", {})
    pooled = comparison.get("pooled") or []
    if pooled:
        best = pooled[0]
        paras.append(
            "Model comparison. Models were compared by the expected log pointwise predictive density estimated "
            "with Pareto-smoothed importance-sampling leave-one-out cross-validation (PSIS-LOO; Vehtari et al., "
            "2017, 2024) of each trial's joint density of correctness and RT (leave-one-trial-out), per "
            "participant and pooled, with stacking weights (Yao et al., 2018). A model was called the winner only "
            "when it led by more than two standard errors of the pointwise difference and both fits passed the "
            "diagnostics (R-hat <= 1.01, bulk ESS >= 400, no divergences, E-BFMI >= 0.3, Pareto k > 0.7 on at most "
            f"1% of trials). Pooled, {best.get('model')} ranked first (ELPD-LOO {_n(best.get('elpd_loo', 0.0), 6)})."
            + (" The calibration of the RT predictions was checked with LOO-PIT values (Gelfand et al., 1992; "
               "Vehtari et al., 2017): the PSIS-LOO expectation of each trial's RT CDF at the observed RT."
               if content.get("loo_pit") else ""))
    versions = ", ".join(f"{k} {v}" for k, v in software.items() if k not in ("platform",) and v != "not installed")
    paras.append(f"Software: {versions}; PyMC (Abril-Pla et al., 2023), "
                 "ArviZ (Kumar et al., 2019), NUTS (Hoffman & Gelman, 2014). The network model follows Sandbrink et "
                 "al. (2024); the task-switching data format follows Steyvers et al. (2019).")
    paras.append("References. " + " ".join(REFERENCES.values()))
    return paras
