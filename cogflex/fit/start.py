"""Start values and mode search: chains start at the best of many local optima.

The network models' likelihood has local modes.

1. :func:`node_profile`: at every grid node, the link parameters that maximise the likelihood (closed-form RT
   regression on the model's first RT predictor for a few shifts, Newton steps for accuracy on its first
   accuracy predictor): a profile likelihood over the grid.
2. :func:`starting_points`: the best few nodes and a lattice over the box, each with its profile's link values.
3. :func:`find_mode`: L-BFGS on the PyMC model's log density from every start; the best optimum starts every
   chain.

Models whose first RT and accuracy terms are not scalar slopes on network predictors, and models without a
network, start from PyMC's default initial point.

Hierarchical fits (:func:`hierarchical_start`) start from the participants' profile values carried to the
group level (group mean and spread of each parameter on its unconstrained scale, each participant's
standardised offset), then one L-BFGS search on the whole hierarchical density. :func:`check_start` refuses,
in one line, a start whose log density or gradient is not finite, before any sampler sees it.
"""

from __future__ import annotations

import itertools

import numpy as np

from cogflex.fit.prepare import FitData

__all__ = ["node_profile", "profile_columns", "initial_values", "find_mode", "starting_points",
           "hierarchical_start", "spread_centred_groups", "check_start"]

#: Link parameters that node_profile maximises, by role.
_PROFILED = ("acc_intercept", "rt_intercept", "rt_sigma", "rt_shift")


def profile_columns(model) -> tuple[int, int, str, str] | None:
    """``(rt column, acc column, rt slope name, acc slope name)`` of the profile search, or None.

    The first RT term and the first accuracy term of the model's formula, when each is a scalar slope on
    one of the network's predictors.
    """
    formula = model.formula
    if not (model.uses_network and formula.rt and formula.acc):
        return None
    rt_term, acc_term = formula.rt[0], formula.acc[0]
    if rt_term.block or acc_term.block:
        return None
    names = model.predictors
    rt_column, acc_column = (formula.profile_column(t.columns[0]) for t in (rt_term, acc_term))
    if rt_column not in names or acc_column not in names:
        return None
    return names.index(rt_column), names.index(acc_column), rt_term.parameter, acc_term.parameter


def _neutral_start(prior) -> float:
    """A start value inside a prior's support for a parameter the profile does not set."""
    return {"halfnormal": 1e-2, "lognormal": 1e-2, "beta": 0.5}.get(prior.dist, 0.0)


def node_profile(table: np.ndarray, rt: np.ndarray, correct: np.ndarray,
                 shifts=(0.5, 0.7, 0.8, 0.9, 0.95), *, rt_column: int = 0, acc_column: int = 1
                 ) -> dict[str, np.ndarray]:
    """Log-likelihood at every grid node with the link parameters at their maximum (profile likelihood).

    RT: for each shift fraction, ordinary least squares of log(RT - shift) on the table's ``rt_column``
    (NTA: L_t; slope >= 0); accuracy: logistic regression of correct on its ``acc_column`` (NTA: m_t;
    Newton steps). Returns arrays over the grid nodes (flattened): ``loglik`` and the maximising
    ``acc_intercept``, ``acc_slope``, ``rt_intercept``, ``rt_slope``, ``rt_sigma``, ``rt_shift``.
    """
    n = table.shape[-2]
    loss = table[..., rt_column].reshape(-1, n)
    margin = table[..., acc_column].reshape(-1, n)
    g = loss.shape[0]
    best = {"loglik": np.full(g, -np.inf)}
    lm = loss.mean(1, keepdims=True)
    lc = loss - lm
    lvar = np.maximum((lc**2).sum(1), 1e-12)
    for f in shifts:
        y = np.log(rt - f * rt.min())
        slope = np.clip((lc * (y - y.mean())).sum(1) / lvar, 1e-3, None)
        icpt = y.mean() - slope * lm[:, 0]
        resid = y[None, :] - icpt[:, None] - slope[:, None] * loss
        sigma = np.sqrt((resid**2).mean(1))
        ll = -y.sum() - n * np.log(sigma) - 0.5 * n * np.log(2 * np.pi) - 0.5 * n
        better = ll > best["loglik"]
        for key, val in (("loglik", ll), ("rt_intercept", icpt), ("rt_slope", slope), ("rt_sigma", sigma),
                         ("rt_shift", np.full(g, f))):
            best.setdefault(key, np.zeros(g))[better] = val[better]
    # logistic regression of correct on margin, all nodes at once
    yv = correct.astype(float)
    beta = np.zeros((g, 2))
    beta[:, 0] = np.log(max(yv.mean(), 1e-3) / max(1 - yv.mean(), 1e-3))
    for _ in range(25):
        eta = beta[:, :1] + beta[:, 1:] * margin
        p = 1.0 / (1.0 + np.exp(-eta))
        w = np.clip(p * (1 - p), 1e-9, None)
        r = yv[None, :] - p
        g0, g1 = r.sum(1), (r * margin).sum(1)
        h00, h01, h11 = w.sum(1), (w * margin).sum(1), (w * margin**2).sum(1) + 1e-9
        det = h00 * h11 - h01**2
        step0 = (h11 * g0 - h01 * g1) / det
        step1 = (h00 * g1 - h01 * g0) / det
        beta[:, 0] += np.clip(step0, -5, 5)
        beta[:, 1] += np.clip(step1, -5, 5)
    beta[:, 1] = np.clip(beta[:, 1], 1e-2, 50)
    eta = beta[:, :1] + beta[:, 1:] * margin
    ll_acc = np.where(yv[None, :] > 0, -np.logaddexp(0, -eta), -np.logaddexp(0, eta)).sum(1)
    best["loglik"] = best["loglik"] + ll_acc
    best["acc_intercept"], best["acc_slope"] = beta[:, 0], beta[:, 1]
    return best


