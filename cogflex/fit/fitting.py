"""Fit a model to trial data: the front door of the fitting layer (``cf.fit``, ``cogflex fit``).

:func:`fit` prepares the data (:mod:`cogflex.fit.prepare`), runs one sampling job per participant (or one
hierarchical job) on an executor, keeping finished jobs as resumable units, assembles the fit's DataTree
(:mod:`cogflex.fit.schema`: what every group and attribute holds) and writes ``<model>.nc`` and
``<model>.summary.json``. :class:`FitOptions` holds the sampler settings and their defaults, used by the
CLI and the pipeline alike.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from cogflex import __version__
from cogflex.data.dataset import TrialData
from cogflex.errors import CogflexError, ConfigError
from cogflex.fit.checks import (
    box_bound_warnings,
    diagnostic_warnings,
    diagnostics,
    interpolation_warnings,
    mode_warnings,
    quiet_numerics,
    weak_warnings,
)
from cogflex.fit.executor import LocalExecutor
from cogflex.fit.models import CognitiveModel, load_model
from cogflex.fit.options import SAMPLER_DEFAULTS, FitOptions
from cogflex.fit.prepare import FitData, prepare
from cogflex.fit.sampling import sample_job
from cogflex.fit.schema import fit_tree, fixed_parameters, load_fit, model_of, save_tree
from cogflex.io import check_output_dir, write_json
from cogflex.units import UnitStore

__all__ = ["FitWarning", "FitOptions", "FitResult", "fit", "diagnostics", "summarize_fit", "load_fit",
           "SAMPLER_DEFAULTS"]


class FitWarning(UserWarning):
    """A sampling diagnostic failed its threshold (the message says which, in plain words)."""


@dataclass
class FitResult:
    """A finished fit: the DataTree, its summary and where they were written."""

    tree: xr.DataTree
    summary: dict
    path: Path | None = None


def _subset(fd: FitData, i: int) -> FitData:
    tr = fd.trials[fd.trials["pidx"] == i].copy()
    tr["pidx"] = 0
    table = fd.participant_table.iloc[[i]] if fd.participant_table is not None else None
    return replace(fd, participants=[fd.participants[i]], sequences=[fd.sequences[i]], trials=tr,
                   participant_table=table)


def fit(data, model: str | Path | CognitiveModel, *, options: FitOptions | None = None, participants=None,
        out: str | Path | None = None, executor=None, mapping: dict | None = None, **loader) -> FitResult:
    """Fit ``model`` to ``data`` and (when ``out`` is given) write ``<model>.nc`` and ``<model>.summary.json``.

    Parameters
    ----------
    data
        Trials: a :class:`~cogflex.data.TrialData`, a trial file's path or a pandas DataFrame (both read with
        :func:`cogflex.data.load_trials`, taking ``mapping`` and the loader's keywords, e.g.
        ``format="csv"``), or prepared :class:`~cogflex.fit.prepare.FitData`. Trials are cleaned with
        :data:`cogflex.fit.prepare.FIT_CLEANING` and encoded for the network.
    model
        A preset name (``flexible``, ``forgetful``, ``descriptive``: ``cogflex presets``), a model TOML or
        Python file, or a model object (:class:`cogflex.fit.models.CognitiveModel`).
    options
        Sampler settings (:class:`FitOptions`); keyword arguments of :class:`FitOptions` may also be given
        directly (``cf.fit(df, "flexible", draws=500)``).
    participants
        Participant ids to fit (default: all).
    out
        Output directory (files are written atomically; predictor tables are cached in ``out/.cache``).
    executor
        Runs per-participant jobs (default :class:`~cogflex.fit.executor.LocalExecutor`, in process).

    Examples
    --------
    >>> import cogflex as cf
    >>> result = cf.fit("data/synthetic/flexible_players.csv.gz", "flexible", draws=500, out="fits")
    >>> result.summary["rhat_max"]  # doctest: +SKIP
    """
    option_names = {f.name for f in fields(FitOptions)}
    given = {k: loader.pop(k) for k in list(loader) if k in option_names}
    if given:
        options = replace(options or FitOptions(), **given)
    options = options or FitOptions()
    if out is not None:
        check_output_dir(out, "out")
    spec = load_model(model)
    trials = _as_trials(data, mapping, loader)
    fd = trials if isinstance(trials, FitData) else prepare(trials, participants=participants)
    options = options.resolved(fd)  # hierarchical = "auto" decided on the data (HIERARCHICAL_RULE)
    if spec.hierarchy.covariates:
        if options.hierarchical:
            for c in spec.hierarchy.covariates:
                fd.covariate(c)  # a missing or constant covariate is a one-line error before any work
            raw = {c: fd.participant_table[c].to_numpy(dtype=float) for c in spec.hierarchy.covariates}
            fd = replace(fd, notes=[*fd.notes, *(
                f"group-level covariate {c}: standardised over the {len(v)} participants (mean {v.mean():.4g}, "
                f"SD {v.std():.4g}); its slopes are in logit box position per SD of {c}" for c, v in raw.items())])
        else:
            warnings.warn(f"{spec.name}: the covariates {', '.join(spec.hierarchy.covariates)} act on the group "
                          "level and are ignored by per-participant fits (fit hierarchically to estimate them)",
                          FitWarning, stacklevel=2)
    out = Path(out) if out is not None else None
    cache_dir = str(out / ".cache") if out is not None else None
    start = time.perf_counter()
    if options.hierarchical or len(fd.participants) == 1:
        jobs = [fd]
    else:
        jobs = [_subset(fd, i) for i in range(len(fd.participants))]
    executor = executor or LocalExecutor()
    results = _run_units(spec, jobs, options, cache_dir, executor, out)
    tree = fit_tree(spec, fd, options, results, hierarchical=options.hierarchical)
    if options.posterior_predictive:
        if not isinstance(trials, TrialData):
            raise CogflexError("posterior predictive replications need the trial data, not prepared FitData")
        tree["posterior_predictive"] = _posterior_predictive(tree, trials, fd, options)
    wall = time.perf_counter() - start
    tree.attrs["wall_seconds"] = wall
    summary = summarize_fit(tree)
    summary["wall_seconds"] = wall
    for message in summary["warnings"]:
        warnings.warn(f"{spec.name}: {message}", FitWarning, stacklevel=2)
    path = None
    if out is not None:
        path = out / f"{spec.name}.nc"
        save_tree(tree, path)
        write_json(out / f"{spec.name}.summary.json", summary)
    return FitResult(tree=tree, summary=summary, path=path)


def _as_trials(data, mapping, loader: dict):
    """TrialData or FitData from what :func:`fit` was given."""
    if isinstance(data, TrialData | FitData):
        if mapping is not None or loader:
            raise ConfigError("mapping", "a mapping and loader options apply to a file or DataFrame, not to loaded "
                                         "trials")
        return data
    if isinstance(data, str | Path | pd.DataFrame):
        from cogflex.data import load_trials

        if mapping is not None:
            loader.setdefault("format", "csv")
        return load_trials(data, mapping=mapping, **loader)
    raise ConfigError("data", f"expected trials (TrialData), a trial file or a pandas DataFrame, got "
                              f"{type(data).__name__}")


def _unit_settings(spec: CognitiveModel, job: FitData, options: FitOptions, index: int) -> dict:
    """Everything one participant's (or a hierarchical) fit depends on: its unit key."""
    return {"model_spec": spec.to_dict(), "data": _job_digest(job), "participants": job.participants,
            "job_index": index, "seed": options.seed, "draws": options.draws, "tune": options.tune,
            "chains": options.chains, "sampler": options.resolved_sampler(),
            "target_accept": options.target_accept, "hierarchical": options.hierarchical,
            "refine": options.refine_record(),
            "cogflex_version": __version__}


