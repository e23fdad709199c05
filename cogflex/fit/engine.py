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
           "design_matrices"]

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


def prepare(data: TrialData, *, participants=None, cleaning: CleaningRules | None = None,
            mapping: TaskMapping | None = None) -> FitData:
    """Select participants, clean, and encode the trial sequences.

    The observed-trial table has columns ``participant`` (text),
    ``pidx`` (index into ``participants``), ``session``, ``rt`` (s),
    ``correct`` (bool, see :func:`cogflex.fit.sequence.observed_outcomes`),
    ``switch``, ``congruent``, ``run_position``, ``log_practice`` (log session,
    centred per participant) and ``row`` (row of the full trial table).
    """
    trials = data.trials
    if participants:
        wanted = [str(p) for p in participants]
        present = set(trials["participant"].astype(str))
        unknown = [p for p in wanted if p not in present]
        if unknown:
            raise DataError(data.source, f"participant {unknown[0]!r} not in the data "
                                         f"(present: {', '.join(sorted(present)[:10])})", column="participant")
        trials = trials[trials["participant"].astype(str).isin(wanted)].reset_index(drop=True)
        trials["participant"] = trials["participant"].cat.remove_unused_categories()
        data = data.with_trials(trials)
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
            "log_practice": log_session - log_session.mean(), "row": rows}))
    table = pd.concat(frames, ignore_index=True)
    return FitData(source=data.source, digest=data.digest(), participants=[s.participant for s in sequences],
                   sequences=sequences, trials=table, cleaning=cleaned.cleaning, notes=notes)


# -- predictor tables ---------------------------------------------------------


def grid_points(spec: ModelSpec) -> dict[str, np.ndarray]:
    """Every grid point's parameter values (flattened meshgrid, C order over ``spec.grid_names``)."""
    nodes = [spec.parameters[n].nodes() for n in spec.grid_names]
    mesh = np.meshgrid(*nodes, indexing="ij")
    return {n: m.ravel() for n, m in zip(spec.grid_names, mesh)}


def _table_key(spec: ModelSpec, seq: Sequence) -> str:
    h = hashlib.sha256()
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
        return pm.Beta(name, prior.alpha, prior.beta, dims=dims)
    z = pm.Normal(f"{name}_z", 0.0, 1.0, dims=dims)
    sd = pm.HalfNormal(f"{name}_sd", group_sd)
    if prior.dist == "normal":
        mu = pm.Normal(f"{name}_mu", prior.mu, prior.sigma)
        return pm.Deterministic(name, mu + sd * z, dims=dims)
    if prior.dist == "halfnormal":
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
