"""Fit a model to trial data: sampling, pointwise log-likelihood, diagnostics, saved DataTree.

:func:`fit` is the one entry point (the CLI's ``cogflex fit``). Per-participant
fits are independent jobs run by an executor (:mod:`cogflex.fit.executor`);
a hierarchical fit is one job over all participants. The result is an
``xarray.DataTree`` with groups ``posterior``, ``sample_stats``,
``log_likelihood`` (variable ``trial``: joint log density of correct and RT
per observed trial along dimension ``observation``, float32), ``observed_data`` and, on request,
``posterior_predictive``; its attributes hold the model spec, data hash,
seeds, sampler and cogflex version.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import xarray as xr

from cogflex import __version__
from cogflex.data.dataset import TrialData
from cogflex.errors import CogflexError, ConfigError, InterruptedFit
from cogflex.fit.engine import (
    FitData,
    build_model,
    find_mode,
    initial_values,
    interpolation_check,
    predictor_table,
    prepare,
    starting_points,
)
from cogflex.fit.executor import LocalExecutor
from cogflex.fit.spec import ModelSpec, load_model
from cogflex.io import atomic_path, write_json
from cogflex.units import UnitStore

__all__ = ["FitWarning", "FitOptions", "FitResult", "fit", "diagnostics", "summarize_fit", "load_fit",
           "NAMED_PARAMETERS"]

#: Parameters reported in ``<model>.summary.json`` (those present in the posterior).
NAMED_PARAMETERS = ("gate_timescale", "weight_timescale", "regularization", "timescale", "acc_intercept",
                    "acc_slope", "rt_intercept", "rt_slope", "rt_sigma", "rt_shift", "rt_coefficient",
                    "acc_coefficient")


class FitWarning(UserWarning):
    """A sampling diagnostic failed its threshold (the message says which, in plain words)."""


@dataclass(frozen=True)
class FitOptions:
    """Sampler settings of a fit."""

    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    seed: int = 0
    sampler: str = "auto"  # auto | nutpie | pymc
    target_accept: float = 0.9
    hierarchical: bool = False
    progress: bool = True
    posterior_predictive: int = 0  # replications of the data under posterior draws (0: none)

    def __post_init__(self) -> None:
        for name in ("draws", "tune", "chains"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (0 if name == "tune" else 1):
                raise ConfigError(name, f"must be an integer >= {0 if name == 'tune' else 1}, got {value!r}")
        if not 0 < self.target_accept < 1:
            raise ConfigError("target_accept", f"must be between 0 and 1 (exclusive), got {self.target_accept}")
        if self.sampler not in ("auto", "nutpie", "pymc"):
            raise ConfigError("sampler", f"must be auto, nutpie or pymc, got {self.sampler!r}")
        if self.posterior_predictive < 0:
            raise ConfigError("posterior_predictive", "must not be negative")

    def resolved_sampler(self) -> str:
        """``nutpie`` when installed (much faster), else PyMC's own NUTS."""
        if self.sampler != "auto":
            return self.sampler
        try:
            import nutpie  # noqa: F401
        except ImportError:
            return "pymc"
        return "nutpie"


@dataclass
class FitResult:
    """A finished fit: the DataTree, its summary and where they were written."""

    tree: xr.DataTree
    summary: dict
    path: Path | None = None


