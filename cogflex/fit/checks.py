"""Checks of a fit: sampling diagnostics, and the exact network against the interpolated predictor grid.

- :func:`diagnostics`: R-hat, bulk/tail ESS, divergences and E-BFMI (ArviZ), with plain-language
  :func:`diagnostic_warnings` for failed thresholds;
- :func:`interpolation_check`: at each participant's posterior mean and several posterior draws, the
  log-likelihood of the data with the network run exactly and with the interpolated grid (same link
  formula, :mod:`cogflex.fit.link`).
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import xarray as xr

from cogflex.fit.interpolate import interpolate_table
from cogflex.fit.link import NUMPY
from cogflex.fit.prepare import FitData, covariates

__all__ = ["quiet_numerics", "diagnostics", "participant_diagnostics", "participants_diagnostics",
           "diagnostic_warnings", "interpolation_check",
           "interpolation_warnings", "box_bound_check", "box_bound_warnings", "weakly_identified", "weak_warnings",
           "separate_modes", "mode_warnings"]


#: Posterior draws (besides the mean) at which :func:`interpolation_check` runs the network exactly.
CHECK_DRAWS = 4


def _participant_values(posterior, name: str, participant: str) -> np.ndarray:
    """One participant's ``name`` as ``(chain * draw, ...)`` samples."""
    da = posterior[name]
    if "participant" in da.dims:
        da = da.sel(participant=participant)
    da = da.stack(sample=("chain", "draw")).transpose("sample", ...)
    return np.asarray(da.values, dtype=float)


def interpolation_check(model, fd: FitData, tables: list[np.ndarray], posterior, *,
                        draws: int = CHECK_DRAWS, windows: list | None = None) -> list[dict]:
    """Exact network vs the interpolated grid at each participant's posterior mean and at ``draws`` draws.

    At each checked point (the posterior mean of every parameter, then ``draws`` posterior draws evenly
    spaced through the chains) the network is run exactly at the point's network parameters, and the data's
    log-likelihood is computed with exact and with interpolated predictors (the point's other parameters
    alike). Returns per participant the log-likelihoods at the mean, ``differences`` (exact minus
    interpolated) at every point, and ``difference``: the one largest in size, the number the warnings,
    the report and the verdict use. A large difference means the grid is too coarse there: the posterior
    describes the interpolant, not the network. ``windows`` are the participants' table windows
    (:class:`~cogflex.fit.tables.GridWindow`; default the model's whole box).
    """
    out = []
    tr = fd.trials
    for i, (seq, table) in enumerate(zip(fd.sequences, tables)):
        pid = fd.participants[i]
        sub = tr[(tr["pidx"] == i).to_numpy()]
        rt, correct = sub["rt"].to_numpy(dtype=float), sub["correct"].to_numpy(dtype=bool)
        samples = {k: _participant_values(posterior, k, pid) for k in model.free_parameters()}
        n = len(next(iter(samples.values())))
        picks = np.unique(np.linspace(0, n - 1, draws).round().astype(int)) if draws else np.array([], int)
        points = [{k: v.mean(0) for k, v in samples.items()}] + [{k: v[j] for k, v in samples.items()}
                                                                 for j in picks]
        exact = model.compute_predictors(seq, {g: np.array([float(p[g]) for p in points]) for g in model.grid_names})
        base = covariates(sub)
        lls = []
        window = windows[i] if windows is not None else None
        for p, pred in zip(points, exact):
            positions = [float(np.clip(gp.position(p[g]), 0.0, 1.0)) for g, gp in model.grid.items()]
            if window is not None:
                positions = [float(np.clip(window.local(d, x), 0.0, 1.0)) for d, x in enumerate(positions)]
            interp = interpolate_table(table, positions, model.interpolation)
            lls.append([_loglik(model, p, base, x, rt, correct) for x in (pred, interp)])
        diffs = [e - q for e, q in lls]
        worst = diffs[int(np.argmax(np.abs(diffs)))]
        out.append({"participant": pid, "loglik_exact": lls[0][0], "loglik_interpolated": lls[0][1],
                    "difference_at_mean": diffs[0], "differences": diffs, "draws_checked": len(picks),
                    "interpolation": model.interpolation, "difference": worst})
    return out


