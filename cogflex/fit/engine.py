"""The fitting engine: predictor grids simulated with torch, interpolated inside PyMC, sampled with NUTS.

Design (DESIGN §4; measured alternatives in ``docs/fitting.md``):

1. For each participant, the NTA network (:mod:`cogflex.fit.network`) is run
   once on that participant's whole trial sequence for every point of a grid
   over the model's network parameters (flexible: tau_c x tau_W x lambda;
   forgetful: tau). It records, before each observed trial's update, the
   network's squared error L_t and its output margin for the correct response
   m_t. These *predictor tables* are cached on disk.
2. Inside PyMC the parameters are continuous; L_t and m_t at the sampled
   parameters are multilinear interpolations of the tables (in log timescale),
   so NUTS gets exact gradients of the interpolant with respect to the network
   parameters at the cost of 2^D table look-ups per trial.
3. Every model's likelihood is the joint density of (correct, RT) per trial,
   ``logistic(acc_intercept + acc_slope * m_t)`` for accuracy and a shifted
   lognormal RT with location ``rt_intercept + rt_slope * L_t``; the
   descriptive model replaces m_t and L_t by a regression.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cogflex.data.cleaning import CleaningRules, clean
from cogflex.data.dataset import TrialData
from cogflex.errors import DataError
from cogflex.fit.network import run_network
from cogflex.fit.sequence import Sequence, TaskMapping, encode
from cogflex.fit.spec import ModelSpec, Prior
from cogflex.io import atomic_path

__all__ = ["FIT_CLEANING", "FitData", "prepare", "predictor_table", "build_model", "RT_TERMS", "ACC_TERMS",
           "design_matrices", "initial_values", "node_profile", "find_mode", "starting_points",
           "interpolation_check"]

#: Trials that enter the likelihood: errors stay in (accuracy is modelled);
#: practice rows, a session's first trial and RTs outside 0.15-3 s are removed.
FIT_CLEANING = CleaningRules(practice=True, first_trial=True, rt_min=0.15, rt_max=3.0, post_error=False,
                             errors=False, mad=None)

RT_TERMS = ("switch", "log_practice", "switch_x_log_practice", "incongruent", "switch_x_incongruent", "log_run")
ACC_TERMS = ("switch", "incongruent", "log_practice", "switch_x_incongruent")


@dataclass
class FitData:
    """Everything a fit needs from the data: encoded sequences and the observed-trial table."""

    source: str
    digest: str
    participants: list[str]
    sequences: list[Sequence]
    trials: pd.DataFrame  # observed trials, in sequence order; columns below
    cleaning: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def n_trials(self) -> int:
        """Number of trials in the likelihood."""
        return len(self.trials)


def select_participants(data: TrialData, participants) -> tuple[TrialData, np.ndarray]:
    """The trials of ``participants`` only (ids as text), and their rows in ``data``.

    The fits' data hash (``data_digest``) is the hash of this selection.
    """
    trials = data.trials
    wanted = [str(p) for p in participants]
    present = set(trials["participant"].astype(str))
    unknown = [p for p in wanted if p not in present]
    if unknown:
        raise DataError(data.source, f"participant {unknown[0]!r} not in the data "
                                     f"(present: {', '.join(sorted(present)[:10])})", column="participant")
    keep = trials["participant"].astype(str).isin(wanted).to_numpy()
    trials = trials[keep].reset_index(drop=True)
    trials["participant"] = trials["participant"].cat.remove_unused_categories()
    return data.with_trials(trials), np.flatnonzero(keep)


def prepare(data: TrialData, *, participants=None, cleaning: CleaningRules | None = None,
            mapping: TaskMapping | None = None) -> FitData:
    """Select participants, clean, and encode the trial sequences.

    The observed-trial table has columns ``participant`` (text),
    ``pidx`` (index into ``participants``), ``session``, ``rt`` (s),
    ``correct`` (bool, see :func:`cogflex.fit.sequence.observed_outcomes`),
    ``switch``, ``congruent``, ``run_position``, ``log_practice`` (log session,
    centred per participant), ``row`` (row of the trial table as loaded) and ``seq_row`` (row among the
    selected participants' trials).
    """
    origin = np.arange(len(data.trials))  # rows of the trial table as loaded
    if participants:
        data, origin = select_participants(data, participants)
    trials = data.trials
    if trials.empty:
        raise DataError(data.source, "no trials to fit")
    tagged = data.with_trials(trials.assign(_row=np.arange(len(trials))))
    cleaned = clean(tagged, cleaning or FIT_CLEANING)
    mask = np.zeros(len(trials), dtype=bool)
    mask[cleaned.trials["_row"].to_numpy()] = True
    sequences = encode(data, mask, mapping)
    notes = list(dict.fromkeys(n for s in sequences for n in s.notes))
    frames = []
    for i, seq in enumerate(sequences):
        rows = seq.rows[seq.observed]
        if len(rows) == 0:
            raise DataError(data.source, f"participant {seq.participant!r} has no trials left after cleaning",
                            column="participant")
        sub = trials.iloc[rows]
        log_session = np.log(sub["session"].to_numpy(dtype=float).clip(min=1))
        frames.append(pd.DataFrame({
            "participant": seq.participant, "pidx": i, "session": sub["session"].to_numpy(dtype=np.int64),
            "rt": seq.rt[seq.observed], "correct": seq.correct[seq.observed],
            "switch": sub["switch"].fillna(False).to_numpy(dtype=bool),
            "congruent": seq.congruent[seq.observed],
            "run_position": sub["run_position"].fillna(1).to_numpy(dtype=np.int64),
            "log_practice": log_session - log_session.mean(), "row": origin[rows], "seq_row": rows}))
    table = pd.concat(frames, ignore_index=True)
    return FitData(source=data.source, digest=data.digest(), participants=[s.participant for s in sequences],
                   sequences=sequences, trials=table, cleaning=cleaned.cleaning, notes=notes)


# -- predictor tables ---------------------------------------------------------


def grid_points(spec: ModelSpec) -> dict[str, np.ndarray]:
    """Every grid point's parameter values (flattened meshgrid, C order over ``spec.grid_names``)."""
    nodes = [spec.parameters[n].nodes() for n in spec.grid_names]
    mesh = np.meshgrid(*nodes, indexing="ij")
    return {n: m.ravel() for n, m in zip(spec.grid_names, mesh)}


#: Bump when the network code changes what a predictor table holds (invalidates cached tables).
TABLE_FORMAT = 2


def _table_key(spec: ModelSpec, seq: Sequence) -> str:
    h = hashlib.sha256(f"table-format-{TABLE_FORMAT}".encode())
    h.update(json.dumps({"network": spec.to_dict()["network"], "variant": spec.variant,
                         "grid": {n: spec.parameters[n].nodes().tolist() for n in spec.grid_names}},
                        sort_keys=True).encode())
    for arr in (seq.task, seq.features, seq.session, seq.observed):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:20]