def _job_digest(job: FitData) -> str:
    """Hash of one job's own data (its sequences and observed trials), not of the whole file.

    Editing one participant's trials changes only that participant's unit.
    """
    import hashlib

    h = hashlib.sha256()
    for seq in job.sequences:
        for arr in (seq.task, seq.features, seq.session, seq.observed):
            h.update(np.ascontiguousarray(arr).tobytes())
    # row, seq_row: where the trials sit in the file and in the whole selection, not what they are
    h.update(job.trials.drop(columns=["row", "seq_row"], errors="ignore").to_csv(index=False).encode())
    return h.hexdigest()


def _run_units(spec: CognitiveModel, jobs: list[FitData], options: FitOptions, cache_dir: str | None, executor,
               out: Path | None) -> list[dict]:
    """Run the jobs; with ``out``, keep every finished job in ``out/.units/<model>/`` and reuse it on a rerun."""
    if out is None:
        return executor.map(sample_job, [(spec, job, options, cache_dir, i) for i, job in enumerate(jobs)])
    store = UnitStore(out / ".units" / spec.name)
    store.clear_stale_parts()
    names = ["+".join(job.participants) if options.hierarchical else job.participants[0] for job in jobs]
    settings = [_unit_settings(spec, job, options, i) for i, job in enumerate(jobs)]
    results: list[dict | None] = [store.load(f"{spec.name} {n}", s) for n, s in zip(names, settings)]
    reused = sum(r is not None for r in results)
    if reused:
        print(f"{spec.name}: reusing {reused} finished participant fit(s) from {store.folder}", file=sys.stderr)
    todo = [i for i, r in enumerate(results) if r is None]

    def done(k: int, result: dict) -> None:
        i = todo[k]
        results[i] = result
        store.save(f"{spec.name} {names[i]}", settings[i], result, seconds=result["seconds"]["total"])

    executor.run(sample_job, [(spec, jobs[i], options, cache_dir, i) for i in todo], on_done=done)
    return results  # type: ignore[return-value]


