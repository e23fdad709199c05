"""The PyMC model of any registered cognitive model on prepared data.

:func:`build_model` asks the model object for its parameters and link and builds, per participant (or with
group-level distributions, non-centred, when ``hierarchical``):

- the scalar parameters with their priors (in hierarchical fits a non-centred group distribution, or one
  value for all participants for those ``[hierarchy] pooled`` names);
- each grid parameter as a logit-normal position in its box (in hierarchical fits its group mean regressed on
  the model's participant covariates, ``[hierarchy] covariates``), its value a deterministic, its predictors the
  (cubic or multilinear) interpolation of the participant's predictor table (:mod:`cogflex.fit.interpolate`);
  a table over a sub-box (a refined :class:`~cogflex.fit.tables.GridWindow`) truncates the same prior to that
  sub-box (:mod:`cogflex.fit.refine`);
- each coefficient block;

and the pointwise log-likelihood of :mod:`cogflex.fit.link` (joint density of correct and RT in s per
observed trial), entered as a potential. Fixed parameters are not variables of the model.
"""

from __future__ import annotations

import numpy as np

from cogflex.fit.interpolate import interpolate, interpolate_grouped, pad_tables
from cogflex.fit.link import pytensor_namespace
from cogflex.fit.models.parameters import Prior
from cogflex.fit.prepare import FitData, covariates

__all__ = ["build_model"]


def _prior_rv(name: str, prior: Prior, dims=None):
    import pymc as pm

    if prior.dist == "normal":
        return pm.Normal(name, prior.mu, prior.sigma, dims=dims)
    if prior.dist == "halfnormal":
        return pm.HalfNormal(name, prior.sigma, dims=dims)
    if prior.dist == "lognormal":
        return pm.LogNormal(name, prior.mu, prior.sigma, dims=dims)
    return pm.Beta(name, prior.alpha, prior.beta, dims=dims)


def _participant_param(name: str, prior: Prior, hierarchical: bool, group_sd: float, *, pooled: bool = False,
                       centred: bool = False, n: int = 1):
    """One scalar parameter per participant: its prior, a group distribution, or one shared value.

    Per-participant fits: the prior. Hierarchical fits: a group distribution (non-centred, or ``centred``), or
    one value shared by all ``n`` participants (``pooled``).

    The group distribution is normal on the parameter's unconstrained scale (the value of a normal prior, the
    log of a positive and the logit of a (0, 1) parameter), with mean ``<name>_mu`` / ``_logmu`` / ``_logitmu``
    and spread ``<name>_sd``; non-centred through offsets ``<name>_z``, centred through the per-participant
    values on that scale (``<name>``, ``<name>_log``, ``<name>_logit``).
    """
    import pymc as pm
    import pytensor.tensor as pt

    dims = "participant"
    if not hierarchical:
        return _prior_rv(name, prior, dims)
    if pooled:
        return pm.Deterministic(name, pt.repeat(_prior_rv(f"{name}_pooled", prior), n), dims=dims)
    mu = _group_mean(name, prior)
    scale, inverse = {"normal": ("", None), "beta": ("_logit", pm.math.sigmoid)}.get(prior.dist, ("_log", pt.exp))
    sd = pm.HalfNormal(f"{name}_sd", group_sd)
    if centred:
        value = pm.Normal(f"{name}{scale}", mu, sd, dims=dims)
        return value if inverse is None else pm.Deterministic(name, inverse(value), dims=dims)
    value = mu + sd * pm.Normal(f"{name}_z", 0.0, 1.0, dims=dims)
    return pm.Deterministic(name, value if inverse is None else inverse(value), dims=dims)