def predictor_table(spec: ModelSpec, seq: Sequence, *, cache_dir: str | Path | None = None,
                    progress: bool = False) -> np.ndarray:
    """``(*grid shape, n_observed, 2)`` table of (L_t, m_t) for one participant, cached under ``cache_dir``."""
    shape = tuple(spec.parameters[n].points for n in spec.grid_names)
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"predictors-{spec.variant}-{_table_key(spec, seq)}.npy"
        if path.exists():
            table = np.load(path)
            if table.shape == (*shape, int(seq.observed.sum()), 2):
                return table
    points = grid_points(spec)
    tau_c, tau_w, lam = spec.network_values(points)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        from cogflex.fit.network import full_sequence

        bar = tqdm(total=len(full_sequence(seq, spec.network)[0]), unit="trial", leave=False,
                   desc=f"network {spec.name} x{len(tau_c)} participant {seq.participant}")
    pred = run_network(seq, tau_c, tau_w, lam, spec.network, progress=bar.update if bar else None)
    if bar is not None:
        bar.close()
    table = np.stack([pred.loss, pred.margin], axis=-1).reshape(*shape, -1, 2)
    if path is not None:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, table)
    return table


# -- PyMC model ----------------------------------------------------------------


def design_matrices(trials: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Descriptive-model design matrices (without intercepts): RT terms and accuracy terms."""
    sw = trials["switch"].to_numpy(dtype=float)
    inc = 1.0 - trials["congruent"].to_numpy(dtype=float)
    lp = trials["log_practice"].to_numpy(dtype=float)
    log_run = np.log(trials["run_position"].to_numpy(dtype=float).clip(min=1))
    x_rt = np.column_stack([sw, lp, sw * lp, inc, sw * inc, log_run])
    x_acc = np.column_stack([sw, inc, lp, sw * inc])
    return x_rt, x_acc


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


def _interpolate(table: np.ndarray, positions: list, pidx: np.ndarray):
    """Multilinear interpolation of ``table`` (grid..., N, 2) at per-participant box positions."""
    import pytensor.tensor as pt

    shape = table.shape[:-2]
    n = table.shape[-2]
    flat = pt.constant(table.reshape(-1, 2), name="predictor_table")
    trial = np.arange(n)
    lower, frac = [], []
    for d, pos in enumerate(positions):
        u = pos[pidx] * (shape[d] - 1)
        i0 = pt.clip(pt.floor(u), 0, shape[d] - 2)
        frac.append(u - i0)
        lower.append(pt.cast(i0, "int64"))
    strides = [int(np.prod(shape[d + 1:])) * n for d in range(len(shape))]
    out = 0.0
    for corner in itertools.product((0, 1), repeat=len(shape)):
        index = trial
        weight = 1.0
        for d, c in enumerate(corner):
            index = index + (lower[d] + c) * strides[d]
            weight = weight * (frac[d] if c else 1.0 - frac[d])
        out = out + weight[:, None] * flat[index]
    return out[:, 0], out[:, 1]


def build_model(spec: ModelSpec, fd: FitData, *, tables: list[np.ndarray] | None = None,
                hierarchical: bool = False):
    """The PyMC model of ``spec`` on ``fd``; returns ``(model, pointwise_logp)``.

    ``tables`` are the participants' predictor tables (NTA models). The
    pointwise log-likelihood (one entry per observed trial, the joint density
    of correct and RT) enters the model as a potential; the same expression is
    evaluated per posterior draw for ``log_likelihood``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    tr = fd.trials
    pidx = tr["pidx"].to_numpy()
    rt = tr["rt"].to_numpy(dtype=float)
    correct = tr["correct"].to_numpy(dtype=bool)
    min_rt = tr.groupby("pidx")["rt"].min().to_numpy()
    coords = {"participant": fd.participants}
    link, hs = spec.link, spec.hierarchy
    with pm.Model(coords=coords) as model:
        acc_int = _participant_param("acc_intercept", link.acc_intercept, hierarchical, hs.link_sd)
        rt_int = _participant_param("rt_intercept", link.rt_intercept, hierarchical, hs.link_sd)
        rt_sigma = _participant_param("rt_sigma", link.rt_sigma, hierarchical, hs.link_sd)
        shift_frac = _participant_param("rt_shift", link.rt_shift, hierarchical, hs.link_sd)
        if spec.kind == "nta":
            acc_slope = _participant_param("acc_slope", link.acc_slope, hierarchical, hs.link_sd)
            rt_slope = _participant_param("rt_slope", link.rt_slope, hierarchical, hs.link_sd)
            positions = []
            for name in spec.grid_names:
                gp = spec.parameters[name]
                if hierarchical:
                    mu = pm.Normal(f"{name}_mu", gp.prior_mu, gp.prior_sigma)
                    sd = pm.HalfNormal(f"{name}_sd", hs.position_sd)
                    eps = pm.Normal(f"{name}_z", 0.0, 1.0, dims="participant")
                    logit = pm.Deterministic(f"{name}_logit", mu + sd * eps, dims="participant")
                else:
                    logit = pm.Normal(f"{name}_logit", gp.prior_mu, gp.prior_sigma, dims="participant")
                pos = pm.math.sigmoid(logit)
                positions.append(pos)
                pm.Deterministic(name, gp.value(pos), dims="participant")
            if spec.variant == "flexible" and "regularization" not in spec.parameters:
                pm.Deterministic("regularization", pt.fill(positions[0], spec.regularization), dims="participant")
            if spec.variant == "forgetful":
                tau = model["timescale"]
                pm.Deterministic("gate_timescale", tau, dims="participant")
                pm.Deterministic("weight_timescale", tau, dims="participant")
                pm.Deterministic("regularization", pt.zeros_like(tau), dims="participant")
            if tables is None or len(tables) != len(fd.participants):
                raise ValueError("NTA models need one predictor table per participant")
            table = np.concatenate(tables, axis=-2)
            loss, margin = _interpolate(table, positions, pidx)
            logit_p = acc_int[pidx] + acc_slope[pidx] * margin
            mu = rt_int[pidx] + rt_slope[pidx] * loss
        else:
            x_rt, x_acc = design_matrices(tr)
            model.add_coord("rt_term", RT_TERMS)
            model.add_coord("acc_term", ACC_TERMS)
            d = spec.descriptive
            if hierarchical:
                b_mu = pm.Normal("rt_coefficient_mu", d.rt_coefficient.mu, d.rt_coefficient.sigma, dims="rt_term")
                b_sd = pm.HalfNormal("rt_coefficient_sd", hs.link_sd, dims="rt_term")
                b_z = pm.Normal("rt_coefficient_z", 0, 1, dims=("participant", "rt_term"))
                b_rt = pm.Deterministic("rt_coefficient", b_mu + b_sd * b_z, dims=("participant", "rt_term"))
                a_mu = pm.Normal("acc_coefficient_mu", d.acc_coefficient.mu, d.acc_coefficient.sigma,
                                 dims="acc_term")
                a_sd = pm.HalfNormal("acc_coefficient_sd", hs.link_sd, dims="acc_term")
                a_z = pm.Normal("acc_coefficient_z", 0, 1, dims=("participant", "acc_term"))
                b_acc = pm.Deterministic("acc_coefficient", a_mu + a_sd * a_z, dims=("participant", "acc_term"))
            else:
                b_rt = pm.Normal("rt_coefficient", d.rt_coefficient.mu, d.rt_coefficient.sigma,
                                 dims=("participant", "rt_term"))
                b_acc = pm.Normal("acc_coefficient", d.acc_coefficient.mu, d.acc_coefficient.sigma,
                                  dims=("participant", "acc_term"))
            logit_p = acc_int[pidx] + (pt.as_tensor(x_acc) * b_acc[pidx]).sum(-1)
            mu = rt_int[pidx] + (pt.as_tensor(x_rt) * b_rt[pidx]).sum(-1)
        shift = shift_frac * pt.as_tensor(min_rt)
        y = pt.as_tensor(rt) - shift[pidx]
        sigma = rt_sigma[pidx]
        log_y = pt.log(y)
        ll_rt = -log_y - pt.log(sigma) - 0.5 * np.log(2 * np.pi) - 0.5 * ((log_y - mu) / sigma) ** 2
        ll_acc = pt.switch(pt.as_tensor(correct), -pt.softplus(-logit_p), -pt.softplus(logit_p))
        pointwise = ll_rt + ll_acc
        pm.Potential("likelihood", pointwise.sum())
    return model, pointwise


# -- starting point ------------------------------------------------------------------


def node_profile(table: np.ndarray, rt: np.ndarray, correct: np.ndarray,
                 shifts=(0.5, 0.7, 0.8, 0.9, 0.95)) -> dict[str, np.ndarray]:
    """Log-likelihood at every grid node with the link parameters at their maximum (profile likelihood).

    RT: for each shift fraction, ordinary least squares of log(RT - shift) on L_t (slope >= 0);
    accuracy: logistic regression of correct on m_t (Newton steps). Returns arrays over the grid nodes
    (flattened): ``loglik`` and the maximising ``acc_intercept``, ``acc_slope``, ``rt_intercept``,
    ``rt_slope``, ``rt_sigma``, ``rt_shift``.
    """
    n = table.shape[-2]
    loss = table[..., 0].reshape(-1, n)
    margin = table[..., 1].reshape(-1, n)
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


def _profiles(fd: FitData, tables: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
    tr = fd.trials
    out = []
    for i, table in enumerate(tables):
        rows = (tr["pidx"] == i).to_numpy()
        out.append(node_profile(table, tr["rt"].to_numpy(dtype=float)[rows],
                                tr["correct"].to_numpy(dtype=bool)[rows]))
    return out


def initial_values(spec: ModelSpec, fd: FitData, tables: list[np.ndarray], *, hierarchical: bool = False,
                   node_rank: int = 0, positions: dict[str, float] | None = None, profiles=None) -> dict:
    """Starting values: each participant's ``node_rank``-th best grid node (profile likelihood).

    ``positions`` (box positions in [0, 1] by parameter name) overrides the node's network parameters
    while keeping the best node's link parameters (used for starts spread over the box); ``profiles``
    are precomputed :func:`node_profile` results, one per participant.
    """
    profiles = profiles if profiles is not None else _profiles(fd, tables)
    logits = {name: [] for name in spec.grid_names}
    link: dict[str, list] = {k: [] for k in ("acc_intercept", "acc_slope", "rt_intercept", "rt_slope", "rt_sigma",
                                             "rt_shift")}
    shape = tables[0].shape[:-2]
    for prof in profiles:
        order = np.argsort(prof["loglik"])[::-1]
        j = int(order[min(node_rank, len(order) - 1)])
        index = np.unravel_index(j, shape)
        for d, name in enumerate(spec.grid_names):
            pos = positions[name] if positions is not None else index[d] / (shape[d] - 1)
            pos = float(np.clip(pos, 0.03, 0.97))
            logits[name].append(np.log(pos / (1 - pos)))
        source = int(order[0]) if positions is not None else j
        for k in link:
            link[k].append(float(prof[k][source]))
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
            if k in ("acc_slope", "rt_slope", "rt_sigma"):
                v = np.clip(v, 1e-2, None)
            if k == "rt_shift":
                v = np.clip(v, 0.05, 0.95)
            out[k] = v
    return out


def find_mode(model, starts: list[dict]) -> tuple[dict, list[float]]:
    """Maximise the model's log density (L-BFGS) from each start; return the best point and all optima.

    Starts are dicts of free-variable values (constrained scale, as for ``pm.sample(initvals=...)``); the
    returned point is in the same form. The NTA likelihood has several local modes, so many starts are
    used (see :func:`starting_points`).
    """
    import pytensor
    from pymc.blocking import DictToArrayBijection
    from pymc.initial_point import make_initial_point_fn
    from scipy.optimize import minimize

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
    for start in starts:
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


def starting_points(spec: ModelSpec, fd: FitData, tables: list[np.ndarray], *, n_nodes: int = 4,
                    spread: int = 3) -> list[dict]:
    """Starts for :func:`find_mode`: the best ``n_nodes`` grid nodes, and a ``spread``^D lattice over the box."""
    profiles = _profiles(fd, tables)
    starts = [initial_values(spec, fd, tables, node_rank=k, profiles=profiles) for k in range(n_nodes)]
    levels = np.linspace(0.1, 0.9, spread)
    for combo in itertools.product(levels, repeat=len(spec.grid_names)):
        starts.append(initial_values(spec, fd, tables, positions=dict(zip(spec.grid_names, combo)),
                                     profiles=profiles))
    return starts


def _interpolate_np(table: np.ndarray, positions: list[float]) -> np.ndarray:
    """Multilinear interpolation of one participant's table (grid..., N, 2) at box positions (numpy)."""
    shape = table.shape[:-2]
    lower, frac = [], []
    for d, pos in enumerate(positions):
        u = float(pos) * (shape[d] - 1)
        i0 = int(np.clip(np.floor(u), 0, shape[d] - 2))
        lower.append(i0)
        frac.append(u - i0)
    out = 0.0
    for corner in itertools.product((0, 1), repeat=len(shape)):
        weight = np.prod([f if c else 1.0 - f for f, c in zip(frac, corner)])
        out = out + weight * table[tuple(i + c for i, c in zip(lower, corner))]
    return out


def _link_loglik(loss, margin, rt, correct, p) -> float:
    shift = p["rt_shift"] * rt.min()
    y = rt - shift
    mu = p["rt_intercept"] + p["rt_slope"] * loss
    z = (np.log(y) - mu) / p["rt_sigma"]
    ll_rt = -np.log(y) - np.log(p["rt_sigma"]) - 0.5 * np.log(2 * np.pi) - 0.5 * z**2
    eta = p["acc_intercept"] + p["acc_slope"] * margin
    ll_acc = np.where(correct, -np.logaddexp(0, -eta), -np.logaddexp(0, eta))
    return float((ll_rt + ll_acc).sum())


def interpolation_check(spec: ModelSpec, fd: FitData, tables: list[np.ndarray], posterior) -> list[dict]:
    """Exact network vs the interpolated grid at each participant's posterior mean.

    Runs the network exactly at the posterior-mean network parameters and returns, per participant, the
    log-likelihood of the data with exact and with interpolated predictors (link parameters at their
    posterior means). A large difference means the grid is too coarse there: the posterior describes the
    interpolant, not the network.
    """
    out = []
    tr = fd.trials
    for i, (seq, table) in enumerate(zip(fd.sequences, tables)):
        pid = fd.participants[i]
        rows = (tr["pidx"] == i).to_numpy()
        rt, correct = tr["rt"].to_numpy(dtype=float)[rows], tr["correct"].to_numpy(dtype=bool)[rows]
        mean = {k: float(posterior[k].sel(participant=pid).mean()) for k in
                (*spec.grid_names, "acc_intercept", "acc_slope", "rt_intercept", "rt_slope", "rt_sigma", "rt_shift")}
        positions = [float(np.clip(spec.parameters[n].position(mean[n]), 0.0, 1.0)) for n in spec.grid_names]
        interp = _interpolate_np(table, positions)
        tau_c, tau_w, lam = spec.network_values({n: np.array([mean[n]]) for n in spec.grid_names})
        exact = run_network(seq, tau_c, tau_w, lam, spec.network)
        ll_exact = _link_loglik(exact.loss[0], exact.margin[0], rt, correct, mean)
        ll_interp = _link_loglik(interp[:, 0], interp[:, 1], rt, correct, mean)
        out.append({"participant": pid, "loglik_exact": ll_exact, "loglik_interpolated": ll_interp,
                    "difference": ll_exact - ll_interp})
    return out
