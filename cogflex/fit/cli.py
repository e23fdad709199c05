"""``cogflex fit`` and ``cogflex simulate-data``: the fitting layer's command line."""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

from cogflex.executors import add_backend_options

__all__ = ["add_fit_commands"]


def _parse_values(items: list[str], what: str) -> dict:
    from cogflex.errors import ConfigError, shown

    out = {}
    for item in items:
        for part in item.split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise ConfigError(what, f"expected NAME=VALUE, got {shown(part)}")
            key, value = part.split("=", 1)
            try:
                out[key.strip()] = float(value) if what == "params" else _number(value)
            except ValueError:
                raise ConfigError(f"{what}.{key.strip()}", f"not a number: {shown(value)}") from None
    return out


def _number(text: str):
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        return float(text)


def _params(args) -> dict:
    from cogflex.errors import ConfigError
    from cogflex.typed_config import read_toml

    params: dict = {}
    for item in args.params:
        path = Path(item)
        if item.endswith(".json"):
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise ConfigError("params", f"no such file: {path}") from None
            except UnicodeDecodeError:
                raise ConfigError("params", f"{path}: not UTF-8 text (JSON files are UTF-8)") from None
            except OSError as exc:
                raise ConfigError("params", f"cannot read {path} ({exc.strerror or exc})") from None
            except json.JSONDecodeError as exc:
                raise ConfigError("params", f"{path}: invalid JSON ({exc})") from None
            if not isinstance(loaded, dict):
                raise ConfigError("params", f"{path}: expected a JSON object of name: value, got "
                                            f"{type(loaded).__name__}")
            # a FILE.params.json written by simulate-data nests the values under "parameters"
            params.update(loaded["parameters"] if isinstance(loaded.get("parameters"), dict) else loaded)
        elif item.endswith(".toml"):
            params.update(read_toml(path))
        else:
            params.update(_parse_values([item], "params"))
    return params


def _cmd_fit(args) -> int:
    from cogflex.data.cli import _load
    from cogflex.executors import make_executor
    from cogflex.fit.options import FitOptions

    data = _load(args)
    options = FitOptions(draws=args.draws, tune=args.tune, chains=args.chains, seed=args.seed,
                         sampler=args.sampler, target_accept=args.target_accept,
                         # a shard is part of a per-participant fit (docs/scale.md)
                         hierarchical=False if args.shard and args.hierarchical == "auto" else args.hierarchical,
                         progress=not args.quiet, posterior_predictive=args.posterior_predictive,
                         refine=not args.no_refine, refine_points=args.refine_points,
                         refine_tolerance=args.refine_tolerance)
    out = Path(args.out)
    executor = make_executor(args.backend, workers=args.jobs, address=args.address)
    try:
        for model in args.model:
            _fit_and_print(data, model, options, args, out, executor)
    finally:
        executor.close()
    return 0


def _selected(args, data) -> list[str] | None:
    """``--participants`` (or all), then every N-th of them for ``--shard K/N`` (K = 1..N)."""
    from cogflex.errors import ConfigError, shown

    if not args.shard:
        return args.participants or None
    try:
        k, n = (int(x) for x in args.shard.split("/"))
    except ValueError:
        raise ConfigError("shard", f"expected K/N with whole numbers (e.g. 3/100), got {shown(args.shard)}") from None
    if not 1 <= k <= n:
        raise ConfigError("shard", f"K/N needs 1 <= K <= N, got {shown(args.shard)}")
    pool = [str(p) for p in (args.participants or data.participants)]
    chosen = pool[k - 1::n]
    if not chosen:
        raise ConfigError("shard", f"shard {k}/{n} of {len(pool)} participant(s) is empty (use N <= {len(pool)})")
    return chosen


def _fit_and_print(data, model, options, args, out: Path, executor) -> None:
    """Fit one model and print its summary lines."""
    from cogflex.fit.fitting import FitWarning, fit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)  # printed below, with the summary
        result = fit(data, model, options=options, participants=_selected(args, data), out=out,
                     executor=executor)
    s = result.summary
    print(f"{s['model']}: {s['n_trials']} trials, {len(s['participants'])} participant(s), "
          f"{'hierarchical' if s['hierarchical'] else 'per participant'}, {s['wall_seconds']:.1f} s "
          f"(network tables {s['seconds']['tables']:.1f} s, mode search {s['seconds']['mode_search']:.1f} s, "
          f"sampling {s['seconds']['sampling']:.1f} s)")
    if s.get("correctness"):
        print(f"  {s['correctness']}")
    print(f"  R-hat max {s['rhat_max']:.4f}, bulk ESS min {s['ess_bulk_min']:.0f}, tail ESS min "
          f"{s['ess_tail_min']:.0f}, divergences {s['divergences']}, E-BFMI min {s['ebfmi_min']:.2f}")
    for w in s["warnings"]:
        print(f"  WARNING: {w}")
    from cogflex.fit.schema import model_of

    for name in model_of(result.tree).grid_names:  # the network parameters
        if name in s["parameters"]:
            vals = ", ".join(f"{p} {v['mean']:.3g} [{v['low_94']:.3g}, {v['high_94']:.3g}]"
                             for p, v in s["parameters"][name].items())
            print(f"  {name}: {vals}")
    if s["fixed_parameters"]:
        print("  fixed: " + ", ".join(f"{k} = {v:g}" for k, v in s["fixed_parameters"].items()))
    print(f"  wrote {result.path} and {out / (s['model'] + '.summary.json')}")