def _job_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def _fit_one(spec: ModelSpec, fd: FitData, options: FitOptions, cache_dir: str | None, job_index: int) -> dict:
    """Sample one job (one participant, or all for a hierarchical fit); returns plain arrays + stats."""
    import pymc as pm
    import pytensor
    from pytensor.graph.replace import graph_replace

    t0 = time.perf_counter()
    tables = None
    if spec.kind == "nta":
        tables = [predictor_table(spec, seq, cache_dir=cache_dir, progress=options.progress) for seq in fd.sequences]
    t_tables = time.perf_counter() - t0
    model, pointwise = build_model(spec, fd, tables=tables, hierarchical=options.hierarchical)
    seed = _job_seed(options.seed, job_index)
    sampler = options.resolved_sampler()
    kwargs = {"nuts": {"target_accept": options.target_accept}}
    mode_search = None
    t_mode = time.perf_counter()
    if tables is not None:
        # The NTA likelihood has local modes: start every chain at the best of many local optima.
        if options.hierarchical:
            kwargs["initvals"] = initial_values(spec, fd, tables, hierarchical=True)
        else:
            best, optima = find_mode(model, starting_points(spec, fd, tables))
            kwargs["initvals"] = best
            optima = np.sort(np.asarray(optima)[np.isfinite(optima)])[::-1]
            mode_search = {"starts": len(optima), "best_logp": float(optima[0]),
                           "starts_at_best": int((optima > optima[0] - 1.0).sum()),
                           "next_mode_gap": float(optima[0] - optima[optima < optima[0] - 1.0][0])
                           if (optima < optima[0] - 1.0).any() else None}
    if sampler == "pymc":
        kwargs["cores"] = 1
        if tables is not None:
            kwargs["init"] = "adapt_diag"  # no jitter of the starting point
    elif tables is not None:
        kwargs["compile_kwargs"] = {"jitter_rvs": set()}
    t1 = time.perf_counter()
    t_mode = t1 - t_mode
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            idata = pm.sample(draws=options.draws, tune=options.tune, chains=options.chains, random_seed=seed,
                              nuts_sampler=sampler, progressbar=options.progress, model=model,
                              compute_convergence_checks=False, **kwargs)
        except KeyboardInterrupt:
            raise InterruptedFit("sampling interrupted: nothing was written") from None
    t_sample = time.perf_counter() - t1
    post = idata["posterior"].to_dataset()
    if post.sizes.get("draw", 0) != options.draws or post.sizes.get("chain", 0) != options.chains:
        raise InterruptedFit(f"sampling stopped early ({post.sizes.get('draw', 0)} of {options.draws} draws): "
                             "nothing was written")
    # Pointwise log-likelihood: the model's own expression, evaluated per draw.
    free = {rv: rv.type() for rv in model.free_RVs}
    expr = graph_replace([pointwise], free, strict=False)[0]
    fn = pytensor.function(list(free.values()), expr.astype("float32"), on_unused_input="ignore")
    names = [rv.name for rv in model.free_RVs]
    values = [post[n].values for n in names]
    chains, draws = options.chains, options.draws
    ll = np.empty((chains, draws, fd.n_trials), dtype=np.float32)
    for c in range(chains):
        for d in range(draws):
            ll[c, d] = fn(*(v[c, d] for v in values))
    check = interpolation_check(spec, fd, tables, post) if tables is not None else None
    stats = idata["sample_stats"].to_dataset()
    keep_stats = [v for v in ("diverging", "energy", "step_size", "n_steps", "tree_depth", "lp", "acceptance_rate",
                              "mean_tree_accept", "depth", "logp") if v in stats]
    return {"posterior": post, "sample_stats": stats[keep_stats], "log_likelihood": ll, "seed": seed,
            "mode_search": mode_search, "interpolation_check": check,
            "seconds": {"tables": t_tables, "mode_search": t_mode, "sampling": t_sample,
                        "total": time.perf_counter() - t0},
            "sampler": sampler}


def _subset(fd: FitData, i: int) -> FitData:
    tr = fd.trials[fd.trials["pidx"] == i].copy()
    tr["pidx"] = 0
    return replace(fd, participants=[fd.participants[i]], sequences=[fd.sequences[i]], trials=tr)


def fit(data: TrialData | FitData, model: str | Path | ModelSpec, *, options: FitOptions | None = None,
        participants=None, out: str | Path | None = None, executor=None) -> FitResult:
    """Fit ``model`` to ``data`` and (when ``out`` is given) write ``<model>.nc`` and ``<model>.summary.json``.

    Parameters
    ----------
    data
        Trials (cleaned and encoded here with :data:`cogflex.fit.engine.FIT_CLEANING`), or prepared data.
    model
        ``flexible``, ``forgetful``, ``descriptive`` or a model TOML file, or a spec.
    options
        Sampler settings (:class:`FitOptions`).
    participants
        Participant ids to fit (default: all).
    out
        Output directory (files are written atomically; predictor tables are cached in ``out/.cache``).
    executor
        Runs per-participant jobs (default :class:`~cogflex.fit.executor.LocalExecutor`, in process).
    """
    options = options or FitOptions()
    spec = model if isinstance(model, ModelSpec) else load_model(model)
    fd = data if isinstance(data, FitData) else prepare(data, participants=participants)
    out = Path(out) if out is not None else None
    cache_dir = str(out / ".cache") if out is not None else None
    start = time.perf_counter()
    if options.hierarchical or len(fd.participants) == 1:
        jobs = [fd]
    else:
        jobs = [_subset(fd, i) for i in range(len(fd.participants))]
    executor = executor or LocalExecutor()
    results = _run_units(spec, jobs, options, cache_dir, executor, out)
    tree = _assemble(spec, fd, options, results, hierarchical=options.hierarchical)
    if options.posterior_predictive:
        if not isinstance(data, TrialData):
            raise CogflexError("posterior predictive replications need the trial data, not prepared FitData")
        tree["posterior_predictive"] = _posterior_predictive(tree, data, fd, options)
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


