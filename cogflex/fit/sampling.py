"""Sampling one fit job (one participant, or every participant of a hierarchical fit) with NUTS.

:func:`sample_job` runs the stages in order — predictor tables (:mod:`cogflex.fit.tables`), the PyMC model
(:mod:`cogflex.fit.pymc_model`), the start/mode search (:mod:`cogflex.fit.start`), the grid refinement around
the posterior (:mod:`cogflex.fit.refine`), NUTS (nutpie when
installed, else PyMC), the pointwise log-likelihood per draw and the exact-vs-interpolated check
(:mod:`cogflex.fit.checks`) — and returns plain arrays that :func:`cogflex.fit.schema.fit_tree` assembles.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import threading
import time
import warnings

import numpy as np

from cogflex.errors import FitError, InterruptedFit, one_line, shorten
from cogflex.fit.checks import box_bound_check, interpolation_check, separate_modes, weakly_identified
from cogflex.fit.prepare import FitData
from cogflex.fit.pymc_model import build_model
from cogflex.fit.refine import box_positions, recentre, refine_grid, window_edges
from cogflex.fit.start import (
    check_start,
    find_mode,
    hierarchical_start,
    profile_columns,
    spread_centred_groups,
    starting_points,
)
from cogflex.fit.tables import predictor_table

__all__ = ["as_fitted", "job_seed", "sample_job", "pointwise_loglik"]

#: Sampler statistics kept in the fit (those the sampler provides).
KEPT_STATS = ("diverging", "energy", "step_size", "n_steps", "tree_depth", "lp", "acceptance_rate",
              "mean_tree_accept", "depth", "logp")


def job_seed(seed: int, index: int) -> int:
    """The sampler seed of job ``index`` of a fit seeded with ``seed``."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def _mode_summary(optima) -> dict:
    optima = np.sort(np.asarray(optima)[np.isfinite(optima)])[::-1]
    if not len(optima):  # no start reached a finite density: check_start says so in one line
        return {"starts": 0, "best_logp": float("nan"), "starts_at_best": 0, "next_mode_gap": None}
    below = optima < optima[0] - 1.0
    return {"starts": len(optima), "best_logp": float(optima[0]), "starts_at_best": int((~below).sum()),
            "next_mode_gap": float(optima[0] - optima[below][0]) if below.any() else None}


@contextlib.contextmanager
def _heartbeat(label: str, enabled: bool, every: float = 30.0):
    """Plain progress lines (no terminal: a log file) while a long call runs: what runs and for how long."""
    if not enabled:
        yield
        return
    stop = threading.Event()
    start = time.perf_counter()
    print(f"{label}: started", file=sys.stderr, flush=True)

    def beat() -> None:
        while not stop.wait(every):
            print(f"{label}: running, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        print(f"{label}: done in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)


def pointwise_loglik(pm_model, pointwise, posterior, chains: int, draws: int, n_trials: int,
                     *, with_cdf: bool = False):
    """The model's own pointwise expression evaluated at every posterior draw: ``(chains, draws, trials)`` float32.

    ``with_cdf``: also each trial's RT CDF at its observed RT per draw (``pointwise.tag.rt_cdf``, same shape),
    returned second, for :func:`loo_pit`.
    """
    import pytensor
    from pytensor.graph.replace import graph_replace

    free = {rv: rv.type() for rv in pm_model.free_RVs}
    outputs = [pointwise, pointwise.tag.rt_cdf] if with_cdf else [pointwise]
    exprs = [e.astype("float32") for e in graph_replace(outputs, free, strict=False)]
    fn = pytensor.function(list(free.values()), exprs, on_unused_input="ignore")
    values = [posterior[rv.name].values for rv in pm_model.free_RVs]
    out = [np.empty((chains, draws, n_trials), dtype=np.float32) for _ in outputs]
    for c in range(chains):
        for d in range(draws):
            for array, value in zip(out, fn(*(v[c, d] for v in values))):
                array[c, d] = value
    return tuple(out) if with_cdf else out[0]


def loo_pit(posterior, log_lik: np.ndarray, rt_cdf: np.ndarray, *, chunk: int = 4000) -> np.ndarray:
    """LOO-PIT of each trial's RT: ``P(RT_rep <= RT_obs | all other trials)``, one value per trial.

    The expectation of the RT's CDF at the observed RT (the model's closed-form shifted log-normal CDF, per
    draw) under the leave-one-trial-out posterior, by PSIS (arviz-stats' ``loo_expectation``; r_eff from the
    posterior's ESS, as ArviZ's ``loo``). Uniform on [0, 1] when the model's RT distributions are calibrated; a
    U shape means predictive distributions too narrow, a hump too wide, a slope a shifted location. Computed
    over chunks of trials (arrays ``(chains, draws, trials)``).
    """
    import arviz_stats  # noqa: F401 - registers the .azstats accessor
    import xarray as xr

    from cogflex.fit.checks import quiet_numerics

    n = log_lik.shape[0] * log_lik.shape[1]
    ess = posterior.azstats.ess(method="mean") if log_lik.shape[0] > 1 else None
    # relative efficiency of the draws as ArviZ's loo takes it: the posterior's mean ESS over the draws
    r_eff = 1.0 if ess is None else float(np.hstack([ess[v].values.ravel() for v in ess.data_vars]).mean() / n)
    dims = ("chain", "draw", "observation")
    out = np.empty(log_lik.shape[-1])
    with quiet_numerics():
        for start in range(0, log_lik.shape[-1], chunk):
            part = slice(start, start + chunk)
            cdf = xr.DataArray(rt_cdf[..., part].astype(float), dims=dims)
            ratios = xr.DataArray(-log_lik[..., part].astype(float), dims=dims)
            mean, _ = cdf.azstats.loo_expectation(log_ratios=ratios, kind="mean", r_eff=r_eff,
                                                  sample_dims=["chain", "draw"])
            out[part] = mean.values
    return np.clip(out, 0.0, 1.0)