def _cmd_simulate_data(args) -> int:
    import numpy as np

    from cogflex.errors import ConfigError
    from cogflex.fit.models import load_model
    from cogflex.fit.options import check_seed
    from cogflex.fit.simulate import Design, design_trials, draw_parameters, simulate_trials, to_ebb_and_flow
    from cogflex.io import atomic_path, write_json

    check_seed(args.seed)
    spec = load_model(args.model)
    if args.sequence and args.design:
        raise ConfigError("sequence", "give either --sequence FILE or --design ..., not both")
    if args.sequence:
        from cogflex.data.cli import _load

        args.file = args.sequence
        trials = _load(args)
    else:
        from cogflex.typed_config import from_mapping, to_mapping

        design = from_mapping(Design, {"seed": args.seed, **_parse_values(args.design or [], "design")},
                              section="design")
        trials = design_trials(design)
    design_record = to_mapping(design) if not args.sequence else {"sequence": str(args.sequence)}
    if args.params:
        params = _params(args)
    else:
        rng = np.random.default_rng(args.seed)
        params = {}
        for pid in trials.participants:
            for k, v in draw_parameters(spec, rng).items():
                params.setdefault(k, {})[str(pid)] = v
    sim = simulate_trials(spec, params, trials, seed=args.seed)
    out = Path(args.out)
    has_stimuli = {"stim_point", "stim_move"} <= set(sim.trials.columns)
    table = to_ebb_and_flow(sim) if has_stimuli else sim.trials
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g", compression="gzip" if out.suffix == ".gz" else None)
    params_path = out.with_name(out.name.removesuffix(".gz").removesuffix(".csv") + ".params.json")
    write_json(params_path, {"model": spec.name, "seed": args.seed, "design": design_record, "parameters": params})
    fmt = "ebb-and-flow" if has_stimuli else "the canonical trial schema"
    print(f"{spec.name}: simulated {len(sim.trials)} trials of {len(sim.participants)} participant(s) "
          f"(accuracy {sim.trials['correct'].mean():.3f}, median RT {sim.trials['rt'].median() * 1000:.0f} ms)")
    print(f"  wrote {out} ({fmt}) and {params_path} (the generating parameters)")
    return 0