def _group_mean(name: str, prior: Prior):
    """The group mean of a scalar parameter on its unconstrained scale, its prior from the model's prior.

    ``<name>_mu`` (normal), ``<name>_logmu`` (log-normal, half-normal), ``<name>_logitmu`` (beta).
    """
    import pymc as pm

    if prior.dist == "normal":
        return pm.Normal(f"{name}_mu", prior.mu, prior.sigma)
    if prior.dist == "lognormal":
        return pm.Normal(f"{name}_logmu", prior.mu, prior.sigma)
    if prior.dist == "halfnormal":
        return pm.Normal(f"{name}_logmu", np.log(prior.sigma * 0.8), 1.0)
    mean = prior.alpha / (prior.alpha + prior.beta)
    return pm.Normal(f"{name}_logitmu", np.log(mean / (1 - mean)), 1.0)


def rt_reparameterised(model, hierarchical: bool) -> bool:
    """Whether a fit samples the RT parameters in :func:`_rt_location_spread`'s coordinates.

    Hierarchical fits whose ``rt_intercept`` has a normal and ``rt_sigma`` a log-normal or half-normal prior,
    neither pooled nor centred, and ``[hierarchy] rt_coordinates = "location-spread"`` (the default).
    """
    hs = model.hierarchy
    priors = model.priors
    return (hierarchical and hs.rt_coordinates == "location-spread" and priors["rt_intercept"].dist == "normal"
            and priors["rt_sigma"].dist in ("lognormal", "halfnormal")
            and not {"rt_intercept", "rt_sigma"} & (set(hs.pooled) | set(hs.centred)))


def rt_coordinates(intercept, sigma, shift, fastest):
    """``(location, spread)`` of :func:`_rt_location_spread` from per-participant values (numpy).

    ``location = log(median RT - fastest RT)`` at the reference predictors (the median RT is ``shift +
    exp(rt_intercept)``), ``spread = rt_intercept + log(rt_sigma)`` (log of the decision time's median times its
    log-scale spread: the RTs' spread in seconds, to first order).
    """
    excess = np.exp(intercept) + shift - fastest
    return np.log(np.maximum(excess, 1e-3)), intercept + np.log(sigma)


def _rt_location_spread(prior_i: Prior, prior_s: Prior, link_sd: float, shift, fastest: np.ndarray,
                        start: tuple[np.ndarray, np.ndarray]):
    """``rt_intercept`` and ``rt_sigma`` per participant, sampled in coordinates that the shift does not move.

    With a few hundred RTs per participant, ``rt_shift``, ``rt_intercept`` and ``rt_sigma`` are strongly
    correlated (-0.93, +0.75 in the lab demo: a larger shift is matched by a smaller decision time and a wider
    log spread), and the group distributions of these three parameters make that geometry hard for NUTS
    (R-hat 1.04, bulk ESS ~100 of 4,000 draws). The RTs pin down two other quantities almost independently of
    the shift: the median RT above the fastest RT (``location``, log seconds) and the spread in seconds
    (``spread``); they are sampled instead (flat), and
    ``rt_intercept = log(fastest + exp(location) - shift)``, ``log rt_sigma = spread - rt_intercept``. The
    model is unchanged: the group distributions of ``rt_intercept`` (normal) and ``log rt_sigma`` (normal) are
    added as a potential with the log-Jacobian ``location - rt_intercept`` of the change of coordinates. The
    group variables keep their names (``rt_intercept_mu``/``_sd``, ``rt_sigma_logmu``/``_sd``).
    """
    import pymc as pm
    import pytensor.tensor as pt

    dims = "participant"
    mu_i = _group_mean("rt_intercept", prior_i)
    sd_i = pm.HalfNormal("rt_intercept_sd", link_sd)
    mu_s = _group_mean("rt_sigma", prior_s)
    sd_s = pm.HalfNormal("rt_sigma_sd", link_sd)
    location = pm.Flat("rt_location", dims=dims, initval=start[0])
    spread = pm.Flat("rt_spread", dims=dims, initval=start[1])
    intercept = pm.Deterministic("rt_intercept", pt.log(pt.as_tensor(fastest) + pt.exp(location) - shift), dims=dims)
    log_sigma = spread - intercept
    pm.Potential("rt_group", (pm.logp(pm.Normal.dist(mu_i, sd_i), intercept)
                              + pm.logp(pm.Normal.dist(mu_s, sd_s), log_sigma) + location - intercept).sum())
    return intercept, pm.Deterministic("rt_sigma", pt.exp(log_sigma), dims=dims)