def _sample_nutpie(pm_model, *, initvals, jitter: bool, seed: int, chains: int, tune: int, draws: int,
                   target_accept: float, progress_bar: bool):
    """Sample ``pm_model`` with nutpie called directly: chains run in parallel on ``min(chains, CPUs)`` threads.

    Through ``pm.sample(nuts_sampler="nutpie")`` nutpie reports progress to a Python callback, and with that
    callback only one chain ran at a time (one busy worker thread of two on a 2-core machine, measured on the
    lab demo); without it every worker runs. Returns nutpie's DataTree (posterior, sample_stats, no warm-up).
    """
    import nutpie

    compile_kwargs: dict = {"backend": "numba"}
    if initvals is not None:
        compile_kwargs["initial_points"] = initvals
    if not jitter:
        compile_kwargs["jitter_rvs"] = set()  # chains start at the start point itself
    compiled = nutpie.compile_pymc_model(pm_model, **compile_kwargs)
    cores = min(chains, os.cpu_count() or 1)
    # in the background: a blocking call holds the GIL for the whole run (no heartbeat lines in logs, Ctrl-C
    # only at the end); polling keeps both
    sampler = nutpie.sample(compiled, draws=draws, tune=max(tune, 1), chains=chains, cores=cores, seed=seed,
                            target_accept=target_accept, progress_bar=progress_bar, save_warmup=False,
                            blocking=False)
    while True:
        try:
            return sampler.wait(timeout=0.5)  # TimeoutError while the chains still run
        except TimeoutError:
            continue
        except KeyboardInterrupt:
            sampler.cancel()
            raise


def _nuts(pm_model, options, sampler: str, with_tables: bool, initvals, seed: int, *, chains: int, tune: int,
          draws: int, label: str):
    """NUTS on ``pm_model`` (nutpie or PyMC); the posterior Dataset. Chains start unjittered at ``initvals``."""
    import pymc as pm

    kwargs: dict = {"nuts": {"target_accept": options.target_accept}}
    if initvals is not None:
        kwargs["initvals"] = initvals
    if sampler == "pymc":
        kwargs["cores"] = 1
        if with_tables:
            kwargs["init"] = "adapt_diag"  # no jitter of the starting point
    terminal = sys.stderr.isatty()
    with warnings.catch_warnings(), _heartbeat(f"{label}: sampling {chains} chains x {tune}+{draws}",
                                               options.progress and not terminal):
        warnings.simplefilter("ignore", UserWarning)
        try:
            if sampler == "nutpie":
                idata = _sample_nutpie(pm_model, initvals=initvals, jitter=not with_tables, seed=seed, chains=chains,
                                       tune=tune, draws=draws, target_accept=options.target_accept,
                                       progress_bar=options.progress and terminal)
            else:
                idata = pm.sample(draws=draws, tune=tune, chains=chains, random_seed=seed, nuts_sampler=sampler,
                                  progressbar=options.progress and terminal, model=pm_model,
                                  compute_convergence_checks=False, **kwargs)
        except KeyboardInterrupt:
            raise InterruptedFit("sampling interrupted: nothing was written") from None
        except (RuntimeError, ValueError) as exc:
            text = str(exc)
            if "initial" not in text.lower():
                raise
            # nutpie / PyMC refusing every start point: one line, not the sampler's traceback
            raise FitError(f"{label}: the sampler found no valid start point "
                           f"({one_line(shorten(text.splitlines()[0] if text else type(exc).__name__))})") from None
    post = idata["posterior"].to_dataset()
    if post.sizes.get("draw", 0) != draws or post.sizes.get("chain", 0) != chains:
        raise InterruptedFit(f"sampling stopped early ({post.sizes.get('draw', 0)} of {draws} draws): "
                             "nothing was written")
    return idata