def add_fit_commands(sub) -> None:
    """Register ``fit`` and ``simulate-data`` on the top-level subparsers."""
    from cogflex.data.cli import _loader_options
    from cogflex.fit.options import SAMPLER_DEFAULTS

    p = sub.add_parser(
        "fit", help="fit models (flexible / forgetful NTA, descriptive, your own) to trial data (PyMC, NUTS)",
        description="Fit models to a trial file: the NTA network runs on each participant's own trial sequence "
        "(cleaned trials enter the likelihood: a session's first trial and RTs outside 0.15-3 s are removed, errors "
        "are kept). Writes DIR/<model>.nc (DataTree: posterior, sample_stats, log_likelihood, observed_data) and "
        "DIR/<model>.summary.json; network predictor tables are cached in DIR/.cache.")
    _loader_options(p)
    p.add_argument("--model", action="append", required=True, metavar="NAME|FILE.toml|FILE.py",
                   help="a model preset (flexible-reconfig, forgetful-reconfig, fast-gates-unregularised, flexible, "
                        "forgetful, descriptive; see `cogflex presets`), a model TOML, "
                   "or a Python file defining MODEL (your own model: docs/custom_models.md); repeatable")
    p.add_argument("--participants", nargs="+", metavar="ID", help="fit only these participants")
    p.add_argument("--shard", metavar="K/N",
                   help="fit shard K of N (K = 1..N): every N-th participant of the file (or of --participants), "
                   "starting with the K-th; fit each shard into its own --out folder and give all folders to "
                   "cogflex compare (see docs/scale.md)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--hierarchical", dest="hierarchical", action="store_const", const=True, default="auto",
                     help="one hierarchical fit over all participants (default: hierarchical for at least 8 "
                     "participants with a median of at most 1,000 fitted trials each, up to 300 participants; "
                     "otherwise independent per-participant fits)")
    how.add_argument("--per-participant", dest="hierarchical", action="store_const", const=False,
                     help="independent per-participant fits whatever the data")
    d = SAMPLER_DEFAULTS
    p.add_argument("--draws", type=int, default=d.draws, help=f"posterior draws per chain (default {d.draws})")
    p.add_argument("--tune", type=int, default=d.tune, help=f"tuning steps per chain (default {d.tune})")
    p.add_argument("--chains", type=int, default=d.chains, help=f"chains (default {d.chains})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    p.add_argument("--target-accept", type=float, default=d.target_accept,
                   help=f"NUTS target acceptance (default {d.target_accept})")
    p.add_argument("--sampler", choices=("auto", "nutpie", "pymc"), default=d.sampler,
                   help="NUTS implementation: nutpie (fast, default when installed) or pymc")
    p.add_argument("--no-refine", action="store_true",
                   help="sample on the model's whole-box network grid only (default: each participant's grid is "
                   "refined around its posterior until a pilot's exact-vs-interpolated log-likelihood is within "
                   "--refine-tolerance; docs/fitting.md)")
    p.add_argument("--refine-points", type=int, default=d.refine_points, metavar="N",
                   help=f"nodes per axis of a refined grid window (default {d.refine_points})")
    p.add_argument("--refine-tolerance", type=float, default=d.refine_tolerance, metavar="LL",
                   help="largest exact-minus-interpolated log-likelihood a refined grid may leave at the pilot "
                   f"posterior (default {d.refine_tolerance:g})")
    p.add_argument("--posterior-predictive", type=int, default=0, metavar="N",
                   help="add N replications of the data under posterior draws (posterior_predictive group)")
    p.add_argument("--jobs", type=int, default=1,
                   help="per-participant fits in parallel processes (default 1; with --backend ray and no "
                   "--address: the CPUs of the local Ray instance)")
    add_backend_options(p)
    p.add_argument("--out", metavar="DIR", required=True,
                   help="output directory; finished participant fits are kept in DIR/.units/ and reused when "
                   "the command is run again after an interruption")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser(
        "simulate-data", help="simulate synthetic participants (RTs and choices) from a model",
        description="Simulate responses and RTs from a model, on a real trial sequence (--sequence FILE) or on a "
        "generated Ebb and Flow-like design (--design participants=4,sessions=30,...). Parameters from --params "
        "(NAME=VALUE,... or a JSON/TOML file; JSON values may be {participant: value}) or, without --params, drawn "
        "from the model's priors. Writes FILE.csv (Ebb and Flow layout when the trials have point/move stimuli) "
        "and FILE.params.json.")
    p.add_argument("--model", required=True, metavar="NAME|FILE.toml|FILE.py",
                   help="a model preset (e.g. flexible-reconfig, flexible, descriptive; see `cogflex presets`), "
                        "a model TOML or a Python model file")
    p.add_argument("--params", action="append", default=[], metavar="NAME=VALUE,...|FILE.json",
                   help="parameter values (see `cogflex fit` summaries for names); default: drawn from the priors")
    p.add_argument("--sequence", metavar="FILE", help="take cues and stimuli from this trial file")
    p.add_argument("--design", action="append", metavar="KEY=VALUE,...",
                   help="generated design: participants, sessions, trials_per_session, first_session, switch_rate, "
                        "congruent_rate")
    p.add_argument("--seed", type=int, default=0, help="seed of the design, parameter and response draws")
    p.add_argument("--out", required=True, metavar="FILE.csv", help="output CSV")
    for flag, kw in (("--format", {"choices": ("ebb-and-flow", "csv"), "default": "ebb-and-flow",
                                   "help": "format of --sequence (default ebb-and-flow)"}),
                     ("--map", {"action": "append", "default": [], "help": "column mapping of --sequence (csv)"}),
                     ("--mapping", {"help": "mapping TOML of --sequence (csv)"}),
                     ("--recode", {"action": "append", "default": [], "help": argparse.SUPPRESS}),
                     ("--rt-unit", {"choices": ("ms", "s"), "help": argparse.SUPPRESS}),
                     ("--rt-missing", {"action": "append", "help": argparse.SUPPRESS}),
                     ("--encoding", {"help": argparse.SUPPRESS}),
                     ("--delimiter", {"help": argparse.SUPPRESS}),
                     ("--decimal", {"choices": (".", ","), "help": argparse.SUPPRESS})):
        p.add_argument(flag, **kw)
    p.set_defaults(func=_cmd_simulate_data)