def _posterior_predictive(tree: xr.DataTree, data: TrialData, fd: FitData, options: FitOptions) -> xr.Dataset:
    """RT and correctness of the observed trials in ``options.posterior_predictive`` replications (one chain)."""
    from cogflex.fit.predictive import replicate

    reps = replicate(tree, data, draws=options.posterior_predictive, seed=options.seed)
    rows = fd.trials["seq_row"].to_numpy()  # replications hold the selected participants' trials, in order
    rt = np.stack([r.trials["rt"].to_numpy(dtype=float)[rows] for r in reps])[None]
    correct = np.stack([r.trials["correct"].to_numpy(dtype=np.int8)[rows] for r in reps])[None]
    return xr.Dataset({"rt": (("chain", "draw", "observation"), rt),
                       "correct": (("chain", "draw", "observation"), correct)},
                      coords={"chain": [0], "draw": np.arange(len(reps)), "observation": np.arange(fd.n_trials)},
                      attrs={"seed": options.seed})


def _interval(values: np.ndarray) -> dict:
    lo, hi = np.quantile(values, [0.03, 0.97])
    return {"mean": float(values.mean()), "low_94": float(lo), "high_94": float(hi)}


def summarize_fit(tree: xr.DataTree) -> dict:
    """The stable summary written to ``<model>.summary.json``."""
    with quiet_numerics():
        return _summarize_fit(tree)


def reported_parameters(tree: xr.DataTree) -> tuple[str, ...]:
    """The fitted model's free parameters on their own scale (grid parameters, scalars, coefficient blocks)."""
    model = model_of(tree)
    return (*model.grid, *model.priors, *model.coefficients)