#: A grid parameter's posterior is "at a bound" when more than BOUND_SHARE of its draws lie within
#: BOUND_ZONE (in box position, 0..1) of the box's lower or upper end.
BOUND_ZONE, BOUND_SHARE = 0.02, 0.1


def box_bound_check(model, posterior) -> list[dict]:
    """Grid parameters whose posterior piles against a bound of the model's box, per participant.

    The box is a modelling choice, not a property of the participant: a posterior pressed against it says
    that the data want values outside it (widen the box in the model's ``[parameters]`` and refit), and
    the interval reported is cut by the box.
    """
    out = []
    for name, gp in model.grid.items():
        da = posterior[name]
        for pid in (da["participant"].values if "participant" in da.dims else [None]):
            sub = da.sel(participant=pid) if pid is not None else da
            pos = np.asarray(gp.position(np.asarray(sub.values, dtype=float).ravel()), dtype=float)
            for bound, share, edge in (("lower", float(np.mean(pos < BOUND_ZONE)), gp.lower),
                                       ("upper", float(np.mean(pos > 1 - BOUND_ZONE)), gp.upper)):
                if share > BOUND_SHARE:
                    out.append({"participant": str(pid), "parameter": name, "bound": bound, "edge": float(edge),
                                "share": share, "median": float(np.median(sub.values))})
    return out


def box_bound_warnings(entries: list[dict]) -> list[str]:
    """Plain-language warnings for :func:`box_bound_check` entries."""
    return [f"participant {e['participant']}: the posterior of {e['parameter']} is pressed against the {e['bound']} "
            f"bound of its box ({100 * e['share']:.0f}% of draws at {e['edge']:g}, median {e['median']:.3g}): the data "
            "want values outside the box; widen it in the model's [parameters] and refit" for e in entries]


#: A parameter "barely moved from its prior" when its posterior SD is above this share of the prior's SD
#: (on the scale the prior is defined on: log for lognormal priors, the logit of the box position for grid
#: parameters): the data say little about it, and its interval is mostly the prior's.
WEAK_SD_RATIO = 0.7


def _prior_sd(prior) -> float:
    if prior.dist in ("normal", "lognormal"):
        return float(prior.sigma)
    if prior.dist == "halfnormal":
        return float(prior.sigma * np.sqrt(1 - 2 / np.pi))
    a, b = prior.alpha, prior.beta
    return float(np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1))))


def weakly_identified(model, posterior) -> list[dict]:
    """Parameters whose posterior barely moved from the prior, per participant (:data:`WEAK_SD_RATIO`).

    Grid parameters are judged on the logit of their box position (their prior's scale), lognormal scalars
    on the log scale, the others as they are. Coefficient blocks and group-level parameters are not judged.
    """
    out = []
    judged = {**{n: (p, "log" if p.dist == "lognormal" else "value") for n, p in model.priors.items()},
              **{f"{n}_logit": (gp, "logit") for n, gp in model.grid.items()}}
    for name, (prior, scale) in judged.items():
        if name not in posterior:
            continue
        da = posterior[name]
        prior_sd = float(prior.prior_sigma) if scale == "logit" else _prior_sd(prior)
        for pid in (da["participant"].values if "participant" in da.dims else [None]):
            x = np.asarray((da.sel(participant=pid) if pid is not None else da).values, dtype=float).ravel()
            x = np.log(x) if scale == "log" else x
            ratio = float(np.std(x) / prior_sd)
            if ratio > WEAK_SD_RATIO:
                out.append({"participant": str(pid), "parameter": name.removesuffix("_logit"),
                            "sd_ratio": ratio})
    return out


def weak_warnings(entries: list[dict]) -> list[str]:
    """Plain-language warnings for :func:`weakly_identified` entries."""
    return [f"participant {e['participant']}: the posterior of {e['parameter']} barely moved from its prior "
            f"(posterior SD {e['sd_ratio']:.0%} of the prior's): the data say little about it; its interval is "
            "mostly the prior's" for e in entries]


