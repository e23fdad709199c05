"""The command line of model comparison, reports and pipelines.

``cogflex compare``, ``cogflex report``, ``cogflex run`` and the pipeline ``demo``.
"""

from __future__ import annotations

from pathlib import Path

from cogflex.executors import add_backend_options

__all__ = ["add_pipeline_commands", "run_demo"]


def _cmd_compare(args) -> int:
    import pandas as pd

    from cogflex.fit.compare import compare_fits, compare_shards, group_shards, load_fits, verdict_phrase

    shards = group_shards(args.fits)
    if len(shards) == 1:
        comparison = compare_fits(load_fits(list(shards[0].values())), thin=args.thin, progress=not args.quiet)
    else:
        from cogflex.executors import make_executor

        print(f"{len(shards)} shards of participants, {len(shards[0])} models each: compared shard by shard")
        executor = make_executor(args.backend, workers=args.jobs, address=args.address)
        try:
            parallel = args.backend == "ray" or args.jobs > 1
            comparison = compare_shards(shards, thin=args.thin, progress=not args.quiet,
                                        executor=executor if parallel else None)
        finally:
            executor.close()
    comparison.to_csv(args.out)
    pd.set_option("display.width", 160)
    shown = ["participant", "model", "rank", "elpd_loo", "se", "elpd_diff", "dse", "weight", "pareto_k_max",
             "n_pareto_k_bad"]
    print(comparison.table[shown].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print("\nEvery pair of models (ELPD A - B, SE of the pointwise differences):")
    print(comparison.pairwise.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    for pid, w in comparison.winners().items():
        if w["runner_up"] is not None:
            print(f"{'pooled' if pid == 'all' else 'participant ' + pid}: {w['model']} wins by {w['elpd_diff']:.1f} "
                  f"+- {w['dse']:.1f} ELPD over {w['runner_up']}, {verdict_phrase(w)}")
    print(f"wrote {args.out}")
    return 0


def _report_data(args, fits):
    """The trial data for posterior predictive checks: --data, or the fits' own data file; None + why."""
    from cogflex.data.cli import _load

    source = args.file or fits.attrs.get("data_source")
    if not source or not Path(source).exists():
        return None, f"the data file ({source}) is not available; pass --data FILE"
    args.file = source
    try:
        return _load(args), None
    except Exception as exc:  # noqa: BLE001 - the report is still written, saying why the checks are missing
        return None, f"could not read {source}: {exc}"


def _cmd_report(args) -> int:
    from cogflex.fit.compare import compare_fits, load_fits
    from cogflex.fit.options import check_seed
    from cogflex.fit.ppc import posterior_predictive_check
    from cogflex.report import write_report

    check_seed(args.ppc_seed, "--ppc-seed")
    fits = load_fits(args.fits)
    comparison = compare_fits(fits, thin=args.thin, progress=not args.quiet)
    out = Path(args.out)
    out_json = Path(args.json) if args.json else out.with_suffix(".json")
    ppc, note, settings = None, "--ppc-draws 0", None
    bins = _bins(args.practice_bins)
    if args.ppc_draws:
        data, note = _report_data(args, fits)
        if data is not None:
            import pandas as pd

            from cogflex.fit.schema import model_of

            simulated = {n: t for n, t in fits.trees.items() if model_of(t).simulates}
            for name in set(fits.trees) - set(simulated):
                print(f"cogflex: no posterior predictive checks of {name}: it was fitted outside cogflex")
            ppc = pd.concat([posterior_predictive_check(t, data, draws=args.ppc_draws, seed=args.ppc_seed, bins=bins)
                             for t in simulated.values()], ignore_index=True) if simulated else None
            settings = {"draws": args.ppc_draws, "seed": args.ppc_seed, "bins": bins}
        else:
            print(f"cogflex: no posterior predictive checks: {note}")
    comparison.to_csv(out.with_name("comparison.csv"))
    write_report(fits, comparison, out, out_json=out_json, ppc=ppc, data=None, title=args.title,
                 ppc_settings=settings, ppc_note=note)
    print(f"wrote {out}, {out_json} and {out.with_name('comparison.csv')}")
    return 0


def _bins(text: str):
    from cogflex.errors import ConfigError

    try:
        return int(text)
    except ValueError:
        try:
            return [float(v) for v in text.split(",")]
        except ValueError:
            raise ConfigError("practice-bins", f"expected a number of bins or comma-separated edges, got {text!r}") \
                from None


def _cmd_run(args) -> int:
    from cogflex.executors import make_executor
    from cogflex.pipeline import load_pipeline, run_pipeline

    pipe = load_pipeline(args.pipeline)
    executor = make_executor(args.backend, workers=pipe.fit.jobs, address=args.address)
    try:
        run_pipeline(pipe, out=args.out, progress=not args.quiet, executor=executor, source=args.pipeline)
    finally:
        executor.close()
    return 0


def run_demo(out: str | Path, *, quick: bool = False, progress: bool = True):
    """The README's main command: the bundled demo pipeline on the bundled synthetic players."""
    from dataclasses import replace

    from cogflex.pipeline import load_pipeline, run_pipeline

    pipe = load_pipeline("demo")
    if quick:
        pipe = replace(pipe, fit=replace(pipe.fit, draws=200, tune=200), ppc=replace(pipe.ppc, draws=10))
    return run_pipeline(pipe, out=out, progress=progress)


def _fits_arg(p) -> None:
    p.add_argument("fits", nargs="+", metavar="FIT_DIR|FIT.nc",
                   help="fit directories (every *.nc inside) or fit files, all made on the same trials")
    p.add_argument("--thin", type=int, default=1, help="use every k-th draw for PSIS-LOO (memory; default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_pipeline_commands(sub) -> None:
    """Register ``compare``, ``report`` and ``run``."""
    from cogflex.data.cli import _loader_options

    p = sub.add_parser(
        "compare", help="PSIS-LOO comparison of fitted models (stacking weights), per participant and pooled",
        description="Compare fits made on the same trials (refused otherwise): PSIS-LOO per model, ELPD differences "
        "with standard errors, stacking weights and Pareto-k diagnostics, per participant and pooled. Writes a CSV "
        "with one row per scope x model (columns: scope, participant, model, rank, elpd_loo, se, p_loo, elpd_diff, "
        "dse, weight, n_trials, pareto_k_max, n_pareto_k_bad, share_pareto_k_bad, winner, decisive, rhat_max, "
        "ess_bulk_min, divergences, ebfmi_min, interpolation_error, caveat) and, next to it, <name>_pairwise.csv with "
        "every pair of models (elpd_diff = A - B, se, z; A is the model ranked higher overall, whatever the order of "
        "the files). A lead is decisive only if it exceeds 2 SE of the difference and both fits pass the diagnostics "
        "(R-hat <= 1.01, bulk ESS >= 400, no divergences, E-BFMI >= 0.3, Pareto k > 0.7 on at most 1%% of trials, "
        "and an interpolation error that cannot undo the lead); the caveat column says why not. At least two "
        "different models are needed. Fits of the same models to "
        "disjoint sets of participants (cogflex fit --shard K/N, one folder per shard) are compared shard by shard, "
        "with one shard in memory at a time, and pooled over all participants.")
    _fits_arg(p)
    p.add_argument("--out", default="comparison.csv", metavar="FILE.csv", help="output CSV (default comparison.csv)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="shards compared at once (local processes, or the CPUs of a local Ray instance; default 1)")
    add_backend_options(p)
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser(
        "report", help="self-contained HTML model-comparison report (+ report.json, comparison.csv)",
        description="Write one self-contained HTML report of the fits (figures embedded; opens without a network): "
        "comparison and weights, posterior predictive checks, per-model spec, priors, diagnostics and posteriors, "
        "data and cleaning, software versions, seeds and hashes. Also writes report.json and comparison.csv next "
        "to it. Posterior predictive checks need the trial file the models were fitted to: the fits' own data "
        "file, or --data FILE (with the loader options below for CSVs).")
    _fits_arg(p)
    p.add_argument("--out", default="report.html", metavar="FILE.html", help="output HTML (default report.html)")
    p.add_argument("--json", metavar="FILE.json", help="machine-readable report (default: next to the HTML)")
    p.add_argument("--title", default="cogflex model comparison", help="report title")
    p.add_argument("--ppc-draws", type=int, default=30, metavar="N",
                   help="replications per model for posterior predictive checks (0: none; default 30)")
    p.add_argument("--ppc-seed", type=int, default=7, help="seed of the replications (default 7)")
    p.add_argument("--practice-bins", default="3", metavar="N|E1,E2,...",
                   help="practice bins of the checks: a number of bins or session edges (default 3)")
    _loader_options(p, data_option="--data")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser(
        "run", help="run or resume a pipeline: data -> fits -> comparison -> checks -> report",
        description="Run a pipeline TOML (sections [data] file/format/mapping/participants, [fit] models/draws/"
        "tune/chains/seed/target_accept/sampler/hierarchical/jobs, [ppc] draws/seed/practice_bins/n_bins, [report] "
        "title/thin; documented in cogflex/pipeline.py; start from `cogflex presets demo > mine.toml`): load and "
        "clean the data, fit the listed models, compare them, run posterior predictive checks and write fits/, "
        "comparison.csv, comparison_pairwise.csv, ppc/, report.html, report.json and pipeline.json. Rerunning "
        "resumes: finished fits made with the same spec, data and settings are not recomputed, nor are the finished "
        "participants of an interrupted fit (fits/.units/); Ctrl-C exits 130.")
    p.add_argument("pipeline", metavar="PIPELINE.toml|PRESET",
                   help="pipeline file, or a pipeline preset (demo: 3 synthetic players; lab-demo: 60 synthetic lab "
                   "participants, hierarchical; see `cogflex presets --kind pipelines`)")
    add_backend_options(p)
    p.add_argument("--out", metavar="DIR", help="output directory (default: the file's `out`)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_run)