def _data_rt_start(trials, fastest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Initial ``(location, spread)`` from the data.

    Each participant's median RT, a shift of half the fastest RT and a log spread of 0.3.
    """
    median = trials.groupby("pidx")["rt"].median().to_numpy()
    return rt_coordinates(np.log(np.maximum(median - 0.5 * fastest, 1e-3)), 0.3, 0.5 * fastest, fastest)


def _logit(p: float) -> float | None:
    """logit(p), None at 0 and 1 (an open end of a truncation)."""
    return None if p <= 0.0 or p >= 1.0 else float(np.log(p / (1.0 - p)))


def _grid_position(name: str, gp, hierarchical: bool, position_sd: float, bounds: tuple[float, float] = (0.0, 1.0),
                   covariates: dict[str, np.ndarray] | None = None, slope_sd: float = 1.0):
    import pymc as pm

    lower, upper = _logit(bounds[0]), _logit(bounds[1])
    if lower is not None or upper is not None:
        if hierarchical:
            raise ValueError("refined grid windows are for per-participant fits, not hierarchical ones")
        # the logit-normal prior on the box position, truncated to the window the table covers
        logit = pm.TruncatedNormal(f"{name}_logit", gp.prior_mu, gp.prior_sigma, lower=lower, upper=upper,
                                   dims="participant")
    elif hierarchical:
        mu = pm.Normal(f"{name}_mu", gp.prior_mu, gp.prior_sigma)
        sd = pm.HalfNormal(f"{name}_sd", position_sd)
        eps = pm.Normal(f"{name}_z", 0.0, 1.0, dims="participant")
        centre = mu
        for cov, z in (covariates or {}).items():
            # group-level regression on a standardised participant covariate (logit position per SD)
            centre = centre + pm.Normal(f"{name}_{cov}_slope", 0.0, slope_sd) * z
        logit = pm.Deterministic(f"{name}_logit", centre + sd * eps, dims="participant")
    else:
        logit = pm.Normal(f"{name}_logit", gp.prior_mu, gp.prior_sigma, dims="participant")
    pos = pm.math.sigmoid(logit)
    pm.Deterministic(name, gp.value(pos), dims="participant")
    return pos


def _coefficient_block(name: str, block, hierarchical: bool, group_sd: float):
    import pymc as pm

    term_dim = block.term_dim(name)
    pm.modelcontext(None).add_coord(term_dim, block.terms)
    prior = block.prior
    if not hierarchical:
        return pm.Normal(name, prior.mu, prior.sigma, dims=("participant", term_dim))
    mu = pm.Normal(f"{name}_mu", prior.mu, prior.sigma, dims=term_dim)
    sd = pm.HalfNormal(f"{name}_sd", group_sd, dims=term_dim)
    z = pm.Normal(f"{name}_z", 0, 1, dims=("participant", term_dim))
    return pm.Deterministic(name, mu + sd * z, dims=("participant", term_dim))


def _pads_cheaply(tables: list[np.ndarray]) -> bool:
    """Whether several participants' tables are read per participant (:func:`interpolate_grouped`).

    Padding every participant to the longest one's trials must cost at most a quarter more memory than the
    concatenated tables (participants with similar trial counts, as in a lab study); otherwise each trial
    is read on its own.
    """
    if len(tables) < 2:
        return False
    counts = np.array([t.shape[-2] for t in tables])
    return bool(counts.max() * len(counts) <= 1.25 * counts.sum())


def build_model(model, fd: FitData, *, tables: list[np.ndarray] | None = None, hierarchical: bool = False,
                window=None):
    """The PyMC model of ``model`` on ``fd``; returns ``(pymc_model, pointwise_logp)``.

    ``tables`` are the participants' predictor tables (models with network predictors), over ``window``
    (a :class:`~cogflex.fit.tables.GridWindow`; default the model's whole box; a sub-box only for one
    participant, not hierarchical). The pointwise
    log-likelihood (one entry per observed trial) enters the model as a potential; the same expression is
    evaluated per posterior draw for ``log_likelihood``, and ``pointwise.tag.rt_cdf`` (each trial's RT CDF at its
    observed RT) per draw for LOO-PIT.
    """
    import pymc as pm
    import pytensor.tensor as pt

    tr = fd.trials
    pidx = tr["pidx"].to_numpy()
    rt = tr["rt"].to_numpy(dtype=float)
    correct = tr["correct"].to_numpy(dtype=bool)
    min_rt = tr.groupby("pidx")["rt"].min().to_numpy()
    hs = model.hierarchy
    xp = pytensor_namespace()
    reparameterised = rt_reparameterised(model, hierarchical)
    with pm.Model(coords={"participant": fd.participants}) as pm_model:
        per = {name: _participant_param(name, prior, hierarchical, hs.link_sd, pooled=name in hs.pooled,
                                        centred=name in hs.centred, n=len(fd.participants))
               for name, prior in model.priors.items()
               if not (reparameterised and name in ("rt_intercept", "rt_sigma"))}
        if reparameterised:
            per["rt_intercept"], per["rt_sigma"] = _rt_location_spread(
                model.priors["rt_intercept"], model.priors["rt_sigma"], hs.link_sd, per["rt_shift"] * min_rt, min_rt,
                _data_rt_start(tr, min_rt))
        theta = {name: per[name][pidx] for name in model.priors}
        if window is not None and not window.is_full(model) and len(fd.participants) != 1:
            raise ValueError("a refined grid window covers one participant's table")
        bounds = list(zip(window.lower, window.upper)) if window is not None else [(0.0, 1.0)] * len(model.grid)
        covs = {c: fd.covariate(c) for c in hs.covariates} if hierarchical else {}
        positions = [_grid_position(name, gp, hierarchical, hs.position_sd, b, covs, hs.covariate_slope_sd)
                     for (name, gp), b in zip(model.grid.items(), bounds)]
        # one participant: every trial at the same position (the interpolation's fast path); several with
        # similar trial counts: one position per participant (grouped read); otherwise one per trial
        grouped = model.uses_network and tables is not None and _pads_cheaply(tables)
        if len(fd.participants) == 1:
            positions = [p[0] for p in positions]
        elif not grouped:
            positions = [p[pidx] for p in positions]
        if window is not None:
            positions = [window.local(d, p) for d, p in enumerate(positions)]
        for name, block in model.coefficients.items():
            theta[name] = _coefficient_block(name, block, hierarchical, hs.link_sd)[pidx]
        columns = dict(covariates(tr))
        if model.uses_network:
            if tables is None or len(tables) != len(fd.participants):
                raise ValueError(f"the {model.name} model needs one predictor table per participant")
            if grouped:
                padded, rows = pad_tables(tables)
                values = interpolate_grouped(xp, padded, tables[0].shape[:-2],
                                             positions, rows, model.interpolation)
            else:
                table = np.concatenate(tables, axis=-2)
                flat = pt.constant(table.reshape(-1, table.shape[-1]), name="predictor_table")
                values = interpolate(xp, flat, table.shape[:-2], table.shape[-2], positions, model.interpolation)
            columns.update({name: values[:, k] for k, name in enumerate(model.predictors)})
        fastest = pt.as_tensor(min_rt)[pidx]
        pointwise = model.formula.loglik(xp, theta, columns, pt.as_tensor(rt), pt.as_tensor(correct), fastest)
        pm.Potential("likelihood", pointwise.sum())
        # the RT's CDF at the observed RT per trial, for LOO-PIT (evaluated per draw after sampling, like the
        # pointwise log-likelihood; PyTensor's tag is the variable's scratchpad)
        pointwise.tag.rt_cdf = model.formula.rt_cdf(xp, theta, columns, pt.as_tensor(rt), fastest)
    return pm_model, pointwise