#: A participant's network parameter whose R-hat (on its box position's logit) exceeds this has chains that sit
#: in different places: :func:`separate_modes` names it.
MODES_RHAT = 1.05


def separate_modes(model, posterior) -> list[dict]:
    """Network parameters whose chains disagree, per participant: the posterior has modes the chains do not cross.

    R-hat of each participant's grid parameter on the logit of its box position (the sampler's scale) above
    :data:`MODES_RHAT`; each entry gives the chains' medians in the parameter's units. One such participant is
    enough to hold a whole hierarchical fit's R-hat above 1.01 (the group level follows it), and the fit-wide
    R-hat does not say who: this does.
    """
    import arviz as az

    out = []
    if posterior.sizes.get("chain", 1) < 2:
        return out
    for name in model.grid:
        logit = f"{name}_logit"
        if logit not in posterior or name not in posterior:
            continue
        with quiet_numerics():
            rhat = az.rhat(posterior[[logit]])[logit]
        da = posterior[name]
        for pid in (da["participant"].values if "participant" in da.dims else [None]):
            r = float(rhat.sel(participant=pid) if pid is not None else rhat)
            if r > MODES_RHAT:
                x = da.sel(participant=pid) if pid is not None else da
                out.append({"participant": str(pid), "parameter": name, "rhat": r,
                            "chain_medians": [float(v) for v in x.median("draw").values]})
    return out


def mode_warnings(entries: list[dict]) -> list[str]:
    """Plain-language warnings for :func:`separate_modes` entries."""
    return [f"participant {e['participant']}: the chains disagree about {e['parameter']} (R-hat {e['rhat']:.2f}; "
            f"chain medians {', '.join(f'{m:.3g}' for m in e['chain_medians'])}): its posterior has separate modes "
            "the sampler does not cross, so its interval (and a group level that pools it) is not reliable"
            for e in entries]


def _loglik(model, theta: dict, base: dict, pred: np.ndarray, rt: np.ndarray, correct: np.ndarray) -> float:
    """The data's log-likelihood under ``model`` with predictors ``pred`` ``(n, K)`` (numpy)."""
    columns = {**base, **{name: pred[:, k] for k, name in enumerate(model.predictors)}}
    return float(model.formula.loglik(NUMPY, theta, columns, rt, correct, rt.min()).sum())


