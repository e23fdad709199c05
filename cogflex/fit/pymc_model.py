"""The PyMC model of any registered cognitive model on prepared data.

:func:`build_model` asks the model object for its parameters and link and builds, per participant (or with
group-level distributions, non-centred, when ``hierarchical``):

- the scalar parameters with their priors;
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


def _participant_param(name: str, prior: Prior, hierarchical: bool, group_sd: float):
    import pymc as pm
    import pytensor.tensor as pt

    dims = "participant"
    if not hierarchical:
        if prior.dist == "normal":
            return pm.Normal(name, prior.mu, prior.sigma, dims=dims)
        if prior.dist == "halfnormal":
            return pm.HalfNormal(name, prior.sigma, dims=dims)
        if prior.dist == "lognormal":
            return pm.LogNormal(name, prior.mu, prior.sigma, dims=dims)
        return pm.Beta(name, prior.alpha, prior.beta, dims=dims)
    z = pm.Normal(f"{name}_z", 0.0, 1.0, dims=dims)
    sd = pm.HalfNormal(f"{name}_sd", group_sd)
    if prior.dist == "normal":
        mu = pm.Normal(f"{name}_mu", prior.mu, prior.sigma)
        return pm.Deterministic(name, mu + sd * z, dims=dims)
    if prior.dist in ("halfnormal", "lognormal"):
        if prior.dist == "lognormal":
            mu = pm.Normal(f"{name}_logmu", prior.mu, prior.sigma)
        else:
            mu = pm.Normal(f"{name}_logmu", np.log(prior.sigma * 0.8), 1.0)
        return pm.Deterministic(name, pt.exp(mu + sd * z), dims=dims)
    mean = prior.alpha / (prior.alpha + prior.beta)
    mu = pm.Normal(f"{name}_logitmu", np.log(mean / (1 - mean)), 1.0)
    return pm.Deterministic(name, pm.math.sigmoid(mu + sd * z), dims=dims)


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
    evaluated per posterior draw for ``log_likelihood``.
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
    with pm.Model(coords={"participant": fd.participants}) as pm_model:
        theta = {name: _participant_param(name, prior, hierarchical, hs.link_sd)[pidx]
                 for name, prior in model.priors.items()}
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
        pointwise = model.formula.loglik(xp, theta, columns, pt.as_tensor(rt), pt.as_tensor(correct),
                                         pt.as_tensor(min_rt)[pidx])
        pm.Potential("likelihood", pointwise.sum())
    return pm_model, pointwise