def sample_job(model, fd: FitData, options, cache_dir: str | None, job_index: int) -> dict:
    """Sample one job; returns the posterior, sample stats, pointwise log-likelihood, seeds, checks and timings."""
    t0 = time.perf_counter()
    model = as_fitted(model, options.hierarchical)
    tables = None
    if model.uses_network:
        tables = [predictor_table(model, seq, cache_dir=cache_dir, progress=options.progress) for seq in fd.sequences]
    t_tables = time.perf_counter() - t0
    pm_model, pointwise = build_model(model, fd, tables=tables, hierarchical=options.hierarchical)
    seed = job_seed(options.seed, job_index)
    sampler = options.resolved_sampler()
    initvals = None
    mode_search = None
    t_mode = time.perf_counter()
    if tables is not None and profile_columns(model) is not None:
        # The network likelihood has local modes: start every chain at the best of many local optima.
        if options.hierarchical:
            # the participants' best nodes carried to the group level, then one search on the whole density
            initvals, optima = find_mode(pm_model, [hierarchical_start(model, fd, tables)], progress=options.progress)
            initvals = spread_centred_groups(model, pm_model, initvals)  # out of the centred groups' spike
            mode_search = _mode_summary(optima)
        else:
            initvals, optima = find_mode(pm_model, starting_points(model, fd, tables), progress=options.progress)
            mode_search = _mode_summary(optima)
    t1 = time.perf_counter()
    t_mode = t1 - t_mode
    who = "+".join(fd.participants) if len(fd.participants) <= 3 else f"{len(fd.participants)} participants"
    label = f"{model.name} {who}"
    searched = mode_search is not None and np.isfinite(mode_search["best_logp"])
    if (options.hierarchical or (tables is not None and initvals is None)) and not searched:
        # a one-line error instead of the sampler's failure (a mode search that ended at a finite density has
        # already evaluated the density and its gradient there)
        check_start(pm_model, initvals, label)

    def nuts(pm_model, initvals, seed, **settings):
        return _nuts(pm_model, options, sampler, tables is not None, initvals, seed, label=label, **settings)

    window, refinement = None, None
    if refines(model, fd, options):
        state = refine_grid(model, fd, options, cache_dir, {"tables": tables, "pm_model": pm_model,
                                                            "pointwise": pointwise, "start": initvals},
                            lambda m, init, s, **kw: nuts(m, init, s, **kw)["posterior"].to_dataset(), seed)
        window, tables, pm_model, pointwise, initvals = (state[k] for k in ("window", "tables", "pm_model",
                                                                            "pointwise", "start"))
        refinement = {"participant": fd.participants[0], "rounds": state["rounds"], "window": window.record(model)}
    t2 = time.perf_counter()
    t_refine = t2 - t1
    idata = nuts(pm_model, initvals, seed, chains=options.chains, tune=options.tune, draws=options.draws)
    post = idata["posterior"].to_dataset()
    if window is not None and window_edges(model, window, box_positions(model, post)):
        # the posterior reaches an inner edge of its window (the truncated prior cuts it): once, a window
        # laid over the fit's own draws, and the fit again
        first = window
        window, tables, pm_model, pointwise, initvals = recentre(model, fd, cache_dir, options, window, post)
        idata = nuts(pm_model, initvals, seed, chains=options.chains, tune=options.tune, draws=options.draws)
        post = idata["posterior"].to_dataset()
        refinement.update(window=window.record(model), recentred_from=first.record(model))
    t_sample = time.perf_counter() - t2
    ll, rt_cdf = pointwise_loglik(pm_model, pointwise, post, options.chains, options.draws, fd.n_trials,
                                  with_cdf=True)
    t_pit = time.perf_counter()
    pit = loo_pit(post, ll, rt_cdf)
    del rt_cdf
    t_pit = time.perf_counter() - t_pit
    check = None
    bounds = box_bound_check(model, post)
    if tables is not None:
        check = interpolation_check(model, fd, tables, post, windows=[window] if window is not None else None)
    if window is not None:
        edges = window_edges(model, window, box_positions(model, post))
        bounds += [{"participant": fd.participants[0], **e} for e in edges]
        refinement["final_at_edge"] = [e["parameter"] for e in edges]
    stats = idata["sample_stats"].to_dataset()
    return {"posterior": post, "sample_stats": stats[[v for v in KEPT_STATS if v in stats]], "log_likelihood": ll,
            "loo_pit": pit,
            "seed": seed, "mode_search": mode_search, "interpolation_check": check,
            "box_bounds": bounds, "weak_parameters": weakly_identified(model, post),
            "separate_modes": separate_modes(model, post),
            "grid_refinement": refinement,
            "seconds": {"tables": t_tables, "mode_search": t_mode, "refinement": t_refine, "sampling": t_sample,
                        "loo_pit": t_pit,
                        "total": time.perf_counter() - t0},
            "sampler": sampler}


def as_fitted(model, hierarchical: bool):
    """The model as a fit samples it: hierarchical fits read the tables with ``[hierarchy] interpolation``."""
    if hierarchical and model.uses_network and model.grid:
        return dataclasses.replace(model, interpolation=model.hierarchy.interpolation)
    return model


def refines(model, fd: FitData, options) -> bool:
    """Whether the job refines its grid: a network model's per-participant fit with ``options.refine``."""
    return bool(options.refine and model.uses_network and model.grid and not options.hierarchical
                and len(fd.participants) == 1)