@contextlib.contextmanager
def quiet_numerics():
    """Silence NaN/all-NaN RuntimeWarnings (constant parameters, single chains): NaN is reported instead."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def participant_diagnostics(tree: xr.DataTree, participant: str) -> dict:
    """:func:`diagnostics` of one participant's part of a fit (with any group-level parameters).

    A fit without ``sample_stats`` (an outside fit) reports no divergences and a NaN E-BFMI.
    """
    post = tree["posterior"].to_dataset()
    if "participant" in post.dims:
        post = post.sel(participant=participant)
    groups = {"posterior": post}
    if "sample_stats" in tree.children:
        stats = tree["sample_stats"].to_dataset()
        groups["sample_stats"] = stats.sel(participant=participant) if "participant" in stats.dims else stats
    return diagnostics(xr.DataTree.from_dict(groups))


def diagnostics(tree: xr.DataTree) -> dict:
    """R-hat, bulk/tail ESS, divergences and E-BFMI of a fit.

    R-hat is NaN with a single chain; without ``sample_stats`` (some outside fits) there are no divergences
    and E-BFMI is NaN.
    """
    with quiet_numerics():
        return _diagnostics(tree)


def _convergence(post: xr.Dataset) -> tuple[xr.Dataset, xr.Dataset, xr.Dataset]:
    """R-hat, bulk ESS and tail ESS of every posterior variable but the non-centred offsets, per element."""
    import arviz as az

    ds = post[[v for v in post.data_vars if not v.endswith("_z")]]
    return az.rhat(ds), az.ess(ds, method="bulk"), az.ess(ds, method="tail")


def _diagnostics(tree: xr.DataTree) -> dict:
    stats = tree["sample_stats"].to_dataset() if "sample_stats" in tree.children else xr.Dataset()
    return _summarised(*_convergence(tree["posterior"].to_dataset()), stats)


def _summarised(rhat: xr.Dataset, ess_bulk: xr.Dataset, ess_tail: xr.Dataset, stats: xr.Dataset) -> dict:
    div = int(stats["diverging"].sum()) if "diverging" in stats else 0
    bfmi = []
    if "energy" in stats:
        energy = stats["energy"]
        if "participant" in energy.dims:
            energy = energy.transpose("participant", "chain", "draw").values.reshape(-1, energy.sizes["draw"])
        else:
            energy = energy.values
        e = np.asarray(energy, dtype=float)
        bfmi = (np.square(np.diff(e, axis=-1)).mean(-1) / e.var(-1)).tolist()

    def _extreme(ds, fn):
        vals = [float(fn(ds[v].values)) for v in ds.data_vars if np.size(ds[v].values)]
        return fn(np.array(vals)) if vals else float("nan")

    return {"rhat_max": _extreme(rhat, np.nanmax), "ess_bulk_min": _extreme(ess_bulk, np.nanmin),
            "ess_tail_min": _extreme(ess_tail, np.nanmin), "divergences": div,
            "ebfmi_min": float(min(bfmi)) if bfmi else float("nan"),
            "per_parameter": {v: {"rhat": float(np.nanmax(rhat[v].values)),
                                  "ess_bulk": float(np.nanmin(ess_bulk[v].values)),
                                  "ess_tail": float(np.nanmin(ess_tail[v].values))} for v in rhat.data_vars}}


def participants_diagnostics(tree: xr.DataTree) -> dict[str, dict]:
    """:func:`participant_diagnostics` of every participant of a fit, computed at once.

    R-hat and ESS are per element, so they are computed once for the whole posterior and sliced per
    participant (the same numbers as one participant at a time, without recomputing the group level's
    for each participant of a hierarchical fit).
    """
    post = tree["posterior"].to_dataset()
    stats = tree["sample_stats"].to_dataset() if "sample_stats" in tree.children else xr.Dataset()
    with quiet_numerics():
        arrays = _convergence(post)
        participants = [str(p) for p in post["participant"].values] if "participant" in post.dims else []

        def part(ds: xr.Dataset, pid: str) -> xr.Dataset:
            return ds.sel(participant=pid) if "participant" in ds.dims else ds

        return {pid: _summarised(*(part(a, pid) for a in arrays), part(stats, pid)) for pid in participants}


def interpolation_warnings(checks: list[dict], limit: float = 5.0) -> list[str]:
    """Plain-language warnings for participants whose exact and interpolated log-likelihoods differ by > ``limit``."""
    out = []
    for c in checks:
        if abs(c["difference"]) > limit:
            out.append(f"participant {c['participant']}: at the posterior the exact network's log-likelihood "
                       f"differs by up to {c['difference']:+.1f} from the interpolated grid's (> {limit:g}): the "
                       "grid is too coarse there (more points in the model's [parameters])")
    return out


def diagnostic_warnings(diag: dict) -> list[str]:
    """Plain-language warnings for failed diagnostic thresholds."""
    out = []
    if diag["rhat_max"] != diag["rhat_max"]:
        out.append("R-hat could not be computed (it needs at least 2 chains): convergence is unchecked")
    elif diag["rhat_max"] > 1.01:
        out.append(f"R-hat up to {diag['rhat_max']:.3f} (> 1.01): chains disagree; run longer or check the model")
    if diag["ess_bulk_min"] < 400:
        out.append(f"bulk ESS as low as {diag['ess_bulk_min']:.0f} (< 400): posterior means are imprecise")
    if diag["ess_tail_min"] < 400:
        out.append(f"tail ESS as low as {diag['ess_tail_min']:.0f} (< 400): intervals are imprecise")
    if diag["divergences"]:
        out.append(f"{diag['divergences']} divergent transitions: the sampler may have missed parts of the posterior "
                   "(raise target_accept)")
    if diag["ebfmi_min"] == diag["ebfmi_min"] and diag["ebfmi_min"] < 0.3:
        out.append(f"E-BFMI {diag['ebfmi_min']:.2f} (< 0.3): poor exploration of the energy distribution")
    return out