def _unit_settings(spec: ModelSpec, job: FitData, options: FitOptions, index: int) -> dict:
    """Everything one participant's (or a hierarchical) fit depends on: its unit key."""
    return {"model_spec": spec.to_dict(), "data": _job_digest(job), "participants": job.participants,
            "job_index": index, "seed": options.seed, "draws": options.draws, "tune": options.tune,
            "chains": options.chains, "sampler": options.resolved_sampler(),
            "target_accept": options.target_accept, "hierarchical": options.hierarchical,
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


def _run_units(spec: ModelSpec, jobs: list[FitData], options: FitOptions, cache_dir: str | None, executor,
               out: Path | None) -> list[dict]:
    """Run the jobs; with ``out``, keep every finished job in ``out/.units/<model>/`` and reuse it on a rerun."""
    if out is None:
        return executor.map(_fit_one, [(spec, job, options, cache_dir, i) for i, job in enumerate(jobs)])
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

    executor.run(_fit_one, [(spec, jobs[i], options, cache_dir, i) for i in todo], on_done=done)
    return results  # type: ignore[return-value]


def _assemble(spec: ModelSpec, fd: FitData, options: FitOptions, results: list[dict], *, hierarchical: bool):
    if len(results) == 1:
        post = results[0]["posterior"]
        stats = results[0]["sample_stats"]
        ll = results[0]["log_likelihood"]
    else:
        post = xr.concat([r["posterior"] for r in results], dim="participant", data_vars="minimal",
                         coords="minimal", compat="override", join="outer")
        stats = xr.concat([r["sample_stats"].expand_dims(participant=[fd.participants[i]])
                           for i, r in enumerate(results)], dim="participant")
        ll = np.concatenate([r["log_likelihood"] for r in results], axis=-1)
    post = post.assign_coords(participant=fd.participants)
    n = fd.n_trials
    tr = fd.trials
    trial_coords = {"observation": np.arange(n)}
    log_lik = xr.Dataset({"trial": (("chain", "draw", "observation"), ll)},
                         coords={"chain": post["chain"].values, "draw": post["draw"].values, **trial_coords})
    observed = xr.Dataset({
        "rt": ("observation", tr["rt"].to_numpy(dtype=float)),
        "correct": ("observation", tr["correct"].to_numpy(dtype=np.int8)),
        "participant": ("observation", tr["participant"].to_numpy(dtype=str)),
        "session": ("observation", tr["session"].to_numpy()),
        "switch": ("observation", tr["switch"].to_numpy(dtype=np.int8)),
        "congruent": ("observation", tr["congruent"].to_numpy(dtype=np.int8)),
        "run_position": ("observation", tr["run_position"].to_numpy()),
        "row": ("observation", tr["row"].to_numpy()),
    }, coords=trial_coords)
    groups = {"posterior": post, "sample_stats": stats, "log_likelihood": log_lik, "observed_data": observed}
    tree = xr.DataTree.from_dict(groups)
    seconds = {k: float(sum(r["seconds"][k] for r in results)) for k in ("tables", "mode_search", "sampling", "total")}
    tree.attrs.update({
        "model": spec.name,
        "model_kind": spec.kind,
        "model_spec": json.dumps(spec.to_dict()),
        "data_source": str(fd.source),
        "data_digest": fd.digest,
        "n_trials": n,
        "participants": json.dumps(fd.participants),
        "trial_set": trial_set_digest(fd),
        "hierarchical": int(hierarchical),
        "seed": options.seed,
        "job_seeds": json.dumps([r["seed"] for r in results]),
        "sampler": results[0]["sampler"],
        "draws": options.draws, "tune": options.tune, "chains": options.chains,
        "target_accept": options.target_accept,
        "seconds": json.dumps(seconds),
        "mode_search": json.dumps([r.get("mode_search") for r in results]),
        "interpolation_check": json.dumps([c for r in results for c in (r.get("interpolation_check") or [])]),
        "notes": json.dumps(fd.notes),
        "cleaning": fd.cleaning.to_json(),
        "cogflex_version": __version__,
    })
    return tree


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


def trial_set_digest(fd: FitData) -> str:
    """Hash of exactly which trials (data file content, participants, rows) enter the likelihood."""
    import hashlib

    h = hashlib.sha256(fd.digest.encode())
    h.update(fd.trials[["participant", "row"]].to_csv(index=False).encode())
    return h.hexdigest()


def save_tree(tree: xr.DataTree, path: str | Path) -> None:
    """Write a fit to netCDF atomically."""
    with atomic_path(path) as tmp:
        tree.to_netcdf(tmp, engine="h5netcdf")


def load_fit(path: str | Path) -> xr.DataTree:
    """Open a saved fit, with a clear error for files that are not cogflex fits."""
    path = Path(path)
    if not path.exists():
        raise CogflexError(f"{path}: no such fit file")
    try:
        tree = xr.open_datatree(path, engine="h5netcdf").load()
    except Exception as exc:  # noqa: BLE001 - any read failure means a damaged file
        raise CogflexError(f"{path}: not a readable netCDF fit ({type(exc).__name__}: {exc})") from None
    for group in ("posterior", "log_likelihood"):
        if group not in tree.children:
            raise CogflexError(f"{path}: group {group!r} is missing (not a complete cogflex fit)")
    return tree


@contextlib.contextmanager
def _quiet_numerics():
    """Silence NaN/all-NaN RuntimeWarnings (constant parameters, single chains): NaN is reported instead."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def diagnostics(tree: xr.DataTree) -> dict:
    """R-hat, bulk/tail ESS, divergences and E-BFMI of a fit (R-hat is NaN with a single chain)."""
    with _quiet_numerics():
        return _diagnostics(tree)


def _diagnostics(tree: xr.DataTree) -> dict:
    import arviz as az

    post = tree["posterior"].to_dataset()
    names = [v for v in post.data_vars if not v.endswith("_z")]
    ds = post[names]
    rhat = az.rhat(ds)
    ess_bulk = az.ess(ds, method="bulk")
    ess_tail = az.ess(ds, method="tail")
    stats = tree["sample_stats"].to_dataset()
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
                                  "ess_tail": float(np.nanmin(ess_tail[v].values))} for v in ds.data_vars}}


def _interval(values: np.ndarray) -> dict:
    lo, hi = np.quantile(values, [0.03, 0.97])
    return {"mean": float(values.mean()), "low_94": float(lo), "high_94": float(hi)}


def summarize_fit(tree: xr.DataTree) -> dict:
    """The stable summary written to ``<model>.summary.json``."""
    with _quiet_numerics():
        return _summarize_fit(tree)


def _summarize_fit(tree: xr.DataTree) -> dict:
    post = tree["posterior"].to_dataset()
    diag = diagnostics(tree)
    participants = json.loads(tree.attrs["participants"])
    params: dict = {}
    for name in NAMED_PARAMETERS:
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
            "notes": json.loads(attrs["notes"]),
            "interpolation_check": json.loads(attrs.get("interpolation_check", "[]")),
            "warnings": diagnostic_warnings(diag) + _interpolation_warnings(json.loads(attrs.get(
                "interpolation_check", "[]"))),
            "parameters": params}


def _interpolation_warnings(checks: list[dict], limit: float = 5.0) -> list[str]:
    out = []
    for c in checks:
        if abs(c["difference"]) > limit:
            out.append(f"participant {c['participant']}: at the posterior mean the exact network's log-likelihood "
                       f"differs by {c['difference']:+.1f} from the interpolated grid's (> {limit:g}): the grid is "
                       "too coarse there (more points in the model's [parameters])")
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