def _profiles(model, fd: FitData, tables: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
    rt_col, acc_col, rt_slope, acc_slope = profile_columns(model)
    tr = fd.trials
    out = []
    for i, table in enumerate(tables):
        rows = (tr["pidx"] == i).to_numpy()
        prof = node_profile(table, tr["rt"].to_numpy(dtype=float)[rows], tr["correct"].to_numpy(dtype=bool)[rows],
                            rt_column=rt_col, acc_column=acc_col)
        prof[rt_slope], prof[acc_slope] = prof.pop("rt_slope"), prof.pop("acc_slope")
        out.append(prof)
    return out


def initial_values(model, fd: FitData, tables: list[np.ndarray], *, hierarchical: bool = False,
                   node_rank: int = 0, positions: dict[str, float] | None = None, profiles=None) -> dict:
    """Starting values: each participant's ``node_rank``-th best grid node (profile likelihood).

    ``positions`` (box positions in [0, 1] by parameter name) overrides the node's network parameters
    while keeping the best node's link parameters (used for starts spread over the box); ``profiles``
    are precomputed :func:`node_profile` results, one per participant.
    """
    profiles = profiles if profiles is not None else _profiles(model, fd, tables)
    logits = {name: [] for name in model.grid_names}
    link: dict[str, list] = {k: [] for k in model.priors}
    shape = tables[0].shape[:-2]
    for prof in profiles:
        order = np.argsort(prof["loglik"])[::-1]
        j = int(order[min(node_rank, len(order) - 1)])
        index = np.unravel_index(j, shape)
        for d, name in enumerate(model.grid_names):
            pos = positions[name] if positions is not None else index[d] / (shape[d] - 1)
            pos = float(np.clip(pos, 0.03, 0.97))
            logits[name].append(np.log(pos / (1 - pos)))
        source = int(order[0]) if positions is not None else j
        for k in link:
            link[k].append(float(prof[k][source]) if k in prof else _neutral_start(model.priors[k]))
    out: dict = {}
    for name, values in logits.items():
        values = np.array(values)
        if hierarchical:
            out[f"{name}_mu"] = float(values.mean())
            out[f"{name}_sd"] = 1.0
            out[f"{name}_z"] = values - values.mean()
        else:
            out[f"{name}_logit"] = values
    if not hierarchical:
        for k, v in link.items():
            v = np.array(v)
            dist = model.priors[k].dist
            if dist in ("halfnormal", "lognormal"):
                v = np.clip(v, 1e-2, None)
            if dist == "beta":
                v = np.clip(v, 0.05, 0.95)
            out[k] = v
    return out


def hierarchical_start(model, fd: FitData, tables: list[np.ndarray], *, profiles=None) -> dict:
    """Start values of a hierarchical fit from each participant's best grid node (profile likelihood).

    Per parameter, the participants' values on the scale the group distribution lives on (the logit box
    position of a grid parameter; log of a positive, logit of a (0, 1) and the value of a real link
    parameter) give the group mean (``*_mu`` / ``*_logmu`` / ``*_logitmu``), the group spread (``*_sd``: their
    standard deviation, at least 0.1) and the non-centred offsets (``*_z``, or a centred parameter's values on
    its unconstrained scale); a ``[hierarchy] pooled`` parameter starts at the participants' median
    (``*_pooled``). Coefficient blocks are left to PyMC's initial point (zero offsets at the prior mean).
    """
    per = initial_values(model, fd, tables, profiles=profiles)
    out: dict = {}

    def group(mean_name: str, base: str, values: np.ndarray, centred: str | None = None) -> None:
        values = np.asarray(values, dtype=float)
        mu = float(values.mean())
        sd = float(max(values.std(), 0.1))
        out[mean_name], out[f"{base}_sd"] = mu, sd
        if centred is None:
            out[f"{base}_z"] = (values - mu) / sd
        else:
            out[centred] = values  # the sampled per-participant values on the unconstrained scale

    hs = model.hierarchy
    for name in model.grid_names:
        group(f"{name}_mu", name, per[f"{name}_logit"])
    for name, prior in model.priors.items():
        v = np.asarray(per[name], dtype=float)
        if name in hs.pooled:
            out[f"{name}_pooled"] = float(np.median(v))
            continue
        mean, scale, u = _unconstrained(prior, v)
        group(f"{name}{mean}", name, u, f"{name}{scale}" if name in hs.centred else None)
    from cogflex.fit.pymc_model import rt_coordinates, rt_reparameterised

    if rt_reparameterised(model, hierarchical=True):
        # the participants' RT parameters in the coordinates the fit samples (group means and spreads as above)
        fastest = fd.trials.groupby("pidx")["rt"].min().to_numpy()
        shift = (out["rt_shift_pooled"] if "rt_shift_pooled" in out else np.asarray(per["rt_shift"])) * fastest
        out["rt_location"], out["rt_spread"] = rt_coordinates(np.asarray(per["rt_intercept"], dtype=float),
                                                              np.asarray(per["rt_sigma"], dtype=float), shift, fastest)
        for name in ("rt_intercept_z", "rt_sigma_z"):
            out.pop(name, None)
    return out


def spread_centred_groups(model, pm_model, point: dict) -> dict:
    """``point`` with the group means and spreads of centred group distributions taken from its participants.

    A mode search on a hierarchical density runs into the spike of a centred group distribution (the spread
    shrinking to zero with every participant at the group mean: the density grows without bound; measured:
    ``rt_sigma_sd`` 0.14 -> 0.0001), and NUTS started there adapts for a very long time. The participants'
    values at the mode are kept; each centred group's mean and spread become their mean and standard deviation
    (at least 0.1) on the group distribution's scale. Centred groups: ``[hierarchy] centred`` and, in
    location-spread RT coordinates, ``rt_intercept`` and ``rt_sigma``.
    """
    from pymc.initial_point import make_initial_point_fn

    from cogflex.fit.pymc_model import rt_reparameterised

    names = list(model.hierarchy.centred)
    if rt_reparameterised(model, hierarchical=True):
        names += ["rt_intercept", "rt_sigma"]
    if not names:
        return point
    values = make_initial_point_fn(model=pm_model, overrides=point, jitter_rvs=set())(0)
    outputs = pm_model.replace_rvs_by_values([pm_model[n] for n in names])
    per = pm_model.compile_fn(outputs, inputs=pm_model.value_vars, point_fn=True, on_unused_input="ignore")(values)
    out = dict(point)
    for name, v in zip(names, per):
        mean, _, u = _unconstrained(model.priors[name], np.asarray(v, dtype=float))
        out[f"{name}{mean}"], out[f"{name}_sd"] = float(u.mean()), float(max(u.std(), 0.1))
    return out


def _unconstrained(prior, values: np.ndarray) -> tuple[str, str, np.ndarray]:
    """``(group mean suffix, centred variable suffix, values)`` on a scalar parameter's group scale."""
    if prior.dist in ("halfnormal", "lognormal"):
        return "_logmu", "_log", np.log(values)
    if prior.dist == "beta":
        return "_logitmu", "_logit", np.log(values / (1 - values))
    return "_mu", "", values


def check_start(model, point: dict | None, what: str) -> None:
    """Refuse a start point whose log density or gradient is not finite (one line, before any sampling).

    ``point`` holds constrained values by free-variable name (as for ``pm.sample(initvals=...)``; missing
    variables take PyMC's initial point); ``what`` names the fit in the message.
    """
    from pymc.initial_point import make_initial_point_fn

    from cogflex.errors import FitError

    start = make_initial_point_fn(model=model, overrides=point or {}, jitter_rvs=set())(0)
    logp = float(model.compile_logp()(start))
    grad = np.asarray(model.compile_dlogp()(start), dtype=float)
    if np.isfinite(logp) and np.isfinite(grad).all():
        return
    bad = {name: float(v) for name, v in model.point_logps(start).items() if not np.isfinite(v)}
    where = (f" (not finite: {', '.join(sorted(bad))})" if bad else
             f" (the gradient is not finite in {int((~np.isfinite(grad)).sum())} of {grad.size} entries)")
    raise FitError(f"{what}: no valid start point, the log density at the best start is {logp:g}{where}; "
                   "check the data for extreme RTs or a participant with very few trials")


def find_mode(model, starts: list[dict], *, progress: bool = False) -> tuple[dict, list[float]]:
    """Maximise the model's log density (L-BFGS) from each start; return the best point and all optima.

    Starts are dicts of free-variable values (constrained scale, as for ``pm.sample(initvals=...)``); the
    returned point is in the same form. The NTA likelihood has several local modes, so many starts are
    used (see :func:`starting_points`); ``progress`` shows a bar over the starts.
    """
    import pytensor
    from pymc.blocking import DictToArrayBijection
    from pymc.initial_point import make_initial_point_fn
    from scipy.optimize import minimize
    from tqdm.auto import tqdm

    logp = model.compile_logp()
    dlogp = model.compile_dlogp()
    value_names = [v.name for v in model.value_vars]
    constrained = pytensor.function(model.value_vars, model.replace_rvs_by_values(model.free_RVs),
                                    on_unused_input="ignore")
    # constrained start values -> sampler space, compiled once for all starts
    rvs = list(model.free_RVs)
    inputs = [rv.type() for rv in rvs]
    outputs = []
    for rv, x in zip(rvs, inputs):
        transform = model.rvs_to_transforms.get(rv)
        outputs.append(x if transform is None else transform.forward(x, *rv.owner.inputs))
    to_values = pytensor.function(inputs, outputs, on_unused_input="ignore")
    names_of = [model.rvs_to_values[rv].name for rv in rvs]
    fallback = make_initial_point_fn(model=model, jitter_rvs=set())(0)
    best, best_lp, optima = None, -np.inf, []
    for start in tqdm(starts, desc="mode search", unit="start", leave=False, disable=not progress):
        if all(rv.name in start for rv in rvs):
            values = to_values(*(np.asarray(start[rv.name], dtype=rv.dtype) for rv in rvs))
            point = dict(zip(names_of, values))
        else:
            point = make_initial_point_fn(model=model, overrides=start, jitter_rvs=set())(0)
        point = {n: point.get(n, fallback[n]) for n in value_names}
        raveled = DictToArrayBijection.map(point)
        kind = type(raveled)

        def objective(x, info=raveled.point_map_info, kind=kind):
            pt = DictToArrayBijection.rmap(kind(x, info))
            value = -float(logp(pt))
            if not np.isfinite(value):
                return 1e300, np.zeros_like(x)
            return value, -np.asarray(dlogp(pt), dtype=float)

        res = minimize(objective, raveled.data, jac=True, method="L-BFGS-B", options={"maxiter": 300})
        lp = -float(res.fun)
        optima.append(lp)
        if np.isfinite(lp) and lp > best_lp:
            best_lp = lp
            pt = DictToArrayBijection.rmap(type(raveled)(res.x, raveled.point_map_info))
            values = constrained(*(pt[n] for n in value_names))
            best = {rv.name: np.asarray(v) for rv, v in zip(model.free_RVs, values)}
    return best, optima


def starting_points(model, fd: FitData, tables: list[np.ndarray], *, n_nodes: int = 4,
                    spread: int = 3) -> list[dict]:
    """Starts for :func:`find_mode`: the best ``n_nodes`` grid nodes, and a ``spread``^D lattice over the box."""
    profiles = _profiles(model, fd, tables)
    starts = [initial_values(model, fd, tables, node_rank=k, profiles=profiles) for k in range(n_nodes)]
    levels = np.linspace(0.1, 0.9, spread)
    for combo in itertools.product(levels, repeat=len(model.grid_names)):
        starts.append(initial_values(model, fd, tables, positions=dict(zip(model.grid_names, combo)),
                                     profiles=profiles))
    return starts