def _summarize_fit(tree: xr.DataTree) -> dict:
    post = tree["posterior"].to_dataset()
    diag = diagnostics(tree)
    participants = json.loads(tree.attrs["participants"])
    params: dict = {}
    for name in reported_parameters(tree):
        if name not in post:
            continue
        da = post[name]
        extra = [d for d in da.dims if d not in ("chain", "draw", "participant")]
        entry: dict = {}
        for p in participants:
            sub = da.sel(participant=p) if "participant" in da.dims else da
            if extra:
                entry[p] = {str(k): _interval(sub.sel({extra[0]: k}).values.ravel())
                            for k in sub[extra[0]].values}
            else:
                entry[p] = _interval(sub.values.ravel())
        params[name] = entry
    attrs = tree.attrs
    return {"model": attrs["model"], "n_trials": int(attrs["n_trials"]), "participants": participants,
            "hierarchical": bool(attrs["hierarchical"]), "rhat_max": diag["rhat_max"],
            "ess_bulk_min": diag["ess_bulk_min"], "ess_tail_min": diag["ess_tail_min"],
            "divergences": diag["divergences"], "ebfmi_min": diag["ebfmi_min"],
            "wall_seconds": float(attrs.get("wall_seconds", float("nan"))),
            "seconds": json.loads(attrs["seconds"]), "sampler": attrs["sampler"],
            "draws": int(attrs["draws"]), "chains": int(attrs["chains"]), "seed": int(attrs["seed"]),
            "data_digest": attrs["data_digest"], "trial_set": attrs["trial_set"],
            "notes": json.loads(attrs["notes"]), "fixed_parameters": fixed_parameters(tree),
            "interpolation_check": json.loads(attrs.get("interpolation_check", "[]")),
            "box_bounds": json.loads(attrs.get("box_bounds", "[]")),
            "weak_parameters": json.loads(attrs.get("weak_parameters", "[]")),
            "separate_modes": json.loads(attrs.get("separate_modes", "[]")),
            "correctness": next((n for n in json.loads(attrs["notes"]) if n.startswith("correctness:")), None),
            "warnings": json.loads(attrs.get("data_warnings", "[]")) + diagnostic_warnings(diag)
            + interpolation_warnings(json.loads(attrs.get(
                "interpolation_check", "[]"))) + box_bound_warnings(json.loads(attrs.get("box_bounds", "[]")))
            + mode_warnings(json.loads(attrs.get("separate_modes", "[]")))
            + weak_warnings(json.loads(attrs.get("weak_parameters", "[]"))),
            "parameters": params, "group": group_parameters(tree)}


def group_parameters(tree: xr.DataTree) -> dict:
    """A hierarchical fit's group level: mean and 94% interval of every group variable, and on their own scale.

    Keys are the posterior's group variables (``<parameter>_mu`` / ``_logmu`` / ``_logitmu``, ``_sd`` and
    covariate slopes ``<parameter>_<covariate>_slope``). For each network parameter also ``<parameter>_median``:
    the group's median value on the parameter's own scale (at the covariates' mean), and for each slope
    ``<parameter>_<covariate>_slope_log``: the change of the parameter's log value per covariate SD at the group
    median (log-scale boxes; the chain rule through the logit box position). Empty for per-participant fits.
    """
    if not int(tree.attrs["hierarchical"]):
        return {}
    post = tree["posterior"].to_dataset()
    model = model_of(tree)
    group = {}
    for name, da in post.data_vars.items():
        if "participant" in da.dims or name.endswith(("_z", "_logit")) or name in reported_parameters(tree):
            continue
        if da.dims == ("chain", "draw"):
            group[name] = _interval(da.values.ravel())
    for name, gp in model.grid.items():
        if f"{name}_mu" not in post:
            continue
        pos = 1.0 / (1.0 + np.exp(-post[f"{name}_mu"].values.ravel()))
        group[f"{name}_median"] = _interval(np.asarray(gp.value(pos), dtype=float))
        for cov in model.hierarchy.covariates:
            slope = f"{name}_{cov}_slope"
            if slope in post and gp.scale == "log":
                width = np.log(gp.upper) - np.log(gp.lower)
                group[f"{slope}_log"] = _interval(post[slope].values.ravel() * pos * (1 - pos) * width)
    return group
